import { Readable, Transform } from 'node:stream';
import { TextDecoder } from 'node:util';
import * as zlib from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import type { Next } from '../compose';
import type { Context } from '../context';
import { HttpError } from '../errors';
import { addVary } from './compress';

/** Options of {@link bodyParser}. */
export interface BodyParserOptions {
  /** Largest body, after any Content-Encoding is undone, in bytes (413 beyond). Default 1 MiB. */
  limit?: number;
  /** Parse application/json and any `+json` type (RFC 6839 §3.1). Default true. */
  json?: boolean;
  /** Parse application/msgpack, application/x-msgpack, application/vnd.msgpack. Default true. */
  msgpack?: boolean;
  /** Parse text/plain into a string. Default true. */
  text?: boolean;
  /** A body of any other type is 415 instead of being left unread. Default false. */
  strict?: boolean;
}

const MSGPACK_TYPES = new Set(['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']);

// useRecords: false keeps to plain MessagePack, which every other implementation reads.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

/**
 * Reads and decodes the request body by Content-Type into `ctx.state.body`:
 * JSON (application/json, `+json`) → value, MessagePack → value, text/plain → string.
 * A request without a body leaves `ctx.state.body` undefined. gzip, deflate and br request
 * bodies are decoded (RFC 9110 §8.4), with `limit` applied to the decoded size.
 *
 * Errors (HttpError, message shown to the client): 400 malformed body
 * (`HARRIER_ERR_MALFORMED_BODY`), 413 over the limit (`HARRIER_ERR_BODY_TOO_LARGE`), 415
 * unsupported charset or content coding, or, with `strict`, unsupported media type
 * (`HARRIER_ERR_UNSUPPORTED_MEDIA_TYPE`).
 */
export function bodyParser(options: BodyParserOptions = {}): (ctx: Context, next: Next) => Promise<void> {
  const limit = options.limit ?? 1024 * 1024;
  const json = options.json ?? true;
  const msgpack = options.msgpack ?? true;
  const text = options.text ?? true;
  const strict = options.strict ?? false;

  return async (ctx, next) => {
    const present = hasBody(ctx);
    if (present === false) return next();
    const { type, params } = parseMediaType(ctx.get('content-type'));
    const kind = (json && (type === 'application/json' || type.endsWith('+json'))) ? 'json'
      : msgpack && MSGPACK_TYPES.has(type) ? 'msgpack'
      : text && type === 'text/plain' ? 'text'
      : undefined;
    if (!kind) {
      // RFC 9110 §15.5.16: 415 for content in a format the resource does not accept.
      if (strict && (present === true || await peekContent(ctx.request.body))) throw unsupported(ctx, type ? `unsupported media type ${type}` : 'missing Content-Type');
      return next();
    }
    const declared = Number(ctx.get('content-length') ?? 0);
    const coding = (ctx.get('content-encoding') ?? 'identity').trim().toLowerCase();
    // RFC 9110 §15.5.14: refuse before reading when the declared length is already too much.
    if (coding === 'identity' && declared > limit) throw tooLarge(limit);
    const bytes = await readBody(ctx, coding, limit);
    if (bytes.byteLength === 0) return next();
    ctx.state.body = decode(kind, bytes, params.charset);
    return next();
  };
}

/** true / false when the framing says; 'unknown' on HTTP/2 and HTTP/3 without Content-Length. */
function hasBody(ctx: Context): boolean | 'unknown' {
  const cl = ctx.get('content-length');
  // RFC 9112 §6.3: with Content-Length the body is exactly that long; Transfer-Encoding means
  // one follows; an HTTP/1.1 request with neither has none.
  if (cl !== undefined) return Number(cl) > 0;
  if (ctx.get('transfer-encoding') !== undefined) return true;
  if (ctx.protocol === 'http/1.1' || ctx.protocol === 'hq') return false;
  // HTTP/2 and HTTP/3 need neither: only the end of the stream tells.
  return ctx.method === 'GET' || ctx.method === 'HEAD' ? false : 'unknown';
}

