/**
 * HTTP/3 message validation (RFC 9114 §4.2, §4.3, §4.4; RFC 9220 for extended CONNECT).
 * A malformed message throws H3StreamError(H3_MESSAGE_ERROR) (RFC 9114 §4.1.2).
 */
import type { HeaderField } from '../qpack';
import { H3StreamError, H3_MESSAGE_ERROR } from './errors';

/** Connection-specific fields that HTTP/3 forbids (RFC 9114 §4.2). */
export const CONNECTION_SPECIFIC_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);
// RFC 9110 §5.1 field-name = token; uppercase is checked separately for a clearer reason.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;
// RFC 9110 §5.5 field-value: no CTLs but HTAB, no leading or trailing whitespace.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$/;

function malformed(reason: string): never {
  throw new H3StreamError(H3_MESSAGE_ERROR, reason);
}

/** What the connection needs to know about a valid request head. */
export interface RequestHead {
  method: string;
  /** Declared content-length, if any; DATA must add up to it (RFC 9114 §4.1.2). */
  contentLength: number | undefined;
}

/** Validates a request header section. Throws H3StreamError(H3_MESSAGE_ERROR). */
export function checkRequestHeaders(headers: readonly HeaderField[], enableConnectProtocol: boolean): RequestHead {
  const pseudo = new Map<string, string>();
  let regularSeen = false;
  let host: string | undefined;
  for (const [name, value] of headers) {
    if (name.startsWith(':')) {
      // RFC 9114 §4.3: pseudo-header fields after a regular field make the message malformed.
      if (regularSeen) malformed(`pseudo-header ${name} after a regular field`);
      // RFC 9114 §4.3: undefined pseudo-headers make the message malformed; :protocol only with
      // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220 §3, RFC 8441 §4).
      if (!REQUEST_PSEUDO.has(name) || (name === ':protocol' && !enableConnectProtocol)) {
        malformed(`invalid pseudo-header ${name}`);
      }
      // RFC 9114 §4.3.1: exactly one value for each request pseudo-header.
      if (pseudo.has(name)) malformed(`duplicate pseudo-header ${name}`);
      if (BAD_VALUE.test(value)) malformed(`invalid value for ${name}`);
      pseudo.set(name, value);
      continue;
    }
    regularSeen = true;
    checkRegularField(name, value);
    if (name === 'host') host = value;
  }

  const method = pseudo.get(':method');
  const scheme = pseudo.get(':scheme');
  const path = pseudo.get(':path');
  const authority = pseudo.get(':authority');
  // RFC 9114 §4.3.1: :method is required.
  if (method === undefined || !TOKEN.test(method)) malformed('missing or invalid :method');

  if (method === 'CONNECT' && !pseudo.has(':protocol')) {
    // RFC 9114 §4.4: CONNECT carries :authority and omits :scheme and :path.
    if (scheme !== undefined || path !== undefined) malformed('CONNECT with :scheme or :path');
    if (!authority) malformed('CONNECT without :authority');
  } else {
    // RFC 8441 §4 (RFC 9220 §3): :protocol only on CONNECT.
    if (pseudo.has(':protocol') && method !== 'CONNECT') malformed(':protocol on a non-CONNECT request');
    // RFC 9114 §4.3.1: :method, :scheme and :path are required (extended CONNECT too).
    if (scheme === undefined || path === undefined) malformed('missing :scheme or :path');
    if (scheme === 'http' || scheme === 'https') {
      // RFC 9114 §4.3.1: :path MUST NOT be empty for http and https URIs.
      if (path === '') malformed('empty :path');
      // RFC 9114 §4.3.1: :authority or Host is required for http(s); present means non-empty, equal if both.
      if (authority === undefined && host === undefined) malformed('missing :authority and host');
      if (authority === '' || host === '') malformed('empty :authority or host');
      if (authority !== undefined && host !== undefined && authority !== host) malformed(':authority differs from host');
    }
    if (pseudo.has(':protocol') && authority === undefined) malformed('extended CONNECT without :authority');
  }
  return { method, contentLength: contentLength(headers) };
}

/** Validates a trailer section (RFC 9114 §4.3: no pseudo-headers). Throws H3StreamError. */
export function checkTrailers(headers: readonly HeaderField[]): void {
  for (const [name, value] of headers) {
    // RFC 9114 §4.3: pseudo-header fields MUST NOT appear in trailer sections.
    if (name.startsWith(':')) malformed(`pseudo-header ${name} in trailers`);
    checkRegularField(name, value);
  }
}

function checkRegularField(name: string, value: string): void {
  // RFC 9114 §4.2: field names containing uppercase characters make the message malformed.
  if (/[A-Z]/.test(name)) malformed(`uppercase field name ${name}`);
  // RFC 9114 §10.3: invalid field names or values make the message malformed.
  if (!TOKEN.test(name)) malformed(`invalid field name ${JSON.stringify(name)}`);
  if (BAD_VALUE.test(value)) malformed(`invalid value for ${name}`);
  // RFC 9114 §4.2: connection-specific fields make the message malformed.
  if (CONNECTION_SPECIFIC_FIELDS.has(name)) malformed(`connection-specific field ${name}`);
  // RFC 9114 §4.2: TE MUST NOT contain any value other than "trailers".
  if (name === 'te' && value.toLowerCase() !== 'trailers') malformed('te other than trailers');
}

/** The content-length, if present; differing or non-numeric values are malformed (RFC 9110 §8.6). */
function contentLength(headers: readonly HeaderField[]): number | undefined {
  let length: number | undefined;
  for (const [name, value] of headers) {
    if (name !== 'content-length') continue;
    for (const part of value.split(',')) {
      const v = part.trim();
      if (!/^[0-9]{1,15}$/.test(v)) malformed('invalid content-length');
      const n = Number(v);
      if (length !== undefined && length !== n) malformed('conflicting content-length values');
      length = n;
    }
  }
  return length;
}

/**
 * Prepares response fields for encoding: lowercases names (RFC 9114 §4.2), drops
 * connection-specific fields, which an endpoint MUST NOT generate (RFC 9114 §4.2), and moves
 * pseudo-header fields first.
 */
export function prepareResponseFields(headers: readonly HeaderField[]): HeaderField[] {
  const pseudo: HeaderField[] = [];
  const regular: HeaderField[] = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (CONNECTION_SPECIFIC_FIELDS.has(lower) || lower === 'te') continue;
    (lower.startsWith(':') ? pseudo : regular).push([lower, value]);
  }
  // RFC 9114 §4.3: pseudo-header fields come before regular fields.
  return pseudo.length === 0 ? regular : pseudo.concat(regular);
}
