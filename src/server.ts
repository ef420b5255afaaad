import * as fs from 'node:fs';
import { Transform } from 'node:stream';
import { App } from './http/app';
import type { Context } from './http/context';
import { HttpError } from './http/errors';
import { QuicListener, type QuicListenerOptions } from './listeners/quic';
import { TcpListener } from './listeners/tcp';
import { loadOrCreateDevCertificate } from './tls/devcert';

export type EndpointProtocol = 'h3' | 'h2' | 'http/1.1';

/** One place the server listens (after Kestrel's endpoints). */
export interface EndpointConfig {
  /** IP address to bind. Default '::' (all addresses, IPv4 and IPv6). */
  host?: string;
  /** Port for TCP and UDP alike. Default 4433; 0 picks a free one. */
  port?: number;
  /** Default ['h3', 'h2', 'http/1.1']: HTTP/3 on UDP, TLS with ALPN on TCP. */
  protocols?: EndpointProtocol[];
  /** false: cleartext HTTP/1.1 only (no TLS, no HTTP/3). Default true. */
  tls?: boolean;
  /** Unix domain socket path (cleartext HTTP/1.1, for reverse proxies). */
  path?: string;
  /** Advertise HTTP/3 on TCP responses with Alt-Svc. Default true when h3 is on. */
  altSvc?: boolean;
}

/** Request limits; the defaults are Kestrel's. */
export interface Limits {
  /** Largest request body in bytes (413 beyond). Default 30,000,000. */
  maxRequestBodySize?: number;
  /** Most request header fields (431 beyond). Default 100. */
  maxRequestHeaderCount?: number;
  /** Most bytes of request headers (431 beyond). Default 32 KiB. */
  maxRequestHeadersTotalSize?: number;
  /** Longest request line / target (414 beyond). Default 8 KiB. */
  maxRequestLineSize?: number;
  /** Concurrent streams per HTTP/2 or HTTP/3 connection. Default 100. */
  maxConcurrentStreams?: number;
  /** Most connections per listener; undefined is unlimited. */
  maxConnections?: number;
  /** Idle keep-alive connections close after this. Default 130 s. */
  keepAliveTimeoutMs?: number;
  /** The whole request head must arrive within this. Default 30 s. */
  requestHeadersTimeoutMs?: number;
  /** Bodies slower than this many bytes/s (after the grace period) are cut. Default 240. */
  minRequestBodyDataRate?: number;
  /** Grace period before the minimum rate applies. Default 5 s. */
  minRequestBodyDataRateGraceMs?: number;
}

export interface ServerOptions {
  endpoints?: EndpointConfig[];
  /** Certificate chain and key (PEM text or file paths). Without them a development certificate is used. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  limits?: Limits;
  /** More QUIC options (retry, qlogDir, congestion control, datagrams...). */
  quic?: Omit<QuicListenerOptions, 'host' | 'port' | 'cert' | 'key'>;
  /** How long graceful shutdown waits for in-flight requests. Default 30 s. */
  shutdownTimeoutMs?: number;
}

export const DEFAULT_LIMITS: Required<Omit<Limits, 'maxConnections'>> & Pick<Limits, 'maxConnections'> = {
  maxRequestBodySize: 30_000_000,
  maxRequestHeaderCount: 100,
  maxRequestHeadersTotalSize: 32 * 1024,
  maxRequestLineSize: 8 * 1024,
  maxConcurrentStreams: 100,
  maxConnections: undefined,
  keepAliveTimeoutMs: 130_000,
  requestHeadersTimeoutMs: 30_000,
  minRequestBodyDataRate: 240,
  minRequestBodyDataRateGraceMs: 5_000,
};

export interface ListeningAddress {
  url: string;
  protocols: string[];
  transport: 'udp' | 'tcp' | 'unix';
}

/**
 * The host: one pipeline, served on every endpoint. `listen()` starts the listeners,
 * `close()` shuts down gracefully (GOAWAY, `Connection: close`, drain, then close).
 */
