/** Koa-style middleware composition. */
export type Next = () => Promise<void>;
export type Middleware<C> = (ctx: C, next: Next) => unknown;

const DONE: Promise<void> = Promise.resolve();

/**
 * Runs the middleware in order; each may await `next()` to run the rest. Calling `next()`
 * twice in one middleware is an error.
 */
export function compose<C>(middleware: readonly Middleware<C>[]): (ctx: C, next?: Next) => Promise<void> {
  for (const fn of middleware) if (typeof fn !== 'function') throw new TypeError('middleware must be functions');
  return (ctx, last) => {
    let index = -1;
    // Not an async function: one promise per step (what the middleware returns), not two.
    const dispatch = (i: number): Promise<void> => {
      if (i <= index) return Promise.reject(new Error('next() called multiple times'));
      index = i;
      const fn = i === middleware.length ? last : middleware[i];
      if (!fn) return DONE;
      try {
        return Promise.resolve(fn(ctx, () => dispatch(i + 1))) as Promise<void>;
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return dispatch(0);
  };
}
