import { Readable, pipeline } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import type { Next } from '../compose';
import type { Context } from '../context';
import type { Fields } from '../fields';

/** Options of {@link compress}. */
export interface CompressOptions {
  /** Bodies smaller than this many bytes are sent as they are. Default 1024. */
  threshold?: number;
  /** Brotli quality 0-11. Default 4 (fast, and still smaller than gzip -6). */
  brotliQuality?: number;
  /** gzip level 1-9. Default 6. */
  gzipLevel?: number;
  /** Content types worth compressing (tested against the media type, lowercase, without parameters). */
  types?: RegExp;
}

/** The content codings this middleware produces. */
export type Coding = 'br' | 'gzip';

/**
 * Text, JSON, JavaScript, XML, SVG and WebAssembly. Not text/event-stream (a compressor
 * holds events back), nor formats that are compressed already (PNG, JPEG, WebP, AVIF, video,
 * audio, zip, gzip, WOFF2).
 */
export const COMPRESSIBLE_TYPES = /^(?:text\/(?!event-stream$)[\w.+-]+|application\/(?:json|javascript|x-javascript|ecmascript|xml|wasm|xhtml\+xml|[\w.-]+\+(?:json|xml))|image\/svg\+xml|image\/x-icon|font\/(?:ttf|otf))$/;

/** One-shot compression in the loop for bodies up to this size; beyond it, zlib's thread pool. */
const SYNC_LIMIT = 64 * 1024;

const brotliAsync = promisify(zlib.brotliCompress);
const gzipAsync = promisify(zlib.gzip);

/**
 * Compresses responses with Brotli or gzip, chosen from Accept-Encoding (RFC 9110 §12.5.3).
 * Runs after the rest of the pipeline: string, byte and JSON bodies are compressed in one
 * piece (Content-Length kept), stream bodies through a zlib stream (Content-Length dropped),
 * so large downloads are never held in memory. Adds `Vary: Accept-Encoding` to every response
 * it could have compressed. Leaves alone HEAD, 204/304, 206, bodies under `threshold`,
 * responses that already have a Content-Encoding or say `Cache-Control: no-transform`.
 */
export function compress(options: CompressOptions = {}): (ctx: Context, next: Next) => Promise<void> {
  const threshold = options.threshold ?? 1024;
  const brotliQuality = options.brotliQuality ?? 4;
  const gzipLevel = options.gzipLevel ?? 6;
  const types = options.types ?? COMPRESSIBLE_TYPES;

  return async (ctx, next) => {
    await next();
    const res = ctx.response;
    const headers = res.headers;
    const status = res.status;
    let body = res.body;
    if (status === 204 || status === 304 || status < 200) return;
    if (body === null) {
      // A HEAD answer (or a length-only one) says what a GET would vary on.
      if (ctx.method === 'HEAD' && !headers.has('content-encoding') && !headers.has('content-range')
        && Number(headers.get('content-length') ?? 0) >= threshold && types.test(mediaType(headers))) addVary(headers, 'Accept-Encoding');
      return;
    }
    // A 206 is a part of the identity representation: compressing it would change what the
    // Content-Range refers to (RFC 9110 §14.4).
    if (status === 206 || headers.has('content-range')) return;
    if (headers.has('content-encoding')) return;
    // RFC 9111 §5.2.2.6: no-transform asks that the content not be changed.
    if (/(?:^|,)\s*no-transform\s*(?:,|$)/i.test(headers.get('cache-control') ?? '')) return;

    let bytes: Uint8Array | undefined;
    let stream: Readable | AsyncIterable<Uint8Array> | undefined;
    if (typeof body === 'string') {
      bytes = Buffer.from(body, 'utf8');
      if (!headers.has('content-type')) headers.set('content-type', 'text/plain; charset=utf-8');
    } else if (body instanceof Uint8Array) {
      bytes = body;
    } else if (body instanceof Readable || (typeof body === 'object' && Symbol.asyncIterator in body)) {
      stream = body as Readable | AsyncIterable<Uint8Array>;
    } else {
      // What respond() would send for any other value (RFC 8259 JSON).
      bytes = Buffer.from(JSON.stringify(body), 'utf8');
      if (!headers.has('content-type')) headers.set('content-type', 'application/json; charset=utf-8');
    }
    const type = mediaType(headers);
    if (!types.test(type)) return;
    const declared = headers.get('content-length');
    const size = bytes ? bytes.byteLength : declared !== undefined ? Number(declared) : Infinity;
    if (size < threshold) return;

    // From here the response depends on Accept-Encoding, whatever this request sent.
    addVary(headers, 'Accept-Encoding');
    if (ctx.method === 'HEAD') return;
    const coding = negotiateEncoding(ctx.get('accept-encoding'));
    if (!coding) return;

    headers.set('content-encoding', coding);
    // The compressed bytes are another representation: a strong ETag can no longer promise
    // byte equality with the identity one (RFC 9110 §8.8.1), and byte ranges were for the
    // identity bytes (nginx drops Accept-Ranges the same way).
    const etag = headers.get('etag');
    if (etag && !etag.startsWith('W/')) headers.set('etag', `W/${etag}`);
    headers.delete('accept-ranges');

    if (bytes) {
      headers.delete('content-length'); // respond() sets it for the compressed bytes
      if (bytes.byteLength <= SYNC_LIMIT) {
        body = coding === 'br' ? zlib.brotliCompressSync(bytes, brotliOptions(brotliQuality, bytes.byteLength, type))
          : zlib.gzipSync(bytes, { level: gzipLevel });
      } else {
        body = coding === 'br' ? await brotliAsync(bytes, brotliOptions(brotliQuality, bytes.byteLength, type))
          : await gzipAsync(bytes, { level: gzipLevel });
      }
      res.body = body;
      return;
    }

    headers.delete('content-length');
    // Each chunk in is flushed out at once, so a slow stream (server-sent bytes, a long
    // generator) is not held back waiting for the compressor's buffer to fill.
    const z = coding === 'br'
      ? zlib.createBrotliCompress({ ...brotliOptions(brotliQuality, undefined, type), flush: zlib.constants.BROTLI_OPERATION_FLUSH })
      : zlib.createGzip({ level: gzipLevel, flush: zlib.constants.Z_SYNC_FLUSH });
    const source = stream instanceof Readable ? stream : Readable.from(stream!, { objectMode: false });
    // pipeline() destroys the source when the compressor is destroyed (aborted response) and
    // passes a source error on to the compressor, which respond() reads.
    pipeline(source, z, () => undefined);
    res.body = z;
  };
}

