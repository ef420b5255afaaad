import type { Context } from './context';
import type { Middleware, Next } from './compose';
import { compose } from './compose';

type Handler = Middleware<Context>;

interface Route {
  method: string | '*';
  /** A path without parameters matches as a string (also with one more slash at the end, as its pattern would). */
  exact: string | undefined;
  pattern: RegExp;
  keys: string[];
  handler: (ctx: Context, next: Next) => Promise<void>;
}

/**
 * Compiles "/users/:id/files/*" to a regular expression: `:name` matches one segment,
 * a trailing `*` the rest of the path (as params['*']).
 */
function compile(path: string): { pattern: RegExp; keys: string[] } {
  const keys: string[] = [];
  let src = '';
  for (const part of path.split('/').slice(1)) {
    if (part === '*') {
      keys.push('*');
      src += '(?:/(.*))?';
    } else if (part.startsWith(':')) {
      keys.push(part.slice(1));
      src += '/([^/]+)';
    } else {
      src += '/' + part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return { pattern: new RegExp(`^${src || '/'}/?$`), keys };
}

/** One handler runs as itself; several as a composed chain. */
function chain(handlers: Handler[]): (ctx: Context, next: Next) => Promise<void> {
  if (handlers.length !== 1) return compose(handlers);
  const [only] = handlers;
  if (typeof only !== 'function') throw new TypeError('middleware must be functions');
  return (ctx, next) => {
    try {
      return Promise.resolve(only(ctx, next)) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

/**
 * Routes by method and path. A route's handlers run like middleware; a request that matches
 * no route goes on to the next middleware. A path that matches with another method gets 405.
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, ...handlers: Handler[]): this {
    const { pattern, keys } = compile(path);
    const exact = keys.length === 0 ? path || '/' : undefined;
    this.routes.push({ method: method.toUpperCase(), exact, pattern, keys, handler: chain(handlers) });
    return this;
  }

  get(path: string, ...h: Handler[]): this { return this.add('GET', path, ...h); }
  post(path: string, ...h: Handler[]): this { return this.add('POST', path, ...h); }
  put(path: string, ...h: Handler[]): this { return this.add('PUT', path, ...h); }
  patch(path: string, ...h: Handler[]): this { return this.add('PATCH', path, ...h); }
  delete(path: string, ...h: Handler[]): this { return this.add('DELETE', path, ...h); }
  all(path: string, ...h: Handler[]): this { return this.add('*', path, ...h); }

  /** The router as one middleware. */
  middleware(): Handler {
    return (ctx, next) => {
      let path = ctx.path;
      if (path.includes('%')) {
        try {
          path = decodeURI(path);
        } catch {
          ctx.throw(400, 'malformed percent-encoding in the path');
        }
      }
      let allowed: Set<string> | undefined;
      for (const r of this.routes) {
        let m: RegExpExecArray | null = null;
        if (r.exact !== undefined) {
          // As the pattern would: the path, or the path and one more slash.
          if (path !== r.exact && !(path.length === r.exact.length + 1 && path.charCodeAt(path.length - 1) === 0x2f && path.startsWith(r.exact))) continue;
        } else if (!(m = r.pattern.exec(path))) continue;
        const method = ctx.method === 'HEAD' && r.method === 'GET' ? 'GET' : ctx.method;
        if (r.method !== '*' && r.method !== method) {
          (allowed ??= new Set()).add(r.method);
          continue;
        }
        if (r.keys.length > 0) {
          const params: Record<string, string> = {};
          for (let i = 0; i < r.keys.length; i++) params[r.keys[i]] = m![i + 1] ?? '';
          ctx.params = params;
        }
        return r.handler(ctx, next);
      }
      if (allowed) {
        ctx.set('allow', [...allowed, ...(allowed.has('GET') ? ['HEAD'] : [])].join(', '));
        ctx.throw(405);
      }
      return next();
    };
  }
}
