// The QIF offline interop corpus (../shared/conformance/qifs): our decoder against
// four other encoders, our encoder against our decoder.
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  decodeQifBlocks,
  encodeQifSections,
  formatQif,
  parseQif,
  qifDecode,
  qifEncode,
  readQifBlocks,
  writeQifBlocks,
} from '../../../src/cli/qif';
import type { HeaderField } from '../../../src/qpack';
import { qifCorpus } from './helpers';

const corpus = qifCorpus();

// The encoded rfc-examples file is RFC 9204 Appendix B byte for byte (streams
// renumbered 4, 8, 12); its header lists are those of the RFC. (The corpus's
// qifs/draft-examples.qif lists older draft examples that do not match these bytes.)
const RFC_9204_APPENDIX_B: HeaderField[][] = [
  [[':path', '/index.html']],
  [
    [':authority', 'www.example.com'],
    [':path', '/sample/path'],
  ],
  [
    [':authority', 'www.example.com'],
    [':path', '/'],
    ['custom-key', 'custom-value'],
  ],
];

function source(name: string): HeaderField[][] {
  return parseQif(readFileSync(path.join(corpus, 'qifs', `${name}.qif`), 'latin1'));
}

describe('qpack: QIF corpus', function () {
  this.timeout(120_000);

  it('is present (the corpus must exist: a missing corpus fails, it does not skip)', () => {
    assert.ok(existsSync(path.join(corpus, 'README.md')), `no QIF corpus at ${corpus}`);
    assert.ok(readdirSync(path.join(corpus, 'encoded')).length >= 4);
  });

  describe('our decoder reproduces every encoding in the corpus', () => {
    if (!existsSync(corpus)) return;
    for (const impl of readdirSync(path.join(corpus, 'encoded')).sort()) {
      it(impl, () => {
        const files = readdirSync(path.join(corpus, 'encoded', impl)).sort();
        assert.ok(files.length > 0);
        for (const file of files) {
          const m = /^(.+)\.out\.(\d+)\.(\d+)\.([01])$/.exec(file);
          assert.ok(m, `unexpected file name ${file}`);
          const [, name, table, blocked] = m;
          const expected = name === 'examples' ? RFC_9204_APPENDIX_B : source(name);
          const text = qifDecode(path.join(corpus, 'encoded', impl, file), Number(table), Number(blocked));
          assert.deepEqual(parseQif(text), expected, `${impl}/${file}`);
          assert.equal(text, formatQif(expected));
        }
      });
    }
  });

  describe('our encoder, decoded by our decoder as the offline format prescribes', () => {
    if (!existsSync(corpus)) return;
    const names = readdirSync(path.join(corpus, 'qifs'))
      .filter((f) => f.endsWith('.qif') && f !== 'draft-examples.qif')
      .map((f) => f.slice(0, -4))
      .sort();
    const totals = new Map<string, number>();

    for (const capacity of [0, 256, 4096]) {
      for (const ackMode of [0, 1] as const) {
        it(`table ${capacity}, blocked 100, ack mode ${ackMode}`, () => {
          let total = 0;
          for (const name of names) {
            const sections = source(name);
            const encoded = writeQifBlocks(encodeQifSections(sections, capacity, 100, ackMode));
            total += encoded.length;
            assert.deepEqual(decodeQifBlocks(readQifBlocks(encoded), capacity, 100), sections, name);
          }
          totals.set(`${capacity}.${ackMode}`, total);
        });
      }
    }

    it('compresses: at 4096 the corpus is much smaller than with static table and literals only', () => {
      const size = (k: string) => totals.get(k) ?? assert.fail(`no total for ${k}`);
      console.log(
        '      encoded corpus sizes (bytes, blocked 100):',
        [...totals].map(([k, v]) => `table ${k.replace('.', ' ack ')}: ${v}`).join(', '),
      );
      assert.ok(size('4096.1') < 0.8 * size('0.1'), 'ack mode 1: 4096 not < 80% of 0');
      assert.ok(size('4096.0') < size('0.0'), 'ack mode 0: 4096 not smaller than 0');
      assert.ok(size('256.1') < size('0.1'));
    });
  });

  it('qifEncode output read back by qifDecode equals the source QIF', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'harrier-qif-'));
    try {
      for (const name of ['netbsd', 'fb-resp-hq']) {
        const qif = path.join(corpus, 'qifs', `${name}.qif`);
        for (const [capacity, ackMode] of [
          [0, 0],
          [256, 1],
          [4096, 0],
          [4096, 1],
        ] as const) {
          const out = path.join(dir, `${name}.out.${capacity}.100.${ackMode}`);
          writeFileSync(out, qifEncode(qif, capacity, 100, ackMode));
          assert.equal(qifDecode(out, capacity, 100), formatQif(source(name)), path.basename(out));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('offline block framing: 8-byte stream ID, 4-byte length, big endian', () => {
    const blocks = [
      { streamId: 0, payload: Uint8Array.of(1, 2) },
      { streamId: 2 ** 40 + 7, payload: new Uint8Array(0) },
    ];
    const wire = writeQifBlocks(blocks);
    assert.equal(wire.toString('hex'), '000000000000000000000002' + '0102' + '000001000000000700000000');
    const read = readQifBlocks(wire).map((b) => [b.streamId, Buffer.from(b.payload).toString('hex')]);
    assert.deepEqual(read, [
      [0, '0102'],
      [2 ** 40 + 7, ''],
    ]);
    assert.throws(() => readQifBlocks(wire.subarray(0, 13)));
  });
});
