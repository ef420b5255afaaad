import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { huffmanDecode, huffmanEncode, QPACK_DECOMPRESSION_FAILED, QpackError } from '../../../src/qpack';
import { hex, toHex } from './helpers';

const isDecompressionFailed = (e: unknown): boolean => e instanceof QpackError && e.code === QPACK_DECOMPRESSION_FAILED;

describe('qpack/huffman: RFC 7541 Section 5.2 and Appendix B', () => {
  // RFC 7541 Appendix C.4 (requests with Huffman coding) and C.6 (responses).
  const vectors: Array<[string, string, string]> = [
    ['C.4.1', 'www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
    ['C.4.2', 'no-cache', 'a8eb 1064 9cbf'],
    ['C.4.3', 'custom-key', '25a8 49e9 5ba9 7d7f'],
    ['C.4.3', 'custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ['C.6.1', '302', '6402'],
    ['C.6.1', 'private', 'aec3 771a 4b'],
    ['C.6.1', 'Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
    ['C.6.1', 'https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
    ['C.6.2', '307', '640e ff'],
    ['C.6.3', 'gzip', '9bd9 ab'],
  ];
  for (const [section, text, wire] of vectors) {
    it(`RFC 7541 ${section}: "${text}"`, () => {
      assert.equal(toHex(huffmanEncode(text)), wire.replace(/ /g, ''));
      assert.equal(huffmanDecode(hex(wire)), text);
    });
  }

  it('decodes the empty string', () => {
    assert.equal(huffmanDecode(new Uint8Array(0)), '');
  });

  it('rejects EOS inside the string', () => {
    // EOS is 30 one-bits; 0xffffffff holds it plus 2 bits of padding.
    assert.throws(() => huffmanDecode(hex('ffffffff')), isDecompressionFailed);
    // 'a' (00011) then EOS.
    assert.throws(() => huffmanDecode(hex('1fffffff ff')), isDecompressionFailed);
  });

  it('rejects padding longer than 7 bits', () => {
    // '0' is 00000: "00000 111" + a full byte of ones is 11 bits of padding.
    assert.throws(() => huffmanDecode(hex('07 ff')), isDecompressionFailed);
    assert.throws(() => huffmanDecode(hex('ff')), isDecompressionFailed);
  });

  it('rejects padding that is not the prefix of EOS (not all ones)', () => {
    // '0' (00000) followed by 3 padding bits 110.
    assert.throws(() => huffmanDecode(hex('06')), isDecompressionFailed);
    assert.throws(() => huffmanDecode(hex('00')), isDecompressionFailed);
  });

  it('accepts up to 7 bits of all-ones padding', () => {
    assert.equal(huffmanDecode(hex('07')), '0'); // 00000 + 111
    assert.equal(huffmanDecode(hex('0001')), '000'); // 3 x 00000 + 1
    assert.equal(huffmanDecode(hex('f9')), '*'); // 11111001: no padding
  });

  it('round-trips every byte value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const s = Buffer.from(bytes).toString('latin1');
        assert.equal(huffmanDecode(huffmanEncode(s)), s);
      }),
    );
  });

  it('turns random bytes into a string or a QpackError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const s = huffmanDecode(bytes);
          assert.equal(typeof s, 'string');
        } catch (e) {
          assert.ok(isDecompressionFailed(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
