import { strict as assert } from 'node:assert';
import { H3_MESSAGE_ERROR, H3_REQUEST_REJECTED } from '../../../src/h3/errors';

import {
  CapsuleType, H3_DATAGRAM_ERROR, MessageError, MessageReader, WT_BUFFERED_STREAM_REJECTED, WT_SESSION_GONE, WebTransportConnection,
  WebTransportError, encodeCapsule, encodeCloseSession, encodeDrainSession, encodeMessage, encodeMessageFrame,
  decodeMessage, webTransportCodeToHttp3, type WebTransportIO, type WebTransportSession,
} from '../../../src/webtransport';
import { bytes, concat, text } from '../h3/helpers';

/** Records what sessions do to the connection. */
class FakeIO implements WebTransportIO {
  readonly writes = new Map<number, Uint8Array[]>();
  readonly fins = new Set<number>();
  readonly resets: Array<[number, number]> = [];
  readonly stops: Array<[number, number]> = [];
  readonly capsules = new Map<number, Uint8Array[]>();
  readonly capsuleFins = new Set<number>();
  readonly aborted: Array<[number, number]> = [];
  readonly datagrams: Array<[number, string]> = [];
  readonly paused = new Set<number>();
  readonly maxDatagramSize = 1200;
  private nextUni = 3;
  private nextBidi = 1;

  write(id: number, data: Uint8Array, fin: boolean): boolean {
    this.writes.set(id, [...(this.writes.get(id) ?? []), data.slice()]);
    if (fin) this.fins.add(id);
    return true;
  }
  async drained(): Promise<void> {}
  openStream(bidi: boolean): number {
    if (bidi) return (this.nextBidi += 4) - 4;
    return (this.nextUni += 4);
  }
  resetStream(id: number, code: number): void {
    this.resets.push([id, code]);
  }
  stopSending(id: number, code: number): void {
    this.stops.push([id, code]);
  }
  pauseReading(id: number, paused: boolean): void {
    if (paused) this.paused.add(id);
    else this.paused.delete(id);
  }
  sendCapsules(sessionId: number, data: Uint8Array, fin: boolean): void {
    this.capsules.set(sessionId, [...(this.capsules.get(sessionId) ?? []), data.slice()]);
    if (fin) this.capsuleFins.add(sessionId);
  }
  abortConnect(sessionId: number, code: number): void {
    this.aborted.push([sessionId, code]);
  }
  sendDatagram(sessionId: number, payload: Uint8Array): boolean {
    this.datagrams.push([sessionId, text(payload)]);
    return true;
  }
  written(id: number): Uint8Array {
    return concat(this.writes.get(id) ?? []);
  }
}

const request = { path: '/echo', authority: 'example.com', origin: 'https://example.com', headers: [] };

async function rejection(p: Promise<unknown>): Promise<WebTransportError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof WebTransportError, String(e));
    return e;
  }
  assert.fail('expected a rejection');
}

async function readAll(r: AsyncIterable<Uint8Array>): Promise<string> {
  let s = '';
  for await (const c of r) s += text(c);
  return s;
}

function open(io = new FakeIO(), options = {}): { io: FakeIO; wt: WebTransportConnection; session: WebTransportSession } {
  const wt = new WebTransportConnection(io, options);
  const session = wt.open(0, request)!;
  session._accepted();
  return { io, wt, session };
}

