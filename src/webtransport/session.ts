/**
 * The server side of one WebTransport session, in the shape of the W3C WebTransport API:
 * incoming streams and datagrams as ReadableStreams (async iterable), outgoing ones as
 * WritableStreams, `close()`, `closed`, `draining`. Bytes move through a WebTransportIO that
 * the listener implements over QUIC streams, so every write waits for the QUIC stream's
 * flow control (backpressure end to end) and every read pauses the QUIC stream when the
 * application falls behind.
 */
import { ReadableStream, WritableStream, type ReadableStreamDefaultController, type WritableStreamDefaultController } from 'node:stream/web';
import { H3_MESSAGE_ERROR, H3_REQUEST_REJECTED } from '../h3/errors';
import { encodeVarint } from '../h3/varint';
import { FrameType, StreamType } from '../h3/frames';
import { CapsuleReader, CapsuleType, decodeCloseSession, encodeCloseSession, encodeDrainSession } from './capsule';
import {
  CapsuleError,
  H3_DATAGRAM_ERROR,
  WT_SESSION_GONE,
  WebTransportError,
  http3CodeToWebTransport,
  webTransportCodeToHttp3,
} from './errors';

/**
 * What a session needs from the connection it lives on (implemented by the listener over a
 * QuicConnection and the HTTP/3 connection). Stream ids are QUIC stream ids.
 */
export interface WebTransportIO {
  /** Queues bytes on a stream; false when the stream's queue is past its high-water mark. */
  write(streamId: number, data: Uint8Array, fin: boolean): boolean;
  /** Resolves when the stream's queue has drained (or the stream died). */
  drained(streamId: number): Promise<void>;
  /** Allocates a new server-initiated stream id. */
  openStream(bidirectional: boolean): number;
  resetStream(streamId: number, code: number): void;
  stopSending(streamId: number, code: number): void;
  /** Stops (true) or resumes (false) reading a stream: flow control holds the peer back. */
  pauseReading(streamId: number, paused: boolean): void;
  /** Capsule bytes on a session's CONNECT stream (in DATA frames); `fin` ends our side. */
  sendCapsules(sessionId: number, data: Uint8Array, fin: boolean): void;
  /** Resets a session's CONNECT stream in both directions. */
  abortConnect(sessionId: number, code: number): void;
  /** Sends an HTTP/3 datagram for the session; false when it was dropped. */
  sendDatagram(sessionId: number, payload: Uint8Array): boolean;
  /** Largest datagram payload we try to send. */
  readonly maxDatagramSize: number;
  /**
   * False when a stream we open carries no signal and session id before its data (HTTP/2:
   * WT_STREAM capsules name the stream). Default true (HTTP/3, draft §4.1, §4.2).
   */
  readonly streamPreamble?: boolean;
}

export interface WebTransportCloseInfo {
  closeCode: number;
  reason: string;
}

export interface SessionOptions {
  /** Most incoming streams open at once in this session; more are refused. Default 256. */
  maxIncomingStreams?: number;
  /** Bytes buffered per incoming stream before reading pauses. Default 256 KiB. */
  streamHighWaterMark?: number;
  /** Incoming datagrams queued for the application; newer ones are dropped. Default 1024. */
  datagramHighWaterMark?: number;
}

/** What the CONNECT request asked for. */
export interface SessionRequest {
  path: string;
  authority: string;
  origin: string | undefined;
  headers: Array<[string, string]>;
}

type State = 'pending' | 'open' | 'closed';

const EMPTY = new Uint8Array(0);

/** A stream the peer opened or we opened, receiving side. */
export class WebTransportReceiveStream extends ReadableStream<Uint8Array> {
  constructor(
    readonly id: number,
    source: ConstructorParameters<typeof ReadableStream<Uint8Array>>[0],
    strategy: ConstructorParameters<typeof ReadableStream<Uint8Array>>[1],
  ) {
    super(source, strategy);
  }
}

