import { strict as assert } from 'node:assert';
import {
  FrameReader,
  FrameType,
  H3Event,
  H3ServerConnection,
  H3StateError,
  H3_CLOSED_CRITICAL_STREAM,
  H3_FRAME_ERROR,
  H3_FRAME_UNEXPECTED,
  H3_ID_ERROR,
  H3_MESSAGE_ERROR,
  H3_MISSING_SETTINGS,
  H3_NO_ERROR,
  H3_REQUEST_CANCELLED,
  H3_REQUEST_INCOMPLETE,
  H3_REQUEST_REJECTED,
  H3_SETTINGS_ERROR,
  H3_STREAM_CREATION_ERROR,
  ReadFrame,
  encodeCancelPushFrame,
  encodeFrame,
  encodeFrameHeader,
  encodeGoawayFrame,
  encodeHeadersFrame,
  encodeMaxPushIdFrame,
  encodePushPromiseFrame,
  encodeSettingsFrame,
  isReserved,
} from '../../../src/h3';
import { decodeVarint, encodeVarint } from '../../../src/h3/varint';
import { HeaderField, QPACK_DECOMPRESSION_FAILED, QpackDecoder, QpackEncoder } from '../../../src/qpack';
import { FakeTransport, GET, Harness, bytes, clientControl, concat, dataFrame, feedSplit, normalize, randomCuts } from './helpers';

const POST: HeaderField[] = [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/upload'],
  ['content-length', '11'],
];

function frames(data: Uint8Array): ReadFrame[] {
  const out: ReadFrame[] = [];
  const reader = new FrameReader();
  reader.push(data);
  for (let f = reader.next(); f; f = reader.next()) out.push(f);
  return out;
}

/** Asserts the connection closed exactly once with `code`, and yielded a 'closed' event. */
function assertClosed(h: Harness, events: H3Event[], code: number): void {
  assert.equal(h.t.closes.length, 1, `expected one close, got ${JSON.stringify(h.t.closes)}`);
  assert.equal(h.t.closes[0].code, code, `close code 0x${h.t.closes[0].code.toString(16)}: ${h.t.closes[0].reason}`);
  assert.deepEqual(events[events.length - 1], { type: 'closed', code, reason: h.t.closes[0].reason });
}

/** Asserts a stream error: reset (and STOP_SENDING when asked) with `code`, plus the event. */
function assertStreamError(h: Harness, events: H3Event[], streamId: number, code: number, stop = true): void {
  assert.equal(h.t.closes.length, 0, JSON.stringify(h.t.closes));
  assert.deepEqual(h.t.resets, [[streamId, code]]);
  assert.deepEqual(h.t.stops, stop ? [[streamId, code]] : []);
  assert.deepEqual(events.filter((e) => e.type !== 'headers'), [{ type: 'request-cancelled', streamId, code }]);
}

