/**
 * WebTransport over HTTP/2 (draft-ietf-webtrans-http2): the TCP fallback of the same session
 * API that src/webtransport serves over HTTP/3. One extended CONNECT stream (RFC 8441,
 * `:protocol webtransport`) carries one session; its streams, flow control and datagrams all
 * travel as capsules (RFC 9297) in that stream's DATA frames.
 *
 * Written to draft-ietf-webtrans-http2-14, and to what @fails-components/webtransport 1.6.8
 * (the one client there is) sends where it differs:
 * - its stream ids use HTTP/2 parity (client-initiated odd) where the draft uses QUIC parity
 *   (§5.2: client-initiated even). We follow whichever the client uses: the first stream id it
 *   refers to fixes the parity; when we open a stream first, the library's parity is taken;
 * - it sends one SETTINGS_WT_INITIAL_MAX_STREAM_DATA_BIDI (0x2b63, now _BIDI_LOCAL), no
 *   _BIDI_REMOTE (0x2b66): without 0x2b66, 0x2b63 stands for both;
 * - its WT_RESET_STREAM has no Reliable Size, and its WT_STREAMS_BLOCKED codes are swapped;
 * - it announces a receive window (WT_MAX_STREAM_DATA) on its own unidirectional streams.
 * The HTTP/2 error codes of §3.4 are still 0xTBD: malformed capsules and stream state errors
 * reset the CONNECT stream with PROTOCOL_ERROR (RFC 9113 §8.1.1), flow-control errors with
 * 0x045d4487, the code WT_FLOW_CONTROL_ERROR has in draft-ietf-webtrans-http3.
 *
 * The parts: Http2CapsuleReader and parseWebTransportInit are pure codecs (bytes in, events
 * out); ConnectStream binds one session to its node:http2 stream; Http2WebTransport is the TLS
 * listener's entry point. Only the last two touch node:http2.
 */
import { randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import { Readable } from 'node:stream';
import { H3_EXCESSIVE_LOAD } from '../h3/errors';
import { decodeVarintSaturating, encodeVarintInto, varintLength, varintLengthFromFirstByte } from '../h3/varint';
import type { Request, ResponseSink } from '../http/context';
import { CapsuleType, MAX_CLOSE_REASON_BYTES, encodeCapsule } from './capsule';
import type { WebTransportOptions } from './connection';
import { http3CodeToWebTransport, webTransportCodeToHttp3 } from './errors';
import { attachWebTransportSession, connectSink } from './middleware';
import { WebTransportSession, type WebTransportIO } from './session';

/** draft-ietf-webtrans-http2 §11.2 SETTINGS. */
export const Http2WebTransportSetting = {
  WT_INITIAL_MAX_DATA: 0x2b61,
  WT_INITIAL_MAX_STREAM_DATA_UNI: 0x2b62,
  /** Bidirectional streams the sender of the setting opens (fails-components: all bidirectional streams). */
  WT_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: 0x2b63,
  WT_INITIAL_MAX_STREAMS_UNI: 0x2b64,
  WT_INITIAL_MAX_STREAMS_BIDI: 0x2b65,
  /** Bidirectional streams the receiver of the setting opens. */
  WT_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: 0x2b66,
} as const;

/** draft-ietf-webtrans-http2 capsule types, and the RFC 9297 / WebTransport ones it shares. */
export const Http2CapsuleType = {
  PADDING: 0x190b4d38,
  WT_RESET_STREAM: 0x190b4d39,
  WT_STOP_SENDING: 0x190b4d3a,
  WT_STREAM: 0x190b4d3b,
  WT_STREAM_FIN: 0x190b4d3c,
  WT_MAX_DATA: 0x190b4d3d,
  WT_MAX_STREAM_DATA: 0x190b4d3e,
  WT_MAX_STREAMS_BIDI: 0x190b4d3f,
  WT_MAX_STREAMS_UNI: 0x190b4d40,
  WT_DATA_BLOCKED: 0x190b4d41,
  WT_STREAM_DATA_BLOCKED: 0x190b4d42,
  /** The draft's bidirectional code; fails-components 1.6.8 uses it for unidirectional (both are accepted). */
  WT_STREAMS_BLOCKED_BIDI: 0x190b4d43,
  WT_STREAMS_BLOCKED_UNI: 0x190b4d44,
  DATAGRAM: CapsuleType.DATAGRAM,
  WT_CLOSE_SESSION: CapsuleType.CLOSE_WEBTRANSPORT_SESSION,
  WT_DRAIN_SESSION: CapsuleType.DRAIN_WEBTRANSPORT_SESSION,
} as const;

/** RST_STREAM codes the CONNECT stream is reset with (RFC 9113 §7, and the draft's flow-control error). */
export const Http2WebTransportError = {
  NO_ERROR: http2.constants.NGHTTP2_NO_ERROR,
  /**
   * A malformed capsule (RFC 9113 §8.1.1), and the draft's WEBTRANSPORT_ERROR and
   * WEBTRANSPORT_STREAM_STATE_ERROR while their codes are 0xTBD (§3.4).
   */
  PROTOCOL_ERROR: http2.constants.NGHTTP2_PROTOCOL_ERROR,
  INTERNAL_ERROR: http2.constants.NGHTTP2_INTERNAL_ERROR,
  /** More sessions than the connection allows. */
  REFUSED_STREAM: http2.constants.NGHTTP2_REFUSED_STREAM,
  ENHANCE_YOUR_CALM: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
  /**
   * Data or streams beyond the limits we advertised, or a limit that shrinks: the draft's
   * WEBTRANSPORT_FLOW_CONTROL_ERROR (0xTBD in HTTP/2), at its draft-ietf-webtrans-http3 code.
   */
  WT_FLOW_CONTROL_ERROR: 0x045d4487,
} as const;

/**
 * A protocol error on one session's CONNECT stream: the session ends and the stream is reset
 * with `code` (an RST_STREAM code, Http2WebTransportError). Never reaches application code.
 */
export class Http2CapsuleError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`${code === Http2WebTransportError.WT_FLOW_CONTROL_ERROR ? 'WT_FLOW_CONTROL_ERROR' : code === Http2WebTransportError.PROTOCOL_ERROR ? 'PROTOCOL_ERROR' : `0x${code.toString(16)}`}: ${reason}`);
    this.name = 'Http2CapsuleError';
  }
}

const malformed = (reason: string): Http2CapsuleError => new Http2CapsuleError(Http2WebTransportError.PROTOCOL_ERROR, reason);
const flowControl = (reason: string): Http2CapsuleError => new Http2CapsuleError(Http2WebTransportError.WT_FLOW_CONTROL_ERROR, reason);

// ---------------------------------------------------------------------------------------------
// The codec: pure, no I/O.
// ---------------------------------------------------------------------------------------------

