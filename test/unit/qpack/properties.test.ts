// fast-check properties: random input never escapes as anything but a QpackError, and
// encode -> decode round-trips under random delivery and acknowledgment orders.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  FieldSectionTooLarge,
  QpackDecoder,
  QpackEncoder,
  QpackError,
  type HeaderField,
} from '../../../src/qpack';

function onlyQpackErrors(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof QpackError || e instanceof FieldSectionTooLarge) return;
    throw e;
  }
}

describe('qpack: random input yields a value or a QpackError', () => {
  it('decodeFieldSection', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 80 }), (encoderBytes, block) => {
        const dec = new QpackDecoder({ maxTableCapacity: 256, maxBlockedStreams: 2, maxFieldSectionSize: 200 });
        onlyQpackErrors(() => {
          dec.feedEncoderStream(encoderBytes);
        });
        onlyQpackErrors(() => {
          dec.decodeFieldSection(0, block);
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('decodeFieldSection with a populated table', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 10 }), (blocks) => {
        const enc = new QpackEncoder();
        enc.configure(4096, 0);
        enc.encodeFieldSection(0, [
          ['a', '1'],
          ['b', '2'],
          ['c', '3'],
        ]);
        const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 3 });
        dec.feedEncoderStream(enc.takeEncoderStreamData());
        blocks.forEach((b, i) =>
          onlyQpackErrors(() => {
            const block = Uint8Array.from([0x01 + (b[0] ?? 0) % 6, ...b.subarray(1)]);
            dec.decodeFieldSection(i, block);
          }),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('feedEncoderStream, in random pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), (chunks) => {
        const dec = new QpackDecoder({ maxTableCapacity: 300, maxBlockedStreams: 1 });
        onlyQpackErrors(() => {
          for (const c of chunks) dec.feedEncoderStream(c);
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('feedDecoderStream, in random pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 8 }), (chunks) => {
        const enc = new QpackEncoder();
        enc.configure(4096, 5);
        for (let s = 0; s < 5; s++) enc.encodeFieldSection(s, [['x', String(s)]]);
        onlyQpackErrors(() => {
          for (const c of chunks) enc.feedDecoderStream(c);
        });
      }),
      { numRuns: 3000 },
    );
  });
});

// Header lists drawn from a small vocabulary so the dynamic table gets hits.
const names = ['x-a', 'x-b', 'cookie', ':path', 'user-agent', 'x-long', 'X-\u00ff', ''];
const field: fc.Arbitrary<HeaderField> = fc.tuple(
  fc.constantFrom(...names),
  fc.oneof(
    fc.constantFrom('', '1', 'value', 'GET', '/', 'a'.repeat(60)),
    fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1')),
  ),
);
const headerList = fc.array(field, { maxLength: 12 });

/** A step of the simulated connection, chosen by fast-check. */
const step = fc.constantFrom('encoder-stream', 'section', 'decoder-stream', 'cancel', 'nothing');

describe('qpack: encode -> decode round trip under random delivery and acknowledgment', () => {
  for (const capacity of [0, 256, 4096]) {
    it(`table capacity ${capacity}`, () => {
      const seen = { blocked: 0, unblocked: 0, cancelled: 0, dynamic: 0 };
      fc.assert(
        fc.property(
          fc.array(headerList, { minLength: 1, maxLength: 25 }),
          fc.integer({ min: 0, max: 4 }),
          fc.array(step, { maxLength: 200 }),
          fc.array(fc.nat(), { maxLength: 200 }),
          (lists, maxBlocked, steps, picks) => {
            const enc = new QpackEncoder();
            enc.configure(capacity, maxBlocked);
            const dec = new QpackDecoder({ maxTableCapacity: capacity, maxBlockedStreams: maxBlocked });
            const encoderStream: Uint8Array[] = [];
            const sections: Array<{ streamId: number; block: Uint8Array }> = [];
            const decoded = new Map<number, HeaderField[]>();
            const cancelled = new Set<number>();
            let s = 0;
            let p = 0;
            const pick = (n: number) => (picks.length ? picks[p++ % picks.length] : 0) % n;

            const act = (what: string) => {
              switch (what) {
                case 'encoder-stream': {
                  const chunk = encoderStream.shift();
                  if (chunk) {
                    for (const u of dec.feedEncoderStream(chunk)) {
                      decoded.set(u.streamId, u.headers);
                      seen.unblocked++;
                    }
                  }
                  return;
                }
                case 'section': {
                  if (sections.length === 0) return;
                  const [{ streamId, block }] = sections.splice(pick(sections.length), 1);
                  if (block[0] !== 0) seen.dynamic++;
                  const copy = Uint8Array.from(block);
                  const out = dec.decodeFieldSection(streamId, copy);
                  copy.fill(0xee); // the decoder must not keep a view of our buffer
                  if (out !== 'blocked') decoded.set(streamId, out);
                  else seen.blocked++;
                  return;
                }
                case 'decoder-stream':
                  enc.feedDecoderStream(dec.takeDecoderStreamData());
                  return;
                case 'cancel': {
                  if (sections.length === 0) return;
                  const [{ streamId }] = sections.splice(pick(sections.length), 1);
                  dec.cancelStream(streamId);
                  cancelled.add(streamId);
                  seen.cancelled++;
                  return;
                }
              }
            };

            lists.forEach((headers, i) => {
              const streamId = 4 * i;
              sections.push({ streamId, block: enc.encodeFieldSection(streamId, headers) });
              const instructions = enc.takeEncoderStreamData();
              if (instructions.length) encoderStream.push(instructions);
              assert.ok(enc.blockedStreamCount <= maxBlocked);
              for (let k = pick(4); k > 0 && s < steps.length; k--) act(steps[s++]);
            });
            while (s < steps.length) act(steps[s++]);
            // Drain: all encoder-stream data, all sections, all acknowledgments.
            while (encoderStream.length) act('encoder-stream');
            while (sections.length) act('section');
            act('decoder-stream');

            assert.equal(dec.blockedStreamCount, 0);
            lists.forEach((headers, i) => {
              if (!cancelled.has(4 * i)) assert.deepEqual(decoded.get(4 * i), headers, `stream ${4 * i}`);
            });
            // Every section was acknowledged or cancelled: nothing can block any more.
            assert.equal(enc.blockedStreamCount, 0);
            assert.equal(enc.knownReceivedCount, enc.insertCount);
          },
        ),
        { numRuns: 300 },
      );
      // The runs must have exercised what they claim to.
      assert.ok(seen.cancelled > 0, 'no stream was cancelled');
      if (capacity > 0) {
        assert.ok(seen.dynamic > 0, 'no section used the dynamic table');
        assert.ok(seen.blocked > 0 && seen.unblocked > 0, 'no section blocked and resumed');
      }
    });
  }
});
