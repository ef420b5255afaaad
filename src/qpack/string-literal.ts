// RFC 9204 Section 4.1.2 / RFC 7541 Section 5.2: N-bit prefix string literals.
import { QPACK_DECOMPRESSION_FAILED, QpackError, type QpackErrorCode } from './errors';
import { huffmanDecode, huffmanEncodedLength, latin1, writeHuffman } from './huffman';
import { decodeInteger, integerLength, writeInteger, type Decoded } from './integer';

/**
 * Decodes an N-bit prefix string literal (`prefixBits` = N, 2..8) starting at
 * `buf[offset]`: an 'H' bit, then the length as an (N-1)-bit prefix integer, then
 * the bytes. Returns undefined when more bytes are needed.
 *
 * `maxLength` bounds the decoded length: when the wire length alone proves the
 * string would be longer, it throws before waiting for the bytes (this bounds what
 * an incremental parser buffers).
 */
export function decodeStringLiteral(
  buf: Uint8Array,
  offset: number,
  prefixBits: number,
  errorCode: QpackErrorCode = QPACK_DECOMPRESSION_FAILED,
  maxLength = Infinity,
  end = buf.length,
): Decoded<string> | undefined {
  if (offset >= end) return undefined;
  const huffman = (buf[offset] & (1 << (prefixBits - 1))) !== 0;
  const len = decodeInteger(buf, offset, prefixBits - 1, errorCode, end);
  if (len === undefined) return undefined;
  // A Huffman code is at most 30 bits, so `len` bytes hold at least this many symbols.
  const minLength = huffman ? Math.floor((len.value * 8 - 7) / 30) : len.value;
  if (minLength > maxLength) throw new QpackError(errorCode, 'string literal too long');
  const stop = len.next + len.value;
  if (stop > end) return undefined;
  const value = huffman ? huffmanDecode(buf, len.next, stop, errorCode) : latin1(buf, len.next, stop);
  if (value.length > maxLength) throw new QpackError(errorCode, 'string literal too long');
  return { value, next: stop };
}

/** Encoded size of `s` as an N-bit prefix string literal, with or without Huffman. */
export function stringLiteralLength(s: string, prefixBits: number, huffman: boolean): number {
  const len = huffman ? huffmanEncodedLength(s) : s.length;
  return integerLength(len, prefixBits - 1) + len;
}

/**
 * Writes `s` as an N-bit prefix string literal at `out[offset]`; `flags` are the bits
 * above the H bit. Uses Huffman when `huffmanLength` (from huffmanEncodedLength) is
 * shorter than the raw string. Returns the offset after it.
 */
export function writeStringLiteral(
  out: Uint8Array,
  offset: number,
  s: string,
  prefixBits: number,
  flags: number,
  huffmanLength: number,
): number {
  if (huffmanLength < s.length) {
    offset = writeInteger(out, offset, huffmanLength, prefixBits - 1, flags | (1 << (prefixBits - 1)));
    return writeHuffman(out, offset, s);
  }
  offset = writeInteger(out, offset, s.length, prefixBits - 1, flags);
  for (let i = 0; i < s.length; i++) out[offset++] = s.charCodeAt(i);
  return offset;
}
