// Encoder-stream and decoder-stream parsers fed in every possible split.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  ByteWriter,
  parseDecoderInstruction,
  parseEncoderInstruction,
  parseFieldLine,
  QpackDecoder,
  QpackEncoder,
  StreamBuffer,
  writeDecoderInstruction,
  writeEncoderInstruction,
  writeFieldLine,
  type DecoderInstruction,
  type EncoderInstruction,
  type FieldLine,
} from '../../../src/qpack';
import { splitAt, splitsAtEveryByte } from './helpers';

const latin1 = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1'));
const index = fc.oneof(fc.nat(70), fc.nat(100000));

const encoderInstruction: fc.Arbitrary<EncoderInstruction> = fc.oneof(
  fc.record({ type: fc.constant('set-capacity' as const), capacity: index }),
  fc.record({ type: fc.constant('insert-name-ref' as const), isStatic: fc.boolean(), nameIndex: index, value: latin1 }),
  fc.record({ type: fc.constant('insert-literal-name' as const), name: latin1, value: latin1 }),
  fc.record({ type: fc.constant('duplicate' as const), index }),
);

const decoderInstruction: fc.Arbitrary<DecoderInstruction> = fc.oneof(
  fc.record({ type: fc.constant('section-ack' as const), streamId: index }),
  fc.record({ type: fc.constant('stream-cancellation' as const), streamId: index }),
  fc.record({ type: fc.constant('insert-count-increment' as const), increment: index }),
);

const fieldLine: fc.Arbitrary<FieldLine> = fc.oneof(
  fc.record({ type: fc.constant('indexed' as const), isStatic: fc.boolean(), index }),
  fc.record({ type: fc.constant('indexed-post-base' as const), index }),
  fc.record({
    type: fc.constant('literal-name-ref' as const),
    neverIndexed: fc.boolean(),
    isStatic: fc.boolean(),
    nameIndex: index,
    value: latin1,
  }),
  fc.record({ type: fc.constant('literal-post-base-name-ref' as const), neverIndexed: fc.boolean(), nameIndex: index, value: latin1 }),
  fc.record({ type: fc.constant('literal' as const), neverIndexed: fc.boolean(), name: latin1, value: latin1 }),
);

/** Feeds `parts` through a StreamBuffer and a parser, collecting what it yields. */
function parseStream<T>(
  parts: Uint8Array[],
  parse: (buf: Uint8Array, start: number, end: number) => { value: T; next: number } | undefined,
): T[] {
  const buf = new StreamBuffer();
  const out: T[] = [];
  for (const part of parts) {
    buf.append(part);
    for (let p = parse(buf.data, buf.start, buf.end); p; p = parse(buf.data, buf.start, buf.end)) {
      out.push(p.value);
      buf.consume(p.next);
    }
  }
  assert.equal(buf.size, 0, 'bytes left over');
  return out;
}

/** fast-check records have a null prototype; parsers return plain objects. */
const plain = <T extends object>(list: T[]): T[] => list.map((x) => ({ ...x }));

const parseEnc = (b: Uint8Array, s: number, e: number) => parseEncoderInstruction(b, s, e, Infinity);

