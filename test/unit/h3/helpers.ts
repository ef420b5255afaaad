// Test helpers: a transport that records everything, a minimal HTTP/3 client side, and
// ways to feed bytes split at every point (after aioquic's FakeQuicConnection).
import { H3Event, H3ServerConnection, H3Transport, H3Options, FrameReader, encodeFrameHeader, encodeHeadersFrame } from '../../../src/h3';
import { encodeSettingsFrame, FrameType, StreamType } from '../../../src/h3/frames';
import { encodeVarint } from '../../../src/h3/varint';
import { HeaderField, QpackDecoder, QpackEncoder } from '../../../src/qpack';

export class FakeTransport implements H3Transport {
  readonly writes = new Map<number, Uint8Array[]>();
  readonly fins = new Set<number>();
  readonly resets: Array<[number, number]> = [];
  readonly stops: Array<[number, number]> = [];
  readonly closes: Array<{ code: number; reason: string }> = [];

  write(streamId: number, data: Uint8Array, fin: boolean): void {
    if (this.fins.has(streamId)) throw new Error(`write on stream ${streamId} after fin`);
    const list = this.writes.get(streamId) ?? [];
    list.push(data.slice());
    this.writes.set(streamId, list);
    if (fin) this.fins.add(streamId);
  }
  resetStream(streamId: number, code: number): void {
    this.resets.push([streamId, code]);
  }
  stopSending(streamId: number, code: number): void {
    this.stops.push([streamId, code]);
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
  }
  /** Everything written on a stream, concatenated. */
  written(streamId: number): Uint8Array {
    return concat(this.writes.get(streamId) ?? []);
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
export const text = (b: Uint8Array): string => String.fromCharCode(...b);

/** A client's control stream: type 0x00 then SETTINGS. */
export function clientControl(settings: Array<[number, number]> = []): Uint8Array {
  return concat([encodeVarint(StreamType.CONTROL), encodeSettingsFrame(settings)]);
}

export function dataFrame(payload: Uint8Array | string): Uint8Array {
  const p = typeof payload === 'string' ? bytes(payload) : payload;
  return concat([encodeFrameHeader(FrameType.DATA, p.length), p]);
}

/** A connection with GREASE off (so output is deterministic) and a client-side QPACK encoder. */
export class Harness {
  readonly t = new FakeTransport();
  readonly conn: H3ServerConnection;
  readonly enc = new QpackEncoder();

  constructor(options: H3Options = {}) {
    this.conn = new H3ServerConnection(this.t, { grease: false, ...options });
    this.conn.start();
  }

  /** HEADERS frame for a field section, encoded without the dynamic table. */
  headers(fields: HeaderField[], streamId = 0): Uint8Array {
    return encodeHeadersFrame(this.enc.encodeFieldSection(streamId, fields));
  }

  feed(streamId: number, data: Uint8Array, fin = false): H3Event[] {
    return this.conn.receiveStreamData(streamId, data, fin);
  }

  /** Sets up the client's control stream (id 2). */
  handshake(settings: Array<[number, number]> = []): H3Event[] {
    return this.feed(2, clientControl(settings));
  }

  /** The response the server wrote on a request stream: decoded header sections and body. */
  response(streamId: number): { sections: HeaderField[][]; body: string; fin: boolean } {
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
    const reader = new FrameReader();
    reader.push(this.t.written(streamId));
    const sections: HeaderField[][] = [];
    let body = '';
    for (let f = reader.next(); f; f = reader.next()) {
      if (f.kind === 'headers') {
        const r = dec.decodeFieldSection(streamId, f.block);
        if (r === 'blocked') throw new Error('blocked');
        sections.push(r);
      } else if (f.kind === 'data') body += text(f.chunk);
    }
    return { sections, body, fin: this.t.fins.has(streamId) };
  }
}

export const GET: HeaderField[] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/'],
];

/** Feeds `data` in pieces ending at `cuts` (sorted offsets), fin on the last piece. */
export function feedSplit(
  receive: (d: Uint8Array, fin: boolean) => H3Event[],
  data: Uint8Array,
  cuts: number[],
  fin: boolean,
): H3Event[] {
  const out: H3Event[] = [];
  let prev = 0;
  for (const cut of [...cuts, data.length]) {
    out.push(...receive(data.subarray(prev, cut), fin && cut === data.length));
    prev = cut;
  }
  return out;
}

/**
 * Canonical form of an event list, independent of how input was split: DATA pieces merged,
 * `fin` on headers moved to an empty data event, payloads as strings.
 */
export function normalize(events: H3Event[]): unknown[] {
  const out: Array<Record<string, unknown>> = [];
  for (const e of events) {
    if (e.type === 'headers') {
      out.push({ type: 'headers', streamId: e.streamId, headers: e.headers });
      if (e.fin) merge(out, e.streamId, '', true);
    } else if (e.type === 'data') {
      merge(out, e.streamId, text(e.data), e.fin);
    } else {
      out.push({ ...e });
    }
  }
  return out;
}

function merge(out: Array<Record<string, unknown>>, streamId: number, data: string, fin: boolean): void {
  const last = out[out.length - 1];
  if (last && last.type === 'data' && last.streamId === streamId && !last.fin) {
    last.data = (last.data as string) + data;
    last.fin = fin;
  } else if (data.length > 0 || fin) {
    out.push({ type: 'data', streamId, data, fin });
  }
}

/** Random sorted cut points in 0..n, deterministic for a seed. */
export function randomCuts(n: number, seed: number): number[] {
  let x = seed || 1;
  const cuts: number[] = [];
  for (let i = 1; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    if (x % 5 === 0) cuts.push(i);
  }
  return cuts;
}
