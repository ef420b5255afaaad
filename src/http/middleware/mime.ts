import * as path from 'node:path';

/**
 * Media types for the file extensions a web site mostly serves. Text types carry
 * `charset=utf-8`: RFC 9110 §8.3.1 lets the charset parameter say how text is encoded, and
 * without it browsers guess.
 */
const TYPES: Record<string, string> = {
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  // RFC 9239 §6: text/javascript is the one type for JavaScript, modules included.
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  json: 'application/json',
  map: 'application/json',
  webmanifest: 'application/manifest+json',
  xml: 'application/xml',
  svg: 'image/svg+xml',
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/x-icon',
  woff: 'font/woff',
  woff2: 'font/woff2',
  wasm: 'application/wasm',
  pdf: 'application/pdf',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mp3: 'audio/mpeg',
  zip: 'application/zip',
  gz: 'application/gzip',
};

/** The default for unknown extensions (RFC 9110 §8.3: "application/octet-stream" means arbitrary bytes). */
export const DEFAULT_TYPE = 'application/octet-stream';

/** True for types that are text and so get a charset: text/*, JSON, XML, SVG, JavaScript. */
export function isTextType(type: string): boolean {
  const t = type.toLowerCase();
  return t.startsWith('text/') || /^application\/(?:json|xml|javascript|[\w.-]+\+(?:json|xml))$/.test(t) || t === 'image/svg+xml';
}

/** The Content-Type for a file name, from its extension; `application/octet-stream` when unknown. */
export function contentTypeFor(fileName: string): string {
  const ext = path.extname(fileName).slice(1).toLowerCase();
  const type = TYPES[ext];
  if (!type) return DEFAULT_TYPE;
  return isTextType(type) ? `${type}; charset=utf-8` : type;
}