/** What the capsules of a CONNECT stream say, in order. */
export type Http2CapsuleEvent =
  /** Bytes of a WT_STREAM capsule, as they arrive (a view); `fin` on the last piece of a WT_STREAM_FIN. */
  | { kind: 'stream'; streamId: number; data: Uint8Array; fin: boolean }
  /** Any other known capsule, whole. */
  | { kind: 'capsule'; type: number; value: Uint8Array }
  /** A DATAGRAM capsule over the size limit, skipped unread. */
  | { kind: 'datagram-dropped'; length: number };

const EMPTY = new Uint8Array(0);
/** Type, length and stream id: three varints at most. */
const MAX_HEAD = 24;
const T = Http2CapsuleType;

/** Longest value buffered for each control capsule type (a few varints; the close message). */
const CONTROL_MAX: ReadonlyMap<number, number> = new Map([
  [T.WT_RESET_STREAM, 24], [T.WT_STOP_SENDING, 16],
  [T.WT_MAX_DATA, 8], [T.WT_MAX_STREAM_DATA, 16], [T.WT_MAX_STREAMS_BIDI, 8], [T.WT_MAX_STREAMS_UNI, 8],
  [T.WT_DATA_BLOCKED, 8], [T.WT_STREAM_DATA_BLOCKED, 16], [T.WT_STREAMS_BLOCKED_BIDI, 8], [T.WT_STREAMS_BLOCKED_UNI, 8],
  [T.WT_CLOSE_SESSION, 4 + MAX_CLOSE_REASON_BYTES], [T.WT_DRAIN_SESSION, 0],
]);

const enum Mode { Head, Stream, Value, Skip }

/**
 * Incremental reader of the capsules on one CONNECT stream. WT_STREAM payloads stream through
 * as views of the input, whatever their length; other known capsules are buffered whole (they
 * are small, DATAGRAM up to `maxDatagramSize`); unknown types and PADDING are skipped without
 * buffering (RFC 9297 §3.2). Errors throw Http2CapsuleError.
 */
export class Http2CapsuleReader {
  private mode = Mode.Head;
  private head = EMPTY;
  private remaining = 0;
  private streamId = 0;
  private fin = false;
  private type = 0;
  private value = EMPTY;
  private filled = 0;

  constructor(private readonly maxDatagramSize = 65535) {}

  /** True between capsules. */
  get idle(): boolean {
    return this.mode === Mode.Head && this.head.length === 0;
  }

  /** DATA payload bytes of the CONNECT stream; returns what they complete. */
  push(data: Uint8Array): Http2CapsuleEvent[] {
    const out: Http2CapsuleEvent[] = [];
    let off = 0;
    while (off < data.length) {
      const avail = data.length - off;
      switch (this.mode) {
        case Mode.Head:
          off = this.readHead(data, off, out);
          break;
        case Mode.Stream: {
          const n = Math.min(this.remaining, avail);
          this.remaining -= n;
          out.push({ kind: 'stream', streamId: this.streamId, data: data.subarray(off, off + n), fin: this.fin && this.remaining === 0 });
          off += n;
          if (this.remaining === 0) this.mode = Mode.Head;
          break;
        }
        case Mode.Value: {
          const n = Math.min(this.value.length - this.filled, avail);
          this.value.set(data.subarray(off, off + n), this.filled);
          this.filled += n;
          off += n;
          if (this.filled === this.value.length) {
            out.push({ kind: 'capsule', type: this.type, value: this.value });
            this.mode = Mode.Head;
          }
          break;
        }
        case Mode.Skip: {
          const n = Math.min(this.remaining, avail);
          this.remaining -= n;
          off += n;
          if (this.remaining === 0) this.mode = Mode.Head;
          break;
        }
      }
    }
    return out;
  }

  /** The CONNECT stream ended (END_STREAM). */
  end(): void {
    // RFC 9297 §3.3: a stream that ends inside a capsule is a malformed message.
    if (!this.idle) throw malformed('CONNECT stream ended inside a capsule');
  }

  /** Reads a capsule's type, length (and stream id); returns the offset after the bytes used. */
  private readHead(data: Uint8Array, off: number, out: Http2CapsuleEvent[]): number {
    const held = this.head.length;
    const take = data.subarray(off, off + Math.min(data.length - off, MAX_HEAD - held));
    const buf = held === 0 ? take : concat(this.head, take);
    const t = decodeVarintSaturating(buf, 0);
    const l = t && decodeVarintSaturating(buf, t.length);
    if (!t || !l) return this.holdHead(buf, data);
    let used = t.length + l.length;
    const type = t.value;
    const length = l.value;
    if (type === T.WT_STREAM || type === T.WT_STREAM_FIN) {
      // draft-ietf-webtrans-http2 §6.4: the value starts with the stream id.
      if (length === 0) throw malformed('WT_STREAM without a stream id');
      if (used >= buf.length) return this.holdHead(buf, data);
      const idLength = varintLengthFromFirstByte(buf[used]);
      if (idLength > length) throw malformed('WT_STREAM stream id runs past the capsule');
      const id = decodeVarintSaturating(buf, used);
      if (!id) return this.holdHead(buf, data);
      used += id.length;
      this.streamId = id.value;
      this.fin = type === T.WT_STREAM_FIN;
      this.remaining = length - id.length;
      if (this.remaining === 0) out.push({ kind: 'stream', streamId: id.value, data: EMPTY, fin: this.fin });
      else this.mode = Mode.Stream;
    } else if (type === T.DATAGRAM) {
      if (length > this.maxDatagramSize) {
        out.push({ kind: 'datagram-dropped', length });
        this.skip(length);
      } else this.buffer(type, length, out);
    } else {
      const max = CONTROL_MAX.get(type);
      if (max === undefined) this.skip(length); // unknown, or PADDING
      else if (length > max) throw malformed(`capsule 0x${type.toString(16)} of ${length} bytes`);
      else this.buffer(type, length, out);
    }
    this.head = EMPTY;
    return off + used - held;
  }

  private holdHead(buf: Uint8Array, data: Uint8Array): number {
    this.head = buf.slice();
    return data.length;
  }

  private skip(length: number): void {
    this.remaining = length;
    if (length > 0) this.mode = Mode.Skip;
  }

  private buffer(type: number, length: number, out: Http2CapsuleEvent[]): void {
    this.type = type;
    this.value = new Uint8Array(length);
    this.filled = 0;
    if (length === 0) out.push({ kind: 'capsule', type, value: this.value });
    else this.mode = Mode.Value;
  }
}

/**
 * The varints of a capsule value: `count` of them, or up to `optional` more (RFC 9297 §3.3: a
 * value that ends inside a field or has bytes after its fields is malformed).
 */
export function decodeFields(value: Uint8Array, count: number, name: string, optional = 0): number[] {
  const fields: number[] = [];
  let off = 0;
  while (fields.length < count || (fields.length < count + optional && off < value.length)) {
    const v = decodeVarintSaturating(value, off);
    if (!v) throw malformed(`${name} ends inside a field`);
    fields.push(v.value);
    off += v.length;
  }
  if (off !== value.length) throw malformed(`${name} has bytes after its fields`);
  return fields;
}

