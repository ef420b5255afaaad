import * as http from 'node:http';
import type { Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import type { Middleware, Next } from './compose';
import type { Context, Protocol } from './context';
import { Fields } from './fields';

/**
 * A Node request handler: `(req, res)`, as `http.createServer()` takes, or an Express app.
 * When it calls the optional third argument (Express does when no route answered, or with
 * an error it did not handle), the request continues down Harrier's pipeline, or fails.
 */
export type NodeRequestHandler = (req: http.IncomingMessage, res: http.ServerResponse, next?: (err?: unknown) => void) => void;

const VERSIONS: Record<Protocol, [string, number, number]> = {
  h3: ['3.0', 3, 0], h2: ['2.0', 2, 0], 'http/1.1': ['1.1', 1, 1], hq: ['0.9', 0, 9],
};

// RFC 9113 §8.2.2 / RFC 9114 §4.2: these describe a node:http connection, not ours; HTTP/2
// and HTTP/3 forbid them, and our own listener frames the body.
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Stands in for the connection: addresses, `encrypted`, and a place to signal an abort. */
class AdapterSocket extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly encrypted: boolean;
  readonly alpnProtocol: string;

  constructor(ctx: Context) {
    super({ read() {}, write(_chunk, _enc, cb) { cb(); } });
    const r = ctx.request;
    this.remoteAddress = r.remoteAddress;
    this.remotePort = r.remotePort;
    this.remoteFamily = r.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.encrypted = r.scheme === 'https';
    this.alpnProtocol = r.protocol;
    // Handlers destroy sockets with errors (finalhandler after a failed response); that is an abort, not a crash.
    this.on('error', () => {});
  }

  setTimeout(_ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb);
    return this;
  }
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
  address(): Record<string, never> { return {}; }
}

function toBuffer(chunk: unknown, encoding?: BufferEncoding): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding ?? 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw Object.assign(new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array'), { code: 'ERR_INVALID_ARG_TYPE' });
}

