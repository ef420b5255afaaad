/**
 * WebSockets in the pipeline. A WebSocket request runs through the middleware like any other
 * (authentication, origin checks, limits see it first) and `webSocket(path, handler)` accepts it:
 * - HTTP/1.1: `GET` with `Upgrade: websocket` (RFC 6455 §4), answered with 101 on the socket;
 * - HTTP/2: extended CONNECT with `:protocol websocket` (RFC 8441), answered with 200;
 * - HTTP/3: the same over a request stream (RFC 9220).
 * Framing, masking, fragmentation, UTF-8 checks, the close handshake and permessage-deflate
 * are the `ws` library's, run over the socket or over the CONNECT stream.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type PerMessageDeflateOptions } from 'ws';
import type { Handler } from '../http/app';
import type { Context, Request } from '../http/context';
import { HttpError } from '../http/errors';
import type { WebSocketHub } from './hub';
import { TunnelSocket } from './tunnel';

export type { WebSocket } from 'ws';

/** What a listener knows about a request that may become a WebSocket. */
export interface WebSocketOffer {
  hub: WebSocketHub;
  /** HTTP/1.1 Upgrade: the node request, its socket and the bytes read past the head. */
  upgrade?: { req: IncomingMessage; socket: Duplex; head: Buffer };
}

const offers = new WeakMap<Request, WebSocketOffer>();

/** @internal the listener marks a request that asks for a WebSocket. */
export function offerWebSocket(request: Request, offer: WebSocketOffer): void {
  offers.set(request, offer);
}

/**
 * Whether this request asks for a WebSocket: an HTTP/1.1 Upgrade or an extended CONNECT with
 * `:protocol websocket` that reached a listener able to carry it.
 */
export function isWebSocketRequest(ctx: Context): boolean {
  return offers.has(ctx.request);
}

/** Runs for each accepted WebSocket; the socket lives on after it returns, until closed. */
export type WebSocketHandler = (ws: WebSocket, ctx: Context) => unknown;

export interface WebSocketRouteOptions {
  /**
   * Decides on each WebSocket before it opens: true (or a 2xx status) accepts, false rejects
   * with 403, another number rejects with that status. Runs after the middleware before it.
   */
  accept?: (ctx: Context) => boolean | number | Promise<boolean | number>;
  /**
   * Origins allowed to open a WebSocket (`https://example.com`); others get 403. Requests
   * without `Origin` (non-browser clients) are allowed. Default: any origin.
   */
  origins?: string[];
  /** Subprotocols served, best first; the first one the client also offers is chosen. */
  protocols?: string[];
  /** Refuse clients that offer none of `protocols` (400). Default false: open without one. */
  requireProtocol?: boolean;
  /** Largest message; default the server's `limits.maxWebSocketMessageSize`. Beyond it: close 1009. */
  maxMessageSize?: number;
  /** permessage-deflate (RFC 7692) when the client offers it. Default false. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Ping after this much silence; default the server's `limits.webSocketPingIntervalMs`. */
  pingIntervalMs?: number;
  /** Close (1001) after this much silence; default the server's `limits.webSocketIdleTimeoutMs`. */
  idleTimeoutMs?: number;
}

const KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * A route for WebSockets at `path` (exact, or a prefix when it ends in `*`):
 * `server.use(webSocket('/chat', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary }))))`.
 * Other requests pass through. The exchange stays in flight (for graceful shutdown) until the
 * socket closes.
 */
