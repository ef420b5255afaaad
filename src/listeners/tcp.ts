import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { App } from '../http/app';
import { Context, Request, type ResponseSink } from '../http/context';
import { Fields } from '../http/fields';
import { offerWebSocket } from '../websocket/route';
import { H2Sink, h2Request, type Peer } from './h2';
import { drainOrClose } from '../util/drain';

export interface TcpListenerOptions {
  host?: string;
  port?: number;
  /** Unix domain socket path instead of host/port (cleartext HTTP/1.1). */
  path?: string;
  /**
   * TLS: HTTP/2 and HTTP/1.1 by ALPN. Without it: cleartext HTTP/1.1. `cert`/`key` are the
   * default certificate; `SNICallback` may pick another per server name.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; SNICallback?: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void };
  /** `Alt-Svc` value added to every response (e.g. `h3=":443"; ma=86400`). */
  altSvc?: string;
  /** HTTP/2 concurrent streams per connection. Default 100. */
  maxConcurrentStreams?: number;
  /** Most bytes of a request head (HTTP/1.1: node answers 431 beyond it). */
  maxHeaderSize?: number;
  /** HTTP/1.1: the request head must arrive within this (node answers 408 and closes). */
  headersTimeoutMs?: number;
  /** Idle connections (HTTP/1.1 keep-alive, HTTP/2 without open streams) close after this. */
  keepAliveTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** HTTP/1.1: header fields beyond this count are dropped by node; 0 keeps them all. */
  maxHeadersCount?: number;
  /** Most open connections; beyond it new sockets are closed at once. Default unlimited. */
  maxConnections?: number;
  /**
   * HTTP/2: advertise SETTINGS_ENABLE_CONNECT_PROTOCOL and take extended CONNECT (RFC 8441):
   * WebSockets over HTTP/2 (and WebTransport when `webTransport` is given). Default true.
   */
  enableConnectProtocol?: boolean;
  /** WebTransport over HTTP/2 (draft-ietf-webtrans-http2) for `:protocol webtransport`. */
  webTransport?: Http2ConnectProtocol;
}

/** A protocol carried over HTTP/2 extended CONNECT (WebTransport: src/webtransport/h2.ts). */
export interface Http2ConnectProtocol {
  /** Custom HTTP/2 SETTINGS to send, and the ids of the peer's to read. */
  settings(): { customSettings: Record<number, number>; remoteCustomSettings: number[] };
  /**
   * Takes the CONNECT stream before the request runs through the pipeline; returns the
   * response sink to use (a 2xx head accepts), or 'rejected' when it already refused it.
   */
  connectRequest(request: Request, stream: http2.ServerHttp2Stream, base: ResponseSink): ResponseSink | 'rejected';
}

interface H2SessionState extends Peer {
  open: number;
  /** When the last open stream closed. */
  idleSince: number;
  /** Each stream's 'close' listener (one function per session, not one per stream). */
  streamClosed: () => void;
}

/** An HTTP/1.1 request that left the parser (Upgrade, CONNECT): its socket and early bytes. */
interface Detached {
  socket: Socket;
  head: Buffer;
}

/**
 * Serves an App over TCP: HTTPS (HTTP/2 + HTTP/1.1 by ALPN), cleartext HTTP/1.1, or a Unix
 * socket. Keeps the counts the server's metrics read (`connections`, `connectionsAccepted`,
 * `handshakeFailures`) and does its part of graceful shutdown (`drain()`, `idle()`, `close()`).
 */