/** Node's `req.headers`: lowercase names, repeats joined (cookies with "; "), set-cookie an array. */
function nodeHeaders(fields: Fields, authority: string): { headers: http.IncomingHttpHeaders; raw: string[] } {
  const headers: Record<string, string | string[]> = {};
  const raw: string[] = [];
  for (const [name, value] of fields) {
    if (name === 'host' && authority) continue;
    raw.push(name, value);
    const prev = headers[name];
    if (name === 'set-cookie') headers[name] = [...((prev as string[] | undefined) ?? []), value];
    else headers[name] = prev === undefined ? value : `${prev}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  // HTTP/2 and HTTP/3 carry the host in :authority (which forwarded() may have rewritten); Node handlers read Host.
  if (authority) {
    headers.host = authority;
    raw.unshift('host', authority);
  }
  return { headers, raw };
}

/**
 * Runs a Node `(req, res)` handler (an Express app, for one) on every listener, HTTP/3
 * included. Each request gets a real `http.IncomingMessage` (its body streamed from
 * `ctx.request.body`, `httpVersion` '3.0', '2.0', '1.1' or '0.9') and a real
 * `http.ServerResponse` whose output becomes `ctx.response`: status, headers, a body
 * streamed with backpressure, trailers. `req.socket` is a stand-in carrying the client
 * address (after `forwarded()`) and `encrypted`. The same objects are used on HTTP/1.1 and
 * HTTP/2 too, so limits, logging and the other middleware see every response.
 *
 * The middleware settles once the head is out (the body then streams through `respond()`),
 * or when the handler passes the request on (`next`), or when the response is aborted.
 */
export function nodeHandler(handler: NodeRequestHandler): Middleware<Context> {
  return (ctx: Context, next: Next) => new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve();
      else reject(err);
    };

    const socket = new AdapterSocket(ctx);
    const req = createRequest(ctx, socket);
    const res = new http.ServerResponse(req);
    const own = res as unknown as Record<string, unknown> & { _header: string | null; finished: boolean; destroyed: boolean };
    own.socket = socket;

    let headSent = false;
    let ended = false;
    let aborted = false;
    let stream: PassThrough | undefined;
    let finalChunk: Buffer | null | undefined; // set by end() before an implicit head
    // Node's ServerResponse ignores body writes for HEAD, 1xx, 204 and 304.
    const discard = (): boolean => req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;

    const finish = (): void => {
      res.emit('finish');
      process.nextTick(() => res.emit('close'));
    };

    const abort = (err?: Error): void => {
      if (aborted || (ended && !stream)) return;
      aborted = true;
      own.destroyed = true;
      if (!headSent) {
        headSent = true;
        // Nothing was sent: reset the stream (or close the connection) rather than answer.
        ctx.response.headersSent = true;
        ctx.response._sink.abort(err);
        settle();
      } else if (stream && !stream.destroyed) {
        stream.destroy(err ?? Object.assign(new Error('response aborted by the handler'), { code: 'HARRIER_ERR_HANDLER_ABORTED' }));
      }
      if (!socket.destroyed) socket.destroy();
      process.nextTick(() => res.emit('close'));
    };
    socket.once('close', () => {
      if (!ended) abort();
    });

    own.writeHead = function writeHead(statusCode: number, reason?: unknown, obj?: unknown): http.ServerResponse {
      if (headSent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
      if (typeof reason !== 'string') obj = reason;
      const status = Math.trunc(Number(statusCode));
      if (!(status >= 100 && status <= 999)) throw Object.assign(new RangeError(`Invalid status code: ${statusCode}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
      if (Array.isArray(obj)) {
        const pairs: unknown[][] = obj.length > 0 && Array.isArray(obj[0]) ? obj : Array.from({ length: obj.length >> 1 }, (_, i) => [obj[2 * i], obj[2 * i + 1]]);
        for (const [k, v] of pairs) res.appendHeader(String(k), v as string);
      } else if (obj && typeof obj === 'object') {
        for (const [k, v] of Object.entries(obj)) if (v !== undefined) res.setHeader(k, v as string);
      }
      res.statusCode = status;
      if (typeof reason === 'string') res.statusMessage = reason;
      if (status < 200) {
        // RFC 9110 §15.2: informational responses go ahead of the final one (101 is not ours to send).
        if (status !== 101) ctx.response.sendInterim(status, outgoing(res));
        return res;
      }
      headSent = true;
      own._header = `HTTP/${req.httpVersion} ${status}\r\n`; // makes res.headersSent true and freezes setHeader, as in Node
      const fields = outgoing(res);
      for (const [name] of fields) ctx.response.headers.delete(name);
      for (const [name, value] of fields) ctx.response.headers.append(name, value);
      ctx.status = status;
      if (finalChunk !== undefined) {
        ctx.response.body = finalChunk;
      } else {
        stream = new PassThrough({ highWaterMark: 64 * 1024 });
        stream.on('drain', () => res.emit('drain'));
        stream.on('finish', () => finish());
        stream.on('close', () => {
          // respond() drops the body of HEAD and bodiless answers without reading it.
          if (!ended && !discard()) abort(stream!.errored ?? undefined);
        });
        ctx.response.body = stream;
      }
      settle();
      return res;
    };

    own._implicitHeader = function _implicitHeader(): void {
      res.writeHead(res.statusCode);
    };

    own.flushHeaders = function flushHeaders(): void {
      if (!headSent) res.writeHead(res.statusCode);
    };

    own.write = function write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
      if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
      const callback = typeof cb === 'function' ? (cb as (err?: Error | null) => void) : undefined;
      if (chunk === null || chunk === undefined) throw Object.assign(new TypeError('May not write null values to stream'), { code: 'ERR_STREAM_NULL_VALUES' });
      if (ended || aborted) {
        const err = Object.assign(new Error(ended ? 'write after end' : 'Cannot call write after a stream was destroyed'), { code: ended ? 'ERR_STREAM_WRITE_AFTER_END' : 'ERR_STREAM_DESTROYED' });
        if (callback) process.nextTick(callback, err);
        return false;
      }
      const buf = toBuffer(chunk, encoding as BufferEncoding | undefined);
      if (!headSent) res.writeHead(res.statusCode);
      if (!stream || aborted) return false;
      if (discard() || stream.destroyed || buf.byteLength === 0) {
        if (callback) process.nextTick(callback);
        return true;
      }
      return stream.write(buf, callback);
    };

    own.end = function end(chunk?: unknown, encoding?: unknown, cb?: unknown): http.ServerResponse {
      if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
      else if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
      const callback = typeof cb === 'function' ? (cb as () => void) : undefined;
      if (ended || aborted) {
        if (callback) process.nextTick(callback);
        return res;
      }
      if (!headSent) {
        // The whole body is known: it goes out as bytes, with its Content-Length.
        finalChunk = chunk === undefined || chunk === null ? null : toBuffer(chunk, encoding as BufferEncoding | undefined);
        res.writeHead(res.statusCode); // respond() leaves the bytes out of HEAD, 204 and 304 answers
      } else if (chunk !== undefined && chunk !== null) {
        res.write(chunk, encoding as BufferEncoding);
      }
      ended = true;
      own.finished = true;
      if (stream) {
        if (callback) res.once('finish', callback);
        if (stream.destroyed) finish(); // HEAD: the body was dropped, the response is complete
        else stream.end();
      } else {
        process.nextTick(() => {
          finish();
          callback?.();
        });
      }
      settle();
      return res;
    };

    own.addTrailers = function addTrailers(headers: http.OutgoingHttpHeaders | ReadonlyArray<[string, string]>): void {
      const t = ctx.response.trailers ?? new Fields();
      const entries = Array.isArray(headers) ? headers : Object.entries(headers);
      for (const [k, v] of entries) for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) t.append(k, String(one));
      ctx.response.trailers = t;
    };

    own.writeContinue = function writeContinue(cb?: () => void): void {
      ctx.response.sendInterim(100);
      if (cb) process.nextTick(cb);
    };

    own.writeProcessing = function writeProcessing(cb?: () => void): void {
      ctx.response.sendInterim(102);
      if (cb) process.nextTick(cb);
    };

    own.writeEarlyHints = function writeEarlyHints(hints: Record<string, string | string[]>, cb?: () => void): void {
      const fields: Array<[string, string]> = [];
      for (const [k, v] of Object.entries(hints)) for (const one of Array.isArray(v) ? v : [v]) fields.push([k.toLowerCase(), String(one)]);
      ctx.response.sendInterim(103, fields);
      if (cb) process.nextTick(cb);
    };

    own.destroy = function destroy(err?: Error): http.ServerResponse {
      abort(err);
      return res;
    };

    own.setTimeout = function setTimeout(_ms: number, cb?: () => void): http.ServerResponse {
      if (cb) res.once('timeout', cb);
      return res;
    };

    const done = (err?: unknown): void => {
      if (headSent || ended) return settle();
      if (err !== undefined && err !== null && err !== 'route' && err !== 'router') return settle(err);
      next().then(() => settle(), settle);
    };

    try {
      handler(req, res, done);
    } catch (err) {
      if (headSent) abort(err as Error);
      else settle(err);
    }
  });
}

