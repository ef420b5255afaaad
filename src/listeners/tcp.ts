import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { App } from '../http/app';
import { Context, Request, type ResponseSink } from '../http/context';
import { Fields } from '../http/fields';

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface TcpListenerOptions {
  host?: string;
  port?: number;
  /** Unix domain socket path instead of host/port (cleartext HTTP/1.1). */
  path?: string;
  /** TLS: HTTP/2 and HTTP/1.1 by ALPN. Without it: cleartext HTTP/1.1. */
  tls?: { cert: string | Buffer; key: string | Buffer; SNICallback?: (servername: string, cb: (err: Error | null, ctx?: import('node:tls').SecureContext) => void) => void };
  /** `Alt-Svc` value added to every response (e.g. `h3=":443"; ma=86400`). */
  altSvc?: string;
  /** HTTP/2 concurrent streams per connection. Default 100. */
  maxConcurrentStreams?: number;
  /** Limits enforced by node:http (Kestrel's defaults are applied by the server). */
  maxHeaderSize?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  requestTimeoutMs?: number;
  maxHeadersCount?: number;
}

/** Serves an App over TCP: HTTPS (HTTP/2 + HTTP/1.1), cleartext HTTP/1.1, or a Unix socket. */
export class TcpListener {
  readonly server: http.Server | http2.Http2SecureServer;
  private readonly app: App;
  private readonly options: TcpListenerOptions;
  inFlight = 0;
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(app: App, options: TcpListenerOptions) {
    this.app = app;
    this.options = options;
    const handler = (req: NodeRequest, res: NodeResponse): void => this.handle(req, res);
    if (options.tls) {
      this.server = http2.createSecureServer({
        cert: options.tls.cert,
        key: options.tls.key,
        SNICallback: options.tls.SNICallback,
        allowHTTP1: true,
        settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 100 },
        maxSessionMemory: 64,
      }, handler);
    } else {
      this.server = http.createServer({ maxHeaderSize: options.maxHeaderSize }, handler);
    }
    const s = this.server as http.Server;
    if (options.headersTimeoutMs !== undefined) s.headersTimeout = options.headersTimeoutMs;
    if (options.keepAliveTimeoutMs !== undefined) s.keepAliveTimeout = options.keepAliveTimeoutMs;
    if (options.requestTimeoutMs !== undefined) s.requestTimeout = options.requestTimeoutMs;
    if (options.maxHeadersCount !== undefined) s.maxHeadersCount = options.maxHeadersCount;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve();
      };
      if (this.options.path) this.server.listen(this.options.path, done);
      else this.server.listen(this.options.port ?? 0, this.options.host ?? '::', done);
    });
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? (a as AddressInfo).port : 0;
  }

  get secure(): boolean {
    return this.options.tls !== undefined;
  }

  /** Graceful shutdown: no new connections; HTTP/2 GOAWAY; HTTP/1.1 answers get `Connection: close`. */
  drain(): void {
    this.draining = true;
    this.server.close();
    const s = this.server as http.Server;
    s.closeIdleConnections?.();
  }

  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Ends every connection now. */
  close(): void {
    this.draining = true;
    this.server.close();
    (this.server as http.Server).closeAllConnections?.();
  }

  private handle(req: NodeRequest, res: NodeResponse): void {
    const h2 = req.httpVersionMajor === 2;
    const headers = new Fields();
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 0x3a) headers.append(raw[i], raw[i + 1]);
    const authority = (h2 ? (req.headers[':authority'] as string | undefined) : undefined) ?? headers.get('host') ?? '';
    const trailers = new Promise<Fields>((resolve) => {
      req.once('end', () => resolve(new Fields(Object.entries(req.trailers).map(([k, v]) => [k, String(v)] as [string, string]))));
      req.once('close', () => resolve(new Fields()));
    });
    const socket = req.socket;
    const request = new Request({
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers,
      protocol: h2 ? 'h2' : 'http/1.1',
      scheme: this.options.tls ? 'https' : 'http',
      authority,
      remoteAddress: socket?.remoteAddress ?? (this.options.path ? 'unix' : ''),
      remotePort: socket?.remotePort ?? 0,
      body: req as unknown as import('node:stream').Readable,
      trailers,
      raw: { req, res },
    });
    const ctx = new Context(request, this.sink(req, res, h2));
    this.inFlight++;
    void this.app.handle(ctx).finally(() => {
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private sink(req: NodeRequest, res: NodeResponse, h2: boolean): ResponseSink {
    const r = res as http.ServerResponse;
    const altSvc = this.options.altSvc;
    return {
      supportsTrailers: true,
      sendInterim: (status, headers) => {
        if (status === 100) r.writeContinue();
        else if (status === 103) r.writeEarlyHints({ link: headers.filter(([n]) => n === 'link').map(([, v]) => v) });
        else if (status === 102) r.writeProcessing();
      },
      sendHead: (status, headers, end) => {
        const obj: Record<string, string | string[]> = {};
        for (const [k, v] of headers) {
          const prev = obj[k];
          obj[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        if (altSvc && !obj['alt-svc']) obj['alt-svc'] = altSvc;
        if (this.draining && !h2) obj['connection'] = 'close';
        if (h2) {
          delete obj['connection'];
          delete obj['keep-alive'];
          delete obj['transfer-encoding'];
        }
        r.writeHead(status, obj);
        if (end) r.end();
      },
      write: async (chunk) => {
        if (r.destroyed || r.writableEnded) return;
        if (!r.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              r.off('drain', done);
              r.off('close', done);
              resolve();
            };
            r.on('drain', done);
            r.on('close', done);
          });
        }
      },
      end: (trailers) => {
        if (r.writableEnded) return;
        if (trailers && trailers.length > 0) r.addTrailers(Object.fromEntries(trailers));
        r.end();
      },
      abort: () => {
        if (h2) (res as http2.Http2ServerResponse).stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        else req.socket?.destroy();
      },
    };
  }
}
