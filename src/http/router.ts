import type { Context } from './context';
import type { Middleware, Next } from './compose';
import { compose } from './compose';

type Handler = Middleware<Context>;

interface Route {
  method: string | '*';
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

/**
 * Routes by method and path. A route's handlers run like middleware; a request that matches
 * no route goes on to the next middleware. A path that matches with another method gets 405.
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, ...handlers: Handler[]): this {
    const { pattern, keys } = compile(path);
    this.routes.push({ method: method.toUpperCase(), pattern, keys, handler: compose(handlers) });
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
    return async (ctx, next) => {
      let path = ctx.path;
      try {
        path = decodeURI(ctx.path);
      } catch {
        ctx.throw(400, 'malformed percent-encoding in the path');
      }
      const allowed = new Set<string>();
      for (const r of this.routes) {
        const m = r.pattern.exec(path);
        if (!m) continue;
        const method = ctx.method === 'HEAD' && r.method === 'GET' ? 'GET' : ctx.method;
        if (r.method !== '*' && r.method !== method) {
          allowed.add(r.method);
          continue;
        }
        const params: Record<string, string> = {};
        r.keys.forEach((k, i) => (params[k] = m[i + 1] ?? ''));
        ctx.params = params;
        return r.handler(ctx, next);
      }
      if (allowed.size > 0) {
        ctx.set('allow', [...allowed, ...(allowed.has('GET') ? ['HEAD'] : [])].join(', '));
        ctx.throw(405);
      }
      return next();
    };
  }
}
