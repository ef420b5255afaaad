// Protocol errors, asserted by their exact wire code.
import { strict as assert } from 'node:assert';
import {
  ByteWriter,
  encodeInteger,
  FieldSectionTooLarge,
  QPACK_DECODER_STREAM_ERROR,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_ENCODER_STREAM_ERROR,
  QpackDecoder,
  QpackEncoder,
  QpackError,
  writeEncoderInstruction,
  type EncoderInstruction,
} from '../../../src/qpack';
import { hex } from './helpers';

function code(c: number) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof QpackError, `expected QpackError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    return true;
  };
}
const DECOMPRESSION = code(QPACK_DECOMPRESSION_FAILED);
const ENCODER_STREAM = code(QPACK_ENCODER_STREAM_ERROR);
const DECODER_STREAM = code(QPACK_DECODER_STREAM_ERROR);

function encoderStream(...list: EncoderInstruction[]): Uint8Array {
  const w = new ByteWriter(false);
  list.forEach((i) => writeEncoderInstruction(w, i));
  return w.take();
}

/** A decoder (capacity 220, as in RFC 9204 Appendix B) holding two entries. */
function decoderWithTwoEntries(): QpackDecoder {
  const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 2 });
  dec.feedEncoderStream(
    encoderStream(
      { type: 'set-capacity', capacity: 220 },
      { type: 'insert-name-ref', isStatic: true, nameIndex: 0, value: 'www.example.com' },
      { type: 'insert-name-ref', isStatic: true, nameIndex: 1, value: '/sample/path' },
    ),
  );
  return dec;
}

describe('qpack: decoder errors (QPACK_DECOMPRESSION_FAILED, 0x0200)', () => {
  it('truncated prefix or field line', () => {
    const dec = decoderWithTwoEntries();
    assert.throws(() => dec.decodeFieldSection(0, hex('')), DECOMPRESSION);
    assert.throws(() => dec.decodeFieldSection(0, hex('00')), DECOMPRESSION);
    assert.throws(() => dec.decodeFieldSection(0, hex('0000 510b 2f69')), DECOMPRESSION);
    assert.throws(() => dec.decodeFieldSection(0, hex('0000 ff')), DECOMPRESSION);
  });

  it('Encoded Required Insert Count above 2 * MaxEntries (RFC 9204 Section 4.5.1.1)', () => {
    // MaxEntries = floor(220 / 32) = 6, FullRange = 12.
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0d00 80')), DECOMPRESSION);
  });

  it('non-zero Encoded Required Insert Count with a zero maximum capacity', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
    assert.throws(() => dec.decodeFieldSection(0, hex('0100')), DECOMPRESSION);
  });

  it('Required Insert Count that wraps to an impossible value', () => {
    // Insert Count 2: MaxValue = 8, MaxWrapped = 0; encoded 10 gives 9 > 8 and 9 <= FullRange.
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0a00')), DECOMPRESSION);
  });

  it('Sign bit 1 with Delta Base >= Required Insert Count: negative Base (RFC 9204 Section 4.5.1.2)', () => {
    // RIC 2 (encoded 3), S=1, Delta Base 2 -> Base = -1.
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0382 10')), DECOMPRESSION);
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0080')), DECOMPRESSION);
  });

  it('reference at or above the Required Insert Count (RFC 9204 Section 2.2.3)', () => {
    // RIC 1, Base 1; relative index 0 -> 0 (fine), post-base 0 -> absolute 1 >= RIC.
    assert.deepEqual(decoderWithTwoEntries().decodeFieldSection(0, hex('0200 80')), [[':authority', 'www.example.com']]);
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0200 10')), DECOMPRESSION);
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0200 0003 616263')), DECOMPRESSION);
    // RIC 1 but Base 2 (S=0, delta 1): relative 0 -> absolute 1 >= RIC.
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0201 80')), DECOMPRESSION);
  });

  it('relative index below zero', () => {
    // RIC 2, Base 2, relative index 2 -> absolute -1.
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0300 82')), DECOMPRESSION);
    assert.throws(() => decoderWithTwoEntries().decodeFieldSection(0, hex('0300 4203 616263')), DECOMPRESSION);
  });

  it('reference to an evicted entry (RFC 9204 Section 2.2.3)', () => {
    const dec = decoderWithTwoEntries();
    // 220 - 106 = 114 bytes free; a 3 + 100 + 32 = 135-byte entry evicts entry 0.
    dec.feedEncoderStream(encoderStream({ type: 'insert-literal-name', name: 'big', value: 'x'.repeat(100) }));
    assert.equal(dec.insertCount, 3);
    // RIC 3, Base 3: relative 2 -> absolute 0 (evicted); relative 1 -> absolute 1 (alive).
    assert.deepEqual(dec.decodeFieldSection(0, hex('0400 81')), [[':path', '/sample/path']]);
    assert.throws(() => dec.decodeFieldSection(0, hex('0400 82')), DECOMPRESSION);
  });

  it('invalid static index (RFC 9204 Section 3.1)', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
    assert.deepEqual(dec.decodeFieldSection(0, hex('0000 ff23')), [['x-frame-options', 'sameorigin']]); // 63 + 35 = 98
    assert.throws(() => dec.decodeFieldSection(0, hex('0000 ff24')), DECOMPRESSION); // 99
    assert.throws(() => dec.decodeFieldSection(0, hex('0000 5f54 00')), DECOMPRESSION); // name index 99
  });

  it('more blocked streams than SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 Section 2.1.2)', () => {
    const dec = decoderWithTwoEntries(); // allows 2
    // RIC 3 > Insert Count 2: blocked.
    assert.equal(dec.decodeFieldSection(4, hex('0400 80')), 'blocked');
    assert.equal(dec.decodeFieldSection(8, hex('0400 80')), 'blocked');
    assert.equal(dec.decodeFieldSection(8, hex('0000 d1')), 'blocked'); // same stream: queued behind
    assert.throws(() => dec.decodeFieldSection(12, hex('0400 80')), DECOMPRESSION);
  });

  it('a blocked section that turns out malformed fails when it unblocks', () => {
    const dec = decoderWithTwoEntries();
    assert.equal(dec.decodeFieldSection(4, hex('0400 10')), 'blocked'); // post-base 0 -> absolute 3 >= RIC 3
    assert.throws(
      () => dec.feedEncoderStream(encoderStream({ type: 'insert-literal-name', name: 'a', value: 'b' })),
      DECOMPRESSION,
    );
  });

  it('Huffman errors in a field line', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
    assert.throws(() => dec.decodeFieldSection(0, hex('0000 5f1d 84 ffffffff')), DECOMPRESSION); // EOS
    assert.throws(() => dec.decodeFieldSection(0, hex('0000 5f1d 81 00')), DECOMPRESSION); // bad padding
  });

  it('integer overflow', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
    assert.throws(() => dec.decodeFieldSection(0, hex('ff ffffffffffffffffff7f 00')), DECOMPRESSION);
  });

  it('field section above maxFieldSectionSize throws FieldSectionTooLarge, not a QpackError', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: 60 });
    // :path /index.html = 5 + 11 + 32 = 48 bytes: fits.
    assert.deepEqual(dec.decodeFieldSection(0, hex('0000 510b 2f69 6e64 6578 2e68 746d 6c')), [[':path', '/index.html']]);
    assert.throws(
      () => dec.decodeFieldSection(4, hex('0000 510b 2f69 6e64 6578 2e68 746d 6c c1')),
      (e: unknown) => e instanceof FieldSectionTooLarge && !(e instanceof QpackError) && e.streamId === 4,
    );
  });

  it('a blocked section above maxFieldSectionSize is reported, acknowledged, and does not stop others', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 2, maxFieldSectionSize: 100 });
    dec.feedEncoderStream(encoderStream({ type: 'set-capacity', capacity: 220 }));
    assert.equal(dec.decodeFieldSection(4, hex('0200 80 80')), 'blocked'); // 2 x 77 bytes
    assert.equal(dec.decodeFieldSection(8, hex('0200 80')), 'blocked');
    const out = dec.feedEncoderStream(encoderStream({ type: 'insert-literal-name', name: 'name', value: 'x'.repeat(41) }));
    assert.equal(out.length, 2);
    assert.ok(out[0].error instanceof FieldSectionTooLarge);
    assert.deepEqual(out[0].headers, []);
    assert.deepEqual(out[1], { streamId: 8, headers: [['name', 'x'.repeat(41)]] });
    assert.equal(Buffer.from(dec.takeDecoderStreamData()).toString('hex'), '8488');
  });
});

describe('qpack: encoder stream errors (QPACK_ENCODER_STREAM_ERROR, 0x0201)', () => {
  it('capacity above SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 Section 4.3.1)', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 0 });
    dec.feedEncoderStream(encodeInteger(220, 5, 0x20));
    assert.throws(() => dec.feedEncoderStream(encodeInteger(221, 5, 0x20)), ENCODER_STREAM);
  });

  it('any capacity when our maximum is 0', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
    dec.feedEncoderStream(encodeInteger(0, 5, 0x20));
    assert.throws(() => dec.feedEncoderStream(encodeInteger(1, 5, 0x20)), ENCODER_STREAM);
  });

  it('insert larger than the capacity (RFC 9204 Section 3.2.2)', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 0 });
    // Before any Set Dynamic Table Capacity the capacity is 0.
    assert.throws(
      () => dec.feedEncoderStream(encoderStream({ type: 'insert-literal-name', name: 'a', value: 'b' })),
      ENCODER_STREAM,
    );
    const dec2 = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 0 });
    dec2.feedEncoderStream(encodeInteger(100, 5, 0x20));
    assert.throws(
      () => dec2.feedEncoderStream(encoderStream({ type: 'insert-literal-name', name: 'a', value: 'b'.repeat(68) })),
      ENCODER_STREAM,
    );
  });

  it('rejects an oversized string from its length alone, before its bytes arrive', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 0 });
    dec.feedEncoderStream(encodeInteger(220, 5, 0x20));
    // Insert With Literal Name, name length 1,000,000 (not Huffman), no name bytes.
    const header = Uint8Array.from([...encodeInteger(1_000_000, 5, 0x40)]);
    assert.throws(() => dec.feedEncoderStream(header), ENCODER_STREAM);
  });

  it('invalid static name index (RFC 9204 Section 3.1)', () => {
    const dec = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 0 });
    dec.feedEncoderStream(encodeInteger(220, 5, 0x20));
    assert.throws(
      () => dec.feedEncoderStream(encoderStream({ type: 'insert-name-ref', isStatic: true, nameIndex: 99, value: 'v' })),
      ENCODER_STREAM,
    );
  });

  it('dynamic name reference or Duplicate of a missing entry (RFC 9204 Section 2.2.3)', () => {
    const dec = decoderWithTwoEntries();
    assert.throws(
      () => dec.feedEncoderStream(encoderStream({ type: 'insert-name-ref', isStatic: false, nameIndex: 2, value: 'v' })),
      ENCODER_STREAM,
    );
    assert.throws(() => decoderWithTwoEntries().feedEncoderStream(encoderStream({ type: 'duplicate', index: 2 })), ENCODER_STREAM);
    // Duplicate of an evicted entry.
    const dec3 = decoderWithTwoEntries();
    dec3.feedEncoderStream(encoderStream({ type: 'insert-literal-name', name: 'big', value: 'x'.repeat(100) })); // evicts 0
    assert.throws(() => dec3.feedEncoderStream(encoderStream({ type: 'duplicate', index: 2 })), ENCODER_STREAM);
  });

  it('Huffman errors and integer overflow on the encoder stream', () => {
    const dec = decoderWithTwoEntries();
    assert.throws(() => dec.feedEncoderStream(hex('c0 84 ffffffff')), ENCODER_STREAM);
    assert.throws(() => decoderWithTwoEntries().feedEncoderStream(hex('3f ffffffffffffffffff7f')), ENCODER_STREAM);
  });
});

describe('qpack: decoder stream errors (QPACK_DECODER_STREAM_ERROR, 0x0202)', () => {
  function encoderWithOneSection(): QpackEncoder {
    const enc = new QpackEncoder();
    enc.configure(4096, 10);
    enc.encodeFieldSection(4, [['x-custom', 'one']]);
    enc.takeEncoderStreamData();
    return enc;
  }

  it('Section Acknowledgment with nothing outstanding (RFC 9204 Section 4.4.1)', () => {
    const enc = encoderWithOneSection();
    assert.throws(() => enc.feedDecoderStream(hex('88')), DECODER_STREAM);
    const enc2 = encoderWithOneSection();
    enc2.feedDecoderStream(hex('84'));
    assert.throws(() => enc2.feedDecoderStream(hex('84')), DECODER_STREAM);
  });

  it('Insert Count Increment of zero (RFC 9204 Section 4.4.3)', () => {
    assert.throws(() => encoderWithOneSection().feedDecoderStream(hex('00')), DECODER_STREAM);
  });

  it('Insert Count Increment beyond the inserts sent (RFC 9204 Section 4.4.3)', () => {
    const enc = encoderWithOneSection();
    enc.feedDecoderStream(hex('01'));
    assert.throws(() => enc.feedDecoderStream(hex('01')), DECODER_STREAM);
  });

  it('integer overflow', () => {
    assert.throws(() => encoderWithOneSection().feedDecoderStream(hex('ff ffffffffffffffffff7f')), DECODER_STREAM);
  });

  it('Stream Cancellation for an unknown stream is harmless', () => {
    const enc = encoderWithOneSection();
    enc.feedDecoderStream(hex('48 44'));
    assert.equal(enc.blockedStreamCount, 0);
  });
});
