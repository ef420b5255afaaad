import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Next } from '../compose';
import type { Context } from '../context';
import { HttpError } from '../errors';
import { contentTypeFor } from './mime';

/** Options of {@link staticFiles}. */
export interface StaticOptions {
  /** Files served for a directory request (`/dir/`), first found wins. Default `['index.html']`; `[]` for none. */
  index?: string[];
  /** `Cache-Control: public, max-age=<maxAge>` in seconds. Not sent when undefined (unless set upstream). */
  maxAge?: number;
  /** Adds `immutable` (RFC 8246) to Cache-Control; needs `maxAge`. */
  immutable?: boolean;
  /**
   * Paths with a segment starting with "." (`/.env`, `/.git/config`): 'ignore' treats them as
   * missing, 'deny' answers 403, 'allow' serves them. Default 'ignore'.
   */
  dotfiles?: 'ignore' | 'deny' | 'allow';
  /** Weak ETag from size and modification time. Default true. */
  etag?: boolean;
  /** Last-Modified from the file's modification time. Default true. */
  lastModified?: boolean;
  /**
   * true (default): a missing file, or a method other than GET/HEAD, goes on to the next
   * middleware. false: a missing file is 404, and another method on an existing file is 405.
   */
  fallthrough?: boolean;
  /**
   * Small files are kept in memory and served without touching the file system; each entry
   * is checked again (realpath, open, stat) once `validateMs` has passed, so a changed file is
   * served at most that long. `false` turns it off. Default: files up to 64 KiB, 1,000 entries,
   * checked every 1,000 ms.
   */
  cache?: false | { maxFileSize?: number; maxEntries?: number; validateMs?: number };
}

interface Found {
  handle: fs.promises.FileHandle;
  stat: fs.Stats;
  /** The path as requested (for the media type), not the symlink target. */
  name: string;
}

/** A small file held in memory (see StaticOptions.cache). */
interface Cached {
  name: string;
  size: number;
  mtimeMs: number;
  body: Buffer;
  checkedAt: number;
}

type Lookup = Found | 'directory' | null;

// O_NONBLOCK: opening a FIFO planted under the root must not block a libuv thread forever.
const OPEN_FLAGS = fs.constants.O_RDONLY | (process.platform === 'win32' ? 0 : fs.constants.O_NONBLOCK);

/**
 * Serves files under `root` for GET and HEAD: streamed (never read whole into memory), with
 * Content-Type, Content-Length, a weak ETag, Last-Modified, conditional requests (RFC 9110
 * §13), single byte ranges (RFC 9110 §14) and index files. Paths that would leave `root`
 * (`..`, encoded or not, and symlinks pointing outside) are refused.
 *
 * Requests for several ranges at once get the whole file (200): RFC 9110 §14.2 lets a server
 * ignore Range, and multipart/byteranges is rarely worth its cost.
 *
 * Errors: 400 for a malformed path (bad percent-encoding, NUL, `..` above the root), 403 for
 * dotfiles with `dotfiles: 'deny'`, 412, 416, and 404/405 when `fallthrough` is false.
 */
