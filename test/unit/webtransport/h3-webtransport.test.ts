import { strict as assert } from 'node:assert';
import { H3Event, H3_FRAME_ERROR, H3_ID_ERROR } from '../../../src/h3';
import { FrameType, H3_DATAGRAM_ERROR, SettingsId, StreamType, encodeDatagramHeader } from '../../../src/h3/frames';
import { FrameReader } from '../../../src/h3/frame-reader';
import { encodeVarint } from '../../../src/h3/varint';
import { Harness, bytes, concat, dataFrame, feedSplit, text } from '../h3/helpers';

const WT_CONNECT: Array<[string, string]> = [
  [':method', 'CONNECT'],
  [':protocol', 'webtransport'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/echo'],
  ['origin', 'https://example.com'],
];

/** WebTransport events with data merged, independent of how the input was split. */
function wtEvents(events: H3Event[]): unknown[] {
  const out: Array<Record<string, unknown>> = [];
  for (const e of events) {
    if (e.type === 'webtransport-data') {
      const last = out[out.length - 1];
      if (last?.type === 'webtransport-data' && last.streamId === e.streamId) {
        last.data = (last.data as string) + text(e.data);
        last.fin = e.fin;
      } else out.push({ type: e.type, streamId: e.streamId, data: text(e.data), fin: e.fin });
    } else out.push({ ...e });
  }
  return out;
}

function wtHarness(): Harness {
  const h = new Harness({ webTransportMaxSessions: 4 });
  h.handshake([[SettingsId.H3_DATAGRAM, 1], [SettingsId.ENABLE_WEBTRANSPORT_DRAFT02, 1]]);
  return h;
}

function assertClosed(h: Harness, code: number): void {
  assert.equal(h.t.closes.length, 1, JSON.stringify(h.t.closes));
  assert.equal(h.t.closes[0].code, code, h.t.closes[0].reason);
}

describe('HTTP/3 with WebTransport (draft-ietf-webtrans-http3 §3-4, RFC 9297 §2)', () => {
  it('advertises extended CONNECT, H3_DATAGRAM (RFC and draft-04) and both WebTransport settings', () => {
    const h = new Harness({ webTransportMaxSessions: 16 });
    const control = h.t.written(3);
    const reader = new FrameReader();
    reader.push(control.subarray(1));
    const f = reader.next();
    assert.equal(f?.kind, 'settings');
    const s = f.kind === 'settings' ? f.settings : new Map();
    assert.equal(s.get(SettingsId.ENABLE_CONNECT_PROTOCOL), 1n);
    assert.equal(s.get(SettingsId.H3_DATAGRAM), 1n);
    assert.equal(s.get(SettingsId.H3_DATAGRAM_DRAFT04), 1n);
    assert.equal(s.get(SettingsId.ENABLE_WEBTRANSPORT_DRAFT02), 1n);
    assert.equal(s.get(SettingsId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07), 16n);
  });

  it('leaves WebTransport off by default: no settings, 0x54 streams ignored', () => {
    const h = new Harness();
    h.handshake();
    const events = h.feed(6, concat([encodeVarint(StreamType.WEBTRANSPORT), encodeVarint(0), bytes('x')]));
    assert.deepEqual(events, []);
    assert.deepEqual(h.t.stops, [[6, 0x0103]]); // H3_STREAM_CREATION_ERROR for an unknown stream type
  });

  it('passes an extended CONNECT for webtransport as a request', () => {
    const h = wtHarness();
    const events = h.feed(0, h.headers(WT_CONNECT));
    assert.equal(events.length, 1);
    assert.equal(events[0].type, 'headers');
  });

  it('recognises a bidirectional stream (signal 0x41, session id) with the input split at every byte', () => {
    const wire = concat([encodeVarint(FrameType.WEBTRANSPORT_STREAM), encodeVarint(0), bytes('hello, session')]);
    for (let i = 0; i <= wire.length; i++) {
      const h = wtHarness();
      const events = feedSplit((d, fin) => h.feed(4, d, fin), wire, i === 0 || i === wire.length ? [] : [i], true);
      assert.deepEqual(wtEvents(events), [
        { type: 'webtransport-stream', streamId: 4, sessionId: 0, bidirectional: true },
        { type: 'webtransport-data', streamId: 4, data: 'hello, session', fin: true },
      ], `split at ${i}`);
      assert.equal(h.t.closes.length, 0);
    }
  });

  it('recognises a unidirectional stream (type 0x54, session id) fed one byte at a time, with a 2-byte session id', () => {
    const wire = concat([encodeVarint(StreamType.WEBTRANSPORT), encodeVarint(400), bytes('uni data')]);
    const h = wtHarness();
    const cuts = Array.from({ length: wire.length - 1 }, (_, i) => i + 1);
    const events = feedSplit((d, fin) => h.feed(6, d, fin), wire, cuts, true);
    assert.deepEqual(wtEvents(events), [
      { type: 'webtransport-stream', streamId: 6, sessionId: 400, bidirectional: false },
      { type: 'webtransport-data', streamId: 6, data: 'uni data', fin: true },
    ]);
  });

  it('reports resets and STOP_SENDING on WebTransport streams, and data on our own bidirectional streams', () => {
    const h = wtHarness();
    h.feed(4, concat([encodeVarint(0x41), encodeVarint(0)]));
    assert.deepEqual(h.conn.receiveStreamReset(4, 77), [{ type: 'webtransport-reset', streamId: 4, code: 77 }]);
    assert.deepEqual(h.conn.receiveStopSending(4, 78), [{ type: 'webtransport-stop', streamId: 4, code: 78 }]);
    assert.deepEqual(wtEvents(h.feed(1, bytes('echo'), true)), [{ type: 'webtransport-data', streamId: 1, data: 'echo', fin: true }]);
    assert.deepEqual(h.conn.receiveStopSending(19, 5), [{ type: 'webtransport-stop', streamId: 19, code: 5 }]);
  });

  it('still serves a request stream whose first frame is split across pushes', () => {
    const h = wtHarness();
    const wire = h.headers([[':method', 'GET'], [':scheme', 'https'], [':authority', 'example.com'], [':path', '/']]);
    const events = [...h.feed(8, wire.subarray(0, 1)), ...h.feed(8, wire.subarray(1), true)];
    assert.equal(events[0].type, 'headers');
  });

  it('closes the connection with H3_ID_ERROR for a session id that is no client bidirectional stream (draft §4)', () => {
    const h = wtHarness();
    h.feed(4, concat([encodeVarint(0x41), encodeVarint(2)]));
    assertClosed(h, H3_ID_ERROR);
    const u = wtHarness();
    u.feed(6, concat([encodeVarint(0x54), encodeVarint(7)]));
    assertClosed(u, H3_ID_ERROR);
  });

  it('closes the connection with H3_FRAME_ERROR for WEBTRANSPORT_STREAM after the first bytes (draft §4.2)', () => {
    const h = wtHarness();
    h.feed(0, concat([h.headers(WT_CONNECT), encodeVarint(0x41), encodeVarint(0)]));
    assertClosed(h, H3_FRAME_ERROR);
  });

  it('decodes HTTP/3 datagrams by quarter stream id (RFC 9297 §2.1)', () => {
    const h = wtHarness();
    const events = h.conn.receiveDatagram(concat([encodeDatagramHeader(8), bytes('dgram')]));
    assert.equal(events.length, 1);
    const e = events[0];
    assert.ok(e.type === 'datagram');
    assert.equal(e.streamId, 8);
    assert.equal(text(e.payload), 'dgram');
    assert.equal(h.conn.peerDatagrams, true);
    assert.equal(h.conn.peerWebTransport, 'draft02');
  });

  it('closes the connection with H3_DATAGRAM_ERROR for a datagram too short for its quarter stream id (RFC 9297 §2.1)', () => {
    const h = wtHarness();
    h.conn.receiveDatagram(Uint8Array.of(0x40));
    assertClosed(h, H3_DATAGRAM_ERROR);
  });

  it('sends datagrams only once the peer sent SETTINGS_H3_DATAGRAM (RFC 9297 §2.1.1)', () => {
    const sent: Uint8Array[] = [];
    const h = new Harness({ webTransportMaxSessions: 1 });
    (h.t as unknown as { sendDatagram: (d: Uint8Array) => boolean }).sendDatagram = (d) => (sent.push(d), true);
    assert.equal(h.conn.sendDatagram(4, bytes('early')), false);
    h.handshake([[SettingsId.H3_DATAGRAM_DRAFT04, 1]]);
    assert.equal(h.conn.sendDatagram(4, bytes('x')), true);
    assert.deepEqual([...sent[0]], [1, 0x78]);
  });

  it('carries capsules as DATA on the CONNECT stream', () => {
    const h = wtHarness();
    const events = h.feed(0, concat([h.headers(WT_CONNECT), dataFrame(Uint8Array.of(0x68, 0x43, 4, 0, 0, 0, 9))]));
    assert.deepEqual(events.map((e) => e.type), ['headers', 'data']);
  });
});