/** A stream's sending side. close() ends it (FIN); abort(reason) resets it. */
export class WebTransportSendStream extends WritableStream<Uint8Array> {
  constructor(
    readonly id: number,
    sink: ConstructorParameters<typeof WritableStream<Uint8Array>>[0],
    strategy: ConstructorParameters<typeof WritableStream<Uint8Array>>[1],
  ) {
    super(sink, strategy);
  }
}

export class WebTransportBidirectionalStream {
  constructor(
    readonly id: number,
    readonly readable: WebTransportReceiveStream,
    readonly writable: WebTransportSendStream,
  ) {}
}

/** The application error code (u32) carried by an abort/cancel reason, 0 by default (W3C). */
function reasonCode(reason: unknown): number {
  const code = (reason as { streamErrorCode?: unknown } | undefined)?.streamErrorCode;
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 0xffffffff ? code : 0;
}

class Receiver {
  done = false;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly stream: WebTransportReceiveStream;

  constructor(
    private readonly io: WebTransportIO,
    readonly id: number,
    highWaterMark: number,
    private readonly onDone: () => void,
  ) {
    this.stream = new WebTransportReceiveStream(id, {
      start: (c) => void (this.controller = c),
      pull: () => this.io.pauseReading(id, false),
      cancel: (reason) => {
        if (this.done) return;
        this.finish();
        // W3C: cancelling a receive stream sends STOP_SENDING with the reason's code.
        this.io.stopSending(id, webTransportCodeToHttp3(reasonCode(reason)));
      },
    }, { highWaterMark, size: (chunk) => chunk.byteLength });
  }

  data(chunk: Uint8Array, fin: boolean): void {
    if (this.done) return;
    if (chunk.length > 0) {
      this.controller.enqueue(chunk);
      if ((this.controller.desiredSize ?? 1) <= 0) this.io.pauseReading(this.id, true);
    }
    if (fin) {
      this.finish();
      this.controller.close();
    }
  }

  reset(code: number): void {
    if (this.done) return;
    this.finish();
    const app = http3CodeToWebTransport(code);
    this.controller.error(new WebTransportError('HARRIER_ERR_WT_STREAM_RESET', `stream ${this.id} reset by the peer (${app ?? code})`, 'stream', app));
  }

  /** The session ended: abort reading (draft §5: STOP_SENDING with WT_SESSION_GONE). */
  gone(error: WebTransportError, sendStop: boolean): void {
    if (this.done) return;
    this.finish();
    if (sendStop) this.io.stopSending(this.id, WT_SESSION_GONE);
    this.controller.error(error);
  }

  private finish(): void {
    this.done = true;
    this.onDone();
  }
}

class Sender {
  done = false;
  private controller!: WritableStreamDefaultController;
  private failure: WebTransportError | undefined;
  readonly stream: WebTransportSendStream;

  constructor(
    private readonly io: WebTransportIO,
    readonly id: number,
    header: Uint8Array | undefined,
    private readonly onDone: () => void,
  ) {
    if (header) io.write(id, header, false);
    this.stream = new WebTransportSendStream(id, {
      start: (c) => void (this.controller = c),
      write: async (chunk) => {
        if (this.failure) throw this.failure;
        if (!(chunk instanceof Uint8Array)) throw new TypeError('WebTransport streams carry Uint8Array chunks');
        if (chunk.byteLength > 0 && !this.io.write(id, chunk, false)) await this.io.drained(id);
        if (this.failure) throw this.failure;
      },
      close: () => {
        if (this.failure) throw this.failure;
        this.finish();
        this.io.write(id, EMPTY, true);
      },
      abort: (reason) => {
        if (this.done) return;
        this.finish();
        this.io.resetStream(id, webTransportCodeToHttp3(reasonCode(reason)));
      },
    }, { highWaterMark: 1 });
  }

