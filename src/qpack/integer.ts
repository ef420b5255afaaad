// RFC 9204 Section 4.1.1 / RFC 7541 Section 5.1: prefixed integers.
import { QPACK_DECOMPRESSION_FAILED, QpackError, type QpackErrorCode } from './errors';

/** A decoded value and the offset just after it. */
export interface Decoded<T> {
  value: T;
  next: number;
}

/**
 * The largest integer we decode. RFC 9204 Section 4.1.1 asks for 62 bits; no QPACK
 * field (index, length, capacity, increment, stream ID) can be valid above 2^53 - 1
 * in a real connection, so larger values are rejected as malformed.
 */
export const MAX_INTEGER = Number.MAX_SAFE_INTEGER;

/** Number of bytes `value` takes with an N-bit prefix. */
export function integerLength(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (let rest = value - max; rest >= 128; rest = Math.floor(rest / 128)) n++;
  return n;
}

/**
 * Writes `value` with an N-bit prefix at `offset`; `flags` are the bits of the first
 * byte above the prefix. Returns the offset after the integer. `out` must have room
 * (see integerLength).
 */
export function writeInteger(
  out: Uint8Array,
  offset: number,
  value: number,
  prefixBits: number,
  flags = 0,
): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode integer ${value}`);
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[offset++] = flags | value;
    return offset;
  }
  out[offset++] = flags | max;
  let rest = value - max;
  while (rest >= 128) {
    out[offset++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[offset++] = rest;
  return offset;
}

/** Encodes `value` with an N-bit prefix into a new array (RFC 7541 Section 5.1). */
export function encodeInteger(value: number, prefixBits: number, flags = 0): Uint8Array {
  const out = new Uint8Array(integerLength(value, prefixBits));
  writeInteger(out, 0, value, prefixBits, flags);
  return out;
}

/**
 * Decodes an integer with an N-bit prefix starting at `buf[offset]` and ending before
 * `end`. Returns undefined when more bytes are needed; throws QpackError(errorCode)
 * when the value exceeds MAX_INTEGER.
 */
export function decodeInteger(
  buf: Uint8Array,
  offset: number,
  prefixBits: number,
  errorCode: QpackErrorCode = QPACK_DECOMPRESSION_FAILED,
  end = buf.length,
): Decoded<number> | undefined {
  if (offset >= end) return undefined;
  const max = (1 << prefixBits) - 1;
  let value = buf[offset++] & max;
  if (value < max) return { value, next: offset };
  let multiplier = 1;
  for (;;) {
    if (offset >= end) return undefined;
    const b = buf[offset++];
    value += (b & 0x7f) * multiplier;
    if (value > MAX_INTEGER) throw new QpackError(errorCode, 'integer too large');
    if ((b & 0x80) === 0) return { value, next: offset };
    multiplier *= 128;
    // Continuation bytes that only add zeros still need a bound (RFC 7541 Section 5.1).
    if (multiplier > 2 ** 63) throw new QpackError(errorCode, 'integer too long');
  }
}
