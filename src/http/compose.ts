/** Koa-style middleware composition. */
export type Next = () => Promise<void>;
export type Middleware<C> = (ctx: C, next: Next) => unknown;

/**
 * Runs the middleware in order; each may await `next()` to run the rest. Calling `next()`
 * twice in one middleware is an error.
 */
export function compose<C>(middleware: readonly Middleware<C>[]): (ctx: C, next?: Next) => Promise<void> {
  for (const fn of middleware) if (typeof fn !== 'function') throw new TypeError('middleware must be functions');
  return (ctx, last) => {
    let index = -1;
    const dispatch = async (i: number): Promise<void> => {
      if (i <= index) throw new Error('next() called multiple times');
      index = i;
      const fn = i === middleware.length ? last : middleware[i];
      if (!fn) return;
      await fn(ctx, () => dispatch(i + 1));
    };
    return dispatch(0);
  };
}