export function webSocket(path: string, handler: WebSocketHandler, options: WebSocketRouteOptions = {}): Handler {
  const prefix = path.endsWith('*') ? path.slice(0, -1) : undefined;
  const servers = new Map<number, WebSocketServer>();
  // One `ws` server per message-size limit (the hub's limit is only known per request).
  const serverFor = (maxPayload: number): WebSocketServer => {
    let wss = servers.get(maxPayload);
    if (!wss) {
      wss = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        maxPayload,
        perMessageDeflate: options.perMessageDeflate ?? false,
        handleProtocols: (offered) => {
          for (const p of options.protocols ?? []) if (offered.has(p)) return p;
          return false;
        },
      });
      // Headers the middleware set (cookies, CORS...) go out with the handshake response.
      wss.on('headers', (lines: string[], req: IncomingMessage) => {
        for (const [name, value] of extraHeaders.get(req) ?? []) lines.push(`${name}: ${value}`);
      });
      servers.set(maxPayload, wss);
    }
    return wss;
  };
  const extraHeaders = new WeakMap<IncomingMessage, Array<[string, string]>>();

  return async (ctx, next) => {
    const offer = offers.get(ctx.request);
    const matches = prefix !== undefined ? ctx.path.startsWith(prefix) : ctx.path === path;
    if (!offer || !matches) return next();
    const req = ctx.request;
    const upgrade = offer.upgrade;
    if (upgrade) {
      if (req.method !== 'GET') throw new HttpError(405, 'a WebSocket upgrade must be a GET', { headers: { allow: 'GET' } });
      if (!KEY.test(req.get('sec-websocket-key') ?? '')) throw new HttpError(400, 'missing or invalid Sec-WebSocket-Key');
    } else if (req.method !== 'CONNECT') {
      throw new HttpError(405, 'a WebSocket over HTTP/2 or HTTP/3 is an extended CONNECT');
    }
    if (req.get('sec-websocket-version') !== '13') {
      // RFC 6455 §4.4: say which version is served.
      throw new HttpError(426, 'WebSocket version 13 is required', { headers: { 'sec-websocket-version': '13' } });
    }
    const origin = req.get('origin');
    if (options.origins && origin !== undefined && !options.origins.includes(origin)) {
      throw new HttpError(403, `origin ${origin} may not open a WebSocket here`);
    }
    const offered = (req.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    if (options.requireProtocol && !offered.some((p) => options.protocols?.includes(p))) {
      throw new HttpError(400, `none of the offered subprotocols is served (${(options.protocols ?? []).join(', ')})`);
    }
    if (options.accept) {
      const verdict = await options.accept(ctx);
      const ok = verdict === true || (typeof verdict === 'number' && verdict >= 200 && verdict < 300);
      if (!ok) throw new HttpError(typeof verdict === 'number' ? verdict : 403);
    }
    const hub = offer.hub;
    if (!hub.hasRoom()) {
      // A limit doing its job, not a server failure: answered without an error report.
      hub.refused++;
      ctx.status = 503;
      ctx.set('retry-after', '5');
      ctx.body = 'too many WebSockets open';
      return;
    }

    const wss = serverFor(options.maxMessageSize ?? hub.limits.maxMessageSize);
    const extra = ctx.response.headers.toList();
    // From here the response belongs to the handshake, not to respond(). The status is what
    // the access log and the metrics report: 101 (RFC 6455) or 200 (RFC 8441, RFC 9220).
    ctx.status = upgrade ? 101 : 200;
    ctx.response.headersSent = true;
    let nodeReq: IncomingMessage;
    let socket: Duplex;
    let head: Buffer;
    if (upgrade) {
      ({ req: nodeReq, socket, head } = upgrade);
    } else {
      // RFC 8441 §5: no Sec-WebSocket-Key / Accept over extended CONNECT; `ws` wants one.
      const headers: Record<string, string> = {
        upgrade: 'websocket',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-version': '13',
      };
      for (const name of ['sec-websocket-protocol', 'sec-websocket-extensions']) {
        const v = req.get(name);
        if (v !== undefined) headers[name] = v;
      }
      nodeReq = { method: 'GET', url: req.target, headers } as unknown as IncomingMessage;
      socket = new TunnelSocket(req.body, ctx.response._sink);
      head = Buffer.alloc(0);
    }
    extraHeaders.set(nodeReq, extra);
    const ws = await new Promise<WebSocket | undefined>((resolve) => {
      // `ws` answers a handshake it refuses itself (bad extension offer: 400) and closes the socket.
      const gone = (): void => resolve(undefined);
      socket.once('close', gone);
      wss.handleUpgrade(nodeReq, socket, head, (opened) => {
        socket.off('close', gone);
        resolve(opened);
      });
    });
    if (!ws) return;
    hub.add(ws, { pingIntervalMs: options.pingIntervalMs, idleTimeoutMs: options.idleTimeoutMs });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    // Errors (a protocol violation by the client, a reset) end in 'close'; they are not the server's.
    ws.on('error', () => {});
    try {
      await handler(ws, ctx);
    } catch (err) {
      ws.close(1011, 'internal error');
      throw err;
    }
    await closed;
  };
}

/** Sends a message and resolves once it has been handed to the transport (awaited backpressure). */
export function sendMessage(ws: WebSocket, data: string | Uint8Array, options: { binary?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.send(data, { binary: options.binary ?? typeof data !== 'string' }, (err) => (err ? reject(err) : resolve()));
  });
}