export function staticFiles(root: string, options: StaticOptions = {}): (ctx: Context, next: Next) => Promise<void> {
  const index = options.index ?? ['index.html'];
  const dotfiles = options.dotfiles ?? 'ignore';
  const useEtag = options.etag ?? true;
  const useLastModified = options.lastModified ?? true;
  const fallthrough = options.fallthrough ?? true;
  const cacheControl = options.maxAge === undefined ? undefined
    : `public, max-age=${Math.max(0, Math.floor(options.maxAge))}${options.immutable ? ', immutable' : ''}`;
  const cacheOptions = options.cache === false ? undefined : options.cache ?? {};
  const cacheMaxFile = cacheOptions?.maxFileSize ?? 64 * 1024;
  const cacheMaxEntries = cacheOptions?.maxEntries ?? 1000;
  const cacheValidMs = cacheOptions?.validateMs ?? 1000;
  /** Request path (decoded segments) → the small file it resolved to. */
  const cache = new Map<string, Cached>();
  let rootReal: Promise<string> | undefined;
  const realRoot = (): Promise<string> => (rootReal ??= fs.promises.realpath(path.resolve(root)));

  /** Opens `segments` under the root, or says it is a directory, or null when there is nothing to serve. */
  const lookup = async (segments: string[]): Promise<Lookup> => {
    let base: string;
    try {
      base = await realRoot();
    } catch {
      rootReal = undefined; // the root may appear later
      return null;
    }
    const candidate = path.join(base, ...segments);
    let real: string;
    try {
      real = await fs.promises.realpath(candidate);
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    // Symlinks are followed, but only to places inside the root.
    if (real !== base && !real.startsWith(base.endsWith(path.sep) ? base : base + path.sep)) return null;
    if (dotfiles !== 'allow' && path.relative(base, real).split(path.sep).some((s) => s.startsWith('.'))) {
      if (dotfiles === 'deny') throw new HttpError(403, 'Forbidden', { code: 'HARRIER_ERR_DOTFILE' });
      return null;
    }
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(real, OPEN_FLAGS);
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    try {
      const stat = await handle.stat();
      if (stat.isFile()) return { handle, stat, name: candidate };
      await handle.close();
      return stat.isDirectory() ? 'directory' : null;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  };

  const notFound = (next: Next): Promise<void> => {
    if (fallthrough) return next();
    throw new HttpError(404, 'Not Found', { code: 'HARRIER_ERR_NOT_FOUND' });
  };

  return async (ctx, next) => {
    const method = ctx.method;
    const readable = method === 'GET' || method === 'HEAD';
    if (!readable && fallthrough) return next();

    const segments = requestSegments(ctx.path);
    if (dotfiles !== 'allow' && segments.some((s) => s.startsWith('.'))) {
      if (dotfiles === 'deny') throw new HttpError(403, 'Forbidden', { code: 'HARRIER_ERR_DOTFILE' });
      return notFound(next);
    }
    const key = cacheOptions ? segments.join('/') : '';
    const hit = cacheOptions ? cache.get(key) : undefined;
    if (hit && Date.now() - hit.checkedAt < cacheValidMs) {
      if (!readable) return methodNotAllowed();
      return serve(ctx, { name: hit.name, size: hit.size, mtimeMs: hit.mtimeMs, body: hit.body });
    }
    const wantsDirectory = segments.length === 0 || segments[segments.length - 1] === '';
    let found = await lookup(segments);
    if (found === 'directory') {
      if (!wantsDirectory) {
        if (!readable) return methodNotAllowed();
        return redirectToDirectory(ctx);
      }
      found = null;
      for (const name of index) {
        const f = await lookup([...segments, name]);
        if (f && f !== 'directory') {
          found = f;
          break;
        }
      }
    } else if (found && wantsDirectory) {
      // "/file.txt/" names a directory that does not exist.
      await found.handle.close();
      found = null;
    }
    if (!found) return notFound(next);
    if (!readable) {
      await found.handle.close();
      return methodNotAllowed();
    }
    const { handle, stat, name } = found;
    if (!cacheOptions || stat.size > cacheMaxFile) {
      cache.delete(key);
      return serve(ctx, { name, size: stat.size, mtimeMs: stat.mtimeMs, handle });
    }
    // Small: read it whole, keep it, answer from memory.
    let body: Buffer;
    try {
      body = await handle.readFile();
    } finally {
      await handle.close().catch(() => undefined);
    }
    const entry: Cached = { name, size: body.length, mtimeMs: stat.mtimeMs, body, checkedAt: Date.now() };
    cache.delete(key);
    if (cache.size >= cacheMaxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, entry);
    return serve(ctx, { name, size: entry.size, mtimeMs: entry.mtimeMs, body });
  };

  /** Answers with a file: from an open handle (streamed) or from memory. */
  async function serve(ctx: Context, file: { name: string; size: number; mtimeMs: number; handle?: fs.promises.FileHandle; body?: Buffer }): Promise<void> {
    const { handle } = file;
    let keepOpen = false;
    try {
      const size = file.size;
      const modified = Math.floor(file.mtimeMs / 1000);
      const etag = useEtag ? `W/"${size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"` : undefined;
      const lastModified = useLastModified ? new Date(modified * 1000).toUTCString() : undefined;
      const validators = (): void => {
        if (etag) ctx.set('etag', etag);
        if (lastModified) ctx.set('last-modified', lastModified);
        if (cacheControl && !ctx.response.headers.has('cache-control')) ctx.set('cache-control', cacheControl);
      };

      const precondition = evaluatePreconditions(ctx, etag, useLastModified ? modified : undefined);
      if (precondition === 412) throw new HttpError(412, 'Precondition Failed', { code: 'HARRIER_ERR_PRECONDITION_FAILED' });
      if (precondition === 304) {
        // RFC 9110 §15.4.5: a 304 carries the validators and Cache-Control a 200 would have.
        validators();
        ctx.status = 304;
        ctx.response.body = null;
        return;
      }

      let range: ByteRange | undefined;
      const rangeHeader = ctx.get('range');
      // RFC 9110 §14.2: range handling is defined for GET only; other methods ignore Range.
      // RFC 9110 §13.2.2 step 5: If-Range decides whether Range applies at all.
      if (ctx.method === 'GET' && rangeHeader !== undefined && ifRange(ctx.get('if-range'), etag, useLastModified ? modified : undefined)) {
        const r = parseRange(rangeHeader, size);
        if (r === 'unsatisfiable') {
          // RFC 9110 §15.5.17: a 416 about byte ranges SHOULD say the current length in Content-Range.
          throw new HttpError(416, 'Range Not Satisfiable', {
            code: 'HARRIER_ERR_RANGE_NOT_SATISFIABLE',
            headers: { 'content-range': `bytes */${size}`, 'accept-ranges': 'bytes' },
          });
        }
        range = r;
      }

      validators();
      ctx.set('accept-ranges', 'bytes');
      ctx.set('content-type', contentTypeFor(file.name));
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      const length = size === 0 ? 0 : end - start + 1;
      ctx.status = range ? 206 : 200;
      // RFC 9110 §14.4: a single-part 206 carries Content-Range for the enclosed part.
      if (range) ctx.set('content-range', `bytes ${start}-${end}/${size}`);
      ctx.set('content-length', length);
      if (ctx.method === 'HEAD' || length === 0) {
        ctx.response.body = null;
        return;
      }
      if (file.body) {
        ctx.response.body = start === 0 && end === size - 1 ? file.body : file.body.subarray(start, end + 1);
        return;
      }
      ctx.response.body = fs.createReadStream(file.name, { fd: handle, start, end, autoClose: true });
      keepOpen = true;
    } finally {
      if (!keepOpen && handle) await handle.close().catch(() => undefined);
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG' || code === 'EACCES' || code === 'EPERM';
}

function methodNotAllowed(): never {
  // RFC 9110 §15.5.6: a 405 MUST list the methods the resource supports in Allow.
  throw new HttpError(405, 'Method Not Allowed', { code: 'HARRIER_ERR_METHOD_NOT_ALLOWED', headers: { allow: 'GET, HEAD' } });
}

/**
 * `/dir` → 301 `/dir/`, so that relative links inside the index resolve against the directory
 * (what nginx and Apache do). Leading slashes are collapsed: `//evil.example/` as a Location
 * would be a network-path reference (RFC 3986 §4.2) to another host.
 */
function redirectToDirectory(ctx: Context): void {
  const location = ctx.path.replace(/^\/+/, '/') + '/' + ctx.request.search;
  ctx.status = 301;
  ctx.set('location', location);
  ctx.set('content-type', 'text/plain; charset=utf-8');
  ctx.response.body = `Redirecting to ${location}\n`;
}

/**
 * The request path as decoded segments relative to the root, dot-segments removed as in
 * RFC 3986 §5.2.4. A trailing "" segment means the path ended with "/". Throws 400 for
 * malformed percent-encoding, NUL, and ".." that would climb above the root.
 */
export function requestSegments(rawPath: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path', { code: 'HARRIER_ERR_BAD_PATH' });
  }
  if (decoded.includes('\0')) throw new HttpError(400, 'NUL in the path', { code: 'HARRIER_ERR_BAD_PATH' });
  if (process.platform === 'win32' && decoded.includes('\\')) throw new HttpError(400, 'backslash in the path', { code: 'HARRIER_ERR_BAD_PATH' });
  const parts = decoded.split('/');
  if (parts[0] === '') parts.shift();
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const last = i === parts.length - 1;
    if (p === '.' || p === '..') {
      if (p === '..') {
        if (out.length === 0 || (out.length === 1 && out[0] === '')) {
          throw new HttpError(400, 'path escapes the root', { code: 'HARRIER_ERR_BAD_PATH' });
        }
        out.pop();
      }
      if (last) out.push('');
      continue;
    }
    if (p === '' && !last) continue; // "a//b"
    out.push(p);
  }
  return out;
}

interface ByteRange { start: number; end: number }

/**
 * Parses a Range header (RFC 9110 §14.1.2) against a representation of `size` bytes.
 * Returns the one range to serve, undefined to ignore the header (another unit, bad syntax,
 * several ranges, an empty file), or 'unsatisfiable' (RFC 9110 §14.1.1, all ranges beyond
 * the end).
 */
export function parseRange(header: string, size: number): ByteRange | undefined | 'unsatisfiable' {
  const eq = header.indexOf('=');
  // RFC 9110 §14.1: range units are case-insensitive; other units are ignored (§14.2).
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return undefined;
  const specs = header.slice(eq + 1).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0) return undefined;
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const m = /^(\d*)-(\d*)$/.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return undefined;
    if (m[1] === '') {
      // suffix-range: the last n bytes; "-0" is unsatisfiable (RFC 9110 §14.1.1).
      const n = Number(m[2]);
      if (n > 0 && size > 0) ranges.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const first = Number(m[1]);
    const last = m[2] === '' ? Infinity : Number(m[2]);
    // RFC 9110 §14.1.1: last-pos below first-pos makes the range-spec invalid.
    if (last < first) return undefined;
    if (first < size) ranges.push({ start: first, end: Math.min(last, size - 1) });
  }
  // RFC 9110 §14.1.1: with an empty representation no range is satisfiable but the
  // suffix form; there is nothing to send in a 206, so the Range is ignored.
  if (size === 0) return undefined;
  if (ranges.length === 0) return 'unsatisfiable';
  return specs.length === 1 ? ranges[0] : undefined;
}

/**
 * RFC 9110 §13.2.2: the order in which preconditions are evaluated. Returns 412, 304, or
 * undefined to carry on. `modified` is the Last-Modified time in seconds, when there is one.
 */
export function evaluatePreconditions(ctx: Context, etag: string | undefined, modified: number | undefined): 304 | 412 | undefined {
  const ifMatch = ctx.get('if-match');
  const ifNoneMatch = ctx.get('if-none-match');
  if (ifMatch !== undefined) {
    // §13.1.1: If-Match uses the strong comparison, so a weak ETag never matches a list.
    if (!matchesEtag(ifMatch, etag, true)) return 412;
  } else {
    // §13.1.4: If-Unmodified-Since only without If-Match; an invalid date is ignored.
    const date = parseHttpDate(ctx.get('if-unmodified-since'));
    if (date !== undefined && modified !== undefined && modified > date) return 412;
  }
  const safe = ctx.method === 'GET' || ctx.method === 'HEAD';
  if (ifNoneMatch !== undefined) {
    // §13.1.2: weak comparison; a match is 304 for GET/HEAD, 412 otherwise.
    if (matchesEtag(ifNoneMatch, etag, false)) return safe ? 304 : 412;
  } else if (safe) {
    // §13.1.3: If-Modified-Since only for GET/HEAD, only without If-None-Match.
    const date = parseHttpDate(ctx.get('if-modified-since'));
    if (date !== undefined && modified !== undefined && modified <= date) return 304;
  }
  return undefined;
}

/** §13.1.5: If-Range is true when it matches the current validator exactly (ETags strongly). */
function ifRange(value: string | undefined, etag: string | undefined, modified: number | undefined): boolean {
  if (value === undefined) return true;
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return etag !== undefined && !etag.startsWith('W/') && v === etag;
  const date = parseHttpDate(v);
  return date !== undefined && modified !== undefined && date === modified;
}

/**
 * If-Match / If-None-Match against the current ETag: "*" matches any current representation;
 * otherwise a list of entity-tags compared strongly (both must be strong and equal) or weakly
 * (opaque-tags equal, W/ ignored), RFC 9110 §8.8.3.2.
 */
function matchesEtag(header: string, etag: string | undefined, strong: boolean): boolean {
  if (header.trim() === '*') return true;
  if (etag === undefined) return false;
  const opaque = (t: string): string => (t.startsWith('W/') ? t.slice(2) : t);
  if (strong && etag.startsWith('W/')) return false;
  for (const m of header.matchAll(/(W\/)?"[^"]*"/g)) {
    const tag = m[0];
    if (strong ? tag === etag : opaque(tag) === opaque(etag)) return true;
  }
  return false;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * An HTTP-date (RFC 9110 §5.6.7) in seconds since the epoch, or undefined when the value is
 * not one. Recipients MUST accept IMF-fixdate and the two obsolete forms (rfc850, asctime).
 */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let m = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(v);
  let day: string, mon: string, year: number, hh: string, mm: string, ss: string;
  if (m) {
    [, day, mon, , hh, mm, ss] = m;
    year = Number(m[3]);
  } else if ((m = /^[A-Za-z]+, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(v))) {
    [, day, mon, , hh, mm, ss] = m;
    // §5.6.7: a two-digit year more than 50 years in the future is in the past century.
    const yy = Number(m[3]);
    const now = new Date().getUTCFullYear();
    year = 2000 + yy > now + 50 ? 1900 + yy : 2000 + yy;
  } else if ((m = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(v))) {
    [, mon, day, hh, mm, ss] = m;
    year = Number(m[6]);
  } else {
    return undefined;
  }
  const month = MONTHS.indexOf(mon.toLowerCase());
  if (month < 0) return undefined;
  const t = Date.UTC(year, month, Number(day.trim()), Number(hh), Number(mm), Number(ss));
  return Number.isNaN(t) ? undefined : t / 1000;
}
