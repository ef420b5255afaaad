import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { STATIC_TABLE, staticIndexOf, staticNameIndexOf } from '../../../src/qpack';
import { HUFFMAN_CODE_LENGTHS, HUFFMAN_CODES } from '../../../src/qpack/huffman-table';
import { repoRoot } from './helpers';

describe('qpack/static-table: RFC 9204 Appendix A', () => {
  it('has 99 entries indexed from 0', () => {
    assert.equal(STATIC_TABLE.length, 99);
    assert.deepEqual(STATIC_TABLE[0], [':authority', '']);
    assert.deepEqual(STATIC_TABLE[17], [':method', 'GET']);
    assert.deepEqual(STATIC_TABLE[98], ['x-frame-options', 'sameorigin']);
  });

  it('joins values the RFC wraps across lines', () => {
    assert.deepEqual(STATIC_TABLE[30], ['accept', 'application/dns-message']);
    assert.deepEqual(STATIC_TABLE[41], ['cache-control', 'public, max-age=31536000']);
    assert.deepEqual(STATIC_TABLE[52], ['content-type', 'text/html; charset=utf-8']);
    assert.deepEqual(STATIC_TABLE[54], ['content-type', 'text/plain;charset=utf-8']);
    assert.deepEqual(STATIC_TABLE[58], ['strict-transport-security', 'max-age=31536000; includesubdomains; preload']);
    assert.deepEqual(STATIC_TABLE[85], [
      'content-security-policy',
      "script-src 'none'; object-src 'none'; base-uri 'none'",
    ]);
  });

  it('finds exact matches and names', () => {
    assert.equal(staticIndexOf(':status', '200'), 25);
    assert.equal(staticIndexOf(':status', '201'), -1);
    assert.equal(staticNameIndexOf(':status'), 24);
    assert.equal(staticNameIndexOf('x-unknown'), -1);
  });

  it('generated files match what scripts/gen-qpack-tables.js makes from scripts/rfc/', () => {
    const root = repoRoot();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const gen = require(path.join(root, 'scripts/gen-qpack-tables.js'));
    const entries = gen.parseStaticTable(readFileSync(path.join(root, 'scripts/rfc/rfc9204-appendix-a.txt'), 'utf8'));
    assert.deepEqual(
      entries.map((e: { name: string; value: string }) => [e.name, e.value]),
      STATIC_TABLE.map((e) => [...e]),
    );
    const huff = gen.parseHuffmanTable(readFileSync(path.join(root, 'scripts/rfc/rfc7541-appendix-b.txt'), 'utf8'));
    assert.deepEqual(huff.codes, [...HUFFMAN_CODES]);
    assert.deepEqual(huff.lengths, [...HUFFMAN_CODE_LENGTHS]);
  });
});
