import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  FrameReader,
  FrameReaderOptions,
  FrameType,
  H3Error,
  H3_EXCESSIVE_LOAD,
  H3_FRAME_ERROR,
  H3_FRAME_UNEXPECTED,
  H3_SETTINGS_ERROR,
  ReadFrame,
  decodeSettings,
  encodeCancelPushFrame,
  encodeDataFrame,
  encodeFrame,
  encodeFrameHeader,
  encodeGoawayFrame,
  encodeHeadersFrame,
  encodeMaxPushIdFrame,
  encodePushPromiseFrame,
  encodeSettingsFrame,
  greaseValue,
  isReserved,
} from '../../../src/h3';
import { bytes, concat, randomCuts, text } from './helpers';

/** Reads all frames from `data` pushed in pieces at `cuts`; DATA pieces are merged per frame. */
function readAll(data: Uint8Array, cuts: number[] = [], options: FrameReaderOptions = {}, fin = true): unknown[] {
  const reader = new FrameReader(options);
  const out: unknown[] = [];
  let dataFrame: string | undefined;
  const drain = (): void => {
    for (let f = reader.next(); f; f = reader.next()) {
      if (f.kind !== 'data') {
        out.push(plain(f));
        continue;
      }
      assert.equal(f.first, dataFrame === undefined);
      dataFrame = (dataFrame ?? '') + text(f.chunk);
      if (f.last) {
        out.push({ kind: 'data', payload: dataFrame });
        dataFrame = undefined;
      }
    }
  };
  let prev = 0;
  for (const cut of [...cuts, data.length]) {
    reader.push(data.slice(prev, cut));
    prev = cut;
    drain();
  }
  if (fin) {
    reader.end();
    drain();
    assert.ok(reader.done);
  }
  return out;
}

function plain(f: ReadFrame): unknown {
  if (f.kind === 'headers' || f.kind === 'push-promise') return { ...f, block: text(f.block) };
  if (f.kind === 'settings') return { kind: 'settings', settings: [...f.settings] };
  return f;
}

function h3Code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof H3Error, `expected H3Error, got ${e}`);
    return e.code;
  }
  assert.fail('expected an H3Error');
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

// One of every frame type, with the expected reader output.
const ALL_FRAMES: Array<[string, Uint8Array, unknown]> = [
  ['DATA', encodeDataFrame(bytes('hello')), { kind: 'data', payload: 'hello' }],
  ['empty DATA', encodeDataFrame(new Uint8Array(0)), { kind: 'data', payload: '' }],
  ['HEADERS', encodeHeadersFrame(bytes('\x00\x00\xd1')), { kind: 'headers', block: '\x00\x00\xd1' }],
  ['CANCEL_PUSH', encodeCancelPushFrame(7), { kind: 'cancel-push', pushId: 7n }],
  [
    'SETTINGS',
    encodeSettingsFrame([[0x1, 4096], [0x6, 65536], [0x7, 100], [0x21, 2n ** 62n - 1n]]),
    { kind: 'settings', settings: [[0x1, 4096n], [0x6, 65536n], [0x7, 100n], [0x21, 2n ** 62n - 1n]] },
  ],
  ['empty SETTINGS', encodeSettingsFrame([]), { kind: 'settings', settings: [] }],
  ['PUSH_PROMISE', encodePushPromiseFrame(3, bytes('\x00\x00')), { kind: 'push-promise', pushId: 3n, block: '\x00\x00' }],
  ['GOAWAY', encodeGoawayFrame(2n ** 62n - 4n), { kind: 'goaway', id: 2n ** 62n - 4n }],
  ['MAX_PUSH_ID', encodeMaxPushIdFrame(1000), { kind: 'max-push-id', pushId: 1000n }],
];
const ALL_BYTES = concat(ALL_FRAMES.map(([, b]) => b));
const ALL_EXPECTED = ALL_FRAMES.map(([, , e]) => e);

