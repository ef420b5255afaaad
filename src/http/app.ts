import { EventEmitter } from 'node:events';
import { compose, type Middleware } from './compose';
import type { Context } from './context';
import { applyError, respond } from './respond';
import { Router } from './router';
import { WebSocketHub } from '../websocket/hub';

export type Handler = Middleware<Context>;

/**
 * The pipeline: middleware and routes, independent of how requests arrive. Every listener
 * (HTTP/3, HTTP/0.9, HTTP/2, HTTP/1.1) builds a Context and calls `handle()`.
 * Events: 'error' (err, ctx) for server-side failures (5xx and failed responses).
 */
export class App extends EventEmitter {
  /** The open WebSockets of this pipeline (limits, keep-alive pings, shutdown). */
  readonly webSockets = new WebSocketHub();
  private readonly stack: Handler[] = [];
  private router: Router | undefined;
  private composed: ((ctx: Context) => Promise<void>) | undefined;

  use(fn: Handler): this {
    this.stack.push(fn);
    this.composed = undefined;
    return this;
  }

  /** Routes are served where the first route was declared in the middleware order. */
  route(method: string, path: string, ...handlers: Handler[]): this {
    if (!this.router) {
      this.router = new Router();
      this.use(this.router.middleware());
    }
    this.router.add(method, path, ...handlers);
    return this;
  }

  get(path: string, ...h: Handler[]): this { return this.route('GET', path, ...h); }
  post(path: string, ...h: Handler[]): this { return this.route('POST', path, ...h); }
  put(path: string, ...h: Handler[]): this { return this.route('PUT', path, ...h); }
  patch(path: string, ...h: Handler[]): this { return this.route('PATCH', path, ...h); }
  delete(path: string, ...h: Handler[]): this { return this.route('DELETE', path, ...h); }
  all(path: string, ...h: Handler[]): this { return this.route('*', path, ...h); }

  /**
   * Runs the pipeline for one request and sends the response; `done` is called once it has
   * been sent (or failed), before the promise settles. Never rejects. Not an async
   * function: a request is a few promise reactions, not three suspended frames (this is the
   * per-request path of every listener).
   */
  handle(ctx: Context, done?: () => void): Promise<void> {
    this.composed ??= compose(this.stack);
    this.requestStarted(ctx);
    return this.composed(ctx).then(() => this.send(ctx, done), (err: unknown) => this.fail(ctx, err, done));
  }

  /** Called as a request enters the pipeline (a hook for metrics). */
  protected requestStarted(_ctx: Context): void {}

  /** Called once the response is sent, or failed (a hook for metrics). */
  protected requestFinished(_ctx: Context): void {}

  /** Response body bytes handed to the listener (a hook for metrics). */
  protected bodyBytesSent(_ctx: Context, _n: number): void {}

  private readonly countSent = (ctx: Context, n: number): void => this.bodyBytesSent(ctx, n);

  private fail(ctx: Context, err: unknown, done: (() => void) | undefined): Promise<void> | void {
    const status = (err as { status?: unknown }).status;
    if (typeof status !== 'number' || status >= 500) this.report(err, ctx);
    if (ctx.response.headersSent) {
      ctx.response._sink.abort(err);
      this.finished(ctx, done);
      return;
    }
    applyError(ctx, err);
    return this.send(ctx, done);
  }

  private send(ctx: Context, done: (() => void) | undefined): Promise<void> | void {
    let pending: Promise<void> | undefined;
    try {
      pending = respond(ctx, this.countSent);
    } catch (err) {
      this.report(err, ctx);
    }
    if (!pending) {
      this.finished(ctx, done);
      return;
    }
    return pending.then(() => this.finished(ctx, done), (err: unknown) => {
      this.report(err, ctx);
      this.finished(ctx, done);
    });
  }

  private finished(ctx: Context, done: (() => void) | undefined): void {
    this.requestFinished(ctx);
    done?.();
  }

  /** Server-side failures go to 'error' listeners, or to stderr when there are none. */
  report(err: unknown, ctx?: Context): void {
    if (this.listenerCount('error') > 0) this.emit('error', err, ctx);
    else console.error(`harrier: ${ctx ? `${ctx.method} ${ctx.path}: ` : ''}${(err as Error)?.stack ?? err}`);
  }
}