function mediaType(headers: Fields): string {
  return (headers.get('content-type') ?? 'application/octet-stream').split(';')[0].trim().toLowerCase();
}

function brotliOptions(quality: number, sizeHint: number | undefined, type: string): zlib.BrotliOptions {
  const params: Record<number, number> = {
    [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
    [zlib.constants.BROTLI_PARAM_MODE]: type.startsWith('text/') || type.endsWith('json') || type.endsWith('javascript')
      ? zlib.constants.BROTLI_MODE_TEXT : zlib.constants.BROTLI_MODE_GENERIC,
  };
  if (sizeHint !== undefined) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
  return { params };
}

/** Adds a field name to Vary unless it, or "*", is there already (RFC 9110 §12.5.5). */
export function addVary(headers: Fields, name: string): void {
  const current = headers.get('vary');
  if (!current) {
    headers.set('vary', name);
    return;
  }
  const names = current.split(',').map((s) => s.trim().toLowerCase());
  if (names.includes('*') || names.includes(name.toLowerCase())) return;
  headers.set('vary', `${current}, ${name}`);
}

/**
 * Picks the content coding for a response from Accept-Encoding (RFC 9110 §12.5.3), or
 * undefined for identity. Without the header nothing is compressed (the RFC allows any
 * coding then, but old clients that send none may not decode one). An empty value means
 * identity only. Codings are case-insensitive; "x-gzip" is "gzip" (§8.4.1.3); q=0 excludes
 * (§12.4.2); "*" stands for every coding not named. Br wins ties with gzip, and a coding wins
 * a tie with identity; a coding is not used when identity is given a higher q than it.
 */
export function negotiateEncoding(header: string | undefined): Coding | undefined {
  if (header === undefined) return undefined;
  const q = new Map<string, number>();
  for (const item of header.split(',')) {
    const [rawName, ...params] = item.split(';');
    let name = rawName.trim().toLowerCase();
    if (!name) continue;
    if (name === 'x-gzip') name = 'gzip';
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (!Number.isFinite(weight) || weight < 0 || weight > 1) weight = 0;
    // The same coding listed twice: keep the most favourable.
    q.set(name, Math.max(q.get(name) ?? 0, weight));
  }
  const star = q.get('*');
  const quality = (c: string): number => q.get(c) ?? star ?? 0;
  // identity is acceptable unless excluded by "identity;q=0" or "*;q=0" (§12.5.3); it only
  // competes on q when the client gave it one (a lone "gzip;q=0.5" still asks for gzip).
  const identity = q.get('identity') ?? star ?? 0;
  const br = quality('br');
  const gzip = quality('gzip');
  const best: Coding | undefined = br > 0 && br >= gzip ? 'br' : gzip > 0 ? 'gzip' : undefined;
  if (!best) return undefined;
  const bestQ = best === 'br' ? br : gzip;
  return bestQ >= identity ? best : undefined;
}
