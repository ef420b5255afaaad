// RFC 9204 Section 4.5: encoded field sections (prefix and field line representations).
import { QPACK_DECOMPRESSION_FAILED, QpackError } from './errors';
import { decodeInteger, type Decoded } from './integer';
import { decodeStringLiteral } from './string-literal';
import type { ByteWriter } from './writer';

const F = QPACK_DECOMPRESSION_FAILED;

/** Section 4.5.1: the two integers that start every encoded field section. */
export interface FieldSectionPrefix {
  /** The Required Insert Count as sent (Section 4.5.1.1), before reconstruction. */
  encodedInsertCount: number;
  /** 'S' bit: Base is below the Required Insert Count (Section 4.5.1.2). */
  sign: boolean;
  deltaBase: number;
}

export type FieldLine =
  /** Section 4.5.2: '1' T + Index (6+); T=1 static index, T=0 relative dynamic index. */
  | { type: 'indexed'; isStatic: boolean; index: number }
  /** Section 4.5.3: '0001' + post-Base Index (4+). */
  | { type: 'indexed-post-base'; index: number }
  /** Section 4.5.4: '01' N T + Name Index (4+), Value. */
  | { type: 'literal-name-ref'; neverIndexed: boolean; isStatic: boolean; nameIndex: number; value: string }
  /** Section 4.5.5: '0000' N + post-Base Name Index (3+), Value. */
  | { type: 'literal-post-base-name-ref'; neverIndexed: boolean; nameIndex: number; value: string }
  /** Section 4.5.6: '001' N + Name (4-bit prefix string), Value. */
  | { type: 'literal'; neverIndexed: boolean; name: string; value: string };

function complete<T>(d: Decoded<T> | undefined): Decoded<T> {
  // A field section arrives whole (one HEADERS frame): running out of bytes is malformed.
  if (d === undefined) throw new QpackError(F, 'truncated field section');
  return d;
}

/** Parses the field section prefix (Section 4.5.1) of a complete encoded field section. */
export function parseFieldSectionPrefix(block: Uint8Array): Decoded<FieldSectionPrefix> {
  const ric = complete(decodeInteger(block, 0, 8, F));
  if (ric.next >= block.length) throw new QpackError(F, 'truncated field section prefix');
  const sign = (block[ric.next] & 0x80) !== 0;
  const delta = complete(decodeInteger(block, ric.next, 7, F));
  return { value: { encodedInsertCount: ric.value, sign, deltaBase: delta.value }, next: delta.next };
}

/**
 * RFC 9204 Section 4.5.1.1: reconstructs the Required Insert Count from its encoding.
 * `maxEntries` is floor(decoder's maximum table capacity / 32); `totalInserts` the
 * decoder's Insert Count when the section arrived.
 */
export function decodeRequiredInsertCount(encoded: number, maxEntries: number, totalInserts: number): number {
  if (encoded === 0) return 0;
  const fullRange = 2 * maxEntries;
  // "If the decoder encounters a value of EncodedInsertCount that could not have been
  // produced by a conformant encoder, it MUST treat this as ... QPACK_DECOMPRESSION_FAILED."
  if (encoded > fullRange) throw new QpackError(F, 'Required Insert Count out of range');
  const maxValue = totalInserts + maxEntries;
  const maxWrapped = Math.floor(maxValue / fullRange) * fullRange;
  let ric = maxWrapped + encoded - 1;
  if (ric > maxValue) {
    if (ric <= fullRange) throw new QpackError(F, 'invalid Required Insert Count');
    ric -= fullRange;
  }
  if (ric === 0) throw new QpackError(F, 'Required Insert Count of 0 encoded as non-zero');
  return ric;
}

/** RFC 9204 Section 4.5.1.1: the encoder's transformation of the Required Insert Count. */
export function encodeRequiredInsertCount(ric: number, maxEntries: number): number {
  return ric === 0 ? 0 : (ric % (2 * maxEntries)) + 1;
}

/** RFC 9204 Section 4.5.1.2: Base from the Required Insert Count, Sign and Delta Base. */
export function decodeBase(ric: number, sign: boolean, deltaBase: number): number {
  if (!sign) return ric + deltaBase;
  // "An endpoint MUST treat a field block with a Sign bit of 1 as invalid if the value
  // of Required Insert Count is less than or equal to the value of Delta Base."
  if (ric <= deltaBase) throw new QpackError(F, 'negative Base');
  return ric - deltaBase - 1;
}

/** Writes the field section prefix (Section 4.5.1) for a Required Insert Count and Base. */
export function writeFieldSectionPrefix(w: ByteWriter, ric: number, base: number, maxEntries: number): void {
  w.integer(encodeRequiredInsertCount(ric, maxEntries), 8);
  if (base >= ric) w.integer(base - ric, 7, 0x00);
  else w.integer(ric - base - 1, 7, 0x80);
}

/** Parses one field line representation of a complete encoded field section. */
export function parseFieldLine(block: Uint8Array, offset: number): Decoded<FieldLine> {
  const first = block[offset];
  if (first & 0x80) {
    const index = complete(decodeInteger(block, offset, 6, F));
    return { value: { type: 'indexed', isStatic: (first & 0x40) !== 0, index: index.value }, next: index.next };
  }
  if (first & 0x40) {
    const index = complete(decodeInteger(block, offset, 4, F));
    const value = complete(decodeStringLiteral(block, index.next, 8, F));
    const line: FieldLine = {
      type: 'literal-name-ref',
      neverIndexed: (first & 0x20) !== 0,
      isStatic: (first & 0x10) !== 0,
      nameIndex: index.value,
      value: value.value,
    };
    return { value: line, next: value.next };
  }
  if (first & 0x20) {
    const name = complete(decodeStringLiteral(block, offset, 4, F));
    const value = complete(decodeStringLiteral(block, name.next, 8, F));
    const line: FieldLine = {
      type: 'literal',
      neverIndexed: (first & 0x10) !== 0,
      name: name.value,
      value: value.value,
    };
    return { value: line, next: value.next };
  }
  if (first & 0x10) {
    const index = complete(decodeInteger(block, offset, 4, F));
    return { value: { type: 'indexed-post-base', index: index.value }, next: index.next };
  }
  const index = complete(decodeInteger(block, offset, 3, F));
  const value = complete(decodeStringLiteral(block, index.next, 8, F));
  const line: FieldLine = {
    type: 'literal-post-base-name-ref',
    neverIndexed: (first & 0x08) !== 0,
    nameIndex: index.value,
    value: value.value,
  };
  return { value: line, next: value.next };
}

/** Writes one field line representation (RFC 9204 Sections 4.5.2 to 4.5.6). */
export function writeFieldLine(w: ByteWriter, line: FieldLine): void {
  switch (line.type) {
    case 'indexed':
      w.integer(line.index, 6, line.isStatic ? 0xc0 : 0x80);
      return;
    case 'indexed-post-base':
      w.integer(line.index, 4, 0x10);
      return;
    case 'literal-name-ref':
      w.integer(line.nameIndex, 4, 0x40 | (line.neverIndexed ? 0x20 : 0) | (line.isStatic ? 0x10 : 0));
      w.string(line.value, 8);
      return;
    case 'literal-post-base-name-ref':
      w.integer(line.nameIndex, 3, line.neverIndexed ? 0x08 : 0x00);
      w.string(line.value, 8);
      return;
    case 'literal':
      w.string(line.name, 4, 0x20 | (line.neverIndexed ? 0x10 : 0));
      w.string(line.value, 8);
      return;
  }
}