export class Server extends App {
  readonly options: ServerOptions;
  readonly limits: typeof DEFAULT_LIMITS;
  readonly quicListeners: QuicListener[] = [];
  readonly tcpListeners: TcpListener[] = [];
  readonly addresses: ListeningAddress[] = [];
  /** The certificate in use (a development certificate when none was given). */
  certificate: { cert: string | Buffer; key: string | Buffer; development: boolean } | undefined;

  constructor(options: ServerOptions = {}) {
    super();
    this.options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.use(limitsMiddleware(this.limits));
  }

  async listen(): Promise<ListeningAddress[]> {
    const endpoints = this.options.endpoints ?? [{ port: 4433 }];
    for (const ep of endpoints) await this.listenOn(ep);
    return this.addresses;
  }

  private tlsMaterial(): { cert: string | Buffer; key: string | Buffer } {
    if (!this.certificate) {
      if (this.options.tls) {
        this.certificate = { ...this.options.tls, development: false };
      } else {
        const dev = loadOrCreateDevCertificate();
        this.certificate = { cert: dev.certPem, key: dev.keyPem, development: true };
      }
    }
    const read = (v: string | Buffer): string | Buffer => (typeof v === 'string' && !v.includes('-----BEGIN') ? fs.readFileSync(v) : v);
    return { cert: read(this.certificate.cert), key: read(this.certificate.key) };
  }

  private async listenOn(ep: EndpointConfig): Promise<void> {
    const l = this.limits;
    const tcpLimits = {
      maxHeaderSize: l.maxRequestHeadersTotalSize,
      headersTimeoutMs: l.requestHeadersTimeoutMs,
      keepAliveTimeoutMs: l.keepAliveTimeoutMs,
      requestTimeoutMs: 0,
      maxHeadersCount: l.maxRequestHeaderCount + 1,
      maxConcurrentStreams: l.maxConcurrentStreams,
    };
    if (ep.path) {
      const unix = new TcpListener(this, { path: ep.path, ...tcpLimits });
      if (fs.existsSync(ep.path)) fs.rmSync(ep.path);
      await unix.listen();
      this.tcpListeners.push(unix);
      this.addresses.push({ url: `unix:${ep.path}`, protocols: ['http/1.1'], transport: 'unix' });
      return;
    }
    const host = ep.host ?? '::';
    const urlHost = host === '::' || host === '0.0.0.0' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    if (ep.tls === false) {
      const plain = new TcpListener(this, { host, port: ep.port ?? 8080, ...tcpLimits });
      await plain.listen();
      this.tcpListeners.push(plain);
      this.addresses.push({ url: `http://${urlHost}:${plain.port}/`, protocols: ['http/1.1'], transport: 'tcp' });
      return;
    }
    const protocols = ep.protocols ?? ['h3', 'h2', 'http/1.1'];
    const tls = this.tlsMaterial();
    const wantsTcp = protocols.includes('h2') || protocols.includes('http/1.1');
    let port = ep.port ?? 4433;
    let tcp: TcpListener | undefined;
    if (wantsTcp) {
      tcp = new TcpListener(this, { host, port, tls, ...tcpLimits });
      await tcp.listen();
      port = tcp.port; // HTTP/3 takes the same port number on UDP
      this.tcpListeners.push(tcp);
    }
    if (protocols.includes('h3')) {
      const quic = await QuicListener.listen(this, {
        maxConnections: l.maxConnections,
        ...this.options.quic,
        h3: { maxFieldSectionSize: l.maxRequestHeadersTotalSize, ...this.options.quic?.h3 },
        maxConcurrentStreams: l.maxConcurrentStreams,
        host, port, cert: tls.cert, key: tls.key,
      });
      this.quicListeners.push(quic);
      port = quic.port;
      this.addresses.push({ url: `https://${urlHost}:${port}/`, protocols: ['h3', ...(this.options.quic?.hq === false ? [] : ['hq-interop'])], transport: 'udp' });
      if (tcp && ep.altSvc !== false) (tcp as unknown as { options: { altSvc?: string } }).options.altSvc = `h3=":${port}"; ma=86400`;
    }
    if (tcp) {
      const p = protocols.filter((x) => x !== 'h3');
      this.addresses.push({ url: `https://${urlHost}:${tcp.port}/`, protocols: p, transport: 'tcp' });
    }
  }

