// Property tests: whatever bytes a client sends on whatever stream, the connection yields
// events or one clean close with an HTTP/3 or QPACK code, never an exception, never
// H3_INTERNAL_ERROR (which would mean a bug of ours).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  H3_INTERNAL_ERROR,
  encodeCancelPushFrame,
  encodeFrame,
  encodeGoawayFrame,
  encodeMaxPushIdFrame,
  encodeSettingsFrame,
} from '../../../src/h3';
import type { HeaderField } from '../../../src/qpack';
import { GET, Harness, concat, dataFrame } from './helpers';

function assertCleanOutcome(h: Harness): void {
  assert.ok(h.t.closes.length <= 1, 'closed at most once');
  for (const { code } of h.t.closes) {
    assert.notEqual(code, H3_INTERNAL_ERROR, h.t.closes[0].reason);
    assert.ok((code >= 0x100 && code <= 0x110) || (code >= 0x200 && code <= 0x202), `code 0x${code.toString(16)}`);
  }
}

/** Feeds `data` to one stream in the given pieces; a receive call must never throw. */
function feedPieces(h: Harness, streamId: number, data: Uint8Array, cuts: number[], fin: boolean): void {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const cut of [...points, data.length]) {
    h.feed(streamId, data.subarray(prev, cut), fin && cut === data.length);
    prev = cut;
  }
}

const STREAMS: Array<[string, number, Uint8Array]> = [
  ['a request stream', 0, new Uint8Array(0)],
  ['the control stream', 2, Uint8Array.of(0x00)],
  ['the QPACK encoder stream', 6, Uint8Array.of(0x02)],
  ['the QPACK decoder stream', 10, Uint8Array.of(0x03)],
  ['a uni stream of random type', 14, new Uint8Array(0)],
];

const field = fc.tuple(fc.constantFrom(':method', ':path', ':scheme', ':authority', 'x-a', 'content-length', 'te', 'Upper'), fc.string({ maxLength: 8 })) as fc.Arbitrary<HeaderField>;

/** A plausible frame: the kinds a client might send, with random contents. */
const frameArb = (h: Harness): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.array(field, { maxLength: 6 }).map((fields) => h.headers(fields)),
    fc.constant(h.headers(GET)),
    fc.uint8Array({ maxLength: 20 }).map((d) => dataFrame(d)),
    fc.array(fc.tuple(fc.nat(0x40), fc.nat(10)), { maxLength: 4 }).map((s) => encodeSettingsFrame(s)),
    fc.nat(20).map((n) => encodeGoawayFrame(n)),
    fc.nat(20).map((n) => encodeMaxPushIdFrame(n)),
    fc.nat(3).map((n) => encodeCancelPushFrame(n)),
    fc.tuple(fc.nat(0x50), fc.uint8Array({ maxLength: 8 })).map(([t, p]) => encodeFrame(t, p)),
    fc.uint8Array({ maxLength: 6 }),
  );

describe('h3/connection properties (fast-check)', () => {
  for (const [name, streamId, prefix] of STREAMS) {
    it(`random bytes on ${name} yield events or a clean close`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 120 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (data, cuts, fin) => {
          const h = new Harness({ maxFieldSectionSize: 256 });
          h.handshake();
          feedPieces(h, streamId, concat([prefix, data]), cuts, fin);
          h.conn.receiveStreamReset(streamId, 0x10c);
          assertCleanOutcome(h);
        }),
        { numRuns: 600 },
      );
    });
  }

  it('random frame sequences on a request stream yield events or a clean close', () => {
    const h0 = new Harness();
    fc.assert(
      fc.property(fc.array(frameArb(h0), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (parts, cuts, fin) => {
        const h = new Harness({ maxFieldSectionSize: 256 });
        h.handshake();
        feedPieces(h, 0, concat(parts), cuts, fin);
        assertCleanOutcome(h);
        // The application can always answer (or find the stream gone) without an exception.
        try {
          h.conn.sendHeaders(0, [[':status', '200']]);
          h.conn.sendData(0, Uint8Array.of(1), true);
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'ERR_H3_STREAM_STATE');
        }
      }),
      { numRuns: 600 },
    );
  });

  it('random frame sequences on the control stream yield events or a clean close', () => {
    const h0 = new Harness();
    fc.assert(
      fc.property(fc.array(frameArb(h0), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), (parts, cuts) => {
        const h = new Harness();
        feedPieces(h, 2, concat([Uint8Array.of(0), encodeSettingsFrame([]), ...parts]), cuts, false);
        assertCleanOutcome(h);
      }),
      { numRuns: 600 },
    );
  });
});