/** Waits for the first body bytes or the end, leaving the bytes in the stream. */
function peekContent(body: Readable): Promise<boolean> {
  if (body.readableEnded || body.destroyed) return Promise.resolve(false);
  if (body.readableLength > 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (): void => {
      body.off('readable', done);
      body.off('error', done);
      resolve(body.readableLength > 0);
    };
    body.on('readable', done);
    body.on('error', done);
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body over ${limit} bytes`, { code: 'HARRIER_ERR_BODY_TOO_LARGE' });
}

function malformed(message: string, cause?: unknown): HttpError {
  return new HttpError(400, message, { code: 'HARRIER_ERR_MALFORMED_BODY', cause });
}

function unsupported(ctx: Context, message: string, headers?: Record<string, string>): HttpError {
  const accepted = 'application/json, application/msgpack, text/plain';
  const extra: Record<string, string> = { ...headers };
  // RFC 5789 §3.1 / the Accept-Post registration: say which types would have been accepted.
  if (ctx.method === 'PATCH') extra['accept-patch'] = accepted;
  else if (ctx.method === 'POST') extra['accept-post'] = accepted;
  return new HttpError(415, message, { code: 'HARRIER_ERR_UNSUPPORTED_MEDIA_TYPE', headers: extra });
}

/** Reads the body, undoing the content coding, up to `limit` decoded bytes. */
async function readBody(ctx: Context, coding: string, limit: number): Promise<Buffer> {
  let source: Readable = ctx.request.body;
  if (coding !== 'identity') {
    const decoder = coding === 'gzip' || coding === 'x-gzip' ? zlib.createGunzip()
      : coding === 'deflate' ? zlib.createInflate()
      : coding === 'br' ? zlib.createBrotliDecompress()
      : undefined;
    // RFC 9110 §15.5.16: an unsupported content coding is 415, with Accept-Encoding saying which are.
    if (!decoder) throw unsupported(ctx, `unsupported content coding ${coding}`, { 'accept-encoding': 'gzip, deflate, br' });
    source.on('error', (e) => decoder.destroy(e));
    source = source.pipe(decoder);
  }
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of source) {
      total += (chunk as Buffer).byteLength;
      if (total > limit) {
        source.destroy();
        ctx.request.body.destroy();
        throw tooLarge(limit);
      }
      parts.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    // An error from the decoder, not from the request stream, means bad compressed data.
    if (source !== ctx.request.body && !ctx.request.body.errored) throw malformed(`malformed ${coding} content coding`, err);
    throw err;
  }
  return Buffer.concat(parts, total);
}

function decode(kind: 'json' | 'msgpack' | 'text', bytes: Buffer, charset: string | undefined): unknown {
  if (kind === 'msgpack') {
    try {
      return unpackr.unpack(bytes);
    } catch (err) {
      throw malformed(`malformed MessagePack: ${(err as Error).message}`, err);
    }
  }
  // RFC 8259 §8.1: JSON is UTF-8; text/plain defaults to UTF-8 here too (RFC 6657 §4 leaves
  // the default to the type's registration, and UTF-8 is what clients send).
  const cs = (charset ?? 'utf-8').toLowerCase();
  if (kind === 'json' && cs !== 'utf-8' && cs !== 'utf8') {
    throw new HttpError(415, `unsupported charset ${cs} for JSON`, { code: 'HARRIER_ERR_UNSUPPORTED_MEDIA_TYPE' });
  }
  let decoder: TextDecoder;
  try {
    // RFC 8259 §8.1: a byte order mark MAY be ignored; TextDecoder drops it.
    decoder = new TextDecoder(cs, { fatal: true });
  } catch {
    throw new HttpError(415, `unsupported charset ${cs}`, { code: 'HARRIER_ERR_UNSUPPORTED_MEDIA_TYPE' });
  }
  let s: string;
  try {
    s = decoder.decode(bytes);
  } catch (err) {
    throw malformed(`body is not valid ${cs}`, err);
  }
  if (kind === 'text') return s;
  try {
    return JSON.parse(s);
  } catch (err) {
    throw malformed(`malformed JSON: ${(err as Error).message}`, err);
  }
}

/** A Content-Type split into its lowercase media type and parameters (RFC 9110 §8.3.1). */
export function parseMediaType(value: string | undefined): { type: string; params: Record<string, string> } {
  if (!value) return { type: '', params: {} };
  const [t, ...rest] = value.split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[p.slice(0, eq).trim().toLowerCase()] = v;
  }
  return { type: t.trim().toLowerCase(), params };
}

/** What {@link respondWith} encodes to. */
export type ValueFormat = 'json' | 'application/msgpack' | 'application/x-msgpack';

/**
 * Chooses JSON or MessagePack from Accept (RFC 9110 §12.5.1): each candidate gets the q of the
 * most specific media range that matches it (type/subtype over type/* over *\/*); MessagePack
 * is chosen only when strictly preferred over JSON, so JSON wins ties and absent headers.
 * When nothing is acceptable JSON is sent anyway (§12.1 lets a server disregard Accept rather
 * than answer 406).
 */
export function negotiateFormat(accept: string | undefined): ValueFormat {
  if (!accept) return 'json';
  const ranges: Array<{ type: string; subtype: string; q: number }> = [];
  for (const item of accept.split(',')) {
    const { type: mt, params } = parseMediaType(item);
    const slash = mt.indexOf('/');
    if (slash < 0) continue;
    let q = params.q === undefined ? 1 : Number(params.q);
    if (!Number.isFinite(q) || q < 0 || q > 1) q = 0;
    ranges.push({ type: mt.slice(0, slash), subtype: mt.slice(slash + 1), q });
  }
  const quality = (type: string, subtype: string): number => {
    let best = -1;
    let q = 0;
    for (const r of ranges) {
      const spec = r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' && r.subtype === '*' ? 0 : -1;
      if (spec > best) {
        best = spec;
        q = r.q;
      }
    }
    return best < 0 ? 0 : q;
  };
  const json = quality('application', 'json');
  const mp = quality('application', 'msgpack');
  const xmp = quality('application', 'x-msgpack');
  if (Math.max(mp, xmp) > json) return xmp > mp ? 'application/x-msgpack' : 'application/msgpack';
  return 'json';
}

function isPlainValue(v: unknown): v is object {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function encodeInto(ctx: Context, value: unknown): void {
  const format = negotiateFormat(ctx.get('accept'));
  const res = ctx.response;
  if (format === 'json') {
    res.body = Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');
    res.headers.set('content-type', 'application/json; charset=utf-8');
  } else {
    res.body = packr.pack(value);
    res.headers.set('content-type', format);
  }
  addVary(res.headers, 'Accept');
}

/**
 * Sets the response to `value` encoded as MessagePack when the request's Accept prefers it
 * over JSON, as JSON otherwise; sets Content-Type and `Vary: Accept`. Like `ctx.body = ...`,
 * it makes the status 200 unless a status was set.
 */
export function respondWith(ctx: Context, value: unknown): void {
  encodeInto(ctx, value);
  if (!ctx.response.statusWasSet) ctx.response.status = 200;
}

/**
 * Middleware: after the rest of the pipeline, a body that is a plain object or array is
 * encoded by {@link respondWith}'s rules. Other bodies (strings, bytes, streams, class
 * instances) are left to respond().
 */
export function negotiate(): (ctx: Context, next: Next) => Promise<void> {
  return async (ctx, next) => {
    await next();
    if (isPlainValue(ctx.body)) encodeInto(ctx, ctx.body);
  };
}