/**
 * The response fields as they stand: Node's, minus the connection-specific. Date is the
 * listeners' (node's ServerResponse on HTTP/1.1, the HTTP/2 and HTTP/3 sinks).
 */
function outgoing(res: http.ServerResponse): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const name of res.getHeaderNames()) {
    if (CONNECTION_SPECIFIC.has(name)) continue;
    const v = res.getHeader(name);
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([name, String(one)]);
  }
  return out;
}

function createRequest(ctx: Context, socket: AdapterSocket): http.IncomingMessage {
  const r = ctx.request;
  const req = new http.IncomingMessage(socket as unknown as Socket);
  const [version, major, minor] = VERSIONS[r.protocol] ?? VERSIONS['http/1.1'];
  req.httpVersion = version;
  req.httpVersionMajor = major;
  req.httpVersionMinor = minor;
  req.method = r.method;
  req.url = r.target;
  const { headers, raw } = nodeHeaders(r.headers, r.authority);
  // HTTP/2 and HTTP/3 frame the body and may send no Content-Length; Node code (type-is,
  // body-parser) only reads bodies that HTTP/1.1 would announce: say it is chunked.
  const bodyEnded = r.body.readableEnded || (r.body as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
  if (r.protocol !== 'http/1.1' && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined && !bodyEnded) {
    headers['transfer-encoding'] = 'chunked';
    raw.push('transfer-encoding', 'chunked');
  }
  req.headers = headers;
  req.rawHeaders = raw;

  // The body flows from ctx.request.body, paused whenever the handler's reader is full.
  const body = r.body;
  (req as unknown as { _read: () => void })._read = () => void body.resume();
  body.on('data', (chunk: Buffer) => {
    if (!req.push(chunk)) body.pause();
  });
  body.once('end', () => {
    const fallback = new Promise<Fields>((resolve) => setTimeout(resolve, 1000, new Fields()).unref());
    void Promise.race([r.trailers(), fallback]).then((t) => {
      if (t.size > 0) {
        req.trailers = t.toObject() as NodeJS.Dict<string>;
        req.rawTrailers = t.toList().flat();
      }
      req.complete = true;
      req.push(null);
    });
  });
  body.once('error', (err) => req.destroy(err));
  body.once('close', () => {
    // Closed without its end (the exchange was torn down): the handler must not wait forever.
    if (!body.readableEnded && !req.destroyed) req.destroy(Object.assign(new Error('request body closed before its end'), { code: 'ECONNRESET' }));
  });
  return req;
}