describe('webtransport sessions', () => {
  it('limits sessions per connection (default 16); a freed slot can be reused', () => {
    const wt = new WebTransportConnection(new FakeIO(), { maxSessions: 2 });
    const a = wt.open(0, request)!;
    assert.ok(wt.open(4, request));
    // draft §3.4: the caller then resets the CONNECT stream with H3_REQUEST_REJECTED.
    assert.equal(wt.open(8, request), undefined);
    a._accepted();
    a.close();
    assert.ok(wt.open(8, request));
    assert.equal(new WebTransportConnection(new FakeIO()).maxSessions, 16);
  });

  it('limits incoming streams per session, refusing extras with H3_REQUEST_REJECTED', async () => {
    const { io, wt, session } = open(new FakeIO(), { maxIncomingStreams: 2 });
    for (const id of [4, 8, 12]) wt.handle({ type: 'webtransport-stream', streamId: id, sessionId: 0, bidirectional: true });
    assert.deepEqual(io.stops, [[12, H3_REQUEST_REJECTED]]);
    assert.deepEqual(io.resets, [[12, H3_REQUEST_REJECTED]]);
    // Once a stream is done in both directions, its slot frees up.
    const reader = session.incomingBidirectionalStreams.getReader();
    const first = (await reader.read()).value!;
    wt.handle({ type: 'webtransport-data', streamId: 4, data: bytes('x'), fin: true });
    await readAll(first.readable as AsyncIterable<Uint8Array>);
    await first.writable.close();
    wt.handle({ type: 'webtransport-stream', streamId: 16, sessionId: 0, bidirectional: false });
    assert.equal(io.stops.length, 1, 'stream 16 accepted');
  });

  it('echoes a bidirectional stream through the W3C-shaped objects', async () => {
    const { io, wt, session } = open();
    wt.handle({ type: 'webtransport-stream', streamId: 4, sessionId: 0, bidirectional: true });
    wt.handle({ type: 'webtransport-data', streamId: 4, data: bytes('ping'), fin: false });
    wt.handle({ type: 'webtransport-data', streamId: 4, data: bytes('!'), fin: true });
    for await (const s of session.incomingBidirectionalStreams) {
      await s.readable.pipeTo(s.writable);
      break;
    }
    assert.equal(text(io.written(4)), 'ping!');
    assert.ok(io.fins.has(4));
  });

  it('opens streams with the stream header: 0x54 or 0x41, then the session id (draft §4.1, §4.2)', async () => {
    const { io, wt, session } = open();
    const uni = await session.createUnidirectionalStream();
    const w = uni.getWriter();
    await w.write(bytes('u'));
    await w.close();
    assert.deepEqual([...io.written(uni.id)], [0x40, 0x54, 0x00, 0x75]);
    const bidi = await session.createBidirectionalStream();
    assert.deepEqual([...io.written(bidi.id)], [0x40, 0x41, 0x00]);
    // The peer's data on our bidirectional stream comes back to it.
    wt.handle({ type: 'webtransport-data', streamId: bidi.id, data: bytes('back'), fin: true });
    assert.equal(await readAll(bidi.readable as AsyncIterable<Uint8Array>), 'back');
  });

  it('pauses a stream the application does not read, and resumes it when it does', async () => {
    const { io, wt, session } = open(new FakeIO(), { streamHighWaterMark: 8 });
    wt.handle({ type: 'webtransport-stream', streamId: 6, sessionId: 0, bidirectional: false });
    wt.handle({ type: 'webtransport-data', streamId: 6, data: new Uint8Array(16), fin: false });
    assert.ok(io.paused.has(6));
    const r = (await session.incomingUnidirectionalStreams.getReader().read()).value!;
    await r.getReader().read();
    assert.ok(!io.paused.has(6));
  });

  it('resolves closed with the peer\'s CLOSE_WEBTRANSPORT_SESSION, ends our side and resets the streams with WT_SESSION_GONE', async () => {
    const { io, wt, session } = open();
    wt.handle({ type: 'webtransport-stream', streamId: 4, sessionId: 0, bidirectional: true });
    const capsule = encodeCloseSession(4242, 'bye');
    for (const b of capsule) wt.connectData(0, Uint8Array.of(b), false); // one byte at a time
    assert.deepEqual(await session.closed, { closeCode: 4242, reason: 'bye' });
    assert.ok(io.capsuleFins.has(0), 'FIN on the CONNECT stream');
    // draft §5: reset the send side and abort reading with WEBTRANSPORT_SESSION_GONE.
    assert.deepEqual(io.resets, [[4, WT_SESSION_GONE]]);
    assert.deepEqual(io.stops, [[4, WT_SESSION_GONE]]);
    assert.equal(session.readyState, 'closed');
  });

  it('treats a clean FIN without a capsule as close code 0 (draft §5)', async () => {
    const { wt, session } = open();
    wt.connectData(0, new Uint8Array(0), true);
    assert.deepEqual(await session.closed, { closeCode: 0, reason: '' });
  });

  it('sends CLOSE_WEBTRANSPORT_SESSION then FIN on close()', async () => {
    const { io, session } = open();
    session.close({ closeCode: 9, reason: 'done' });
    assert.deepEqual(concat(io.capsules.get(0)!), encodeCloseSession(9, 'done'));
    assert.ok(io.capsuleFins.has(0));
    assert.deepEqual(await session.closed, { closeCode: 9, reason: 'done' });
  });

  it('closes only that session, with H3_DATAGRAM_ERROR, on a malformed capsule (RFC 9297 §3.3)', async () => {
    const io = new FakeIO();
    const wt = new WebTransportConnection(io);
    const a = wt.open(0, request)!;
    const b = wt.open(4, request)!;
    a._accepted();
    b._accepted();
    // A CLOSE_WEBTRANSPORT_SESSION too short for its 32-bit code.
    wt.connectData(0, encodeCapsule(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, Uint8Array.of(0, 1)), false);
    assert.deepEqual(io.aborted, [[0, H3_DATAGRAM_ERROR]]);
    assert.equal((await rejection(a.closed)).code, 'HARRIER_ERR_WT_SESSION_ABORTED');
    assert.equal(b.readyState, 'open', 'the other session lives on');
    // A DRAIN capsule with a value, and a stream that ends inside a capsule, likewise.
    wt.connectData(4, encodeCapsule(CapsuleType.DRAIN_WEBTRANSPORT_SESSION, Uint8Array.of(1)), false);
    assert.deepEqual(io.aborted[1], [4, H3_DATAGRAM_ERROR]);
    const c = wt.open(8, request)!;
    c._accepted();
    wt.connectData(8, encodeCloseSession(1, 'x').subarray(0, 3), true);
    assert.deepEqual(io.aborted[2], [8, H3_DATAGRAM_ERROR]);
  });

  it('resets the CONNECT stream with H3_MESSAGE_ERROR for data after CLOSE_WEBTRANSPORT_SESSION (draft §5)', async () => {
    const { io, wt, session } = open();
    wt.connectData(0, concat([encodeCloseSession(1, ''), encodeDrainSession()]), false);
    assert.deepEqual(io.aborted, [[0, H3_MESSAGE_ERROR]]);
    await rejection(session.closed);
  });

  it('resolves draining on DRAIN_WEBTRANSPORT_SESSION and skips unknown capsules', async () => {
    const { wt, session } = open();
    wt.connectData(0, concat([encodeCapsule(0x1234, bytes('??')), encodeDrainSession()]), false);
    await session.draining;
    assert.equal(session.readyState, 'open');
  });

  it('delivers datagrams, drops them past the high-water mark, and sends with the session id', async () => {
    const { io, wt, session } = open(new FakeIO(), { datagramHighWaterMark: 2 });
    for (const d of ['a', 'b', 'c']) wt.handle({ type: 'datagram', streamId: 0, payload: bytes(d) });
    assert.equal(session.datagrams.dropped.incoming, 1);
    const r = session.datagrams.readable.getReader();
    assert.equal(text((await r.read()).value!), 'a');
    assert.equal(session.datagrams.write(bytes('out')), true);
    assert.deepEqual(io.datagrams, [[0, 'out']]);
    assert.equal(session.datagrams.write(new Uint8Array(1201)), false);
  });

  it('buffers streams and datagrams that arrive before their session, and rejects extras (draft §4.5)', async () => {
    const io = new FakeIO();
    const wt = new WebTransportConnection(io, { maxBufferedStreams: 1 });
    wt.handle({ type: 'webtransport-stream', streamId: 6, sessionId: 0, bidirectional: false });
    wt.handle({ type: 'webtransport-data', streamId: 6, data: bytes('early'), fin: true });
    wt.handle({ type: 'webtransport-stream', streamId: 10, sessionId: 0, bidirectional: false });
    assert.deepEqual(io.stops, [[10, WT_BUFFERED_STREAM_REJECTED]]);
    wt.handle({ type: 'datagram', streamId: 0, payload: bytes('d') });
    const session = wt.open(0, request)!;
    session._accepted();
    const s = (await session.incomingUnidirectionalStreams.getReader().read()).value!;
    assert.equal(await readAll(s as AsyncIterable<Uint8Array>), 'early');
    assert.equal(text((await session.datagrams.readable.getReader().read()).value!), 'd');
  });

  it('maps stream reset codes to application codes and STOP_SENDING to a reset with the same code', async () => {
    const { io, wt, session } = open();
    wt.handle({ type: 'webtransport-stream', streamId: 4, sessionId: 0, bidirectional: true });
    const s = (await session.incomingBidirectionalStreams.getReader().read()).value!;
    wt.handle({ type: 'webtransport-reset', streamId: 4, code: webTransportCodeToHttp3(42) });
    const err = await rejection(s.readable.getReader().read());
    assert.equal(err.code, 'HARRIER_ERR_WT_STREAM_RESET');
    assert.equal(err.streamErrorCode, 42);
    wt.handle({ type: 'webtransport-stop', streamId: 4, code: webTransportCodeToHttp3(7) });
    assert.deepEqual(io.resets, [[4, webTransportCodeToHttp3(7)]]);
    assert.equal((await rejection(s.writable.getWriter().write(bytes('x')))).code, 'HARRIER_ERR_WT_STREAM_STOPPED');
  });

  it('rejects ready and ends a session that the pipeline rejected', async () => {
    const wt = new WebTransportConnection(new FakeIO());
    const s = wt.open(0, request)!;
    s._rejected(403);
    assert.equal((await rejection(s.ready)).code, 'HARRIER_ERR_WT_SESSION_REJECTED');
    assert.equal(wt.size, 0);
  });

  it('ends every session abruptly when the connection closes', async () => {
    const { wt, session } = open();
    wt.closed('gone');
    assert.equal((await rejection(session.closed)).code, 'HARRIER_ERR_WT_SESSION_ABORTED');
  });
});