  /** The peer sent STOP_SENDING: answer with RESET_STREAM carrying its code (RFC 9000 §3.5). */
  stop(code: number): void {
    if (this.done) return;
    this.finish();
    this.io.resetStream(this.id, code);
    const app = http3CodeToWebTransport(code);
    this.fail(new WebTransportError('HARRIER_ERR_WT_STREAM_STOPPED', `stream ${this.id} stopped by the peer (${app ?? code})`, 'stream', app));
  }

  /** The session ended: reset our side (draft §5: RESET_STREAM with WT_SESSION_GONE). */
  gone(error: WebTransportError, sendReset: boolean): void {
    if (this.done) return;
    this.finish();
    if (sendReset) this.io.resetStream(this.id, WT_SESSION_GONE);
    this.fail(error);
  }

  private fail(error: WebTransportError): void {
    this.failure = error;
    try {
      this.controller.error(error);
    } catch {
      // already errored or closed
    }
  }

  private finish(): void {
    this.done = true;
    this.onDone();
  }
}

/** Datagrams of one session, after the W3C WebTransportDatagramDuplexStream. */
export class WebTransportDatagrams {
  /** Incoming datagram payloads; when the application falls behind, new ones are dropped. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Outgoing datagrams: each write sends one (or drops it when the QUIC queue is full). */
  readonly writable: WritableStream<Uint8Array>;
  /** Datagrams dropped: incoming because the readable was full, outgoing because QUIC could not queue them. */
  readonly dropped = { incoming: 0, outgoing: 0 };
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private done = false;

  constructor(
    private readonly io: WebTransportIO,
    private readonly sessionId: number,
    highWaterMark: number,
    private readonly canSend: () => boolean,
  ) {
    this.readable = new ReadableStream<Uint8Array>({ start: (c) => void (this.controller = c) }, { highWaterMark });
    this.writable = new WritableStream<Uint8Array>({ write: (chunk) => void this.write(chunk) }, { highWaterMark: 1 });
  }

  /** Largest payload write() sends. */
  get maxDatagramSize(): number {
    return this.io.maxDatagramSize;
  }

  /**
   * Sends one datagram now. Returns false when it was not sent: the session is not open, it
   * is larger than maxDatagramSize, or QUIC's datagram queue is full (datagrams are unreliable).
   */
  write(payload: Uint8Array): boolean {
    if (!this.canSend() || payload.byteLength > this.io.maxDatagramSize || !this.io.sendDatagram(this.sessionId, payload)) {
      this.dropped.outgoing++;
      return false;
    }
    return true;
  }

  /** @internal */
  receive(payload: Uint8Array): void {
    if (this.done) return;
    if ((this.controller.desiredSize ?? 1) <= 0) {
      this.dropped.incoming++;
      return;
    }
    this.controller.enqueue(payload.slice());
  }

  /** @internal */
  end(): void {
    if (this.done) return;
    this.done = true;
    try {
      this.controller.close();
    } catch {
      // cancelled by the application
    }
  }
}

/**
 * One WebTransport session (draft-ietf-webtrans-http3). Created by the listener when an
 * extended CONNECT with `:protocol webtransport` arrives; the pipeline accepts it (a 2xx
 * response) or rejects it (any other status).
 */
export class WebTransportSession {
  /** Streams the client opened: `for await (const s of session.incomingBidirectionalStreams)`. */
  readonly incomingBidirectionalStreams: ReadableStream<WebTransportBidirectionalStream>;
  readonly incomingUnidirectionalStreams: ReadableStream<WebTransportReceiveStream>;
  readonly datagrams: WebTransportDatagrams;
  /** Resolves once the session is accepted (the 2xx response is sent). */
  readonly ready: Promise<void>;
  /** Resolves with the close code and reason on a clean close; rejects with a WebTransportError on an abrupt one. */
  readonly closed: Promise<WebTransportCloseInfo>;
  /** Resolves when the peer (DRAIN_WEBTRANSPORT_SESSION) or the server (GOAWAY, drain()) asks to wind down. */
  readonly draining: Promise<void>;

