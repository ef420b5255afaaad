/**
 * WebTransport in the pipeline. An extended CONNECT with `:protocol webtransport` runs through
 * the middleware like any request (method CONNECT); `webTransportSession(ctx)` gives its
 * pending session. A 2xx response accepts the session (the CONNECT stream stays open for it);
 * any other status rejects it. `webTransport(path, handler)` packages that as a route.
 */
import type { Context, ResponseSink } from '../http/context';
import type { Request } from '../http/context';
import type { Handler } from '../http/app';
import type { WebTransportSession } from './session';

const sessions = new WeakMap<Request, WebTransportSession>();

/** Fields that RFC 9297 §3.2 forbids on responses that use the Capsule Protocol. */
const NOT_WITH_CAPSULES = new Set(['content-length', 'content-type', 'transfer-encoding']);

/**
 * @internal The response sink of a session's CONNECT request, for both transports: a 2xx head
 * accepts the session (`accept` sends it, without the fields the Capsule Protocol forbids, and
 * leaves the stream open for capsules); any other status rejects the session and goes out as
 * usual. `abortAccepted` ends an accepted session whose request failed.
 */
export function connectSink(session: WebTransportSession, base: ResponseSink,
  accept: (status: number, headers: Array<[string, string]>) => void, abortAccepted: () => void): ResponseSink {
  return {
    supportsTrailers: base.supportsTrailers,
    sendInterim: (status, headers) => base.sendInterim(status, headers),
    sendHead: (status, headers, end) => {
      if (status >= 200 && status < 300 && session.readyState === 'pending') {
        accept(status, headers.filter(([n]) => !NOT_WITH_CAPSULES.has(n.toLowerCase())));
        return;
      }
      session._rejected(status);
      base.sendHead(status, headers, end);
    },
    write: (chunk) => (session.accepted ? Promise.resolve() : base.write(chunk)),
    end: (trailers) => {
      if (!session.accepted) base.end(trailers);
    },
    abort: (err) => {
      if (session.accepted) abortAccepted();
      else base.abort(err);
    },
  };
}

/** @internal the listener ties a pending session to its CONNECT request. */
export function attachWebTransportSession(request: Request, session: WebTransportSession): void {
  sessions.set(request, session);
}

/** The pending or open WebTransport session of this request (an extended CONNECT), if any. */
export function webTransportSession(ctx: Context): WebTransportSession | undefined {
  return sessions.get(ctx.request);
}

/**
 * Accepts the session of this request now: the 200 response goes out at once and the
 * CONNECT stream stays open. Later changes to ctx.response are ignored. Returns the session.
 */
export function acceptWebTransport(ctx: Context): WebTransportSession {
  const session = webTransportSession(ctx);
  if (!session) throw Object.assign(new Error('not a WebTransport request'), { code: 'HARRIER_ERR_NOT_WEBTRANSPORT' });
  if (session.readyState !== 'pending' || ctx.response.headersSent) return session;
  ctx.status = 200;
  ctx.response.headersSent = true;
  ctx.response._sink.sendHead(200, ctx.response.headers.toList(), false);
  return session;
}

/** Runs for each accepted session; the session lives on after it returns, until closed. */
export type WebTransportHandler = (session: WebTransportSession, ctx: Context) => unknown;

export interface WebTransportRouteOptions {
  /**
   * Decides on each session before it opens: true (or a 2xx status) accepts, false rejects with
   * 403, another number rejects with that status. Default: accept. draft-ietf-webtrans-http3
   * §3.3: a server MUST check the Origin header of browser sessions (`ctx.get('origin')`).
   */
  accept?: (ctx: Context, session: WebTransportSession) => boolean | number | Promise<boolean | number>;
}

/**
 * A route for WebTransport sessions at `path` (exact, or a prefix when it ends in `*`):
 * `server.use(webTransport('/echo', webTransportEcho()))`. Other requests pass through.
 * The exchange stays in flight (for graceful shutdown) until the session closes.
 */
export function webTransport(path: string, handler: WebTransportHandler, options: WebTransportRouteOptions = {}): Handler {
  const prefix = path.endsWith('*') ? path.slice(0, -1) : undefined;
  return async (ctx, next) => {
    const session = webTransportSession(ctx);
    const matches = prefix !== undefined ? ctx.path.startsWith(prefix) : ctx.path === path;
    if (!session || !matches) return next();
    const verdict = options.accept ? await options.accept(ctx, session) : true;
    const ok = verdict === true || (typeof verdict === 'number' && verdict >= 200 && verdict < 300);
    if (!ok) ctx.throw(typeof verdict === 'number' ? verdict : 403);
    acceptWebTransport(ctx);
    try {
      await handler(session, ctx);
    } catch (err) {
      session.close({ closeCode: 0, reason: 'internal error' });
      throw err;
    }
    await session.closed.catch(() => undefined);
  };
}
