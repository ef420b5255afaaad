/**
 * QUIC variable-length integers (RFC 9000 §16): the two high bits of the first byte give the
 * length (1, 2, 4 or 8 bytes), the remaining bits the value, big-endian, up to 2^62-1.
 *
 * Two APIs: `number` for values up to 2^53-1 (lengths, stream ids, most codes) and `bigint`
 * for the full 62-bit range (setting values, GOAWAY and push ids).
 */

/** Largest value a varint can carry: 2^62-1. */
export const MAX_VARINT = (1n << 62n) - 1n;

/** A decoded varint and how many bytes it took. */
export interface Decoded<T> {
  value: T;
  length: number;
}

/** Encoded length (1, 2, 4 or 8) announced by a varint's first byte. */
export function varintLengthFromFirstByte(firstByte: number): 1 | 2 | 4 | 8 {
  return (1 << (firstByte >> 6)) as 1 | 2 | 4 | 8;
}

/** Minimal encoded length of `value`; throws RangeError outside 0..2^62-1. */
export function varintLength(value: number | bigint): 1 | 2 | 4 | 8 {
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_VARINT) throw new RangeError(`varint out of range: ${value}`);
    if (value <= 0x3fffffffn) return value < 0x40n ? 1 : value < 0x4000n ? 2 : 4;
    return 8;
  }
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  return value < 0x40 ? 1 : value < 0x4000 ? 2 : value < 0x40000000 ? 4 : 8;
}

/**
 * Decodes a varint at `offset`. Returns null when the bytes are not all there yet.
 * Throws RangeError if the value exceeds 2^53-1 (use decodeVarintBig for those).
 */
export function decodeVarint(buf: Uint8Array, offset = 0): Decoded<number> | null {
  const r = decodeVarintSaturating(buf, offset);
  if (r !== null && r.value === Infinity) throw new RangeError('varint exceeds 2^53-1; use decodeVarintBig');
  return r;
}

/**
 * Like decodeVarint, but values above 2^53-1 decode to Infinity instead of throwing. Meant for
 * frame and stream types (any such type is unknown) and lengths (any such length is too large).
 */
export function decodeVarintSaturating(buf: Uint8Array, offset = 0): Decoded<number> | null {
  if (offset >= buf.length) return null;
  const first = buf[offset];
  const length = varintLengthFromFirstByte(first);
  if (offset + length > buf.length) return null;
  switch (length) {
    case 1:
      return { value: first & 0x3f, length };
    case 2:
      return { value: ((first & 0x3f) << 8) | buf[offset + 1], length };
    case 4:
      return {
        value: (first & 0x3f) * 0x1000000 + ((buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]),
        length,
      };
    default: {
      const hi = (first & 0x3f) * 0x1000000 + ((buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]);
      const lo = ((buf[offset + 4] << 24) >>> 0) + ((buf[offset + 5] << 16) | (buf[offset + 6] << 8) | buf[offset + 7]);
      // 2^53 = 2^21 * 2^32: the value is safe iff the high 32 bits are below 2^21.
      return { value: hi < 0x200000 ? hi * 0x100000000 + lo : Infinity, length };
    }
  }
}

/** Decodes a varint over its full 62-bit range. Returns null when bytes are missing. */
export function decodeVarintBig(buf: Uint8Array, offset = 0): Decoded<bigint> | null {
  if (offset >= buf.length) return null;
  const length = varintLengthFromFirstByte(buf[offset]);
  if (offset + length > buf.length) return null;
  let value = BigInt(buf[offset] & 0x3f);
  for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(buf[offset + i]);
  return { value, length };
}

/** Writes `value` at `offset` in its minimal length; returns the number of bytes written. */
export function encodeVarintInto(value: number | bigint, buf: Uint8Array, offset: number): number {
  const length = varintLength(value);
  if (offset + length > buf.length) throw new RangeError('buffer too small for varint');
  if (length === 8) {
    let v = BigInt(value);
    for (let i = 7; i >= 0; i--) {
      buf[offset + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    buf[offset] |= 0xc0;
    return 8;
  }
  let v = Number(value);
  for (let i = length - 1; i >= 0; i--) {
    buf[offset + i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  buf[offset] |= (Math.log2(length) << 6);
  return length;
}

/** Encodes `value` in its minimal length (RFC 9000 §16 allows longer; we never need it). */
export function encodeVarint(value: number | bigint): Uint8Array {
  const out = new Uint8Array(varintLength(value));
  encodeVarintInto(value, out, 0);
  return out;
}