export class TcpListener {
  readonly server: http.Server | http2.Http2SecureServer;
  /** `Alt-Svc` value added to every response; settable once the HTTP/3 port is known. */
  altSvc: string | undefined;
  /** Requests being answered. */
  inFlight = 0;
  connectionsAccepted = 0;
  /** TLS handshakes that failed ('tlsClientError'). */
  handshakeFailures = 0;
  private readonly app: App;
  private readonly options: TcpListenerOptions;
  private readonly sockets = new Set<Socket>();
  /** Open HTTP/2 sessions, each with its peer address and open streams (for the keep-alive timeout). */
  private readonly sessions = new Map<http2.Http2Session, H2SessionState>();
  private sweep: NodeJS.Timeout | undefined;
  /** Shutting down: refusing new connections and requests. */
  draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(app: App, options: TcpListenerOptions) {
    this.app = app;
    this.options = options;
    this.altSvc = options.altSvc;
    // node:http's request listener: HTTP/1.1 only (HTTP/2 streams are taken below).
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    const connectProtocol = options.enableConnectProtocol ?? true;
    const wtSettings = connectProtocol ? options.webTransport?.settings() : undefined;
    // node checks headersTimeout on this period (default 30 s): keep it well under the timeout.
    const connectionsCheckingInterval = Math.max(100, Math.min(1000, Math.floor((options.headersTimeoutMs ?? 30_000) / 4)));
    const maxHeaderSize = options.maxHeaderSize ?? 32 * 1024;
    if (options.tls) {
      this.server = http2.createSecureServer({
        cert: options.tls.cert,
        key: options.tls.key,
        SNICallback: options.tls.SNICallback,
        allowHTTP1: true,
        // Large enough that the pipeline sees oversized header sections and answers 431
        // (nghttp2 would otherwise reset the stream without a response).
        maxHeaderListPairs: Math.max(128, maxHeaderSize >> 4),
        settings: {
          maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
          maxHeaderListSize: maxHeaderSize * 2 + 1024,
          enableConnectProtocol: connectProtocol,
          ...(wtSettings ? { customSettings: wtSettings.customSettings } : {}),
        },
        ...(wtSettings ? { remoteCustomSettings: wtSettings.remoteCustomSettings } : {}),
        maxSessionMemory: 64,
      } as http2.SecureServerOptions, handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
      // HTTP/1.1 over this server reads the parser limit and the timeout-checking period
      // from the server object (the period when it starts listening).
      Object.assign(this.server, { maxHeaderSize, connectionsCheckingInterval });
      // HTTP/2 requests are served from node's core stream API: the request listener above made
      // node add its compatibility layer ('stream' → Http2ServerRequest/Response), taken off here.
      this.server.removeAllListeners('stream');
      this.server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => this.handleStream(stream, headers, raw));
      this.server.on('session', (session: http2.ServerHttp2Session) => this.trackSession(session));
      this.server.on('tlsClientError', () => this.handshakeFailures++);
    } else {
      this.server = http.createServer({ maxHeaderSize, connectionsCheckingInterval }, handler);
    }
    const s = this.server as http.Server;
    s.on('connection', (socket: Socket) => this.trackSocket(socket));
    // HTTP/1.1 requests that leave the parser (Upgrade: websocket, h2c...; CONNECT) still run
    // through the pipeline, answered on their socket.
    s.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.handleDetached(req, { socket, head }));
    s.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.handleDetached(req, { socket, head }));
    if (options.headersTimeoutMs !== undefined) s.headersTimeout = options.headersTimeoutMs;
    if (options.keepAliveTimeoutMs !== undefined) s.keepAliveTimeout = options.keepAliveTimeoutMs;
    if (options.requestTimeoutMs !== undefined) s.requestTimeout = options.requestTimeoutMs;
    if (options.maxHeadersCount !== undefined) s.maxHeadersCount = options.maxHeadersCount;
    if (options.maxConnections !== undefined) s.maxConnections = options.maxConnections;
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

  /** 'tls', 'tcp' (cleartext) or 'unix', for metrics. */
  get transport(): 'tls' | 'tcp' | 'unix' {
    return this.options.path ? 'unix' : this.options.tls ? 'tls' : 'tcp';
  }

  /** Open connections (TLS handshakes in progress included). */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Graceful shutdown, step 1: stop accepting (new connections are refused), GOAWAY on every
   * HTTP/2 session (open streams finish, new ones are refused), idle HTTP/1.1 keep-alive
   * connections close now and busy ones answer with `Connection: close` and then close.
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    // Closes the listening socket; node also closes idle HTTP/1.1 connections here.
    this.server.close();
    (this.server as http.Server).closeIdleConnections?.();
    for (const session of this.sessions.keys()) session.close();
  }

  /** Resolves once no request is in flight and every connection has closed. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Ends every connection now (the end of graceful shutdown, or an abrupt stop). */
  close(): void {
    this.draining = true;
    this.stopSweep();
    if (this.server.listening) this.server.close();
    for (const session of this.sessions.keys()) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.sockets.size === 0;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length > 0 && this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  private trackSocket(socket: Socket): void {
    this.connectionsAccepted++;
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.checkIdle();
    });
  }

  private trackSession(session: http2.ServerHttp2Session): void {
    const st: H2SessionState = {
      address: session.socket?.remoteAddress ?? '',
      port: session.socket?.remotePort ?? 0,
      open: 0,
      idleSince: Date.now(),
      // (A stream has let go of its session by the time it emits 'close': this keeps the state.)
      streamClosed: () => {
        if (--st.open === 0) st.idleSince = Date.now();
      },
    };
    this.sessions.set(session, st);
    session.once('close', () => {
      this.sessions.delete(session);
      if (this.sessions.size === 0) this.stopSweep();
    });
    session.on('error', () => { /* the socket's close follows; nothing to answer */ });
    if (this.options.keepAliveTimeoutMs) this.startSweep(this.options.keepAliveTimeoutMs);
    if (this.draining) session.close();
  }

  /**
   * Kestrel's keep-alive timeout, for HTTP/2: a session without an open stream for that long
   * closes (GOAWAY). One timer for every session, rather than one refreshed on each frame.
   */
  private startSweep(keepAliveMs: number): void {
    if (this.sweep) return;
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const [session, st] of this.sessions) if (st.open === 0 && now - st.idleSince >= keepAliveMs) session.close();
    }, Math.max(50, Math.min(1000, Math.floor(keepAliveMs / 4))));
    this.sweep.unref();
  }

  private stopSweep(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
  }

  /**
   * An HTTP/1.1 request node has handed over with its socket: it gets a response object of its
   * own on that socket, so the pipeline answers it like any other (and a WebSocket route may
   * take the socket over). The connection closes after that answer.
   */
  private handleDetached(req: http.IncomingMessage, detached: Detached): void {
    const { socket } = detached;
    // The http server stops listening for errors on a socket it hands over.
    socket.on('error', () => socket.destroy());
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      socket.end();
    });
    this.handle(req, res, detached);
  }

  /** An HTTP/2 request (node's core API: the stream is the body, an H2Sink answers on it). */
  private handleStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[]): void {
    // Errors on a stream (a reset, a broken connection) end that request only.
    stream.on('error', ignore);
    const session = stream.session;
    const st = session && this.sessions.get(session);
    if (st) {
      st.open++;
      // 'close' comes once: `on`, not `once` (no wrapper per stream).
      stream.on('close', st.streamClosed);
    }
    const request = h2Request(stream, headers, raw, st ?? NO_PEER, 'https');
    const base: ResponseSink = new H2Sink(stream, this.altSvc, request.method === 'CONNECT');
    let sink = base;
    if (headers.expect === '100-continue') base.sendInterim(100, []);
    if (request.connectProtocol === 'websocket') {
      offerWebSocket(request, { hub: this.app.webSockets });
    } else if (request.connectProtocol === 'webtransport' && this.options.webTransport) {
      const wt = this.options.webTransport.connectRequest(request, stream, sink);
      if (wt === 'rejected') return;
      sink = wt;
    }
    this.run(new Context(request, sink));
  }

  /** A request has been answered (App.handle never rejects). */
  private readonly settled = (): void => {
    this.inFlight--;
    this.checkIdle();
  };

  private run(ctx: Context): void {
    this.inFlight++;
    void this.app.handle(ctx, this.settled);
  }

  /** An HTTP/1.1 request (node:http parses it). */
  private handle(req: http.IncomingMessage, res: http.ServerResponse, detached?: Detached): void {
    const headers = Fields.fromRawHeaders(req.rawHeaders);
    const socket = req.socket;
    const request = new Request({
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers,
      protocol: 'http/1.1',
      scheme: this.options.tls ? 'https' : 'http',
      authority: headers.get('host') ?? '',
      remoteAddress: socket?.remoteAddress ?? (this.options.path ? 'unix' : ''),
      remotePort: socket?.remotePort ?? 0,
      body: req,
      trailers: () => h1Trailers(req),
      raw: { req, res },
    });
    if (detached && isWebSocketUpgrade(req)) offerWebSocket(request, { hub: this.app.webSockets, upgrade: { req, ...detached } });
    this.run(new Context(request, new H1Sink(this, req, res)));
  }
}