describe('h3/connection (RFC 9114 server)', () => {
  describe('start', () => {
    it('opens control, QPACK encoder and decoder streams with SETTINGS', () => {
      const h = new Harness();
      const control = h.t.written(3);
      assert.equal(control[0], 0x00);
      assert.deepEqual(frames(control.subarray(1)), [
        { kind: 'settings', settings: new Map([[0x1, 4096n], [0x6, 65536n], [0x7, 100n]]) },
      ]);
      assert.deepEqual(h.t.written(7), Uint8Array.of(0x02));
      assert.deepEqual(h.t.written(11), Uint8Array.of(0x03));
      assert.ok(!h.t.writes.has(15));
    });

    it('advertises options, extended CONNECT and extra settings', () => {
      const h = new Harness({ maxFieldSectionSize: 1000, qpackMaxTableCapacity: 0, qpackBlockedStreams: 0, enableConnectProtocol: true, extraSettings: [[0x33, 1]] });
      const [f] = frames(h.t.written(3).subarray(1));
      assert.ok(f.kind === 'settings');
      assert.deepEqual([...f.settings], [[0x1, 0n], [0x6, 1000n], [0x7, 0n], [0x8, 1n], [0x33, 1n]]);
    });

    it('sends GREASE by default: a reserved setting, frame and stream type', () => {
      const t = new FakeTransport();
      new H3ServerConnection(t).start();
      const types: number[] = [];
      const reader = new FrameReader({ onFrameStart: (type) => types.push(type) });
      reader.push(t.written(3).subarray(1));
      const settings = reader.next();
      assert.ok(settings && settings.kind === 'settings');
      assert.ok([...settings.settings.keys()].some(isReserved));
      assert.equal(reader.next(), null);
      assert.equal(types.length, 2);
      assert.ok(isReserved(types[1]));
      assert.ok(t.fins.has(15));
      assert.ok(isReserved(decodeVarint(t.written(15))!.value));
    });

    it('is idempotent', () => {
      const h = new Harness();
      h.conn.start();
      assert.equal(h.t.writes.get(3)!.length, 1);
    });
  });

  describe('control stream', () => {
    it('reports the client SETTINGS and configures the QPACK encoder', () => {
      const h = new Harness();
      const events = h.handshake([[0x1, 100], [0x7, 1]]);
      assert.deepEqual(events, [{ type: 'settings', settings: new Map([[0x1, 100n], [0x7, 1n]]) }]);
      assert.deepEqual(h.conn.peerSettings, new Map([[0x1, 100n], [0x7, 1n]]));
    });

    it('tolerates GREASE: reserved settings and frames, unknown stream types', () => {
      const h = new Harness();
      const control = concat([
        clientControl([[0x21, 5], [0x1f * 1000 + 0x21, 0]]),
        encodeFrame(0x1f * 7 + 0x21, bytes('grease')),
        encodeFrame(0x77, bytes('unknown')),
        encodeMaxPushIdFrame(10),
      ]);
      const events = h.feed(2, control);
      assert.equal(events.length, 1);
      assert.deepEqual(h.feed(6, concat([encodeVarint(0x1f * 3 + 0x21), bytes('ignored')]), true), []);
      assert.deepEqual(h.t.stops, [[6, H3_STREAM_CREATION_ERROR]]);
      assert.deepEqual(h.t.closes, []);
    });

    const controlErrors: Array<[string, Uint8Array, number]> = [
      ['a first frame other than SETTINGS (H3_MISSING_SETTINGS)', concat([Uint8Array.of(0), encodeGoawayFrame(0)]), H3_MISSING_SETTINGS],
      ['a reserved first frame (H3_MISSING_SETTINGS)', concat([Uint8Array.of(0), encodeFrame(0x21, bytes('x'))]), H3_MISSING_SETTINGS],
      ['a second SETTINGS frame (H3_FRAME_UNEXPECTED)', concat([clientControl(), encodeSettingsFrame([])]), H3_FRAME_UNEXPECTED],
      ['DATA on the control stream', concat([clientControl(), dataFrame('x')]), H3_FRAME_UNEXPECTED],
      ['HEADERS on the control stream', concat([clientControl(), encodeHeadersFrame(Uint8Array.of(0, 0))]), H3_FRAME_UNEXPECTED],
      ['PUSH_PROMISE on the control stream', concat([clientControl(), encodePushPromiseFrame(0, Uint8Array.of(0, 0))]), H3_FRAME_UNEXPECTED],
      ['an HTTP/2 frame type on the control stream', concat([clientControl(), encodeFrame(0x06, new Uint8Array(8))]), H3_FRAME_UNEXPECTED],
      ['a duplicate setting', concat([Uint8Array.of(0), encodeSettingsFrame([[6, 1], [6, 2]])]), H3_SETTINGS_ERROR],
      ['an HTTP/2 setting', concat([Uint8Array.of(0), encodeSettingsFrame([[0x4, 65535]])]), H3_SETTINGS_ERROR],
      ['H3_DATAGRAM = 2', concat([Uint8Array.of(0), encodeSettingsFrame([[0x33, 2]])]), H3_SETTINGS_ERROR],
      ['ENABLE_CONNECT_PROTOCOL = 2', concat([Uint8Array.of(0), encodeSettingsFrame([[0x8, 2]])]), H3_SETTINGS_ERROR],
      ['a GOAWAY id increase', concat([clientControl(), encodeGoawayFrame(4), encodeGoawayFrame(8)]), H3_ID_ERROR],
      ['a MAX_PUSH_ID decrease', concat([clientControl(), encodeMaxPushIdFrame(8), encodeMaxPushIdFrame(4)]), H3_ID_ERROR],
      ['CANCEL_PUSH for a push never promised', concat([clientControl(), encodeCancelPushFrame(0)]), H3_ID_ERROR],
      ['a malformed GOAWAY payload', concat([clientControl(), encodeFrame(FrameType.GOAWAY, Uint8Array.of(0x40))]), H3_FRAME_ERROR],
    ];
    for (const [name, data, code] of controlErrors) {
      it(`closes on ${name}`, () => {
        const h = new Harness();
        assertClosed(h, h.feed(2, data), code);
      });
      it(`closes on ${name}, fed byte by byte`, () => {
        const h = new Harness();
        const events: H3Event[] = [];
        for (let i = 0; i < data.length; i++) events.push(...h.feed(2, data.subarray(i, i + 1)));
        assertClosed(h, events, code);
      });
    }

    it('reports GOAWAY ids that do not increase', () => {
      const h = new Harness();
      const events = h.feed(2, concat([clientControl(), encodeGoawayFrame(8), encodeGoawayFrame(8), encodeGoawayFrame(4)]));
      assert.deepEqual(events.slice(1), [
        { type: 'goaway', id: 8n },
        { type: 'goaway', id: 8n },
        { type: 'goaway', id: 4n },
      ]);
    });

    it('closes on a second control stream (H3_STREAM_CREATION_ERROR)', () => {
      const h = new Harness();
      h.handshake();
      assertClosed(h, h.feed(6, clientControl()), H3_STREAM_CREATION_ERROR);
    });

    it('closes on a client push stream (H3_STREAM_CREATION_ERROR)', () => {
      const h = new Harness();
      assertClosed(h, h.feed(2, Uint8Array.of(0x01)), H3_STREAM_CREATION_ERROR);
    });

    for (const type of [0x02, 0x03]) {
      it(`closes on a second QPACK ${type === 2 ? 'encoder' : 'decoder'} stream`, () => {
        const h = new Harness();
        assert.deepEqual(h.feed(6, Uint8Array.of(type)), []);
        assertClosed(h, h.feed(10, Uint8Array.of(type)), H3_STREAM_CREATION_ERROR);
      });
    }

    describe('closed critical streams (H3_CLOSED_CRITICAL_STREAM)', () => {
      it('FIN on the control stream', () => {
        const h = new Harness();
        assertClosed(h, h.feed(2, clientControl(), true), H3_CLOSED_CRITICAL_STREAM);
      });
      it('RESET_STREAM on the control stream', () => {
        const h = new Harness();
        h.handshake();
        assertClosed(h, h.conn.receiveStreamReset(2, 0), H3_CLOSED_CRITICAL_STREAM);
      });
      it('FIN on the QPACK encoder stream', () => {
        const h = new Harness();
        assertClosed(h, h.feed(6, Uint8Array.of(2), true), H3_CLOSED_CRITICAL_STREAM);
      });
      it('RESET_STREAM on the QPACK decoder stream', () => {
        const h = new Harness();
        h.feed(10, Uint8Array.of(3));
        assertClosed(h, h.conn.receiveStreamReset(10, 0), H3_CLOSED_CRITICAL_STREAM);
      });
      for (const id of [3, 7, 11]) {
        it(`STOP_SENDING on our stream ${id}`, () => {
          const h = new Harness();
          assertClosed(h, h.conn.receiveStopSending(id, 0), H3_CLOSED_CRITICAL_STREAM);
        });
      }
      it('but not a reset of an ignored stream', () => {
        const h = new Harness();
        h.feed(6, Uint8Array.of(0x21));
        assert.deepEqual(h.conn.receiveStreamReset(6, 0), []);
        assert.deepEqual(h.conn.receiveStopSending(15, 0), []);
        assert.deepEqual(h.t.closes, []);
      });
    });

    it('ignores all input after a connection error, and closes once', () => {
      const h = new Harness();
      h.feed(2, concat([Uint8Array.of(0), encodeGoawayFrame(0)]));
      assert.deepEqual(h.feed(0, concat([h.headers(GET)]), true), []);
      assert.deepEqual(h.conn.receiveStreamReset(2, 0), []);
      assert.equal(h.t.closes.length, 1);
    });
  });

  describe('request streams', () => {
    it('delivers a GET and writes the response', () => {
      const h = new Harness();
      h.handshake();
      const events = h.feed(0, h.headers(GET), true);
      assert.deepEqual(events, [{ type: 'headers', streamId: 0, headers: GET, fin: true }]);
      h.conn.sendHeaders(0, [[':status', '200'], ['Content-Type', 'text/plain'], ['connection', 'close']]);
      h.conn.sendData(0, bytes('hello '));
      h.conn.sendData(0, bytes('world'), true);
      assert.deepEqual(h.response(0), {
        sections: [[[':status', '200'], ['content-type', 'text/plain']]],
        body: 'hello world',
        fin: true,
      });
    });

    it('delivers a body and trailers, split at every byte boundary and at random', () => {
      const input = concat([
        new Harness().headers(POST),
        encodeFrame(0x21, bytes('grease')),
        dataFrame('hello '),
        dataFrame(''),
        encodeFrame(0x5a, new Uint8Array(0)),
        dataFrame('world'),
        new Harness().headers([['x-checksum', 'abc']]),
        encodeFrame(0x40, bytes('after trailers')),
      ]);
      const expected = [
        { type: 'headers', streamId: 0, headers: POST },
        { type: 'data', streamId: 0, data: 'hello world', fin: false },
        { type: 'trailers', streamId: 0, headers: [['x-checksum', 'abc']] },
      ];
      const run = (cuts: number[]): unknown[] => {
        const h = new Harness();
        h.handshake();
        const events = feedSplit((d, fin) => h.feed(0, d, fin), input, cuts, true);
        assert.deepEqual(h.t.closes, []);
        return normalize(events);
      };
      for (let cut = 0; cut <= input.length; cut++) assert.deepEqual(run([cut]), expected, `cut at ${cut}`);
      assert.deepEqual(run(Array.from({ length: input.length - 1 }, (_, i) => i + 1)), expected);
      for (let seed = 1; seed <= 50; seed++) assert.deepEqual(run(randomCuts(input.length, seed)), expected);
    });

    it('puts fin on the last event when FIN arrives with the data, or on an empty data event later', () => {
      const h = new Harness();
      const events = h.feed(0, concat([h.headers(POST), dataFrame('hello world')]), true);
      assert.deepEqual(events.map((e) => [e.type, 'fin' in e && e.fin]), [['headers', false], ['data', true]]);
      const later = h.feed(4, h.headers(GET, 4));
      assert.deepEqual(later.map((e) => [e.type, 'fin' in e && e.fin]), [['headers', false]]);
      const fin = h.feed(4, new Uint8Array(0), true);
      assert.equal(fin.length, 1);
      assert.ok(fin[0].type === 'data' && fin[0].fin && fin[0].data.length === 0);
    });

    it('tolerates a repeated FIN after the request', () => {
      const h = new Harness();
      h.feed(0, h.headers(GET), true);
      assert.deepEqual(h.feed(0, new Uint8Array(0), true), []);
      assert.deepEqual(h.t.closes, []);
    });

    const frameErrors: Array<[string, () => Uint8Array, number]> = [
      ['DATA before HEADERS', () => dataFrame('x'), H3_FRAME_UNEXPECTED],
      ['an empty DATA before HEADERS', () => dataFrame(''), H3_FRAME_UNEXPECTED],
      ['HEADERS after trailers', () => concat([new Harness().headers(GET), new Harness().headers([['a', 'b']]), new Harness().headers([['c', 'd']])]), H3_FRAME_UNEXPECTED],
      ['DATA after trailers', () => concat([new Harness().headers(GET), new Harness().headers([['a', 'b']]), dataFrame('x')]), H3_FRAME_UNEXPECTED],
      ['SETTINGS on a request stream', () => encodeSettingsFrame([]), H3_FRAME_UNEXPECTED],
      ['GOAWAY on a request stream', () => encodeGoawayFrame(0), H3_FRAME_UNEXPECTED],
      ['MAX_PUSH_ID on a request stream', () => encodeMaxPushIdFrame(0), H3_FRAME_UNEXPECTED],
      ['CANCEL_PUSH on a request stream', () => encodeCancelPushFrame(0), H3_FRAME_UNEXPECTED],
      ['PUSH_PROMISE from a client', () => concat([new Harness().headers(GET), encodePushPromiseFrame(0, Uint8Array.of(0, 0))]), H3_FRAME_UNEXPECTED],
      ['HTTP/2 PRIORITY (0x2)', () => encodeFrame(0x2, new Uint8Array(5)), H3_FRAME_UNEXPECTED],
      ['HTTP/2 PING (0x6)', () => concat([new Harness().headers(GET), encodeFrame(0x6, new Uint8Array(8))]), H3_FRAME_UNEXPECTED],
      ['HTTP/2 WINDOW_UPDATE (0x8)', () => encodeFrame(0x8, new Uint8Array(4)), H3_FRAME_UNEXPECTED],
      ['HTTP/2 CONTINUATION (0x9)', () => encodeFrame(0x9, new Uint8Array(0)), H3_FRAME_UNEXPECTED],
      ['a frame truncated by FIN', () => concat([new Harness().headers(GET), encodeFrameHeader(0, 10), bytes('abc')]), H3_FRAME_ERROR],
      ['an undecodable field section', () => encodeHeadersFrame(Uint8Array.of(0x00, 0x00, 0xff, 0x64)), QPACK_DECOMPRESSION_FAILED],
    ];
    for (const [name, make, code] of frameErrors) {
      it(`closes the connection on ${name} (0x${code.toString(16)})`, () => {
        const h = new Harness();
        h.handshake();
        assertClosed(h, h.feed(0, make(), true), code);
      });
    }

    const malformed: Array<[string, HeaderField[]]> = [
      ['a pseudo-header after a regular field', [[':method', 'GET'], ['x', 'y'], [':scheme', 'https'], [':path', '/'], [':authority', 'a']]],
      ['an unknown pseudo-header', [...GET, [':status', '200']]],
      ['a missing :path', GET.filter(([n]) => n !== ':path')],
      ['an uppercase field name', [...GET, ['X-Foo', 'bar']]],
      ['a connection-specific field', [...GET, ['transfer-encoding', 'chunked']]],
      ['te: gzip', [...GET, ['te', 'gzip']]],
    ];
    for (const [name, headers] of malformed) {
      it(`rejects ${name} with a stream error H3_MESSAGE_ERROR`, () => {
        const h = new Harness();
        h.handshake();
        const events = h.feed(0, h.headers(headers));
        assertStreamError(h, events, 0, H3_MESSAGE_ERROR);
        assert.deepEqual(h.feed(0, dataFrame('ignored'), true), []);
        // The connection lives on.
        assert.equal(h.feed(4, h.headers(GET, 4), true)[0].type, 'headers');
      });
    }

    it('rejects a body longer than content-length (H3_MESSAGE_ERROR)', () => {
      const h = new Harness();
      const events = h.feed(0, concat([h.headers(POST), dataFrame('hello world!')]));
      assertStreamError(h, events, 0, H3_MESSAGE_ERROR);
      assert.ok(!events.some((e) => e.type === 'data'));
    });

    it('rejects a body shorter than content-length at FIN (H3_MESSAGE_ERROR, no STOP_SENDING)', () => {
      const h = new Harness();
      const events = h.feed(0, concat([h.headers(POST), dataFrame('hello')]), true);
      assertStreamError(h, events.filter((e) => e.type !== 'data'), 0, H3_MESSAGE_ERROR, false);
    });

    it('rejects a body shorter than content-length before trailers', () => {
      const h = new Harness();
      const events = h.feed(0, concat([h.headers(POST), dataFrame('hello'), h.headers([['x', 'y']])]));
      assertStreamError(h, events.filter((e) => e.type !== 'data'), 0, H3_MESSAGE_ERROR);
    });

    it('rejects malformed trailers', () => {
      const h = new Harness();
      const events = h.feed(0, concat([h.headers(GET), h.headers([[':path', '/']])]));
      assertStreamError(h, events, 0, H3_MESSAGE_ERROR);
    });

    it('answers a stream that ends before HEADERS with H3_REQUEST_INCOMPLETE', () => {
      const h = new Harness();
      const events = h.feed(0, encodeFrame(0x21, bytes('only grease')), true);
      assertStreamError(h, events, 0, H3_REQUEST_INCOMPLETE, false);
    });

    it('answers an oversized header section with 431 and stops reading (H3_NO_ERROR)', () => {
      const h = new Harness({ maxFieldSectionSize: 200 });
      const events = h.feed(0, h.headers([...GET, ['x-big', 'x'.repeat(300)]]));
      assert.deepEqual(events, []);
      assert.deepEqual(h.t.stops, [[0, H3_NO_ERROR]]);
      assert.deepEqual(h.response(0), { sections: [[[':status', '431']]], body: '', fin: true });
      assert.deepEqual(h.feed(0, dataFrame('more'), true), []);
    });

    it('answers 431 when the decoded size (name + value + 32 per field) is too large', () => {
      const h = new Harness({ maxFieldSectionSize: 200 });
      const many: HeaderField[] = Array.from({ length: 8 }, () => ['accept', '*/*'] as HeaderField);
      const block = h.headers([...GET, ...many]);
      assert.ok(block.length < 200);
      assert.deepEqual(h.feed(0, block, true), []);
      assert.deepEqual(h.response(0).sections, [[[':status', '431']]]);
      assert.deepEqual(h.t.stops, []);
    });

    it('turns a client reset into request-cancelled and resets the response', () => {
      const h = new Harness();
      h.feed(0, h.headers(POST));
      const events = h.conn.receiveStreamReset(0, H3_REQUEST_CANCELLED);
      assert.deepEqual(events, [{ type: 'request-cancelled', streamId: 0, code: H3_REQUEST_CANCELLED }]);
      assert.deepEqual(h.t.resets, [[0, H3_REQUEST_CANCELLED]]);
      h.conn.sendHeaders(0, [[':status', '200']]);
      h.conn.sendData(0, bytes('late'), true);
      assert.ok(!h.t.writes.has(0), 'late writes are dropped');
    });

    it('answers STOP_SENDING with RESET_STREAM carrying the same code', () => {
      const h = new Harness();
      h.feed(0, h.headers(GET), true);
      h.conn.sendHeaders(0, [[':status', '200']]);
      const events = h.conn.receiveStopSending(0, 0x1234);
      assert.deepEqual(events, [{ type: 'request-cancelled', streamId: 0, code: 0x1234 }]);
      assert.deepEqual(h.t.resets, [[0, 0x1234]]);
      assert.deepEqual(h.t.stops, []);
    });

    it('resetStream aborts both directions', () => {
      const h = new Harness();
      h.feed(0, h.headers(POST));
      h.conn.resetStream(0, H3_REQUEST_REJECTED);
      assert.deepEqual(h.t.resets, [[0, H3_REQUEST_REJECTED]]);
      assert.deepEqual(h.t.stops, [[0, H3_REQUEST_REJECTED]]);
      assert.deepEqual(h.feed(0, dataFrame('x'), true), []);
    });

    it('sends interim responses before the final one, then trailers', () => {
      const h = new Harness();
      h.feed(0, h.headers(GET), true);
      h.conn.sendHeaders(0, [[':status', '103'], ['link', '</a.css>; rel=preload']]);
      h.conn.sendHeaders(0, [[':status', '200']]);
      h.conn.sendData(0, bytes('body'));
      h.conn.sendTrailers(0, [['x-trailer', '1']]);
      const r = h.response(0);
      assert.deepEqual(r.sections, [[[':status', '103'], ['link', '</a.css>; rel=preload']], [[':status', '200']], [['x-trailer', '1']]]);
      assert.equal(r.body, 'body');
      assert.ok(r.fin);
    });

    it('throws H3StateError on API misuse', () => {
      const h = new Harness();
      h.feed(0, h.headers(GET), true);
      assert.throws(() => h.conn.sendData(0, bytes('x')), H3StateError);
      assert.throws(() => h.conn.sendHeaders(0, [['x', 'y']]), H3StateError);
      assert.throws(() => h.conn.sendHeaders(0, [[':status', '101']]), H3StateError);
      assert.throws(() => h.conn.end(0), H3StateError);
      h.conn.sendHeaders(0, [[':status', '204']]);
      assert.throws(() => h.conn.sendHeaders(0, [[':status', '200']]), H3StateError);
      assert.throws(() => h.conn.sendTrailers(0, [[':status', '200']]), H3StateError);
      h.conn.end(0);
      assert.ok(h.t.fins.has(0));
    });
  });

  describe('GOAWAY', () => {
    it('sends the next unprocessed request id and rejects later requests (H3_REQUEST_REJECTED)', () => {
      const h = new Harness();
      h.feed(0, h.headers(GET), true);
      h.feed(4, h.headers(GET, 4), true);
      h.conn.goaway();
      const goaways = frames(h.t.written(3).subarray(1)).filter((f) => f.kind === 'goaway');
      assert.deepEqual(goaways, [{ kind: 'goaway', id: 8n }]);
      const events = h.feed(8, h.headers(GET, 8), true);
      assert.deepEqual(events, [{ type: 'request-cancelled', streamId: 8, code: H3_REQUEST_REJECTED }]);
      assert.deepEqual(h.t.resets, [[8, H3_REQUEST_REJECTED]]);
      // The id never increases on a second GOAWAY.
      h.conn.goaway();
      assert.deepEqual(frames(h.t.written(3).subarray(1)).filter((f) => f.kind === 'goaway').length, 2);
      assert.deepEqual(frames(h.t.written(3).subarray(1)).pop(), { kind: 'goaway', id: 8n });
    });

    it('sends GOAWAY 0 before any request', () => {
      const h = new Harness();
      h.conn.goaway();
      assert.deepEqual(frames(h.t.written(3).subarray(1)).pop(), { kind: 'goaway', id: 0n });
    });
  });

  describe('QPACK integration', () => {
    function dynamicClient(): { h: Harness; enc: QpackEncoder; fields: HeaderField[]; block: Uint8Array; encoderStream: Uint8Array } {
      const h = new Harness();
      const enc = new QpackEncoder();
      enc.configure(4096, 100);
      const fields: HeaderField[] = [...GET, ['x-custom', 'dynamic-table-value']];
      const block = encodeHeadersFrame(enc.encodeFieldSection(0, fields));
      const encoderStream = concat([Uint8Array.of(0x02), enc.takeEncoderStreamData()]);
      assert.ok(encoderStream.length > 1, 'the client encoder inserted into the dynamic table');
      return { h, enc, fields, block, encoderStream };
    }

    it('queues a blocked request until the encoder stream unblocks it, keeping frame order', () => {
      const { h, enc, fields, block, encoderStream } = dynamicClient();
      const input = concat([block, dataFrame('body')]);
      const scratch = input.slice();
      assert.deepEqual(h.feed(0, scratch, true), []);
      assert.deepEqual(h.feed(0, new Uint8Array(0), true), [], 'a repeated FIN while blocked is ignored');
      scratch.fill(0); // the caller may reuse its buffer: blocked input was copied
      const events = h.feed(6, encoderStream);
      assert.deepEqual(normalize(events), [
        { type: 'headers', streamId: 0, headers: fields },
        { type: 'data', streamId: 0, data: 'body', fin: true },
      ]);
      // Our decoder stream acknowledged the section (RFC 9204 §4.4.1).
      const decoderStream = h.t.written(11).subarray(1);
      assert.ok(decoderStream.length > 0);
      enc.feedDecoderStream(decoderStream);
      assert.equal(enc.knownReceivedCount, enc.insertCount);
    });

    it('decodes the same when the encoder stream arrives first, split at every byte', () => {
      const { fields, block, encoderStream } = dynamicClient();
      for (let cut = 0; cut <= encoderStream.length; cut++) {
        const h = new Harness();
        const events = feedSplit((d, fin) => h.feed(6, d, fin), encoderStream, [cut], false);
        events.push(...h.feed(0, block, true));
        assert.deepEqual(normalize(events), [
          { type: 'headers', streamId: 0, headers: fields },
          { type: 'data', streamId: 0, data: '', fin: true },
        ]);
      }
    });

    it('cancels a blocked stream that is reset (RFC 9204 §4.4.2)', () => {
      const { h, block, encoderStream } = dynamicClient();
      h.feed(0, block);
      assert.deepEqual(h.conn.receiveStreamReset(0, H3_REQUEST_CANCELLED), [{ type: 'request-cancelled', streamId: 0, code: H3_REQUEST_CANCELLED }]);
      assert.ok(h.t.written(11).length > 1, 'Stream Cancellation sent');
      assert.deepEqual(h.feed(6, encoderStream), []);
      assert.deepEqual(h.t.closes, []);
    });

    it('uses the dynamic table for responses once the client allows it, encoder stream first', () => {
      const h = new Harness();
      h.handshake([[0x1, 4096], [0x7, 10]]);
      const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 10 });
      for (const id of [0, 4]) {
        h.feed(id, h.headers(GET, id), true);
        h.conn.sendHeaders(id, [[':status', '200'], ['x-server', 'harrier-dynamic']], true);
      }
      dec.feedEncoderStream(h.t.written(7).subarray(1));
      for (const id of [0, 4]) {
        const [f] = frames(h.t.written(id));
        assert.ok(f.kind === 'headers');
        assert.deepEqual(dec.decodeFieldSection(id, f.block), [[':status', '200'], ['x-server', 'harrier-dynamic']]);
      }
      assert.ok(h.t.written(7).length > 10, 'the server encoder inserted entries');
      // Client decoder-stream acknowledgments are accepted.
      assert.deepEqual(h.feed(10, concat([Uint8Array.of(0x03), dec.takeDecoderStreamData()])), []);
      assert.deepEqual(h.t.closes, []);
    });
  });
});