/**
 * A capsule's type, length and varint fields (WT_MAX_DATA, WT_RESET_STREAM...: the whole
 * capsule); `payloadLength` bytes of payload follow it when given (WT_STREAM).
 */
export function encodeCapsuleHead(type: number, fields: number[], payloadLength = 0): Uint8Array {
  let valueLength = payloadLength;
  for (const f of fields) valueLength += varintLength(f);
  const head = new Uint8Array(varintLength(type) + varintLength(valueLength) + valueLength - payloadLength);
  let off = encodeVarintInto(type, head, 0);
  off += encodeVarintInto(valueLength, head, off);
  for (const f of fields) off += encodeVarintInto(f, head, off);
  return head;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The binding: one session on one node:http2 CONNECT stream.
// ---------------------------------------------------------------------------------------------

export interface Http2WebTransportOptions extends WebTransportOptions {
  /**
   * Session receive window: bytes the client may send on all streams of a session beyond what
   * the application has taken (SETTINGS_WT_INITIAL_MAX_DATA, then WT_MAX_DATA). Default 1 MiB.
   */
  sessionWindow?: number;
  /**
   * Stream receive window (SETTINGS_WT_INITIAL_MAX_STREAM_DATA_UNI, _BIDI_LOCAL and
   * _BIDI_REMOTE, then WT_MAX_STREAM_DATA). Default 256 KiB.
   */
  streamWindow?: number;
  /** Largest datagram payload sent or accepted; longer DATAGRAM capsules are skipped. Default 16,384. */
  maxDatagramSize?: number;
  /** Send a capsule of a reserved type first in each session (RFC 9297 §5.4). Default true. */
  grease?: boolean;
}

/** Bytes queued per WebTransport stream before its writer waits. */
const HIGH_WATER = 64 * 1024;
/** Most stream bytes in one WT_STREAM capsule (one HTTP/2 DATA frame at the default frame size). */
const MAX_CHUNK = 16 * 1024;
/** Datagrams are dropped while the CONNECT stream has this much unsent. */
const DATAGRAM_QUEUE_LIMIT = 1024 * 1024;
/** RFC 9000 §19.11: stream counts above 2^60 cannot be used. */
const MAX_STREAM_COUNT = 2 ** 60;

interface Limits {
  sessionWindow: number;
  streamWindow: number;
  /** Streams of each kind the client may have open: [bidirectional, unidirectional]. */
  streams: [number, number];
  maxDatagramSize: number;
  grease: boolean;
}

/** What the client allows us: its SETTINGS (and WebTransport-Init), or 0 (§11.2: wait for the capsules). */
interface PeerLimits {
  maxData: number;
  /** On the bidirectional streams it opens. */
  streamDataBidiPeer: number;
  /** On the bidirectional streams we open. */
  streamDataBidiOurs: number;
  /** On the unidirectional streams we open. */
  streamDataUni: number;
  streams: [number, number];
}

/** Both sides of one WebTransport stream inside the session. */
interface WtStream {
  readonly id: number;
  readonly local: boolean;
  readonly bidi: boolean;
  /** Receiving: done once its end or reset reached the session, or we sent STOP_SENDING. */
  recvDone: boolean;
  finReceived: boolean;
  resetReceived: boolean;
  stopReceived: boolean;
  received: number;
  consumed: number;
  recvMax: number;
  paused: boolean;
  pending: Array<{ data: Uint8Array; fin: boolean }>;
  /** Sending: done once the WT_STREAM_FIN or WT_RESET_STREAM went out. */
  sendDone: boolean;
  /** Our first capsule on a stream we opened went out (it needs the client's stream credit). */
  announced: boolean;
  queue: Uint8Array[];
  queued: number;
  finQueued: boolean;
  sent: number;
  sendMax: number;
  blockedAt: number;
  scheduled: boolean;
  waiters: Array<() => void>;
}

/** draft-ietf-webtrans-http2 §6.2, §6.3: an application error code above 0xffffffff is a WEBTRANSPORT_ERROR. */
function applicationCode(code: number, name: string): void {
  if (code > 0xffffffff) throw malformed(`${name} with error code ${code} (over 32 bits)`);
}

/** An application error code (u32 on the wire) as the HTTP/3 code the session deals in. */
function appToHttp3(code: number): number {
  return Number.isInteger(code) && code <= 0xffffffff ? webTransportCodeToHttp3(code) : code;
}

/**
 * The session's HTTP/3 stream error code as the code in WT_RESET_STREAM / WT_STOP_SENDING: the
 * application code when it carries one; other codes (WT_SESSION_GONE...) travel as they are.
 */
function http3ToApp(code: number): number {
  const app = http3CodeToWebTransport(code);
  if (app !== null) return app;
  return Number.isSafeInteger(code) && code >= 0 ? code : 0;
}

/** The RST_STREAM code for an error the session reports in the HTTP/3 space (its capsule errors). */
function http2ResetCode(code: number): number {
  if (code === Http2WebTransportError.WT_FLOW_CONTROL_ERROR || code <= 0xd) return code;
  if (code === H3_EXCESSIVE_LOAD) return Http2WebTransportError.ENHANCE_YOUR_CALM;
  return Http2WebTransportError.PROTOCOL_ERROR;
}

/**
 * One WebTransport session on its HTTP/2 CONNECT stream: reads the capsules, keeps the flow
 * control of both directions, and is the session's WebTransportIO. Stream ids are the
 * session's own (WT_STREAM ids), not HTTP/2 stream ids.
 */
class ConnectStream implements WebTransportIO {
  readonly session: WebTransportSession;
  readonly maxDatagramSize: number;
  readonly streamPreamble = false;
  private readonly reader: Http2CapsuleReader;
  private readonly streams = new Map<number, WtStream>();
  /** Client stream ids below the highest it used that it has not used yet (QUIC: opened implicitly). */
  private readonly available = new Set<number>();
  /** Low bit of client-initiated stream ids: 1 as fails-components sends them, 0 in the draft. */
  private clientBit: 0 | 1 | undefined;
  private readonly nextPeer: [number, number] = [0, 0];
  private readonly nextLocal: [number, number] = [0, 0];
  // Receiving: what we allow the client.
  private received = 0;
  private consumed = 0;
  private recvMaxData: number;
  private readonly peerStreamsAdvertised: [number, number];
  private readonly peerStreamsClosed: [number, number] = [0, 0];
  // Sending: what the client allows us.
  private sent = 0;
  private sendMaxData: number;
  private dataBlockedAt = -1;
  private readonly localStreamsAllowed: [number, number];
  private readonly ready: number[] = [];
  /** Capsules produced before the session was accepted: nothing may precede the response. */
  private held: Uint8Array[] | undefined = [];
  private writable = true;
  private pumping = false;
  /** Our side of the CONNECT stream is finished (FIN or reset): nothing more is written. */
  private ending = false;
  private peerClosed = false;
  private closed = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    request: Request,
    private readonly limits: Limits,
    private readonly peer: PeerLimits,
    options: Http2WebTransportOptions,
  ) {
    this.maxDatagramSize = limits.maxDatagramSize;
    this.reader = new Http2CapsuleReader(limits.maxDatagramSize);
    this.recvMaxData = limits.sessionWindow;
    this.peerStreamsAdvertised = [...limits.streams];
    this.sendMaxData = peer.maxData;
    this.localStreamsAllowed = [...peer.streams];
    this.session = new WebTransportSession(this, stream.id ?? 0, {
      path: request.target,
      authority: request.authority,
      origin: request.get('origin'),
      headers: request.headers.toList(),
    }, options);
    // fails-components resets the CONNECT stream after its WT_CLOSE_SESSION; 'close' follows.
    stream.on('error', () => undefined);
    stream.on('close', () => this.onClose());
    stream.on('drain', () => {
      this.writable = true;
      this.pump();
    });
  }

  /** The 2xx response went out: capsules may flow. */
  accept(): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.session._accepted();
    // RFC 9297 §5.4: types 0x29 * N + 0x17 are reserved to keep receivers skipping unknown capsules.
    if (this.limits.grease) this.out(encodeCapsule(0x29 * Math.floor(Math.random() * 0x10000) + 0x17, randomBytes(Math.floor(Math.random() * 8))));
    for (const c of held) this.out(c);
    this.pump();
    // draft-ietf-webtrans-http2 §3.2: no capsule is processed before the session is accepted;
    // until now HTTP/2 flow control held back what the client sent early.
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.on('end', () => this.onEnd());
  }

  // ---- WebTransportIO ----

  write(streamId: number, data: Uint8Array, fin: boolean): boolean {
    const s = this.streams.get(streamId);
    if (!s || s.sendDone || s.finQueued || this.ending) return true;
    if (data.byteLength > 0) {
      s.queue.push(data);
      s.queued += data.byteLength;
    }
    if (fin) s.finQueued = true;
    this.schedule(s);
    this.pump();
    return s.queued <= HIGH_WATER;
  }

  drained(streamId: number): Promise<void> {
    const s = this.streams.get(streamId);
    if (!s || s.queued <= HIGH_WATER || s.sendDone || this.ending) return Promise.resolve();
    return new Promise((resolve) => s.waiters.push(resolve));
  }

  openStream(bidirectional: boolean): number {
    this.clientBit ??= 1;
    const k = bidirectional ? 0 : 1;
    let id = this.nextLocal[k]++ * 4 + (bidirectional ? 0 : 2) + (1 - this.clientBit);
    // fails-components 1.6.8 loses the rest of a WT_STREAM capsule split across reads when the
    // stream id is 0 (`if (this.rstreamid)` is false for 0n): our first bidirectional stream
    // is 4 instead. The client counts 0 as opened (QUIC's implicit opening), so it costs one
    // stream of its limit.
    if (id === 0) id = this.nextLocal[k]++ * 4;
    const s = this.newStream(id, true, bidirectional);
    this.schedule(s);
    this.pump();
    return id;
  }

  resetStream(streamId: number, code: number): void {
    const s = this.streams.get(streamId);
    if (!s || s.sendDone) return;
    this.dropQueue(s);
    s.sendDone = true;
    if (s.announced || !s.local) this.control(T.WT_RESET_STREAM, [streamId, http3ToApp(code)]);
    this.maybeForget(s);
  }

  stopSending(streamId: number, code: number): void {
    const s = this.streams.get(streamId);
    if (!s || s.recvDone) return;
    s.recvDone = true;
    for (const p of s.pending.splice(0)) this.consume(s, p.data.byteLength);
    if (s.announced || !s.local) this.control(T.WT_STOP_SENDING, [streamId, http3ToApp(code)]);
    this.maybeForget(s);
  }

  pauseReading(streamId: number, paused: boolean): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    s.paused = paused;
    if (paused) return;
    while (!s.paused && s.pending.length > 0) {
      const p = s.pending.shift()!;
      this.deliver(s, p.data, p.fin);
    }
    // Credit held back while the application was not reading.
    if (!s.paused) this.creditStream(s, false);
  }

  sendCapsules(_sessionId: number, data: Uint8Array, fin: boolean): void {
    if (this.ending || this.held) return;
    if (data.byteLength > 0) this.out(data);
    if (fin) {
      this.ending = true;
      this.dropAll();
      if (!this.stream.destroyed) this.stream.end();
    }
  }

  abortConnect(_sessionId: number, code: number): void {
    this.reset(http2ResetCode(code));
  }

  sendDatagram(_sessionId: number, payload: Uint8Array): boolean {
    if (this.held || this.ending || this.stream.destroyed || this.stream.writableLength > DATAGRAM_QUEUE_LIMIT) return false;
    // One copy: the application may reuse its buffer once write() returns.
    this.out(encodeCapsule(T.DATAGRAM, payload));
    return true;
  }

  // ---- Graceful shutdown ----

  /** Asks the client to wind down (WT_DRAIN_SESSION). */
  drain(): void {
    this.session._goaway();
  }

  /** A session not accepted yet will not be: RST_STREAM REFUSED_STREAM (RFC 9113 §8.7: not processed). */
  refuse(reason: string): void {
    this.reset(Http2WebTransportError.REFUSED_STREAM);
    this.session._aborted(reason);
  }

  // ---- Reading ----

  private onData(chunk: Buffer): void {
    if (this.closed || (this.session.readyState === 'closed' && !this.peerClosed)) return;
    if (this.peerClosed) {
      // draft-ietf-webtrans-http2 §6.12: the stream ends after WT_CLOSE_SESSION; the session
      // resets it when more comes (H3_MESSAGE_ERROR, PROTOCOL_ERROR here).
      this.session._connectData(chunk, false);
      return;
    }
    try {
      const events = this.reader.push(chunk);
      for (let i = 0; i < events.length && !this.closed; i++) {
        this.handle(events[i]);
        if (this.peerClosed && (i < events.length - 1 || !this.reader.idle)) {
          this.session._connectData(chunk, false);
          break;
        }
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private onEnd(): void {
    if (this.closed || (this.session.readyState === 'closed' && !this.peerClosed)) return;
    // A stream destroyed with the connection ends its readable side too: that is no clean close ('close' follows).
    if (this.stream.destroyed) return;
    try {
      this.reader.end();
      // draft-ietf-webtrans-http2 §6.12: an end without WT_CLOSE_SESSION is a close with code 0;
      // the session answers with the end of our side.
      this.session._connectData(EMPTY, true);
    } catch (err) {
      this.fail(err);
    }
  }

  private onClose(): void {
    this.ending = true;
    this.dropAll();
    if (this.session.readyState !== 'closed') {
      const code = this.stream.rstCode ?? 0;
      this.session._aborted(code ? `CONNECT stream reset (0x${code.toString(16)})` : 'CONNECT stream closed');
    }
    this.closed = true;
  }

  private handle(e: Http2CapsuleEvent): void {
    if (e.kind === 'stream') {
      this.streamData(e.streamId, e.data, e.fin);
      return;
    }
    if (e.kind === 'datagram-dropped') {
      this.session.datagrams.dropped.incoming++;
      return;
    }
    const v = e.value;
    switch (e.type) {
      case T.DATAGRAM:
        // RFC 9297 §3.5: the DATAGRAM capsule carries an HTTP Datagram payload.
        this.session._datagram(v);
        return;
      case T.WT_CLOSE_SESSION:
        this.peerClosed = true;
        this.session._connectData(encodeCapsule(e.type, v), false);
        return;
      case T.WT_DRAIN_SESSION:
        this.session._connectData(encodeCapsule(e.type, v), false);
        return;
      case T.WT_MAX_DATA: {
        const [max] = decodeFields(v, 1, 'WT_MAX_DATA');
        // draft-ietf-webtrans-http2 §6.5: a smaller Maximum Data is a WEBTRANSPORT_FLOW_CONTROL_ERROR.
        if (max < this.sendMaxData) throw flowControl(`WT_MAX_DATA went down from ${this.sendMaxData} to ${max}`);
        if (max === this.sendMaxData) return;
        this.sendMaxData = max;
        for (const s of this.streams.values()) if (s.queued > 0 || s.finQueued) this.schedule(s);
        this.pump();
        return;
      }
      case T.WT_MAX_STREAM_DATA: {
        const [id, max] = decodeFields(v, 2, 'WT_MAX_STREAM_DATA');
        // fails-components 1.6.8 announces its receive window on every stream it opens, its
        // unidirectional ones too (where QUIC has a STREAM_STATE_ERROR): ignored.
        if (Number.isSafeInteger(id) && !this.isLocal(id) && Math.floor(id / 2) % 2 === 1) return;
        const s = this.lookup(id, 'send');
        if (!s) return;
        // draft-ietf-webtrans-http2 §6.6: not after the client's WT_STOP_SENDING (a stream state error), and never smaller.
        if (s.stopReceived) throw malformed(`WT_MAX_STREAM_DATA on stream ${id} after its WT_STOP_SENDING`);
        if (max < s.sendMax) throw flowControl(`WT_MAX_STREAM_DATA of stream ${id} went down from ${s.sendMax} to ${max}`);
        if (max === s.sendMax) return;
        s.sendMax = max;
        this.schedule(s);
        this.pump();
        return;
      }
      case T.WT_MAX_STREAMS_BIDI:
      case T.WT_MAX_STREAMS_UNI: {
        const [max] = decodeFields(v, 1, 'WT_MAX_STREAMS');
        // draft-ietf-webtrans-http2 §6.7, RFC 9000 §19.11: a count above 2^60 is an error.
        if (max > MAX_STREAM_COUNT) throw malformed('WT_MAX_STREAMS above 2^60');
        const k = e.type === T.WT_MAX_STREAMS_BIDI ? 0 : 1;
        // draft-ietf-webtrans-http2 §6.7: a smaller Maximum Streams is a WEBTRANSPORT_FLOW_CONTROL_ERROR.
        if (max < this.localStreamsAllowed[k]) throw flowControl(`WT_MAX_STREAMS went down from ${this.localStreamsAllowed[k]} to ${max}`);
        if (max === this.localStreamsAllowed[k]) return;
        this.localStreamsAllowed[k] = max;
        for (const s of this.streams.values()) if (s.local && !s.announced && (s.bidi ? 0 : 1) === k) this.schedule(s);
        this.pump();
        return;
      }
      case T.WT_DATA_BLOCKED:
        decodeFields(v, 1, 'WT_DATA_BLOCKED');
        this.creditSession(true);
        return;
      case T.WT_STREAM_DATA_BLOCKED: {
        const [id] = decodeFields(v, 2, 'WT_STREAM_DATA_BLOCKED');
        const s = this.lookup(id, 'receive');
        if (s) this.creditStream(s, true);
        return;
      }
      case T.WT_STREAMS_BLOCKED_BIDI:
      case T.WT_STREAMS_BLOCKED_UNI: {
        // The library and the draft disagree on which code is which: answer for both kinds.
        const [count] = decodeFields(v, 1, 'WT_STREAMS_BLOCKED');
        if (count > MAX_STREAM_COUNT) throw malformed('WT_STREAMS_BLOCKED above 2^60');
        this.grantStreams(0, true);
        this.grantStreams(1, true);
        return;
      }
      case T.WT_RESET_STREAM: {
        // draft-ietf-webtrans-http2 §6.2: Reliable Size is the third field (fails-components 1.6.8 sends two).
        const [id, code, reliableSize] = decodeFields(v, 2, 'WT_RESET_STREAM', 1);
        applicationCode(code, 'WT_RESET_STREAM');
        const s = this.lookup(id, 'receive');
        if (!s) return;
        // §6.2: not after a reset (a stream state error); a Reliable Size beyond what came is a session error.
        if (s.resetReceived) throw malformed(`second WT_RESET_STREAM on stream ${id}`);
        if (reliableSize !== undefined && reliableSize > s.received) throw malformed(`WT_RESET_STREAM of stream ${id} promises ${reliableSize} bytes, ${s.received} came`);
        s.resetReceived = true;
        if (s.recvDone) return;
        s.recvDone = true;
        for (const p of s.pending.splice(0)) this.consume(s, p.data.byteLength);
        this.session._streamReset(id, appToHttp3(code));
        this.maybeForget(s);
        return;
      }
      case T.WT_STOP_SENDING: {
        const [id, code] = decodeFields(v, 2, 'WT_STOP_SENDING');
        applicationCode(code, 'WT_STOP_SENDING');
        const s = this.lookup(id, 'send');
        if (!s) return;
        // draft-ietf-webtrans-http2 §6.3: a second WT_STOP_SENDING is a stream state error.
        if (s.stopReceived) throw malformed(`second WT_STOP_SENDING on stream ${id}`);
        s.stopReceived = true;
        if (s.sendDone) return;
        // The session answers with a reset carrying the code (RFC 9000 §3.5); if its writer
        // had already finished, we reset what is still queued ourselves.
        this.session._streamStop(id, appToHttp3(code));
        if (!s.sendDone) this.resetStream(id, appToHttp3(code));
        return;
      }
    }
  }

  private streamData(id: number, data: Uint8Array, fin: boolean): void {
    const s = this.lookup(id, 'receive', true);
    this.received += data.byteLength;
    // draft-ietf-webtrans-http2 §6.5: stream data beyond the session limit is a WEBTRANSPORT_FLOW_CONTROL_ERROR.
    if (this.received > this.recvMaxData) throw flowControl(`session data beyond ${this.recvMaxData} bytes`);
    if (!s) {
      // A stream that is gone: its bytes still count against the session, then are released.
      this.consumed += data.byteLength;
      this.creditSession(false);
      return;
    }
    // draft-ietf-webtrans-http2 §6.4: a WT_STREAM after the stream's end or reset is a stream
    // state error. After a reset it is only counted and dropped: fails-components 1.6.8 keeps
    // sending what it had queued when its application aborted the stream.
    if (s.finReceived) throw malformed(`WT_STREAM on stream ${id} after its end`);
    if (s.resetReceived) {
      this.consume(s, data.byteLength);
      return;
    }
    s.received += data.byteLength;
    // draft-ietf-webtrans-http2 §6.6: and beyond the stream's limit.
    if (s.received > s.recvMax) throw flowControl(`stream ${id} data beyond ${s.recvMax} bytes`);
    if (fin) s.finReceived = true;
    if (s.recvDone) {
      this.consume(s, data.byteLength);
      return;
    }
    if (s.paused || s.pending.length > 0) s.pending.push({ data, fin });
    else this.deliver(s, data, fin);
  }

  private deliver(s: WtStream, data: Uint8Array, fin: boolean): void {
    if (fin) s.recvDone = true;
    this.session._streamData(s.id, data, fin);
    this.consume(s, data.byteLength);
    if (fin) this.maybeForget(s);
  }

  /** Bytes left our hands (to the session, or dropped): the client may send as many more. */
  private consume(s: WtStream, n: number): void {
    s.consumed += n;
    this.consumed += n;
    this.creditStream(s, false);
    this.creditSession(false);
  }

  private creditStream(s: WtStream, force: boolean): void {
    if (s.recvDone || s.finReceived || s.paused) return;
    const window = this.limits.streamWindow;
    const next = s.consumed + window;
    if (next <= s.recvMax || (!force && s.recvMax - s.consumed >= window / 2)) return;
    s.recvMax = next;
    this.control(T.WT_MAX_STREAM_DATA, [s.id, next]);
  }

  private creditSession(force: boolean): void {
    const window = this.limits.sessionWindow;
    const next = this.consumed + window;
    if (next <= this.recvMaxData || (!force && this.recvMaxData - this.consumed >= window / 2)) return;
    this.recvMaxData = next;
    this.control(T.WT_MAX_DATA, [next]);
  }

  /** More streams for the client once half of what it may open is used (QUIC's MAX_STREAMS: a count). */
  private grantStreams(k: 0 | 1, force: boolean): void {
    const limit = this.limits.streams[k] + this.peerStreamsClosed[k];
    const advertised = this.peerStreamsAdvertised[k];
    if (limit <= advertised) return;
    if (!force && advertised - this.nextPeer[k] > this.limits.streams[k] / 2) return;
    this.peerStreamsAdvertised[k] = limit;
    this.control(k === 0 ? T.WT_MAX_STREAMS_BIDI : T.WT_MAX_STREAMS_UNI, [limit]);
  }

  /**
   * The stream a capsule from the client refers to: `receive` for its data, reset and
   * STREAM_DATA_BLOCKED (our receiving side), `send` for MAX_STREAM_DATA and STOP_SENDING.
   * A new client stream is opened when `opens`; a closed one gives undefined. Throws on a
   * stream the client may not use that way.
   */
  private lookup(id: number, side: 'receive' | 'send', opens = false): WtStream | undefined {
    // Ids past 2^53 exceed any stream count we grant.
    if (!Number.isSafeInteger(id)) throw flowControl(`stream id ${id} beyond the stream limit`);
    const local = this.isLocal(id);
    const bidi = Math.floor(id / 2) % 2 === 0;
    // draft-ietf-webtrans-http2 §5.2 keeps QUIC's stream states (RFC 9000 §19.4, §19.5, §19.8,
    // §19.10): a unidirectional stream has one side only; naming the other is a stream state error.
    if (!bidi && local === (side === 'receive')) throw malformed(`stream ${id} is unidirectional the other way`);
    const s = this.streams.get(id);
    if (s) return s;
    const k = bidi ? 0 : 1;
    const index = Math.floor(id / 4);
    if (local) {
      // RFC 9000 §19.8: a locally-initiated stream we have not opened yet.
      if (index >= this.nextLocal[k]) throw malformed(`stream ${id} is ours and was never opened`);
      return undefined;
    }
    if (index < this.nextPeer[k]) {
      if (!opens || !this.available.delete(id)) return undefined;
      return this.openPeerStream(id, bidi);
    }
    // draft-ietf-webtrans-http2 §6.7: a stream beyond the advertised Maximum Streams is a WEBTRANSPORT_FLOW_CONTROL_ERROR.
    if (index >= this.peerStreamsAdvertised[k]) throw flowControl(`stream ${id} beyond the limit of ${this.peerStreamsAdvertised[k]}`);
    // draft-ietf-webtrans-http2 §6.7: opening a stream opens the lower ones of its kind too.
    for (let i = this.nextPeer[k]; i < index; i++) this.available.add(i * 4 + (bidi ? 0 : 2) + (this.clientBit as number));
    this.nextPeer[k] = index + 1;
    if (!opens) {
      this.available.add(id);
      return undefined;
    }
    return this.openPeerStream(id, bidi);
  }

  /** True for a stream id of ours; the first stream the client refers to fixes the parity (see the file comment). */
  private isLocal(id: number): boolean {
    this.clientBit ??= (id % 2) as 0 | 1;
    return id % 2 !== this.clientBit;
  }

  private openPeerStream(id: number, bidi: boolean): WtStream {
    const s = this.newStream(id, false, bidi);
    this.session._incomingStream(id, bidi);
    return s;
  }

  private newStream(id: number, local: boolean, bidi: boolean): WtStream {
    const s: WtStream = {
      id, local, bidi,
      recvDone: local && !bidi, finReceived: false, resetReceived: false, stopReceived: false,
      received: 0, consumed: 0, recvMax: this.limits.streamWindow,
      paused: false, pending: [],
      sendDone: !local && !bidi, announced: !local, queue: [], queued: 0, finQueued: false, sent: 0,
      sendMax: !bidi ? this.peer.streamDataUni : local ? this.peer.streamDataBidiOurs : this.peer.streamDataBidiPeer,
      blockedAt: -1, scheduled: false, waiters: [],
    };
    this.streams.set(id, s);
    return s;
  }

  /** Both sides are done: forget the stream, and let the client open another in its place. */
  private maybeForget(s: WtStream): void {
    if (!s.recvDone || !s.sendDone || this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    this.wake(s);
    if (s.local) return;
    const k = s.bidi ? 0 : 1;
    this.peerStreamsClosed[k]++;
    this.grantStreams(k, false);
  }

  // ---- Writing ----

  private schedule(s: WtStream): void {
    if (s.scheduled || s.sendDone) return;
    s.scheduled = true;
    this.ready.push(s.id);
  }

  /**
   * Sends stream bytes while the CONNECT stream takes them, one capsule per stream in turn,
   * within the client's limits for each stream and for the session.
   */
  private pump(): void {
    if (this.held || this.ending || this.pumping) return;
    this.pumping = true;
    try {
      let waiting = this.ready.length;
      while (this.writable && waiting > 0 && !this.ending) {
        const s = this.streams.get(this.ready.shift()!);
        waiting--;
        if (!s) continue;
        s.scheduled = false;
        if (this.sendSome(s)) {
          this.schedule(s);
          waiting = this.ready.length;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** One capsule of stream `s`; true when it has more to send now. */
  private sendSome(s: WtStream): boolean {
    if (s.sendDone) return false;
    if (!s.announced) {
      const k = s.bidi ? 0 : 1;
      if (Math.floor(s.id / 4) >= this.localStreamsAllowed[k]) return false; // until WT_MAX_STREAMS
      s.announced = true;
      // draft-ietf-webtrans-http2 §6.4: a stream is opened by its first WT_STREAM capsule; an
      // empty one when there is nothing to send yet, so that the client sees the stream.
      if (!s.finQueued && (s.queued === 0 || this.credit(s) <= 0)) this.out(encodeCapsuleHead(T.WT_STREAM, [s.id]));
    }
    if (s.queued > 0) {
      const credit = this.credit(s);
      if (credit <= 0) {
        this.blocked(s);
        return false;
      }
      let chunk = s.queue[0];
      const n = Math.min(chunk.byteLength, credit, MAX_CHUNK);
      if (n < chunk.byteLength) {
        s.queue[0] = chunk.subarray(n);
        chunk = chunk.subarray(0, n);
      } else s.queue.shift();
      s.queued -= n;
      s.sent += n;
      this.sent += n;
      this.out(encodeCapsuleHead(T.WT_STREAM, [s.id], n));
      this.out(chunk);
      if (s.queued <= HIGH_WATER) this.wake(s);
      return s.queued > 0 || s.finQueued;
    }
    if (s.finQueued) {
      // Always a capsule of its own: fails-components 1.6.8 loses a FIN that ends a capsule split across reads.
      this.out(encodeCapsuleHead(T.WT_STREAM_FIN, [s.id]));
      s.sendDone = true;
      this.maybeForget(s);
    }
    return false;
  }

  /** Stream bytes the client's limits let us send now on `s`. */
  private credit(s: WtStream): number {
    return Math.min(s.sendMax - s.sent, this.sendMaxData - this.sent);
  }

  /** Tells the client once per limit that its limit holds us back (WT_DATA_BLOCKED, WT_STREAM_DATA_BLOCKED). */
  private blocked(s: WtStream): void {
    if (this.sent >= this.sendMaxData && this.dataBlockedAt !== this.sendMaxData) {
      this.dataBlockedAt = this.sendMaxData;
      this.control(T.WT_DATA_BLOCKED, [this.sendMaxData]);
    }
    if (s.sent >= s.sendMax && s.blockedAt !== s.sendMax) {
      s.blockedAt = s.sendMax;
      this.control(T.WT_STREAM_DATA_BLOCKED, [s.id, s.sendMax]);
    }
  }

  /** A capsule of varints, in order with the stream bytes; held back until the session is accepted. */
  private control(type: number, fields: number[]): void {
    const bytes = encodeCapsuleHead(type, fields);
    if (this.held) this.held.push(bytes);
    else this.out(bytes);
  }

  private out(bytes: Uint8Array): void {
    if (this.ending || this.stream.destroyed) return;
    if (!this.stream.write(bytes)) this.writable = false;
  }

  private dropQueue(s: WtStream): void {
    s.queue = [];
    s.queued = 0;
    s.finQueued = false;
    this.wake(s);
  }

  private dropAll(): void {
    this.held = this.held && [];
    for (const s of this.streams.values()) {
      this.dropQueue(s);
      s.pending = [];
    }
  }

  private wake(s: WtStream): void {
    for (const w of s.waiters.splice(0)) w();
  }

  // ---- Errors ----

  /** A protocol error ends this session (never the connection): the CONNECT stream is reset. */
  private fail(err: unknown): void {
    const code = err instanceof Http2CapsuleError ? err.code : Http2WebTransportError.INTERNAL_ERROR;
    const reason = err instanceof Http2CapsuleError ? err.message : `internal error: ${(err as Error)?.message ?? err}`;
    this.reset(code);
    this.session._aborted(`session aborted: ${reason}`);
  }

  private reset(code: number): void {
    this.ending = true;
    this.dropAll();
    resetLater(this.stream, code);
  }
}

/**
 * RST_STREAM, from the next turn of the event loop: node 20 sends it at once (flushing what is
 * pending), and doing that while nghttp2 is still processing the received data that led to it
 * can corrupt the session (nodejs/node#64113).
 */
function resetLater(stream: http2.ServerHttp2Stream, code: number): void {
  setImmediate(() => {
    if (!stream.destroyed) stream.close(code);
  });
}

// ---------------------------------------------------------------------------------------------
// The listener's entry point.
// ---------------------------------------------------------------------------------------------

/**
 * WebTransport over HTTP/2 for a TLS listener: `settings()` goes into its
 * http2.createSecureServer options, `connectRequest()` takes each extended CONNECT with
 * `:protocol webtransport` before the request runs through the pipeline, where
 * `webTransport(path, handler)` accepts or rejects it as it does over HTTP/3.
 */
export class Http2WebTransport {
  private readonly options: Http2WebTransportOptions;
  private readonly limits: Limits;
  private readonly maxSessions: number;
  private readonly byConnection = new WeakMap<http2.Http2Session, Set<ConnectStream>>();
  private readonly live = new Set<ConnectStream>();

  constructor(options: Http2WebTransportOptions = {}) {
    this.options = options;
    this.maxSessions = options.maxSessions ?? 16;
    const streams = Math.max(1, Math.floor((options.maxIncomingStreams ?? 256) / 2));
    this.limits = {
      sessionWindow: options.sessionWindow ?? 1024 * 1024,
      streamWindow: options.streamWindow ?? 256 * 1024,
      streams: [streams, streams],
      maxDatagramSize: options.maxDatagramSize ?? 16384,
      grease: options.grease ?? true,
    };
    for (const [name, v] of Object.entries({ sessionWindow: this.limits.sessionWindow, streamWindow: this.limits.streamWindow })) {
      // SETTINGS values are 32 bits (RFC 9113 §6.5.1).
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32 (got ${v})`);
    }
  }

  /** Sessions open or pending, on every connection. */
  get size(): number {
    return this.live.size;
  }

  /**
   * What the listener adds to http2.createSecureServer: `settings.customSettings` (our initial
   * limits) and `remoteCustomSettings` (so node keeps the client's), with
   * `settings.enableConnectProtocol: true`.
   */
  settings(): { customSettings: Record<number, number>; remoteCustomSettings: number[] } {
    const S = Http2WebTransportSetting;
    return {
      customSettings: {
        [S.WT_INITIAL_MAX_DATA]: this.limits.sessionWindow,
        [S.WT_INITIAL_MAX_STREAM_DATA_UNI]: this.limits.streamWindow,
        [S.WT_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL]: this.limits.streamWindow,
        [S.WT_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE]: this.limits.streamWindow,
        [S.WT_INITIAL_MAX_STREAMS_UNI]: this.limits.streams[1],
        [S.WT_INITIAL_MAX_STREAMS_BIDI]: this.limits.streams[0],
      },
      remoteCustomSettings: Object.values(S),
    };
  }

  /**
   * An HTTP/2 request with `:protocol webtransport`, before the pipeline runs: ties a pending
   * session to `request` (webTransportSession(ctx) finds it) and returns the sink for its
   * Context, where a 2xx head accepts the session and anything else rejects it. Over the
   * connection's session limit the stream is refused (RST_STREAM REFUSED_STREAM), and a
   * WebTransport-Init header that does not parse is answered 400: both return 'rejected'.
   * The CONNECT stream's data is the session's (read once it is accepted): request.body is empty.
   */
  connectRequest(request: Request, stream: http2.ServerHttp2Stream, base: ResponseSink): ResponseSink | 'rejected' {
    const connection = stream.session;
    if (!connection || stream.destroyed) return 'rejected';
    let sessions = this.byConnection.get(connection);
    if (!sessions) this.byConnection.set(connection, (sessions = new Set()));
    if (sessions.size >= this.maxSessions) {
      // draft-ietf-webtrans-http2 §4.1: REFUSED_STREAM tells the client the request was not processed.
      resetLater(stream, Http2WebTransportError.REFUSED_STREAM);
      return 'rejected';
    }
    const header = request.get('webtransport-init');
    const init = header === undefined ? {} : parseWebTransportInit(header);
    if (!init) {
      // draft-ietf-webtrans-http2 §4.3.2: a WebTransport-Init that does not parse MUST be rejected with a 4xx;
      // RFC 9113 §8.1: the rest of the request is then refused with RST_STREAM NO_ERROR.
      stream.respond({ ':status': 400 }, { endStream: true });
      resetLater(stream, Http2WebTransportError.NO_ERROR);
      return 'rejected';
    }
    const remote = (connection.remoteSettings?.customSettings ?? {}) as Record<number, number>;
    const S = Http2WebTransportSetting;
    const bidiLocal = remote[S.WT_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL] ?? 0;
    // draft-ietf-webtrans-http2 §4.3: with both the SETTINGS and the header field, the greater value holds.
    const peer: PeerLimits = {
      maxData: remote[S.WT_INITIAL_MAX_DATA] ?? 0,
      streamDataBidiPeer: Math.max(bidiLocal, init.bl ?? 0),
      // fails-components 1.6.8 sends one bidirectional setting (0x2b63) for both kinds.
      streamDataBidiOurs: Math.max(remote[S.WT_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE] ?? bidiLocal, init.br ?? 0),
      streamDataUni: Math.max(remote[S.WT_INITIAL_MAX_STREAM_DATA_UNI] ?? 0, init.u ?? 0),
      streams: [remote[S.WT_INITIAL_MAX_STREAMS_BIDI] ?? 0, remote[S.WT_INITIAL_MAX_STREAMS_UNI] ?? 0],
    };
    const cs = new ConnectStream(stream, request, this.limits, peer, this.options);
    const set = sessions;
    set.add(cs);
    this.live.add(cs);
    cs.session.onEnded = () => {
      set.delete(cs);
      this.live.delete(cs);
    };
    // The compat layer would read the stream for request.body and pause it when nobody reads.
    request.body = Readable.from([]);
    attachWebTransportSession(request, cs.session);
    return this.sink(cs, base);
  }

  /** Asks every session to wind down (WT_DRAIN_SESSION); `session.draining` resolves. */
  drain(): void {
    for (const cs of this.live) cs.drain();
  }

  /**
   * Graceful shutdown: every open session closes with `closeCode` and `reason`
   * (WT_CLOSE_SESSION, then the end of the CONNECT stream); the CONNECT streams of sessions not
   * accepted yet are refused (RST_STREAM REFUSED_STREAM).
   */
  closeAll(reason = 'server shutting down', closeCode = 0): void {
    for (const cs of [...this.live]) {
      if (cs.session.readyState === 'pending') cs.refuse(reason);
      else cs.session.close({ closeCode, reason });
    }
  }

  private sink(cs: ConnectStream, base: ResponseSink): ResponseSink {
    const session = cs.session;
    return connectSink(session, base, (status, headers) => {
      base.sendHead(status, headers, false);
      cs.accept();
    }, () => {
      if (session.readyState === 'closed') return;
      cs.abortConnect(session.sessionId, Http2WebTransportError.INTERNAL_ERROR);
      session._aborted('the request failed');
    });
  }
}

/**
 * The WebTransport-Init header field (draft-ietf-webtrans-http2 §4.3.2), an RFC 8941 Dictionary:
 * the client's initial stream limits `u`, `bl` and `br`. Null when it does not parse, or when one
 * of those keys is not a non-negative Integer; other keys are ignored.
 */
export function parseWebTransportInit(value: string): { u?: number; bl?: number; br?: number } | null {
  const out: { u?: number; bl?: number; br?: number } = {};
  let i = 0;
  const skip = (chars: string): void => {
    while (i < value.length && chars.includes(value[i])) i++;
  };
  const match = (re: RegExp): string | null => {
    const m = re.exec(value.slice(i));
    if (!m) return null;
    i += m[0].length;
    return m[0];
  };
  // RFC 8941 §4.2.3.1 (bare items): the value of an Integer, or 'other' for any other type.
  const bareItem = (): number | 'other' | null => {
    const c = value[i];
    if (c === '-' || (c >= '0' && c <= '9')) {
      const n = match(/^-?\d{1,15}(\.\d{1,3})?(?![\d.])/);
      if (n === null) return null;
      return n.includes('.') ? 'other' : Number(n);
    }
    if (c === '"') return match(/^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"/) === null ? null : 'other';
    if (c === ':') return match(/^:[A-Za-z0-9+/=]*:/) === null ? null : 'other';
    if (c === '?') return match(/^\?[01]/) === null ? null : 'other';
    return match(/^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/) === null ? null : 'other';
  };
  const key = (): string | null => match(/^[a-z*][a-z0-9_.*-]*/);
  const parameters = (): boolean => {
    while (value[i] === ';') {
      i++;
      skip(' ');
      if (key() === null) return false;
      if (value[i] === '=') {
        i++;
        if (bareItem() === null) return false;
      }
    }
    return true;
  };
  const innerList = (): boolean => {
    i++;
    for (;;) {
      skip(' ');
      if (value[i] === ')') {
        i++;
        return parameters();
      }
      if (bareItem() === null || !parameters()) return false;
      if (value[i] !== ' ' && value[i] !== ')') return false;
    }
  };
  skip(' ');
  if (i === value.length) return out;
  for (;;) {
    const k = key();
    if (k === null) return null;
    let item: number | 'other' | null = 'other'; // a key alone is the Boolean true
    if (value[i] === '=') {
      i++;
      if (value[i] === '(') item = innerList() ? 'other' : null;
      else item = bareItem();
      if (item === null) return null;
    }
    if (!parameters()) return null;
    if (k === 'u' || k === 'bl' || k === 'br') {
      if (item === 'other' || item < 0) return null;
      out[k] = item;
    }
    skip(' \t');
    if (i === value.length) return out;
    if (value[i] !== ',') return null;
    i++;
    skip(' \t');
    if (i === value.length) return null;
  }
}