/** Answers one HTTP/1.1 request through node's ServerResponse (a class: one per request). */
class H1Sink implements ResponseSink {
  readonly supportsTrailers = true;

  constructor(private readonly listener: TcpListener, private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse) {}

  sendInterim(status: number, headers: Array<[string, string]>): void {
    const res = this.res;
    if (status === 100) res.writeContinue();
    else if (status === 103) res.writeEarlyHints({ link: headers.filter(([n]) => n === 'link').map(([, v]) => v) });
    else if (status === 102) res.writeProcessing();
  }

  sendHead(status: number, headers: Array<[string, string]>, end: boolean): void {
    const { listener, req, res } = this;
    if (res.destroyed) return;
    // Shutting down, or answering before the request body was read (413, 408...): the
    // connection cannot carry another request, whatever the application said.
    const close = listener.draining || !req.complete;
    // writeHead's flat (name, value, ...) form, as rawHeaders: node writes it line by line (a
    // repeated name as repeated lines), with no header object to build and walk.
    const flat: string[] = [];
    let altSvc = listener.altSvc !== undefined;
    for (const [name, value] of headers) {
      if (close && name === 'connection') continue;
      if (name === 'alt-svc') altSvc = false;
      flat.push(name, value);
    }
    if (altSvc) flat.push('alt-svc', listener.altSvc!);
    if (close) flat.push('connection', 'close');
    res.writeHead(status, flat);
    if (end) res.end(this.finished);
  }

