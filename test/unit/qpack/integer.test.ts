import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  decodeInteger,
  encodeInteger,
  integerLength,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_ENCODER_STREAM_ERROR,
  QpackError,
} from '../../../src/qpack';
import { hex, toHex } from './helpers';

describe('qpack/integer: prefixed integers (RFC 7541 Section 5.1, RFC 9204 Section 4.1.1)', () => {
  // RFC 7541 Appendix C.1.
  const vectors: Array<[string, number, number, string]> = [
    ['C.1.1: 10 with a 5-bit prefix', 10, 5, '0a'],
    ['C.1.2: 1337 with a 5-bit prefix', 1337, 5, '1f9a0a'],
    ['C.1.3: 42 at an octet boundary', 42, 8, '2a'],
  ];
  for (const [label, value, prefix, wire] of vectors) {
    it(`RFC 7541 ${label}`, () => {
      assert.equal(toHex(encodeInteger(value, prefix)), wire);
      assert.deepEqual(decodeInteger(hex(wire), 0, prefix), { value, next: wire.length / 2 });
    });
  }

  it('keeps the flag bits above the prefix', () => {
    assert.equal(toHex(encodeInteger(10, 5, 0xe0)), 'ea');
    assert.deepEqual(decodeInteger(hex('ea'), 0, 5), { value: 10, next: 1 });
  });

  it('returns undefined until the last byte arrives (every split point)', () => {
    const wire = encodeInteger(2 ** 40 + 12345, 6);
    for (let n = 0; n < wire.length; n++) assert.equal(decodeInteger(wire, 0, 6, undefined, n), undefined);
    assert.equal(decodeInteger(wire, 0, 6)?.value, 2 ** 40 + 12345);
  });

  it('rejects values beyond 2^53 - 1 with the caller\'s error code', () => {
    const huge = hex('ff ff ff ff ff ff ff ff ff ff 7f');
    assert.throws(() => decodeInteger(huge, 0, 8), (e: unknown) => e instanceof QpackError && e.code === QPACK_DECOMPRESSION_FAILED);
    assert.throws(
      () => decodeInteger(huge, 0, 8, QPACK_ENCODER_STREAM_ERROR),
      (e: unknown) => e instanceof QpackError && e.code === QPACK_ENCODER_STREAM_ERROR,
    );
  });

  it('rejects endless zero continuation bytes', () => {
    const zeros = new Uint8Array(20).fill(0x80);
    zeros[0] = 0x1f;
    assert.throws(() => decodeInteger(zeros, 0, 5), QpackError);
  });

  it('round-trips any safe integer at every prefix size', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 1, max: 8 }), (value, prefix) => {
        const wire = encodeInteger(value, prefix);
        assert.equal(wire.length, integerLength(value, prefix));
        assert.deepEqual(decodeInteger(wire, 0, prefix), { value, next: wire.length });
      }),
    );
  });
});
