import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  MAX_VARINT,
  decodeVarint,
  decodeVarintBig,
  decodeVarintSaturating,
  encodeVarint,
  varintLength,
} from '../../../src/h3/varint';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

describe('h3/varint (RFC 9000 §16)', () => {
  // RFC 9000 Appendix A.1, "Sample Variable-Length Integer Decoding".
  const vectors: Array<[string, bigint]> = [
    ['c2197c5eff14e88c', 151288809941952652n],
    ['9d7f3e7d', 494878333n],
    ['7bbd', 15293n],
    ['25', 37n],
    ['4025', 37n],
  ];

  for (const [encoded, value] of vectors) {
    it(`decodes RFC 9000 §A.1 sample 0x${encoded} = ${value}`, () => {
      assert.deepEqual(decodeVarintBig(hex(encoded)), { value, length: encoded.length / 2 });
      if (value <= BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.deepEqual(decodeVarint(hex(encoded)), { value: Number(value), length: encoded.length / 2 });
      }
    });
  }

  it('round-trips the 8-byte sample only as bigint', () => {
    const v = 151288809941952652n;
    assert.deepEqual(encodeVarint(v), hex('c2197c5eff14e88c'));
    assert.throws(() => decodeVarint(hex('c2197c5eff14e88c')), RangeError);
    assert.equal(decodeVarintSaturating(hex('c2197c5eff14e88c'))!.value, Infinity);
  });

  it('encodes minimally (0x4025 decodes to 37 but 37 encodes as 0x25)', () => {
    assert.deepEqual(encodeVarint(37), hex('25'));
    assert.deepEqual(encodeVarint(15293), hex('7bbd'));
    assert.deepEqual(encodeVarint(494878333), hex('9d7f3e7d'));
  });

  it('switches length at each boundary', () => {
    const cases: Array<[number | bigint, number]> = [
      [0, 1], [63, 1], [64, 2], [16383, 2], [16384, 4], [2 ** 30 - 1, 4], [2 ** 30, 8],
      [Number.MAX_SAFE_INTEGER, 8], [MAX_VARINT, 8],
    ];
    for (const [v, len] of cases) {
      assert.equal(varintLength(v), len, `length of ${v}`);
      assert.equal(encodeVarint(v).length, len);
      assert.equal(decodeVarintBig(encodeVarint(v))!.value, BigInt(v));
    }
    assert.equal(decodeVarint(encodeVarint(Number.MAX_SAFE_INTEGER))!.value, Number.MAX_SAFE_INTEGER);
    assert.throws(() => decodeVarint(encodeVarint(BigInt(Number.MAX_SAFE_INTEGER) + 1n)), RangeError);
  });

  it('rejects values outside 0..2^62-1', () => {
    assert.throws(() => encodeVarint(-1), RangeError);
    assert.throws(() => encodeVarint(MAX_VARINT + 1n), RangeError);
    assert.throws(() => encodeVarint(1.5), RangeError);
  });

  it('returns null while bytes are missing, at every prefix', () => {
    const full = hex('c2197c5eff14e88c');
    for (let i = 0; i < full.length; i++) {
      assert.equal(decodeVarintBig(full.subarray(0, i)), null);
      assert.equal(decodeVarintSaturating(full.subarray(0, i)), null);
    }
  });

  it('decodes at an offset', () => {
    assert.deepEqual(decodeVarint(hex('ff7bbd'), 1), { value: 15293, length: 2 });
  });

  it('round-trips any 62-bit value (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_VARINT }), (v) => {
        const enc = encodeVarint(v);
        assert.deepEqual(decodeVarintBig(enc), { value: v, length: enc.length });
        if (v <= BigInt(Number.MAX_SAFE_INTEGER)) {
          assert.deepEqual(decodeVarint(enc), { value: Number(v), length: enc.length });
          assert.deepEqual(encodeVarint(Number(v)), enc);
        }
      }),
    );
  });
});
