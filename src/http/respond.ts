import { Readable } from 'node:stream';
import type { Context, ResponseBody } from './context';
import { HttpError, statusText } from './errors';

// RFC 9110 §15.2, §15.3.5, §15.4.5: these never carry content.
const bodiless = (status: number): boolean => status === 204 || status === 304 || (status >= 100 && status < 200);

function isStream(b: ResponseBody): b is Readable | AsyncIterable<Uint8Array> {
  return b instanceof Readable || (typeof b === 'object' && b !== null && Symbol.asyncIterator in b && !(b instanceof Uint8Array));
}

/**
 * Turns an error thrown by the pipeline into the response (once one place does it, as in koa):
 * HttpError keeps its status and, when exposed, its message; anything else is a 500 whose
 * details stay in the server log.
 */
export function applyError(ctx: Context, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500;
  const res = ctx.response;
  // A body the error replaces may hold a file handle or socket: release it now.
  if (res.body instanceof Readable) res.body.destroy();
  for (const name of [...res.headers].map(([n]) => n)) res.headers.delete(name);
  if (err instanceof HttpError && err.headers) for (const [k, v] of Object.entries(err.headers)) res.headers.set(k, v);
  ctx.status = status;
  res.body = err instanceof HttpError && err.expose ? err.message : statusText(status);
  res.headers.set('content-type', 'text/plain; charset=utf-8');
}

/**
 * Writes ctx.response through the listener's sink: the one place a response is sent.
 * A body already in memory goes out synchronously (no promise); a streamed one returns the
 * promise of its end. `sent` hears of the body bytes as they go to the sink.
 */
export function respond(ctx: Context, sent?: (ctx: Context, n: number) => void): Promise<void> | undefined {
  const res = ctx.response;
  const sink = res._sink;
  if (res.headersSent) return;
  let body = res.body;
  let status = res.status;
  if (body === null && status === 404 && !res.statusWasSet) body = 'Not Found';
  const headers = res.headers;
  if (body === null && !bodiless(status) && !headers.has('content-length')) {
    body = '';
  }
  let bytes: Uint8Array | undefined;
  let stream: Readable | AsyncIterable<Uint8Array> | undefined;
  if (typeof body === 'string') {
    bytes = Buffer.from(body, 'utf8');
    if (!headers.has('content-type')) headers.set('content-type', 'text/plain; charset=utf-8');
  } else if (body instanceof Uint8Array) {
    bytes = body;
    if (!headers.has('content-type')) headers.set('content-type', 'application/octet-stream');
  } else if (body !== null && isStream(body)) {
    stream = body;
    if (!headers.has('content-type')) headers.set('content-type', 'application/octet-stream');
  } else if (body !== null) {
    bytes = Buffer.from(JSON.stringify(body), 'utf8');
    if (!headers.has('content-type')) headers.set('content-type', 'application/json; charset=utf-8');
  }
  if (bytes) headers.set('content-length', bytes.byteLength);
  if (bodiless(status)) {
    bytes = undefined;
    stream = undefined;
    headers.delete('content-length');
    headers.delete('content-type');
  }
  const head = ctx.method === 'HEAD';
  const trailers = res.trailers && res.trailers.size > 0 && sink.supportsTrailers ? res.trailers.toList() : undefined;
  const noBody = head || (!bytes && !stream) || (bytes !== undefined && bytes.byteLength === 0);
  res.headersSent = true;
  // A streamed body may gain trailers while it is sent; bytes have theirs already.
  sink.sendHead(status, headers.toList(), noBody && !trailers, trailers !== undefined || (stream !== undefined && !noBody));
  if (noBody) {
    if (stream instanceof Readable) stream.destroy();
    if (trailers) sink.end(trailers);
    return;
  }
  if (bytes) {
    sent?.(ctx, bytes.byteLength);
    if (sink.endWith) {
      sink.endWith(bytes, trailers);
      return;
    }
    return sink.write(bytes).then(() => sink.end(trailers));
  }
  return streamBody(ctx, stream!, sent);
}

async function streamBody(ctx: Context, stream: Readable | AsyncIterable<Uint8Array>, sent?: (ctx: Context, n: number) => void): Promise<void> {
  const res = ctx.response;
  const sink = res._sink;
  try {
    for await (const chunk of stream) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
      if (b.byteLength === 0) continue;
      sent?.(ctx, b.byteLength);
      if ((await sink.write(b)) === false) {
        // The client is gone: stop reading (and compressing) the rest.
        if (stream instanceof Readable) stream.destroy();
        return;
      }
    }
  } catch (err) {
    sink.abort(err);
    throw err;
  }
  sink.end(res.trailers && res.trailers.size > 0 && sink.supportsTrailers ? res.trailers.toList() : undefined);
}
