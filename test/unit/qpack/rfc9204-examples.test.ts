// RFC 9204 Appendix B: Encoding and Decoding Examples, byte for byte.
import { strict as assert } from 'node:assert';
import {
  ByteWriter,
  QpackDecoder,
  QpackEncoder,
  writeDecoderInstruction,
  writeEncoderInstruction,
  type EncoderInstruction,
} from '../../../src/qpack';
import { hex, splitsAtEveryByte, toHex } from './helpers';

// The wire bytes of Appendix B, stream by stream.
const B1_STREAM_0 = hex('0000 510b 2f69 6e64 6578 2e68 746d 6c');
const B2_ENCODER = hex('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468');
const B2_STREAM_4 = hex('0381 10 11');
const B3_ENCODER = hex('4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565');
const B4_ENCODER = hex('02');
const B4_STREAM_8 = hex('0500 80 c1 81');
const B5_ENCODER = hex('810d 6375 7374 6f6d 2d76 616c 7565 32');

function instructions(list: EncoderInstruction[]): string {
  const w = new ByteWriter(false);
  for (const ins of list) writeEncoderInstruction(w, ins);
  return toHex(w.take());
}

describe('qpack: RFC 9204 Appendix B examples', () => {
  it('decoder: B.1 to B.5 in order', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });

    // B.1: Literal Field Line with Name Reference.
    assert.deepEqual(dec.decodeFieldSection(0, B1_STREAM_0), [[':path', '/index.html']]);
    assert.equal(toHex(dec.takeDecoderStreamData()), '');

    // B.2: Dynamic Table.
    assert.deepEqual(dec.feedEncoderStream(B2_ENCODER), []);
    assert.deepEqual(dec.decodeFieldSection(4, B2_STREAM_4), [
      [':authority', 'www.example.com'],
      [':path', '/sample/path'],
    ]);
    assert.equal(toHex(dec.takeDecoderStreamData()), '84'); // Section Acknowledgment (stream=4)

    // B.3: Speculative Insert.
    dec.feedEncoderStream(B3_ENCODER);
    assert.equal(toHex(dec.takeDecoderStreamData()), '01'); // Insert Count Increment (1)

    // B.4: Duplicate Instruction, Stream Cancellation. The encoder stream is delayed:
    // the section arrives first and blocks, then the stream is cancelled.
    assert.equal(dec.decodeFieldSection(8, B4_STREAM_8), 'blocked');
    dec.cancelStream(8);
    assert.equal(toHex(dec.takeDecoderStreamData()), '48'); // Stream Cancellation (Stream=8)
    assert.deepEqual(dec.feedEncoderStream(B4_ENCODER), []); // nothing left to unblock
    assert.equal(dec.blockedStreamCount, 0);

    // B.5: Dynamic Table Insert, Eviction (evicts entry 0).
    dec.feedEncoderStream(B5_ENCODER);
    assert.equal(dec.insertCount, 5);
    // Entry 0 is gone: a section referencing it fails; entry 4 is custom-key=custom-value2.
    assert.deepEqual(dec.decodeFieldSection(12, hex('0600 80')), [['custom-key', 'custom-value2']]);
  });

  it('decoder: B.4 section unblocks when the delayed Duplicate arrives', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
    dec.feedEncoderStream(B2_ENCODER);
    dec.feedEncoderStream(B3_ENCODER);
    assert.equal(dec.decodeFieldSection(8, B4_STREAM_8), 'blocked');
    assert.deepEqual(dec.feedEncoderStream(B4_ENCODER), [
      {
        streamId: 8,
        headers: [
          [':authority', 'www.example.com'],
          [':path', '/'],
          ['custom-key', 'custom-value'],
        ],
      },
    ]);
    assert.equal(toHex(dec.takeDecoderStreamData()), '88'); // Section Acknowledgment (stream=8); RIC 4 = all inserts
  });

  it('decoder: the whole encoder stream split at every byte gives the same table', () => {
    const all = Uint8Array.from([...B2_ENCODER, ...B3_ENCODER, ...B4_ENCODER, ...B5_ENCODER]);
    for (const parts of splitsAtEveryByte(all)) {
      const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
      assert.equal(dec.decodeFieldSection(8, B4_STREAM_8), 'blocked');
      const unblocked = parts.flatMap((p) => dec.feedEncoderStream(p));
      assert.equal(unblocked.length, 1);
      assert.equal(unblocked[0].streamId, 8);
      assert.equal(dec.insertCount, 5);
      assert.deepEqual(dec.decodeFieldSection(12, hex('0600 80 81')), [
        ['custom-key', 'custom-value2'],
        [':authority', 'www.example.com'],
      ]);
    }
  });

  it('encoder: B.1 and B.2 field sections and encoder instructions', () => {
    const enc = new QpackEncoder({ huffman: false });
    // B.1 happens before the peer's SETTINGS: static table and literals only.
    assert.equal(toHex(enc.encodeFieldSection(0, [[':path', '/index.html']])), toHex(B1_STREAM_0));
    assert.equal(toHex(enc.takeEncoderStreamData()), '');
    enc.configure(220, 1);
    const section = enc.encodeFieldSection(4, [
      [':authority', 'www.example.com'],
      [':path', '/sample/path'],
    ]);
    assert.equal(toHex(enc.takeEncoderStreamData()), toHex(B2_ENCODER));
    assert.equal(toHex(section), toHex(B2_STREAM_4));
    assert.equal(enc.blockedStreamCount, 1);
    enc.feedDecoderStream(hex('84'));
    assert.equal(enc.knownReceivedCount, 2);
    assert.equal(enc.blockedStreamCount, 0);
  });

  it('encoder: B.3 to B.5 instructions and decoder-stream input', () => {
    assert.equal(instructions([{ type: 'insert-literal-name', name: 'custom-key', value: 'custom-value' }]), toHex(B3_ENCODER));
    assert.equal(instructions([{ type: 'duplicate', index: 2 }]), toHex(B4_ENCODER));
    assert.equal(
      instructions([{ type: 'insert-name-ref', isStatic: false, nameIndex: 1, value: 'custom-value2' }]),
      toHex(B5_ENCODER),
    );
    const w = new ByteWriter();
    writeDecoderInstruction(w, { type: 'section-ack', streamId: 4 });
    writeDecoderInstruction(w, { type: 'insert-count-increment', increment: 1 });
    writeDecoderInstruction(w, { type: 'stream-cancellation', streamId: 8 });
    assert.equal(toHex(w.take()), '840148');
  });

  it('encoder: references stay pinned until acknowledged, then entries become evictable', () => {
    const enc = new QpackEncoder({ huffman: false });
    enc.configure(220, 1);
    enc.encodeFieldSection(4, [
      [':authority', 'www.example.com'],
      [':path', '/sample/path'],
    ]);
    enc.takeEncoderStreamData();
    // Table: 106 of 220 bytes. Nothing is acknowledged, so nothing may be evicted: a
    // field too big for the remaining space is sent as a literal.
    const big = 'x'.repeat(100);
    const section = enc.encodeFieldSection(8, [['custom-key', big]]);
    assert.equal(enc.takeEncoderStreamData().length, 0);
    assert.equal(section[0], 0); // Required Insert Count 0: literal only
    enc.feedDecoderStream(hex('84')); // B.2 acknowledgment: entries 0 and 1 are evictable
    enc.encodeFieldSection(12, [['custom-key', big]]);
    assert.ok(enc.takeEncoderStreamData().length > 100);
    assert.equal(enc.insertCount, 3);
  });
});