describe('webtransport messages (msgpack)', () => {
  const values = [{ hello: 'world', n: 42 }, [1, 2, 3], 'text', null, { nested: { deep: [true, false] } }];

  it('frames values with a 32-bit length and reads them back with the input split at every byte', () => {
    const wire = concat(values.map(encodeMessageFrame));
    for (let i = 0; i <= wire.length; i++) {
      const r = new MessageReader();
      const out: unknown[] = [];
      for (const part of [wire.subarray(0, i), wire.subarray(i)]) {
        r.push(part);
        for (let m = r.next(); m; m = r.next()) out.push(m.value);
      }
      r.end();
      assert.deepEqual(out, values, `split at ${i}`);
    }
  });

  it('puts one value in each datagram, unframed', () => {
    for (const v of values) assert.deepEqual(decodeMessage(encodeMessage(v)), v);
  });

  it('refuses oversized frames and streams that end inside a frame', () => {
    const r = new MessageReader({ maxMessageSize: 4 });
    r.push(encodeMessageFrame('longer than four'));
    assert.throws(() => r.next(), MessageError);
    const t = new MessageReader();
    t.push(encodeMessageFrame({ a: 1 }).subarray(0, 5));
    t.end();
    assert.throws(() => t.next(), /inside a message/);
  });
});