  async write(chunk: Uint8Array): Promise<void> {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return;
    if (!res.write(chunk)) await drainOrClose(res);
  }

  end(trailers?: Array<[string, string]>): void {
    this.finish(undefined, trailers);
  }

  endWith(chunk: Uint8Array, trailers?: Array<[string, string]>): void {
    this.finish(chunk, trailers);
  }

  abort(): void {
    this.req.socket?.destroy();
  }

  private finish(chunk: Uint8Array | undefined, trailers: Array<[string, string]> | undefined): void {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return;
    // As pairs: a name may repeat.
    if (trailers && trailers.length > 0) res.addTrailers(trailers);
    if (chunk) res.end(chunk, this.finished);
    else res.end(this.finished);
  }

  /** Shutting down (the head may have gone out before, without `Connection: close`): no further request on this connection. */
  private readonly finished = (): void => {
    if (this.listener.draining) this.req.socket?.end();
  };
}

function ignore(): void {}

/** The peer of a stream whose session is no longer tracked (closing). */
const NO_PEER: Peer = { address: '', port: 0 };

/** An HTTP/1.1 request's trailers (chunked encoding), once its body has been read. */
function h1Trailers(req: http.IncomingMessage): Promise<Fields> {
  const read = (): Fields => new Fields(Object.entries(req.trailers).map(([k, v]) => [k, String(v)] as [string, string]));
  if (req.complete) return Promise.resolve(read());
  // Aborted before it was asked for: 'close' has gone by.
  if (req.destroyed) return Promise.resolve(new Fields());
  return new Promise<Fields>((resolve) => {
    req.once('end', () => resolve(read()));
    req.once('close', () => resolve(req.complete ? read() : new Fields()));
  });
}

/** RFC 6455 §4.1: `Upgrade: websocket` and `Connection: upgrade` (tokens, any case). */
function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  const connection = req.headers.connection;
  return upgrade !== undefined && /(^|,)\s*websocket\s*(,|$)/i.test(upgrade)
    && connection !== undefined && /(^|,)\s*upgrade\s*(,|$)/i.test(connection);
}
