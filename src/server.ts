import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { createSecureContext, type SecureContext } from 'node:tls';
import { App } from './http/app';
import type { Context, Protocol } from './http/context';
import { HttpError } from './http/errors';
import { QuicListener, type QuicListenerOptions } from './listeners/quic';
import { TcpListener, type TcpListenerOptions } from './listeners/tcp';
import { formatPrometheus, RequestMetrics, snapshot, TRANSPORTS, zeroes, type MetricsSnapshot } from './metrics';
import { loadOrCreateDevCertificate } from './tls/devcert';
import { Http2WebTransport, type Http2WebTransportOptions } from './webtransport/h2';

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
  /** Most open WebSockets on the server (503 beyond); undefined is unlimited. */
  maxWebSockets?: number;
  /** Largest WebSocket message (close 1009 beyond). Default 16 MiB. */
  maxWebSocketMessageSize?: number;
  /** A WebSocket silent this long is pinged. Default 30 s; 0 never pings. */
  webSocketPingIntervalMs?: number;
  /** A WebSocket silent this long (no pong either) is closed with 1001. Default 120 s; 0 never. */
  webSocketIdleTimeoutMs?: number;
}

/** Which listeners carry WebSockets besides HTTP/1.1 Upgrade (always on). */
export interface WebSocketTransports {
  /** Extended CONNECT over HTTP/2 (RFC 8441, SETTINGS_ENABLE_CONNECT_PROTOCOL). Default true. */
  http2?: boolean;
  /** Extended CONNECT over HTTP/3 (RFC 9220). Default true. */
  http3?: boolean;
}

/** One certificate chain and key (PEM text or file paths), and the server names it answers. */
export interface CertificateConfig {
  cert: string | Buffer;
  key: string | Buffer;
  /**
   * Server names (SNI) this certificate is for; `*.example.com` matches one label. Default:
   * the certificate's DNS subject alternative names.
   */
  hosts?: string[];
}

/**
 * TLS material: one certificate, or several chosen by SNI. With several, TCP (HTTP/2,
 * HTTP/1.1) picks by server name and falls back to the first; HTTP/3 always presents the
 * first, because the native QUIC endpoint (quiche) holds one certificate per endpoint.
 */
export type TlsOptions = { cert: string | Buffer; key: string | Buffer } | { certificates: CertificateConfig[] };

export interface MetricsOptions {
  /** Serve the Prometheus text format at this path on every endpoint. Default '/metrics'. */
  path?: string;
}

export interface ServerOptions {
  endpoints?: EndpointConfig[];
  /** Certificates (PEM text or file paths). Without them a development certificate is used. */
  tls?: TlsOptions;
  limits?: Limits;
  /** More QUIC options (retry, qlogDir, congestion control, datagrams...). */
  quic?: Omit<QuicListenerOptions, 'host' | 'port' | 'cert' | 'key'>;
  /** How long graceful shutdown waits for in-flight requests. Default 30 s. */
  shutdownTimeoutMs?: number;
  /**
   * `true` or `{ path }`: serve the metrics in Prometheus text format (GET only).
   * `server.metrics()` works either way.
   */
  metrics?: boolean | MetricsOptions;
  /** WebSockets over HTTP/2 and HTTP/3 (routes are added with `webSocket(path, handler)`). */
  webSockets?: WebSocketTransports;
  /**
   * WebTransport over HTTP/2 (draft-ietf-webtrans-http2) on the TLS listeners, for clients
   * without HTTP/3. Default: on when `quic.webtransport` is; `false` turns it off. Routes are
   * the same `webTransport(path, handler)` for both.
   */
  webTransportOverHttp2?: boolean | Http2WebTransportOptions;
}

type Unbounded = 'maxConnections' | 'maxWebSockets';

export const DEFAULT_LIMITS: Required<Omit<Limits, Unbounded>> & Pick<Limits, Unbounded> = {
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
  maxWebSockets: undefined,
  maxWebSocketMessageSize: 16 * 1024 * 1024,
  webSocketPingIntervalMs: 30_000,
  webSocketIdleTimeoutMs: 120_000,
};

export interface ListeningAddress {
  url: string;
  protocols: string[];
  transport: 'udp' | 'tcp' | 'unix';
}