  /**
   * Graceful shutdown: GOAWAY on HTTP/3 and HTTP/2, `Connection: close` on HTTP/1.1, no new
   * connections; in-flight requests get up to `timeoutMs` to finish, then everything closes.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeout = options.timeoutMs ?? this.options.shutdownTimeoutMs ?? 30_000;
    for (const q of this.quicListeners) q.goaway();
    for (const t of this.tcpListeners) t.drain();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.quicListeners.map((q) => q.idle()), ...this.tcpListeners.map((t) => t.idle())]),
      new Promise((resolve) => (timer = setTimeout(resolve, timeout))),
    ]);
    clearTimeout(timer);
    for (const t of this.tcpListeners) t.close();
    await Promise.all(this.quicListeners.map((q) => q.close()));
  }
}

/** Creates a server; add middleware and routes, then `await server.listen()`. */
export function createServer(options: ServerOptions = {}): Server {
  return new Server(options);
}

/** Kestrel's request limits, on every protocol. */
function limitsMiddleware(l: typeof DEFAULT_LIMITS) {
  return async (ctx: Context, next: () => Promise<void>): Promise<void> => {
    const req = ctx.request;
    if (req.target.length > l.maxRequestLineSize) throw new HttpError(414, 'request target too long', { code: 'HARRIER_ERR_URI_TOO_LONG' });
    let count = 0;
    let size = 0;
    for (const [k, v] of req.headers) {
      count++;
      size += k.length + v.length;
    }
    if (count > l.maxRequestHeaderCount || size > l.maxRequestHeadersTotalSize) {
      throw new HttpError(431, 'request header fields too large', { code: 'HARRIER_ERR_HEADERS_TOO_LARGE' });
    }
    const declared = req.headers.get('content-length');
    if (declared !== undefined && Number(declared) > l.maxRequestBodySize) {
      throw new HttpError(413, `request body over ${l.maxRequestBodySize} bytes`, { code: 'HARRIER_ERR_BODY_TOO_LARGE' });
    }
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    const guarded = guardBody(req.body, l);
    req.body = guarded;
    try {
      await next();
    } finally {
      // The rate clock stops with the exchange, read to the end or not.
      if (!guarded.readableEnded) guarded.destroy();
    }
  };
}

/** Counts body bytes as they are read: over the size limit, or below the minimum rate, fails. */
function guardBody(body: import('node:stream').Readable, l: typeof DEFAULT_LIMITS): import('node:stream').Readable {
  let total = 0;
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const guard = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.byteLength;
      if (total > l.maxRequestBodySize) {
        cb(new HttpError(413, `request body over ${l.maxRequestBodySize} bytes`, { code: 'HARRIER_ERR_BODY_TOO_LARGE' }));
        return;
      }
      cb(null, chunk);
    },
    flush(cb) {
      clearInterval(timer);
      cb();
    },
  });
  if (l.minRequestBodyDataRate > 0) {
    timer = setInterval(() => {
      const elapsed = Date.now() - started;
      if (elapsed < l.minRequestBodyDataRateGraceMs) return;
      if (total < (l.minRequestBodyDataRate * elapsed) / 1000) {
        clearInterval(timer);
        const err = new HttpError(408, 'request body arrived too slowly', { code: 'HARRIER_ERR_BODY_TIMEOUT' });
        body.destroy(err);
        guard.destroy(err);
      }
    }, 1000);
    timer.unref();
  }
  body.on('error', (e) => guard.destroy(e));
  guard.on('close', () => clearInterval(timer));
  return body.pipe(guard);
}