describe('h3/frames (RFC 9114 §7)', () => {
  describe('encoders', () => {
    it('match hand-assembled bytes', () => {
      assert.deepEqual(encodeDataFrame(bytes('ab')), hex('00026162'));
      assert.deepEqual(encodeHeadersFrame(hex('0000d1')), hex('01030000d1'));
      assert.deepEqual(encodeCancelPushFrame(1), hex('030101'));
      assert.deepEqual(encodeSettingsFrame([[6, 16384]]), hex('0405' + '06' + '80004000'));
      assert.deepEqual(encodePushPromiseFrame(0, hex('0000')), hex('0503000000'));
      assert.deepEqual(encodeGoawayFrame(4), hex('070104'));
      assert.deepEqual(encodeMaxPushIdFrame(64), hex('0d024040'));
      assert.deepEqual(encodeFrameHeader(0x21, 300), hex('21412c'));
    });

    it('GREASE values are reserved (0x1f*N+0x21)', () => {
      for (let i = 0; i < 100; i++) assert.ok(isReserved(greaseValue()));
      assert.ok(isReserved(0x21) && isReserved(0x40) && !isReserved(0x41) && !isReserved(0x20));
      assert.ok(isReserved(0x1fn * 2n ** 50n + 0x21n));
    });
  });

  describe('FrameReader', () => {
    for (const [name, encoded, expected] of ALL_FRAMES) {
      it(`decodes ${name}`, () => {
        assert.deepEqual(readAll(encoded), [expected]);
      });
    }

    it('decodes every frame type fed split at every byte boundary', () => {
      for (let cut = 0; cut <= ALL_BYTES.length; cut++) {
        assert.deepEqual(readAll(ALL_BYTES, [cut]), ALL_EXPECTED, `cut at ${cut}`);
      }
      const everyByte = Array.from({ length: ALL_BYTES.length - 1 }, (_, i) => i + 1);
      assert.deepEqual(readAll(ALL_BYTES, everyByte), ALL_EXPECTED);
    });

    it('decodes the same with random splits', () => {
      for (let seed = 1; seed <= 200; seed++) assert.deepEqual(readAll(ALL_BYTES, randomCuts(ALL_BYTES.length, seed)), ALL_EXPECTED);
    });

    it('streams DATA payloads as views without buffering the frame', () => {
      const reader = new FrameReader();
      const input = concat([encodeFrameHeader(FrameType.DATA, 10), bytes('abcd')]);
      reader.push(input);
      const f = reader.next();
      assert.ok(f && f.kind === 'data');
      assert.equal(text(f.chunk), 'abcd');
      assert.equal(f.chunk.buffer, input.buffer, 'a view, not a copy');
      assert.deepEqual([f.first, f.last], [true, false]);
      assert.equal(reader.next(), null);
      reader.push(bytes('efghij'));
      const g = reader.next();
      assert.ok(g && g.kind === 'data');
      assert.deepEqual([text(g.chunk), g.first, g.last], ['efghij', false, true]);
    });

    it('skips reserved and unknown frame types (RFC 9114 §7.2.8, §9)', () => {
      const data = concat([
        encodeFrame(0x21, bytes('grease')),
        encodeFrame(greaseValue(), new Uint8Array(0)),
        encodeFrame(0x1fn * 2n ** 55n + 0x21n, bytes('huge type')), // beyond 2^53
        encodeFrame(0x41, bytes('unknown')),
        encodeGoawayFrame(8),
      ]);
      for (let cut = 0; cut <= data.length; cut++) assert.deepEqual(readAll(data, [cut]), [{ kind: 'goaway', id: 8n }]);
    });

    for (const type of [0x02, 0x06, 0x08, 0x09]) {
      it(`rejects HTTP/2 frame type 0x${type.toString(16)} with H3_FRAME_UNEXPECTED (§7.2.8)`, () => {
        assert.equal(h3Code(() => readAll(encodeFrame(type, new Uint8Array(4)))), H3_FRAME_UNEXPECTED);
      });
    }

    it('reports a stream ending inside a frame as H3_FRAME_ERROR (§7.1)', () => {
      for (let cut = 1; cut < ALL_BYTES.length; cut++) {
        const prefix = ALL_BYTES.subarray(0, cut);
        const boundary = ALL_FRAMES.reduce<number[]>((acc, [, b]) => [...acc, (acc[acc.length - 1] ?? 0) + b.length], []);
        if (boundary.includes(cut)) continue;
        assert.equal(h3Code(() => readAll(prefix)), H3_FRAME_ERROR, `truncated at ${cut}`);
      }
    });

    it('rejects single-varint payloads with extra or missing bytes (H3_FRAME_ERROR)', () => {
      assert.equal(h3Code(() => readAll(encodeFrame(FrameType.GOAWAY, hex('0400')))), H3_FRAME_ERROR);
      assert.equal(h3Code(() => readAll(encodeFrame(FrameType.MAX_PUSH_ID, hex('')))), H3_FRAME_ERROR);
      assert.equal(h3Code(() => readAll(encodeFrame(FrameType.CANCEL_PUSH, hex('40')))), H3_FRAME_ERROR);
      assert.equal(h3Code(() => readAll(encodeFrameHeader(FrameType.GOAWAY, 9), [], {}, false)), H3_FRAME_ERROR);
      assert.equal(h3Code(() => readAll(encodeFrame(FrameType.PUSH_PROMISE, hex('')))), H3_FRAME_ERROR);
    });

    it('yields headers-too-large for oversized HEADERS and skips the payload', () => {
      const data = concat([encodeHeadersFrame(new Uint8Array(100)), encodeGoawayFrame(0)]);
      assert.deepEqual(readAll(data, [3, 50], { maxHeadersFrameSize: 99 }), [
        { kind: 'headers-too-large', length: 100 },
        { kind: 'goaway', id: 0n },
      ]);
    });

    it('rejects an oversized SETTINGS frame with H3_EXCESSIVE_LOAD before buffering it', () => {
      assert.equal(h3Code(() => readAll(encodeFrameHeader(FrameType.SETTINGS, 1 << 20), [], {}, false)), H3_EXCESSIVE_LOAD);
    });

    it('calls onFrameStart with each type before reading the payload', () => {
      const seen: Array<[number, number]> = [];
      readAll(ALL_BYTES, [], { onFrameStart: (t, l) => seen.push([t, l]) });
      assert.deepEqual(seen.map(([t]) => t), [0, 0, 1, 3, 4, 4, 5, 7, 0xd]);
    });

    it('retain() copies unread input', () => {
      const input = encodeGoawayFrame(4);
      const reader = new FrameReader();
      reader.push(input);
      reader.retain();
      input.fill(0xff);
      assert.deepEqual(reader.next(), { kind: 'goaway', id: 4n });
    });

    it('random bytes yield frames or an H3Error, never another exception (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200)), (data, cuts) => {
          try {
            readAll(data, [...new Set(cuts.filter((c) => c <= data.length))].sort((a, b) => a - b), {
              maxHeadersFrameSize: 64,
              maxControlFrameSize: 64,
            });
          } catch (e) {
            assert.ok(e instanceof H3Error, String(e));
          }
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('SETTINGS codec (§7.2.4)', () => {
    it('keeps unknown and reserved identifiers', () => {
      const s = decodeSettings(encodeSettingsFrame([[0x21, 1], [0x4242, 7]]).subarray(2));
      assert.deepEqual([...s], [[0x21, 1n], [0x4242, 7n]]);
    });

    it('rejects a duplicate identifier with H3_SETTINGS_ERROR', () => {
      assert.equal(h3Code(() => decodeSettings(encodeSettingsFrame([[6, 1], [6, 1]]).subarray(2))), H3_SETTINGS_ERROR);
    });

    for (const id of [0x2, 0x3, 0x4, 0x5]) {
      it(`rejects HTTP/2 setting 0x${id} with H3_SETTINGS_ERROR (§7.2.4.1)`, () => {
        assert.equal(h3Code(() => decodeSettings(encodeSettingsFrame([[id, 0]]).subarray(2))), H3_SETTINGS_ERROR);
      });
    }

    it('rejects a truncated pair with H3_FRAME_ERROR', () => {
      assert.equal(h3Code(() => decodeSettings(hex('06'))), H3_FRAME_ERROR);
      assert.equal(h3Code(() => decodeSettings(hex('0680'))), H3_FRAME_ERROR);
    });
  });
});