  private state: State = 'pending';
  private readonly receivers = new Map<number, Receiver>();
  private readonly senders = new Map<number, Sender>();
  private incomingOpen = 0;
  private readonly maxIncoming: number;
  private readonly streamHwm: number;
  private bidiController!: ReadableStreamDefaultController<WebTransportBidirectionalStream>;
  private uniController!: ReadableStreamDefaultController<WebTransportReceiveStream>;
  private readonly capsules = new CapsuleReader();
  private peerClose: WebTransportCloseInfo | undefined;
  private drainSent = false;
  private wasAccepted = false;
  private resolveReady!: () => void;
  private rejectReady!: (e: unknown) => void;
  private resolveClosed!: (info: WebTransportCloseInfo) => void;
  private rejectClosed!: (e: unknown) => void;
  private resolveDraining!: () => void;
  /** Called once when the session ends, so the connection forgets it. */
  onEnded: (() => void) | undefined;
  /** Called when a stream of this session is done in every direction, so the connection stops routing it. */
  onStreamDone: ((streamId: number) => void) | undefined;

  constructor(
    private readonly io: WebTransportIO,
    /** The CONNECT stream id: the session id on the wire. */
    readonly sessionId: number,
    /** What the client asked for. */
    readonly request: SessionRequest,
    options: SessionOptions = {},
  ) {
    this.maxIncoming = options.maxIncomingStreams ?? 256;
    this.streamHwm = options.streamHighWaterMark ?? 256 * 1024;
    this.incomingBidirectionalStreams = new ReadableStream({ start: (c) => void (this.bidiController = c) }, { highWaterMark: Infinity });
    this.incomingUnidirectionalStreams = new ReadableStream({ start: (c) => void (this.uniController = c) }, { highWaterMark: Infinity });
    this.datagrams = new WebTransportDatagrams(io, sessionId, options.datagramHighWaterMark ?? 1024, () => this.state === 'open');
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.closed = new Promise((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
    this.draining = new Promise((resolve) => (this.resolveDraining = resolve));
    // Applications need not handle these rejections.
    this.ready.catch(() => {});
    this.closed.catch(() => {});
  }

  /** 'pending' until accepted, 'open', then 'closed'. */
  get readyState(): State {
    return this.state;
  }

  /** True once the session was accepted (even if it has closed since). */
  get accepted(): boolean {
    return this.wasAccepted;
  }

  /** Opens a bidirectional stream (signal 0x41 and the session id go first, draft §4.2). */
  async createBidirectionalStream(): Promise<WebTransportBidirectionalStream> {
    this.checkOpen();
    const id = this.io.openStream(true);
    const header = this.io.streamPreamble === false ? undefined : concat(encodeVarint(FrameType.WEBTRANSPORT_STREAM), encodeVarint(this.sessionId));
    return this.bidi(id, header);
  }

  /** Opens a unidirectional stream (type 0x54 and the session id go first, draft §4.1). */
  async createUnidirectionalStream(): Promise<WebTransportSendStream> {
    this.checkOpen();
    const id = this.io.openStream(false);
    const header = this.io.streamPreamble === false ? undefined : concat(encodeVarint(StreamType.WEBTRANSPORT), encodeVarint(this.sessionId));
    return this.sender(id, header, this.tracker(id, 1)).stream;
  }

  /**
   * Closes the session: CLOSE_WEBTRANSPORT_SESSION with the code (u32) and reason (at most 1024
   * bytes of UTF-8, longer is cut), then FIN (draft §5). Every open stream is reset.
   */
  close(info: Partial<WebTransportCloseInfo> = {}): void {
    if (this.state === 'closed') return;
    const closeCode = info.closeCode ?? 0;
    const reason = info.reason ?? '';
    if (this.state === 'pending') {
      // Not accepted yet: the pipeline's response decides; closing before that rejects it.
      this.end({ closeCode, reason }, undefined, true);
      return;
    }
    this.io.sendCapsules(this.sessionId, encodeCloseSession(closeCode, reason), true);
    this.end({ closeCode, reason }, undefined, true);
  }

  /** Asks the client to wind the session down (DRAIN_WEBTRANSPORT_SESSION, draft §4.6). */
  drain(): void {
    if (this.state !== 'open' || this.drainSent) return;
    this.drainSent = true;
    this.io.sendCapsules(this.sessionId, encodeDrainSession(), false);
    this.resolveDraining();
  }

  // ---- called by the connection ----

  /** @internal the 2xx response went out. */
  _accepted(): void {
    if (this.state !== 'pending') return;
    this.state = 'open';
    this.wasAccepted = true;
    this.resolveReady();
  }

  /** @internal the response was not 2xx (or the request failed): the session never opens. */
  _rejected(status: number): void {
    if (this.state !== 'pending') return;
    const err = new WebTransportError('HARRIER_ERR_WT_SESSION_REJECTED', `session rejected with status ${status}`, 'session');
    this.rejectReady(err);
    this.end(undefined, err, true);
  }

  /** @internal a stream of this session was opened by the peer. Returns false if refused. */
  _incomingStream(streamId: number, bidirectional: boolean): boolean {
    if (this.state === 'closed') return false;
    if (this.incomingOpen >= this.maxIncoming) {
      // Over this session's stream limit: refuse it as unprocessed.
      this.io.stopSending(streamId, H3_REQUEST_REJECTED);
      if (bidirectional) this.io.resetStream(streamId, H3_REQUEST_REJECTED);
      return false;
    }
    this.incomingOpen++;
    const release = this.tracker(streamId, bidirectional ? 2 : 1, () => this.incomingOpen--);
    const receiver = new Receiver(this.io, streamId, this.streamHwm, () => {
      this.receivers.delete(streamId);
      release();
    });
    this.receivers.set(streamId, receiver);
    if (bidirectional) {
      const sender = this.sender(streamId, undefined, release);
      this.bidiController.enqueue(new WebTransportBidirectionalStream(streamId, receiver.stream, sender.stream));
    } else {
      this.uniController.enqueue(receiver.stream);
    }
    return true;
  }

  /** @internal */
  _streamData(streamId: number, data: Uint8Array, fin: boolean): void {
    this.receivers.get(streamId)?.data(data, fin);
  }

  /** @internal */
  _streamReset(streamId: number, code: number): void {
    this.receivers.get(streamId)?.reset(code);
  }

  /** @internal */
  _streamStop(streamId: number, code: number): void {
    this.senders.get(streamId)?.stop(code);
  }

  /** @internal */
  _datagram(payload: Uint8Array): void {
    if (this.state !== 'closed') this.datagrams.receive(payload);
  }

  /** @internal DATA payload bytes on the CONNECT stream: capsules (RFC 9297 §3). */
  _connectData(data: Uint8Array, fin: boolean): void {
    if (this.state === 'closed' && !this.peerClose) return;
    try {
      if (this.peerClose && data.length > 0) {
        // draft §5: data after CLOSE_WEBTRANSPORT_SESSION MUST reset the stream with H3_MESSAGE_ERROR.
        throw new CapsuleError(H3_MESSAGE_ERROR, 'data after CLOSE_WEBTRANSPORT_SESSION');
      }
      this.capsules.push(data);
      if (fin) this.capsules.end();
      for (let c = this.capsules.next(); c; c = this.capsules.next()) {
        if (c.type === CapsuleType.CLOSE_WEBTRANSPORT_SESSION) {
          this.peerClose = decodeCloseSession(c.value);
          if (!this.capsules.idle) throw new CapsuleError(H3_MESSAGE_ERROR, 'data after CLOSE_WEBTRANSPORT_SESSION');
          // draft §5: the session is terminated once the capsule is received; our FIN follows.
          this.terminate(this.peerClose);
        } else if (c.type === CapsuleType.DRAIN_WEBTRANSPORT_SESSION) {
          // RFC 9297 §3.3: a capsule value with bytes beyond its fields is malformed.
          if (c.value.length !== 0) throw new CapsuleError(H3_DATAGRAM_ERROR, 'DRAIN_WEBTRANSPORT_SESSION with a value');
          this.resolveDraining();
        } else if (c.type === CapsuleType.DATAGRAM) {
          // RFC 9297 §3.5: the DATAGRAM capsule carries an HTTP Datagram payload.
          this._datagram(c.value);
        }
      }
      if (fin) {
        // draft §5: a clean FIN without the capsule is a close with code 0 and no reason.
        this.peerClose ??= { closeCode: 0, reason: '' };
        this.terminate(this.peerClose);
      }
    } catch (e) {
      if (!(e instanceof CapsuleError)) throw e;
      // RFC 9297 §3.3: a Capsule Protocol error makes the message malformed: a stream error
      // (RFC 9114 §4.1.2), so this session ends and the connection lives on.
      this.io.abortConnect(this.sessionId, e.code);
      this.end(undefined, new WebTransportError('HARRIER_ERR_WT_SESSION_ABORTED', `session aborted: ${e.message}`, 'session'), true);
    }
  }

  /** @internal the CONNECT stream was reset, or the connection closed. */
  _aborted(reason: string): void {
    this.end(undefined, new WebTransportError('HARRIER_ERR_WT_SESSION_ABORTED', reason, 'session'), this.state !== 'closed');
  }

  /** @internal the server is shutting down (GOAWAY): tell the application and the client. */
  _goaway(): void {
    this.drain();
    this.resolveDraining();
  }

  // ---- internals ----

  private terminate(info: WebTransportCloseInfo): void {
    if (this.state === 'closed') return;
    this.io.sendCapsules(this.sessionId, EMPTY, true);
    this.end(info, undefined, true);
  }

  private end(info: WebTransportCloseInfo | undefined, error: WebTransportError | undefined, streamsToo: boolean): void {
    if (this.state === 'closed') return;
    const wasPending = this.state === 'pending';
    this.state = 'closed';
    if (wasPending) this.rejectReady(error ?? new WebTransportError('HARRIER_ERR_WT_SESSION_CLOSED', 'session closed before it opened', 'session'));
    const gone = new WebTransportError('HARRIER_ERR_WT_SESSION_GONE', 'the WebTransport session ended', 'session');
    // draft §5: reset every stream of a terminated session with WEBTRANSPORT_SESSION_GONE.
    for (const r of [...this.receivers.values()]) r.gone(gone, streamsToo);
    for (const s of [...this.senders.values()]) s.gone(gone, streamsToo);
    for (const c of [this.bidiController, this.uniController]) {
      try {
        c.close();
      } catch {
        // cancelled by the application
      }
    }
    this.datagrams.end();
    if (info) this.resolveClosed(info);
    else this.rejectClosed(error);
    this.resolveDraining();
    this.onEnded?.();
  }

  /** Counts a stream's open sides; when none is left, runs `done` and tells the connection. */
  private tracker(id: number, sides: number, done?: () => void): () => void {
    let open = sides;
    return () => {
      if (--open !== 0) return;
      done?.();
      this.onStreamDone?.(id);
    };
  }

  private bidi(id: number, header: Uint8Array | undefined): WebTransportBidirectionalStream {
    const release = this.tracker(id, 2);
    const receiver = new Receiver(this.io, id, this.streamHwm, () => {
      this.receivers.delete(id);
      release();
    });
    this.receivers.set(id, receiver);
    const sender = this.sender(id, header, release);
    return new WebTransportBidirectionalStream(id, receiver.stream, sender.stream);
  }

  private sender(id: number, header: Uint8Array | undefined, onDone?: () => void): Sender {
    const sender = new Sender(this.io, id, header, () => {
      this.senders.delete(id);
      onDone?.();
    });
    this.senders.set(id, sender);
    return sender;
  }

  private checkOpen(): void {
    if (this.state !== 'open') {
      throw new WebTransportError('HARRIER_ERR_WT_SESSION_CLOSED', `the session is ${this.state === 'pending' ? 'not accepted yet' : 'closed'}`, 'session');
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

