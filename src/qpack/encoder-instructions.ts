// RFC 9204 Section 4.3: encoder instructions, carried on the encoder stream.
import { QPACK_ENCODER_STREAM_ERROR } from './errors';
import { decodeInteger, type Decoded } from './integer';
import { decodeStringLiteral } from './string-literal';
import type { ByteWriter } from './writer';

export type EncoderInstruction =
  /** Section 4.3.1: '001' + Capacity (5+). */
  | { type: 'set-capacity'; capacity: number }
  /** Section 4.3.2: '1' T + Name Index (6+), Value. T=1 static, T=0 relative dynamic index. */
  | { type: 'insert-name-ref'; isStatic: boolean; nameIndex: number; value: string }
  /** Section 4.3.3: '01' + Name (6-bit prefix string), Value. */
  | { type: 'insert-literal-name'; name: string; value: string }
  /** Section 4.3.4: '000' + relative Index (5+). */
  | { type: 'duplicate'; index: number };

const E = QPACK_ENCODER_STREAM_ERROR;

/**
 * Parses one encoder instruction from `buf[offset..end)`. Returns undefined when the
 * instruction is not complete yet. Strings whose decoded length would exceed
 * `maxStringLength` are rejected as soon as their length is known, so a peer cannot
 * make us buffer more than the table could ever hold. Throws QpackError 0x0201.
 */
export function parseEncoderInstruction(
  buf: Uint8Array,
  offset: number,
  end: number,
  maxStringLength: number,
): Decoded<EncoderInstruction> | undefined {
  if (offset >= end) return undefined;
  const first = buf[offset];
  if (first & 0x80) {
    const index = decodeInteger(buf, offset, 6, E, end);
    if (index === undefined) return undefined;
    const value = decodeStringLiteral(buf, index.next, 8, E, maxStringLength, end);
    if (value === undefined) return undefined;
    const isStatic = (first & 0x40) !== 0;
    return {
      value: { type: 'insert-name-ref', isStatic, nameIndex: index.value, value: value.value },
      next: value.next,
    };
  }
  if (first & 0x40) {
    const name = decodeStringLiteral(buf, offset, 6, E, maxStringLength, end);
    if (name === undefined) return undefined;
    const value = decodeStringLiteral(buf, name.next, 8, E, maxStringLength - name.value.length, end);
    if (value === undefined) return undefined;
    return { value: { type: 'insert-literal-name', name: name.value, value: value.value }, next: value.next };
  }
  const n = decodeInteger(buf, offset, 5, E, end);
  if (n === undefined) return undefined;
  if (first & 0x20) return { value: { type: 'set-capacity', capacity: n.value }, next: n.next };
  return { value: { type: 'duplicate', index: n.value }, next: n.next };
}

/** Writes one encoder instruction (RFC 9204 Section 4.3). */
export function writeEncoderInstruction(w: ByteWriter, ins: EncoderInstruction): void {
  switch (ins.type) {
    case 'set-capacity':
      w.integer(ins.capacity, 5, 0x20);
      return;
    case 'insert-name-ref':
      w.integer(ins.nameIndex, 6, ins.isStatic ? 0xc0 : 0x80);
      w.string(ins.value, 8);
      return;
    case 'insert-literal-name':
      w.string(ins.name, 6, 0x40);
      w.string(ins.value, 8);
      return;
    case 'duplicate':
      w.integer(ins.index, 5, 0x00);
      return;
  }
}