describe('qpack: instruction parsers split at every byte', () => {
  const encoderSample: EncoderInstruction[] = [
    { type: 'set-capacity', capacity: 4096 },
    { type: 'insert-name-ref', isStatic: true, nameIndex: 0, value: 'www.example.com' },
    { type: 'insert-name-ref', isStatic: false, nameIndex: 70, value: 'x'.repeat(130) },
    { type: 'insert-literal-name', name: 'custom-key', value: 'custom\u00ffvalue' },
    { type: 'duplicate', index: 31 },
    { type: 'duplicate', index: 1000 },
    { type: 'insert-literal-name', name: '', value: '' },
  ];
  const decoderSample: DecoderInstruction[] = [
    { type: 'section-ack', streamId: 4 },
    { type: 'section-ack', streamId: 1_000_000 },
    { type: 'stream-cancellation', streamId: 63 },
    { type: 'insert-count-increment', increment: 1 },
    { type: 'insert-count-increment', increment: 64 },
  ];

  it('encoder stream (RFC 9204 Section 4.3)', () => {
    const w = new ByteWriter();
    encoderSample.forEach((i) => writeEncoderInstruction(w, i));
    const wire = w.take();
    for (const parts of splitsAtEveryByte(wire)) assert.deepEqual(parseStream(parts, parseEnc), encoderSample);
  });

  it('decoder stream (RFC 9204 Section 4.4)', () => {
    const w = new ByteWriter();
    decoderSample.forEach((i) => writeDecoderInstruction(w, i));
    const wire = w.take();
    for (const parts of splitsAtEveryByte(wire)) assert.deepEqual(parseStream(parts, parseDecoderInstruction), decoderSample);
  });

  it('QpackDecoder.feedEncoderStream at every split equals one feed', () => {
    const enc = new QpackEncoder();
    enc.configure(4096, 0);
    const headers: Array<[string, string]> = [
      [':authority', 'example.com'],
      ['user-agent', 'harrier-test/1.0'],
      ['x-custom', '\u00e9'.repeat(200)], // longer Huffman-coded: sent raw
      ['x-custom', 'b'],
    ];
    enc.encodeFieldSection(4, headers);
    const wire = enc.takeEncoderStreamData();
    assert.ok(wire.length > 200);
    for (const parts of splitsAtEveryByte(wire)) {
      const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 0 });
      for (const p of parts) dec.feedEncoderStream(p);
      assert.equal(dec.insertCount, 4);
    }
  });

  it('QpackEncoder.feedDecoderStream at every split equals one feed', () => {
    const w = new ByteWriter();
    const ids = [0, 4, 8, 200, 1_000_000];
    for (const id of ids) writeDecoderInstruction(w, { type: 'section-ack', streamId: id });
    const wire = w.take();
    for (const parts of splitsAtEveryByte(wire)) {
      const enc = new QpackEncoder();
      enc.configure(4096, 100);
      for (const id of ids) enc.encodeFieldSection(id, [['x-stream', String(id)]]);
      enc.takeEncoderStreamData();
      assert.equal(enc.blockedStreamCount, ids.length);
      for (const p of parts) enc.feedDecoderStream(p);
      assert.equal(enc.blockedStreamCount, 0);
      assert.equal(enc.knownReceivedCount, ids.length);
    }
  });

  it('random instructions, random splits (encoder stream)', () => {
    fc.assert(
      fc.property(fc.array(encoderInstruction, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (list, cuts) => {
        const w = new ByteWriter();
        list.forEach((i) => writeEncoderInstruction(w, i));
        assert.deepEqual(parseStream(splitAt(w.take(), cuts), parseEnc), plain(list));
      }),
    );
  });

  it('random instructions, random splits (decoder stream)', () => {
    fc.assert(
      fc.property(fc.array(decoderInstruction, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (list, cuts) => {
        const w = new ByteWriter();
        list.forEach((i) => writeDecoderInstruction(w, i));
        assert.deepEqual(parseStream(splitAt(w.take(), cuts), parseDecoderInstruction), plain(list));
      }),
    );
  });

  it('field line representations round-trip (RFC 9204 Section 4.5), Huffman or not', () => {
    fc.assert(
      fc.property(fc.array(fieldLine, { maxLength: 20 }), fc.boolean(), (lines, huffman) => {
        const w = new ByteWriter(huffman);
        lines.forEach((l) => writeFieldLine(w, l));
        const block = w.take();
        const parsed: FieldLine[] = [];
        for (let off = 0; off < block.length; ) {
          const p = parseFieldLine(block, off);
          parsed.push(p.value);
          off = p.next;
        }
        assert.deepEqual(parsed, plain(lines));
      }),
    );
  });
});