type Pem = string | Buffer;

/**
 * The host: one pipeline, served on every endpoint. `listen()` starts the listeners,
 * `close()` shuts down gracefully (GOAWAY, `Connection: close`, drain, then close),
 * `metrics()` reports connections, requests and bytes.
 */
export class Server extends App {
  readonly options: ServerOptions;
  readonly limits: typeof DEFAULT_LIMITS;
  readonly quicListeners: QuicListener[] = [];
  readonly tcpListeners: TcpListener[] = [];
  readonly addresses: ListeningAddress[] = [];
  /** The default certificate (a development certificate when none was given). */
  certificate: { cert: Pem; key: Pem; development: boolean } | undefined;
  private readonly requestMetrics = new RequestMetrics();
  private readonly quicStats = new Map<QuicListener, { accepted: number; announced: number; failed: number }>();
  private closing: Promise<void> | undefined;
  /** WebTransport over HTTP/2, shared by the TLS listeners (undefined when off). */
  private readonly h2WebTransport: Http2WebTransport | undefined;

  constructor(options: ServerOptions = {}) {
    super();
    this.options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (value === undefined && (name === 'maxConnections' || name === 'maxWebSockets')) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        throw new RangeError(`limits.${name} must be a non-negative integer (got ${String(value)})`);
      }
    }
    const wtH2 = options.webTransportOverHttp2 ?? (options.quic?.webtransport ? (options.quic.webtransport === true ? {} : options.quic.webtransport) : false);
    this.h2WebTransport = wtH2 ? new Http2WebTransport(wtH2 === true ? {} : wtH2) : undefined;
    const l = this.limits;
    this.webSockets.limits = {
      maxWebSockets: l.maxWebSockets,
      maxMessageSize: l.maxWebSocketMessageSize,
      pingIntervalMs: l.webSocketPingIntervalMs,
      idleTimeoutMs: l.webSocketIdleTimeoutMs,
    };
    if (options.metrics) {
      const path = (options.metrics === true ? undefined : options.metrics.path) ?? '/metrics';
      this.use(async (ctx, next) => {
        if (ctx.path !== path || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
        ctx.set('content-type', 'text/plain; version=0.0.4; charset=utf-8');
        ctx.set('cache-control', 'no-store');
        ctx.body = formatPrometheus(this.metrics());
      });
    }
    this.use(limitsMiddleware(this.limits, (protocol, n) => (this.requestMetrics.received[protocol] += n)));
  }

  /** Counts each request (active, then by protocol and status) and its body bytes. */
  protected override requestStarted(ctx: Context): void {
    this.requestMetrics.started(ctx.protocol);
  }

  protected override requestFinished(ctx: Context): void {
    this.requestMetrics.finished(ctx.protocol, ctx.response.status);
  }

  protected override bodyBytesSent(ctx: Context, n: number): void {
    this.requestMetrics.sent[ctx.protocol] += n;
  }

  /** Starts every endpoint; if one fails, those already started are closed and the error is thrown. */
  async listen(): Promise<ListeningAddress[]> {
    const endpoints = this.options.endpoints ?? [{ port: 4433 }];
    try {
      for (const ep of endpoints) await this.listenOn(ep);
    } catch (err) {
      for (const t of this.tcpListeners) t.close();
      await Promise.all(this.quicListeners.map((q) => q.close()));
      this.tcpListeners.length = 0;
      this.quicListeners.length = 0;
      this.addresses.length = 0;
      throw err;
    }
    return this.addresses;
  }

  /** Connections, requests by protocol and status, handshake failures and body bytes, now. */
  metrics(): MetricsSnapshot {
    const active = zeroes(TRANSPORTS);
    const total = zeroes(TRANSPORTS);
    const failures = { quic: 0, tls: 0 };
    for (const t of this.tcpListeners) {
      active[t.transport] += t.connections;
      total[t.transport] += t.connectionsAccepted;
      failures.tls += t.handshakeFailures;
    }
    for (const q of this.quicListeners) {
      const s = this.quicCounts(q);
      active.quic += q.endpoint.connections.size;
      total.quic += s.announced;
      failures.quic += s.failed;
    }
    return snapshot(this.requestMetrics, { active, total }, failures);
  }

  /**
   * QUIC handshake counts. The endpoint counts Initials it could not accept (`acceptFailed`);
   * connections that were accepted but never reached the application (failed TLS handshake,
   * no common ALPN) are the accepted ones neither announced nor still in their handshake.
   */
  private quicCounts(q: QuicListener): { accepted: number; announced: number; failed: number } {
    const s = this.quicStats.get(q)!;
    try {
      const st = q.endpoint.stats();
      const inHandshake = Math.max(0, st.connections - q.endpoint.connections.size);
      s.accepted = st.connectionsAccepted;
      s.failed = st.acceptFailed + Math.max(0, st.connectionsAccepted - s.announced - inHandshake);
    } catch {
      // The endpoint is closed: keep the last counts.
    }
    return s;
  }

  private tlsMaterial(): NonNullable<TcpListenerOptions['tls']> {
    const read = (v: Pem): Pem => (typeof v === 'string' && !v.includes('-----BEGIN') ? fs.readFileSync(v) : v);
    const tls = this.options.tls;
    if (tls && 'certificates' in tls) {
      if (!Array.isArray(tls.certificates) || tls.certificates.length === 0) throw new TypeError('tls.certificates must list at least one certificate');
      const certs = tls.certificates.map((c) => ({ cert: read(c.cert), key: read(c.key), hosts: c.hosts }));
      this.certificate ??= { cert: certs[0].cert, key: certs[0].key, development: false };
      return { cert: certs[0].cert, key: certs[0].key, SNICallback: sniCallback(certs) };
    }
    if (!this.certificate) {
      if (tls) {
        this.certificate = { cert: tls.cert, key: tls.key, development: false };
      } else {
        const dev = loadOrCreateDevCertificate();
        this.certificate = { cert: dev.certPem, key: dev.keyPem, development: true };
      }
    }
    return { cert: read(this.certificate.cert), key: read(this.certificate.key) };
  }

  private async listenOn(ep: EndpointConfig): Promise<void> {
    const l = this.limits;
    const tcpLimits = {
      maxHeaderSize: l.maxRequestHeadersTotalSize,
      headersTimeoutMs: l.requestHeadersTimeoutMs,
      keepAliveTimeoutMs: l.keepAliveTimeoutMs,
      requestTimeoutMs: 0,
      // node silently drops header fields beyond maxHeadersCount (Host among them, and then
      // answers 400): keep them all (maxRequestHeadersTotalSize bounds them) and let the
      // pipeline answer 431.
      maxHeadersCount: 0,
      maxConcurrentStreams: l.maxConcurrentStreams,
      maxConnections: l.maxConnections,
      enableConnectProtocol: this.options.webSockets?.http2 !== false,
    };
    if (ep.path) {
      const unix = new TcpListener(this, { path: ep.path, ...tcpLimits });
      // A stale socket from a previous run is replaced; any other file is left alone (EADDRINUSE).
      if (fs.existsSync(ep.path) && fs.statSync(ep.path).isSocket()) fs.rmSync(ep.path);
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
    const wantsH3 = protocols.includes('h3');
    // With port 0 the TCP port is picked first and UDP takes the same number; if that UDP
    // port is busy, try again with another.
    for (let attempt = 0; ; attempt++) {
      let port = ep.port ?? 4433;
      let tcp: TcpListener | undefined;
      if (wantsTcp) {
        tcp = new TcpListener(this, { host, port, tls, ...tcpLimits, webTransport: this.h2WebTransport });
        await tcp.listen();
        port = tcp.port;
      }
      let quic: QuicListener | undefined;
      if (wantsH3) {
        try {
          quic = await QuicListener.listen(this, {
            maxConnections: l.maxConnections,
            maxIdleTimeout: l.keepAliveTimeoutMs,
            ...this.options.quic,
            h3: {
              maxFieldSectionSize: l.maxRequestHeadersTotalSize,
              // RFC 9220: extended CONNECT for WebSockets (WebTransport turns it on by itself).
              ...(this.options.webSockets?.http3 !== false ? { enableConnectProtocol: true } : {}),
              ...this.options.quic?.h3,
            },
            maxConcurrentStreams: l.maxConcurrentStreams,
            host, port, cert: tls.cert, key: tls.key,
          });
        } catch (err) {
          tcp?.close();
          if (ep.port === 0 && wantsTcp && attempt < 5 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
          if (ep.port === 0 && wantsTcp && attempt < 5 && /in use/i.test(String((err as Error).message))) continue;
          throw err;
        }
        this.quicListeners.push(quic);
        this.quicStats.set(quic, { accepted: 0, announced: 0, failed: 0 });
        quic.endpoint.on('connection', () => this.quicStats.get(quic!)!.announced++);
        port = quic.port;
        this.addresses.push({ url: `https://${urlHost}:${port}/`, protocols: ['h3', ...(this.options.quic?.hq === false ? [] : ['hq-interop'])], transport: 'udp' });
      }
      if (tcp) {
        if (quic && ep.altSvc !== false) tcp.altSvc = `h3=":${port}"; ma=86400`;
        this.tcpListeners.push(tcp);
        this.addresses.push({ url: `https://${urlHost}:${tcp.port}/`, protocols: protocols.filter((x) => x !== 'h3'), transport: 'tcp' });
      }
      return;
    }
  }

  /**
   * Graceful shutdown: new connections are refused; HTTP/3 and HTTP/2 connections get GOAWAY
   * (requests already started finish, later ones are refused); HTTP/1.1 responses carry
   * `Connection: close` and idle keep-alive connections close. In-flight requests get up to
   * `timeoutMs` (default `shutdownTimeoutMs`, 30 s); then every connection is closed.
   * Calling it again returns the same promise.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.timeoutMs ?? this.options.shutdownTimeoutMs ?? 30_000);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const q of this.quicListeners) q.goaway();
    for (const t of this.tcpListeners) t.drain();
    // RFC 6455 §7.4.1: 1001, the server is going away.
    this.webSockets.closeAll();
    this.h2WebTransport?.drain();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([
      Promise.all([
        ...this.quicListeners.map(async (q) => {
          await q.idle();
          await quicFlushed(q, deadline);
        }),
        ...this.tcpListeners.map((t) => t.idle()),
      ]),
      expired,
    ]);
    clearTimeout(timer);
    this.webSockets.terminateAll();
    this.h2WebTransport?.closeAll('server shutting down');
    for (const t of this.tcpListeners) t.close();
    await Promise.all(this.quicListeners.map((q) => q.close()));
    for (const ep of this.options.endpoints ?? []) {
      if (ep.path && fs.existsSync(ep.path) && fs.statSync(ep.path).isSocket()) fs.rmSync(ep.path, { force: true });
    }
  }
}

/** Creates a server; add middleware and routes, then `await server.listen()`. */
export function createServer(options: ServerOptions = {}): Server {
  return new Server(options);
}

/**
 * Waits until the answers already handed to QUIC have most likely reached the clients: nothing
 * queued in JS and no packet sent for two probe timeouts (RFC 9002 §6.2.1: a lost tail
 * would have been probed again by then), or every connection closed, or the deadline.
 * quiche does not report acknowledgements of stream data, so this is the signal available.
 */
async function quicFlushed(q: QuicListener, deadline: number): Promise<void> {
  const last = new Map<unknown, { sent: number; since: number }>();
  while (Date.now() < deadline) {
    let busy = false;
    const now = Date.now();
    for (const conn of q.endpoint.connections.values()) {
      if ([...conn.streams.values()].some((s) => s.writableLength > 0)) {
        busy = true;
        continue;
      }
      const st = conn.stats();
      if (!st) continue;
      const prev = last.get(conn);
      if (!prev || prev.sent !== st.bytesSent) {
        last.set(conn, { sent: st.bytesSent, since: now });
        busy = true;
        continue;
      }
      const pto = st.rtt + Math.max(4 * st.rttVar, 1) + 25;
      if (now - prev.since < Math.max(100, 2 * pto)) busy = true;
    }
    if (!busy) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Chooses a certificate by server name (SNI); unknown names get the first one. */
function sniCallback(certs: Array<{ cert: Pem; key: Pem; hosts?: string[] }>) {
  const entries = certs.map((c) => {
    let hosts = c.hosts;
    if (!hosts) {
      const san = new X509Certificate(c.cert).subjectAltName ?? '';
      hosts = san.split(/,\s*/).filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4));
    }
    return { hosts: hosts.map((h) => h.toLowerCase()), context: createSecureContext({ cert: c.cert, key: c.key }) };
  });
  const matches = (pattern: string, name: string): boolean => {
    if (pattern === name) return true;
    if (!pattern.startsWith('*.')) return false;
    const dot = name.indexOf('.');
    return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
  };
  return (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const name = servername.toLowerCase();
    const exact = entries.find((e) => e.hosts.includes(name));
    const found = exact ?? entries.find((e) => e.hosts.some((h) => matches(h, name)));
    cb(null, (found ?? entries[0]).context);
  };
}

/** Kestrel's request limits, on every protocol. */
function limitsMiddleware(l: typeof DEFAULT_LIMITS, onBodyBytes: (protocol: Protocol, n: number) => void) {
  return (ctx: Context, next: () => Promise<void>): Promise<void> => {
    const req = ctx.request;
    if (req.target.length > l.maxRequestLineSize) throw new HttpError(414, 'request target too long', { code: 'HARRIER_ERR_URI_TOO_LONG' });
    const headers = req.headers;
    if (headers.count > l.maxRequestHeaderCount || headers.byteLength > l.maxRequestHeadersTotalSize) {
      throw new HttpError(431, 'request header fields too large', { code: 'HARRIER_ERR_HEADERS_TOO_LARGE' });
    }
    const declared = req.headers.get('content-length');
    if (declared !== undefined && Number(declared) > l.maxRequestBodySize) {
      throw new HttpError(413, `request body over ${l.maxRequestBodySize} bytes`, { code: 'HARRIER_ERR_BODY_TOO_LARGE' });
    }
    // Bodiless, or a tunnel (extended CONNECT: WebSocket, WebTransport) with limits of its own.
    if (req.method === 'GET' || req.method === 'HEAD' || req.connectProtocol !== undefined) return next();
    const protocol = req.protocol;
    const guarded = guardBody(req.body, l, (n) => onBodyBytes(protocol, n));
    req.body = guarded;
    // The rate clock stops with the exchange, read to the end or not...
    // ...unless someone is still reading it (a proxy streaming the upload on).
    const stop = (): void => {
      if (!guarded.readableEnded && !guarded.readableFlowing) guarded.destroy();
    };
    return next().finally(stop);
  };
}

/**
 * Counts body bytes as they are read: over the size limit fails with 413; below the minimum
 * rate after the grace period fails with 408. Time during which the application has unread
 * bytes waiting does not count against the client (as in Kestrel, the rate timer pauses
 * while the application is not reading). The source is left open on failure, so the
 * listener can still answer before closing the connection.
 */
function guardBody(body: Readable, l: typeof DEFAULT_LIMITS, onBytes: (n: number) => void): Readable {
  let total = 0;
  let timer: NodeJS.Timeout | undefined;
  const fail = (err: HttpError): void => {
    clearInterval(timer);
    body.unpipe(guard);
    body.pause();
    guard.destroy(err);
  };
  const guard = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.byteLength;
      onBytes(chunk.byteLength);
      if (total > l.maxRequestBodySize) {
        fail(new HttpError(413, `request body over ${l.maxRequestBodySize} bytes`, { code: 'HARRIER_ERR_BODY_TOO_LARGE' }));
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
    const tick = Math.max(100, Math.min(1000, l.minRequestBodyDataRateGraceMs || 1000));
    let waited = 0; // time spent waiting on the client
    let lastTick = Date.now();
    timer = setInterval(() => {
      const now = Date.now();
      if (guard.readableLength === 0) waited += now - lastTick;
      lastTick = now;
      if (waited < l.minRequestBodyDataRateGraceMs) return;
      if (total < (l.minRequestBodyDataRate * waited) / 1000) {
        fail(new HttpError(408, 'request body arrived too slowly', { code: 'HARRIER_ERR_BODY_TIMEOUT' }));
      }
    }, tick);
    timer.unref();
  }
  body.on('error', (e) => guard.destroy(e));
  // Errors reach whoever reads the body; an unread body must not raise an uncaught error.
  guard.on('error', () => {});
  guard.on('close', () => clearInterval(timer));
  return body.pipe(guard);
}
