// RFC 9204 Section 4.4: decoder instructions, carried on the decoder stream.
import { QPACK_DECODER_STREAM_ERROR } from './errors';
import { decodeInteger, type Decoded } from './integer';
import type { ByteWriter } from './writer';

export type DecoderInstruction =
  /** Section 4.4.1: '1' + Stream ID (7+). */
  | { type: 'section-ack'; streamId: number }
  /** Section 4.4.2: '01' + Stream ID (6+). */
  | { type: 'stream-cancellation'; streamId: number }
  /** Section 4.4.3: '00' + Increment (6+). */
  | { type: 'insert-count-increment'; increment: number };

const D = QPACK_DECODER_STREAM_ERROR;

/**
 * Parses one decoder instruction from `buf[offset..end)`; undefined when incomplete.
 * Throws QpackError 0x0202 on an integer overflow.
 */
export function parseDecoderInstruction(
  buf: Uint8Array,
  offset: number,
  end: number,
): Decoded<DecoderInstruction> | undefined {
  if (offset >= end) return undefined;
  const first = buf[offset];
  if (first & 0x80) {
    const id = decodeInteger(buf, offset, 7, D, end);
    return id && { value: { type: 'section-ack', streamId: id.value }, next: id.next };
  }
  const n = decodeInteger(buf, offset, 6, D, end);
  if (n === undefined) return undefined;
  if (first & 0x40) return { value: { type: 'stream-cancellation', streamId: n.value }, next: n.next };
  return { value: { type: 'insert-count-increment', increment: n.value }, next: n.next };
}

/** Writes one decoder instruction (RFC 9204 Section 4.4). */
export function writeDecoderInstruction(w: ByteWriter, ins: DecoderInstruction): void {
  switch (ins.type) {
    case 'section-ack':
      w.integer(ins.streamId, 7, 0x80);
      return;
    case 'stream-cancellation':
      w.integer(ins.streamId, 6, 0x40);
      return;
    case 'insert-count-increment':
      w.integer(ins.increment, 6, 0x00);
      return;
  }
}
