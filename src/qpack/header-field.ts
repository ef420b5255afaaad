/**
 * A field line: [name, value]. Both are latin1 strings, one character per byte,
 * so any byte sequence survives decoding and re-encoding unchanged.
 */
export type HeaderField = [name: string, value: string];

/**
 * RFC 9204 Section 3.2.1: the size of an entry is the length of its name and
 * value in bytes (without Huffman encoding) plus 32. RFC 9114 Section 4.2.2
 * measures a field section the same way.
 */
export function fieldSize(name: string, value: string): number {
  return name.length + value.length + 32;
}
