/**
 * HTTP/3 server connection (RFC 9114), sans-I/O: the listener feeds it stream events of one
 * QUIC connection and gets H3 events back; everything it sends goes through H3Transport.
 */
import { FieldSectionTooLarge, QpackDecoder, QpackEncoder, QpackError } from '../qpack';
import {
  H3Error,
  H3StateError,
  H3StreamError,
  H3_CLOSED_CRITICAL_STREAM,
  H3_EXCESSIVE_LOAD,
  H3_FRAME_UNEXPECTED,
  H3_ID_ERROR,
  H3_INTERNAL_ERROR,
  H3_MISSING_SETTINGS,
  H3_NO_ERROR,
  H3_REQUEST_CANCELLED,
  H3_REQUEST_INCOMPLETE,
  H3_REQUEST_REJECTED,
  H3_SETTINGS_ERROR,
  H3_STREAM_CREATION_ERROR,
  H3_MESSAGE_ERROR,
  H3_FRAME_ERROR,
} from './errors';
import { checkRequestHeaders, checkTrailers, prepareResponseFields } from './fields';
import { FrameReader, ReadFrame } from './frame-reader';
import {
  FrameType,
  Settings,
  SettingsId,
  StreamType,
  decodeDatagram,
  encodeDatagramHeader,
  encodeFrame,
  encodeFrameHeader,
  encodeGoawayFrame,
  encodeHeadersFrame,
  encodeSettingsFrame,
  greaseValue,
} from './frames';
import type { H3Event, H3Transport, HeaderField, RequestConnection } from './types';
import { decodeVarintSaturating, encodeVarint } from './varint';

export interface H3Options {
  /** Largest request header section accepted (decoded size, RFC 9114 §4.2.2); advertised as SETTINGS_MAX_FIELD_SECTION_SIZE. Default 64 KiB. */
  maxFieldSectionSize?: number;
  /** QPACK dynamic table capacity we allow the client to use (RFC 9204 §5). Default 4096. */
  qpackMaxTableCapacity?: number;
  /** Streams the client may leave blocked on QPACK (RFC 9204 §5). Default 100. */
  qpackBlockedStreams?: number;
  /** Advertise SETTINGS_ENABLE_CONNECT_PROTOCOL and accept extended CONNECT (RFC 9220). */
  enableConnectProtocol?: boolean;
  /** More settings to advertise (for example H3_DATAGRAM 0x33 = 1). */
  extraSettings?: Array<[number, number]>;
  /** Send reserved setting, frame and stream types (RFC 9114 §7.2.4.1, §7.2.8, §6.2.3). Default true. */
  grease?: boolean;
  /**
   * Serve WebTransport (draft-ietf-webtrans-http3) with up to this many sessions per connection:
   * advertises SETTINGS_WEBTRANSPORT_MAX_SESSIONS (draft-07) and SETTINGS_ENABLE_WEBTRANSPORT
   * (draft-02), turns on extended CONNECT and HTTP/3 datagrams, and reports WebTransport streams
   * as 'webtransport-*' events. 0 (the default) leaves WebTransport off.
   */
  webTransportMaxSessions?: number;
  /**
   * Advertise SETTINGS_H3_DATAGRAM (RFC 9297 §2.1.1, and 0xffd277 of draft-04) and report
   * HTTP/3 datagrams given to receiveDatagram(). Default: on with WebTransport. The QUIC
   * endpoint must have datagrams enabled too (RFC 9297 §2.1.1).
   */
  h3Datagram?: boolean;
}

// Our unidirectional streams: the first server-initiated uni stream ids (RFC 9000 §2.1).
const CONTROL_STREAM_ID = 3;
const ENCODER_STREAM_ID = 7;
const DECODER_STREAM_ID = 11;
const GREASE_STREAM_ID = 15;

const EMPTY = new Uint8Array(0);
// The end of a response rides on an empty DATA frame (RFC 9114 §7.2.1 allows length 0)
// rather than a bare FIN: quiche 0.30 treats a stream whose data is all acknowledged as
// complete even when its bare FIN has not been sent yet, and the FIN is then never sent.
const EMPTY_DATA_FRAME = encodeFrameHeader(FrameType.DATA, 0);

type SendState = 'idle' | 'interim' | 'final' | 'closed';

interface RequestStream {
  id: number;
  reader: FrameReader;
  /** HEADERS frames started, by type alone: 0 before the head, 1 in the body, 2 after trailers. */
  sections: number;
  /** Field sections decoded and delivered. */
  decoded: number;
  blocked: boolean;
  /** We read nothing more: FIN processed, peer reset, or we abandoned the stream. */
  recvDone: boolean;
  /** The peer will send nothing more (FIN or RESET_STREAM seen). */
  peerEnded: boolean;
  send: SendState;
  contentLength: number | undefined;
  received: number;
}

type UniKind = 'new' | 'control' | 'encoder' | 'decoder' | 'ignored' | 'webtransport-header' | 'webtransport';

interface UniStream {
  id: number;
  kind: UniKind;
  typeBytes: Uint8Array;
  typeLength: number;
  reader?: FrameReader;
}

const isClientBidi = (id: number): boolean => id % 4 === 0;
const isClientUni = (id: number): boolean => id % 4 === 2;
const isServerBidi = (id: number): boolean => id % 4 === 1;
const isServerUni = (id: number): boolean => id % 4 === 3;
const clampToU32 = (v: bigint | undefined): number => Number(v === undefined ? 0n : v > 0xffffffffn ? 0xffffffffn : v);

/**
 * The server side of one HTTP/3 connection. Call start() once the QUIC handshake is done, feed
 * every stream event to the receive* methods, act on the returned events, and answer requests
 * with the send* methods. Nothing here reads a clock or touches a socket.
 *
 * Protocol errors never throw: a connection error calls transport.close(code, reason) once and
 * yields a 'closed' event (later input is ignored); a stream error resets the request stream,
 * stops reading it and yields 'request-cancelled'. Things the connection does on its own:
 * - a request header section over maxFieldSectionSize is answered with `:status 431` and the
 *   request stream is stopped with H3_NO_ERROR (RFC 9114 §4.2.2, §4.1.1); no event is emitted;
 * - a client reset of a request stream resets our response with H3_REQUEST_CANCELLED, and a
 *   client STOP_SENDING is answered with RESET_STREAM carrying its code (RFC 9000 §3.5);
 *   writes to such a stream are then dropped silently;
 * - after goaway(), requests on higher stream ids are rejected with H3_REQUEST_REJECTED.
 * The send* methods throw H3StateError (code ERR_H3_STREAM_STATE) when called out of order.
 * Peer SETTINGS_MAX_FIELD_SECTION_SIZE is reported in peerSettings but not enforced on responses.
 */
export class H3ServerConnection implements RequestConnection {
  private readonly maxFieldSectionSize: number;
  private readonly qpackMaxTableCapacity: number;
  private readonly qpackBlockedStreams: number;
  private readonly enableConnectProtocol: boolean;
  private readonly extraSettings: Array<[number, number]>;
  private readonly grease: boolean;
  private readonly wtMaxSessions: number;
  private readonly h3Datagram: boolean;
  /** Client bidirectional streams that turned out to be WebTransport streams (read side open). */
  private readonly wtStreams = new Set<number>();
  /** First bytes of client bidirectional streams, until we know whether they are WebTransport streams. */
  private readonly wtPrefix = new Map<number, Uint8Array>();
  private readonly decoder: QpackDecoder;
  private readonly encoder = new QpackEncoder();

  private readonly requests = new Map<number, RequestStream>();
  private readonly uni = new Map<number, UniStream>();
  private readonly peerStreams = new Set<UniKind>();
  private controlFramesSeen = 0;
  private settings: Settings | undefined;
  private peerGoaway: bigint | undefined;
  private peerMaxPushId: bigint | undefined;
  private goawayId: number | undefined;
  private highestRequestId = -4;
  private started = false;
  private closed = false;

  constructor(
    private readonly transport: H3Transport,
    options: H3Options = {},
  ) {
    this.maxFieldSectionSize = options.maxFieldSectionSize ?? 65536;
    this.qpackMaxTableCapacity = options.qpackMaxTableCapacity ?? 4096;
    this.qpackBlockedStreams = options.qpackBlockedStreams ?? 100;
    this.wtMaxSessions = options.webTransportMaxSessions ?? 0;
    this.h3Datagram = options.h3Datagram ?? this.wtMaxSessions > 0;
    // draft-ietf-webtrans-http3 §3.2: a WebTransport server MUST send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1.
    this.enableConnectProtocol = options.enableConnectProtocol ?? this.wtMaxSessions > 0;
    this.extraSettings = options.extraSettings ?? [];
    this.grease = options.grease ?? true;
    this.decoder = new QpackDecoder({
      maxTableCapacity: this.qpackMaxTableCapacity,
      maxBlockedStreams: this.qpackBlockedStreams,
      maxFieldSectionSize: this.maxFieldSectionSize,
    });
  }

  /** The client's SETTINGS, once received. */
  get peerSettings(): Map<number, bigint> | undefined {
    return this.settings;
  }

  /**
   * Opens our control stream (with SETTINGS), QPACK encoder and decoder streams, and, with
   * GREASE on, a reserved frame on the control stream and a reserved stream type (stream 15,
   * which needs a client uni stream limit of at least 4; a lower one just keeps it queued).
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    const settings: Array<[number, number]> = [
      [SettingsId.QPACK_MAX_TABLE_CAPACITY, this.qpackMaxTableCapacity],
      [SettingsId.MAX_FIELD_SECTION_SIZE, this.maxFieldSectionSize],
      [SettingsId.QPACK_BLOCKED_STREAMS, this.qpackBlockedStreams],
    ];
    if (this.enableConnectProtocol) settings.push([SettingsId.ENABLE_CONNECT_PROTOCOL, 1]);
    if (this.h3Datagram) settings.push([SettingsId.H3_DATAGRAM, 1], [SettingsId.H3_DATAGRAM_DRAFT04, 1]);
    if (this.wtMaxSessions > 0) {
      settings.push([SettingsId.ENABLE_WEBTRANSPORT_DRAFT02, 1], [SettingsId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07, this.wtMaxSessions]);
    }
    settings.push(...this.extraSettings);
    if (this.grease) settings.push([greaseValue(), Math.floor(Math.random() * 0x3fffffff)]);
    const parts = [encodeVarint(StreamType.CONTROL), encodeSettingsFrame(settings)];
    if (this.grease) parts.push(encodeFrame(greaseValue(), randomBytes(Math.floor(Math.random() * 8))));
    this.transport.write(CONTROL_STREAM_ID, concat(parts), false);
    this.transport.write(ENCODER_STREAM_ID, encodeVarint(StreamType.QPACK_ENCODER), false);
    this.transport.write(DECODER_STREAM_ID, encodeVarint(StreamType.QPACK_DECODER), false);
    if (this.grease) {
      this.transport.write(GREASE_STREAM_ID, concat([encodeVarint(greaseValue()), randomBytes(8)]), true);
    }
  }

  receiveStreamData(streamId: number, data: Uint8Array, fin: boolean): H3Event[] {
    return this.guard((out) => {
      if (isClientBidi(streamId)) this.onClientBidiData(streamId, data, fin, out);
      else if (isClientUni(streamId)) this.onUniData(streamId, data, fin, out);
      // Server bidirectional streams exist only as WebTransport streams we opened (draft §4.2).
      else if (isServerBidi(streamId) && this.wtMaxSessions > 0) pushWtData(out, streamId, data, fin);
      // Data on a server-initiated uni stream id is a QUIC STREAM_STATE_ERROR (RFC 9000 §19.8); QUIC rejects it.
    });
  }

  receiveStreamReset(streamId: number, code: number): H3Event[] {
    return this.guard((out) => {
      if (isClientUni(streamId)) {
        const u = this.uni.get(streamId);
        // RFC 9114 §6.2.1, RFC 9204 §4.2: closing a critical stream MUST be H3_CLOSED_CRITICAL_STREAM.
        if (u && isCritical(u)) throw new H3Error(H3_CLOSED_CRITICAL_STREAM, `peer reset its ${u.kind} stream`);
        this.uni.delete(streamId);
        if (u?.kind === 'webtransport') out.push({ type: 'webtransport-reset', streamId, code });
        return;
      }
      if (this.wtStreams.delete(streamId) || (isServerBidi(streamId) && this.wtMaxSessions > 0)) {
        out.push({ type: 'webtransport-reset', streamId, code });
        return;
      }
      this.wtPrefix.delete(streamId);
      const s = this.requests.get(streamId);
      if (!s) return;
      s.peerEnded = true;
      if (!s.recvDone) {
        // The client cancelled the request (RFC 9114 §4.1.1): stop the response too.
        this.abandonReading(s, H3_REQUEST_CANCELLED, false);
        this.closeSend(s, H3_REQUEST_CANCELLED);
        out.push({ type: 'request-cancelled', streamId, code });
      }
      this.maybeForget(s);
    });
  }

  receiveStopSending(streamId: number, code: number): H3Event[] {
    return this.guard((out) => {
      if (streamId === CONTROL_STREAM_ID || streamId === ENCODER_STREAM_ID || streamId === DECODER_STREAM_ID) {
        // RFC 9114 §6.2.1: the receiver MUST NOT ask to close the control stream; RFC 9204 §4.2 likewise.
        throw new H3Error(H3_CLOSED_CRITICAL_STREAM, `peer stopped critical stream ${streamId}`);
      }
      const s = this.requests.get(streamId);
      if (!s && this.wtMaxSessions > 0 && !isClientUni(streamId) && streamId !== GREASE_STREAM_ID) {
        // A WebTransport stream (or one already forgotten: the WebTransport layer ignores those).
        out.push({ type: 'webtransport-stop', streamId, code });
        return;
      }
      if (!s || s.send === 'closed') return;
      // RFC 9000 §3.5: answer STOP_SENDING with RESET_STREAM, copying its error code.
      this.closeSend(s, code);
      this.abandonReading(s, H3_REQUEST_CANCELLED, true);
      out.push({ type: 'request-cancelled', streamId, code });
      this.maybeForget(s);
    });
  }

  sendHeaders(streamId: number, headers: HeaderField[], fin = false): void {
    const s = this.sendable(streamId);
    if (!s) return;
    const fields = prepareResponseFields(headers);
    const status = fields.find(([name]) => name === ':status')?.[1];
    if (status === undefined || !/^[1-5][0-9][0-9]$/.test(status)) throw new H3StateError('response head needs a 3-digit :status');
    if (s.send === 'final') throw new H3StateError('the final response head was already sent');
    if (status < '200') {
      // RFC 9114 §4.5: HTTP/3 does not support 101 (Switching Protocols).
      if (status === '101') throw new H3StateError('101 Switching Protocols is not allowed in HTTP/3');
      if (fin) throw new H3StateError('an interim (1xx) response cannot end the stream');
      s.send = 'interim';
    } else {
      s.send = fin ? 'closed' : 'final';
    }
    this.writeFieldSection(s, fields, fin);
    if (fin) this.maybeForget(s);
  }

  sendData(streamId: number, data: Uint8Array, fin = false): void {
    const s = this.sendable(streamId);
    if (!s) return;
    if (s.send !== 'final') throw new H3StateError('sendData before the final response head');
    if (data.length > 0) {
      this.transport.write(streamId, encodeFrameHeader(FrameType.DATA, data.length), false);
      this.transport.write(streamId, data, fin);
    } else if (fin) {
      this.transport.write(streamId, EMPTY_DATA_FRAME, true);
    }
    if (fin) this.finishSend(s);
  }

  sendTrailers(streamId: number, headers: HeaderField[]): void {
    const s = this.sendable(streamId);
    if (!s) return;
    if (s.send !== 'final') throw new H3StateError('trailers before the final response head');
    const fields = prepareResponseFields(headers);
    // RFC 9114 §4.3: pseudo-header fields MUST NOT appear in trailer sections.
    if (fields.some(([name]) => name.startsWith(':'))) throw new H3StateError('pseudo-header in trailers');
    this.writeFieldSection(s, fields, true);
    this.finishSend(s);
  }

  end(streamId: number): void {
    const s = this.sendable(streamId);
    if (!s) return;
    if (s.send !== 'final') throw new H3StateError('end before the final response head');
    this.transport.write(streamId, EMPTY_DATA_FRAME, true);
    this.finishSend(s);
  }

  resetStream(streamId: number, code: number): void {
    const s = this.requests.get(streamId);
    if (!s || this.closed) return;
    this.closeSend(s, code);
    this.abandonReading(s, code, true);
    this.maybeForget(s);
  }

  /**
   * A QUIC DATAGRAM frame's payload. With h3Datagram on, yields a 'datagram' event for its
   * request stream (whether that stream exists is for the caller to check: RFC 9297 §2.1 lets
   * it drop or buffer); a malformed one closes the connection with H3_DATAGRAM_ERROR.
   */
  receiveDatagram(data: Uint8Array): H3Event[] {
    return this.guard((out) => {
      if (!this.h3Datagram) return;
      const { streamId, payload } = decodeDatagram(data);
      out.push({ type: 'datagram', streamId, payload });
    });
  }

  /**
   * Sends an HTTP/3 Datagram for a request stream (RFC 9297 §2.1). Returns false when it was
   * not sent: datagrams not negotiated (the peer must have sent SETTINGS_H3_DATAGRAM = 1,
   * RFC 9297 §2.1.1), the transport cannot send datagrams, or its queue is full.
   */
  sendDatagram(streamId: number, payload: Uint8Array): boolean {
    if (this.closed || !this.h3Datagram || !this.transport.sendDatagram || !this.peerDatagrams) return false;
    const header = encodeDatagramHeader(streamId);
    const out = new Uint8Array(header.length + payload.length);
    out.set(header);
    out.set(payload, header.length);
    return this.transport.sendDatagram(out);
  }

  /** The peer sent SETTINGS_H3_DATAGRAM = 1 (RFC 9297 or draft-04 codepoint). */
  get peerDatagrams(): boolean {
    const s = this.settings;
    return !!s && (s.get(SettingsId.H3_DATAGRAM) === 1n || s.get(SettingsId.H3_DATAGRAM_DRAFT04) === 1n);
  }

  /**
   * The peer's WebTransport support from its SETTINGS: 'draft07' (SETTINGS_WEBTRANSPORT_MAX_SESSIONS
   * > 0), 'draft02' (SETTINGS_ENABLE_WEBTRANSPORT = 1), or undefined (none, or no SETTINGS yet).
   */
  get peerWebTransport(): 'draft07' | 'draft02' | undefined {
    const s = this.settings;
    if (!s) return undefined;
    if ((s.get(SettingsId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07) ?? 0n) > 0n) return 'draft07';
    if (s.get(SettingsId.ENABLE_WEBTRANSPORT_DRAFT02) === 1n) return 'draft02';
    return undefined;
  }

  goaway(): void {
    if (this.closed) return;
    this.start();
    // RFC 9114 §5.2: the id is the first request we did not process, and MUST NOT increase.
    const id = Math.min(this.highestRequestId + 4, this.goawayId ?? Infinity);
    this.goawayId = id;
    this.transport.write(CONTROL_STREAM_ID, encodeGoawayFrame(id), false);
  }

  // ---- receive plumbing ----

  /** The one catch site: H3Error and QpackError close the connection; nothing escapes. */
  private guard(handle: (out: H3Event[]) => void): H3Event[] {
    if (this.closed) return [];
    this.start();
    const out: H3Event[] = [];
    try {
      handle(out);
    } catch (e) {
      if (e instanceof H3Error) this.closeWith(e.code, e.reason, out);
      else if (e instanceof QpackError) this.closeWith(e.code, e.message, out);
      else this.closeWith(H3_INTERNAL_ERROR, e instanceof Error ? e.message : String(e), out);
    }
    return out;
  }

  private closeWith(code: number, reason: string, out: H3Event[]): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close(code, reason);
    out.push({ type: 'closed', code, reason });
  }

  /** Runs request-stream work, turning an H3StreamError into a stream error. */
  private withStream(s: RequestStream, out: H3Event[], work: () => void): void {
    try {
      work();
    } catch (e) {
      if (!(e instanceof H3StreamError)) throw e;
      this.streamError(s, e.code, out);
    }
  }

  private streamError(s: RequestStream, code: number, out: H3Event[]): void {
    this.abandonReading(s, code, true);
    this.closeSend(s, code);
    out.push({ type: 'request-cancelled', streamId: s.id, code });
    this.maybeForget(s);
  }

  // ---- request streams and WebTransport bidirectional streams ----

  /**
   * A client bidirectional stream is a request stream unless it starts with the
   * WEBTRANSPORT_STREAM signal and a session id (draft-ietf-webtrans-http3 §4.2).
   */
  private onClientBidiData(id: number, data: Uint8Array, fin: boolean, out: H3Event[]): void {
    if (this.wtMaxSessions === 0 || this.requests.has(id)) return this.onRequestData(id, data, fin, out);
    if (this.wtStreams.has(id)) {
      if (fin) this.wtStreams.delete(id);
      return pushWtData(out, id, data, fin);
    }
    const pending = this.wtPrefix.get(id);
    const buf = pending ? concat([pending, data]) : data;
    const signal = decodeVarintSaturating(buf, 0);
    const session = signal && signal.value === FrameType.WEBTRANSPORT_STREAM ? decodeVarintSaturating(buf, signal.length) : null;
    if (signal && signal.value !== FrameType.WEBTRANSPORT_STREAM) {
      this.wtPrefix.delete(id);
      return this.onRequestData(id, buf, fin, out);
    }
    if (!signal || !session) {
      if (fin) {
        // The stream ended inside its first varints: let the request path report it.
        this.wtPrefix.delete(id);
        return this.onRequestData(id, buf, fin, out);
      }
      if (buf.length > 0) this.wtPrefix.set(id, buf.slice());
      return;
    }
    this.wtPrefix.delete(id);
    this.checkSessionId(session.value);
    if (!fin) this.wtStreams.add(id);
    out.push({ type: 'webtransport-stream', streamId: id, sessionId: session.value, bidirectional: true });
    pushWtData(out, id, buf.subarray(signal.length + session.length), fin);
  }

  private checkSessionId(sessionId: number): void {
    // draft-ietf-webtrans-http3 §4: a session id that cannot be a client-initiated bidirectional
    // stream id MUST close the connection with H3_ID_ERROR.
    if (!isClientBidi(sessionId) || !Number.isSafeInteger(sessionId)) throw new H3Error(H3_ID_ERROR, `invalid WebTransport session id ${sessionId}`);
  }


  private onRequestData(id: number, data: Uint8Array, fin: boolean, out: H3Event[]): void {
    const s = this.requests.get(id) ?? this.openRequest(id, out);
    if (s.recvDone) {
      if (fin) s.peerEnded = true;
      this.maybeForget(s);
      return;
    }
    // Nothing follows a FIN; tolerate a driver repeating it.
    if (s.peerEnded) return;
    s.reader.push(s.blocked ? data.slice() : data);
    if (fin) {
      s.reader.end();
      s.peerEnded = true;
    }
    this.pump(s, out);
  }

  private openRequest(id: number, out: H3Event[]): RequestStream {
    const s: RequestStream = {
      id,
      reader: new FrameReader({
        maxHeadersFrameSize: this.maxFieldSectionSize,
        onFrameStart: (type) => this.checkRequestFrame(s, type),
      }),
      sections: 0,
      decoded: 0,
      blocked: false,
      recvDone: false,
      peerEnded: false,
      send: 'idle',
      contentLength: undefined,
      received: 0,
    };
    this.requests.set(id, s);
    if (this.goawayId !== undefined && id >= this.goawayId) {
      // RFC 9114 §5.2: requests on streams at or above the GOAWAY id are rejected with H3_REQUEST_REJECTED.
      this.streamError(s, H3_REQUEST_REJECTED, out);
    } else if (id > this.highestRequestId) {
      this.highestRequestId = id;
    }
    return s;
  }

  /** Frame order on a request stream: HEADERS, DATA*, optional trailing HEADERS (RFC 9114 §4.1). */
  private checkRequestFrame(s: RequestStream, type: number): void {
    switch (type) {
      case FrameType.HEADERS:
        // RFC 9114 §4.1: a HEADERS frame after the trailing HEADERS frame is H3_FRAME_UNEXPECTED.
        if (s.sections === 2) throw new H3Error(H3_FRAME_UNEXPECTED, 'HEADERS after trailers');
        s.sections++;
        return;
      case FrameType.DATA:
        // RFC 9114 §4.1: DATA before HEADERS or after trailers MUST be H3_FRAME_UNEXPECTED.
        if (s.sections !== 1) throw new H3Error(H3_FRAME_UNEXPECTED, s.sections === 0 ? 'DATA before HEADERS' : 'DATA after trailers');
        return;
      case FrameType.CANCEL_PUSH: // RFC 9114 §7.2.3: only on the control stream.
      case FrameType.SETTINGS: // RFC 9114 §7.2.4: only on the control stream.
      case FrameType.GOAWAY: // RFC 9114 §7.2.6: only on the control stream.
      case FrameType.MAX_PUSH_ID: // RFC 9114 §7.2.7: only on the control stream.
        throw new H3Error(H3_FRAME_UNEXPECTED, `frame 0x${type.toString(16)} on a request stream`);
      case FrameType.PUSH_PROMISE:
        // RFC 9114 §7.2.5: a server MUST treat a PUSH_PROMISE as H3_FRAME_UNEXPECTED.
        throw new H3Error(H3_FRAME_UNEXPECTED, 'PUSH_PROMISE from a client');
      case FrameType.WEBTRANSPORT_STREAM:
        // draft-ietf-webtrans-http3 §4.2: WEBTRANSPORT_STREAM anywhere but the first bytes of a stream MUST be H3_FRAME_ERROR.
        if (this.wtMaxSessions > 0) throw new H3Error(H3_FRAME_ERROR, 'WEBTRANSPORT_STREAM inside a request stream');
    }
  }

  private pump(s: RequestStream, out: H3Event[]): void {
    this.withStream(s, out, () => {
      while (!s.blocked && !s.recvDone) {
        const f: ReadFrame | null = s.reader.next();
        if (!f) break;
        if (f.kind === 'data') this.onData(s, f.chunk, out);
        else if (f.kind === 'headers') this.onHeadersFrame(s, f.block, out);
        else if (f.kind === 'headers-too-large') this.onTooLarge(s);
        // checkRequestFrame rejects every other frame kind before it is read.
      }
      if (!s.blocked && !s.recvDone && s.reader.done) this.onRequestFin(s, out);
    });
  }

  private onHeadersFrame(s: RequestStream, block: Uint8Array, out: H3Event[]): void {
    let fields: HeaderField[] | 'blocked';
    try {
      fields = this.decoder.decodeFieldSection(s.id, block);
    } catch (e) {
      if (!(e instanceof FieldSectionTooLarge)) throw e;
      this.flushDecoder();
      return this.onTooLarge(s);
    }
    this.flushDecoder();
    if (fields === 'blocked') {
      // RFC 9204 §2.1.2: wait for the encoder stream; keep our own copy of the unread bytes.
      s.blocked = true;
      s.reader.retain();
      return;
    }
    this.onFields(s, fields, out);
  }

  private onFields(s: RequestStream, fields: HeaderField[], out: H3Event[]): void {
    s.decoded++;
    if (s.decoded === 1) {
      const head = checkRequestHeaders(fields, this.enableConnectProtocol);
      s.contentLength = head.contentLength;
      out.push({ type: 'headers', streamId: s.id, headers: fields, fin: false });
    } else {
      checkTrailers(fields);
      this.checkContentLength(s);
      out.push({ type: 'trailers', streamId: s.id, headers: fields });
    }
  }

  private onData(s: RequestStream, chunk: Uint8Array, out: H3Event[]): void {
    if (chunk.length === 0) return;
    s.received += chunk.length;
    if (s.contentLength !== undefined && s.received > s.contentLength) {
      // RFC 9114 §4.1.2: DATA lengths not matching content-length make the request malformed.
      throw new H3StreamError(H3_MESSAGE_ERROR, 'request body longer than content-length');
    }
    out.push({ type: 'data', streamId: s.id, data: chunk, fin: false });
  }

  private onRequestFin(s: RequestStream, out: H3Event[]): void {
    s.recvDone = true;
    s.peerEnded = true;
    // RFC 9114 §4.1.2: a request stream ending before a complete request: H3_REQUEST_INCOMPLETE.
    if (s.decoded === 0) throw new H3StreamError(H3_REQUEST_INCOMPLETE, 'request stream ended before its header section');
    if (s.decoded === 1) {
      this.checkContentLength(s);
      const last = out[out.length - 1];
      if (last && (last.type === 'headers' || last.type === 'data') && last.streamId === s.id) last.fin = true;
      else out.push({ type: 'data', streamId: s.id, data: EMPTY, fin: true });
    }
    this.maybeForget(s);
  }

  private checkContentLength(s: RequestStream): void {
    // RFC 9114 §4.1.2: content-length not equal to the sum of DATA lengths makes the request malformed.
    if (s.contentLength !== undefined && s.received !== s.contentLength) {
      throw new H3StreamError(H3_MESSAGE_ERROR, `content-length ${s.contentLength} but ${s.received} body bytes`);
    }
  }

  /**
   * A header section over maxFieldSectionSize. For the request head we answer 431 ourselves
   * (RFC 9114 §4.2.2) and stop reading with H3_NO_ERROR (RFC 9114 §4.1.1); the application never
   * sees the request. Oversized trailers are a stream error H3_EXCESSIVE_LOAD.
   */
  private onTooLarge(s: RequestStream): void {
    if (s.decoded > 0) throw new H3StreamError(H3_EXCESSIVE_LOAD, 'trailer section too large');
    this.abandonReading(s, H3_NO_ERROR, true);
    s.send = 'closed';
    this.writeFieldSection(s, [[':status', '431']], true);
    this.maybeForget(s);
  }

  /** Stops reading a request stream; cancels its QPACK state (RFC 9204 §4.4.2). */
  private abandonReading(s: RequestStream, code: number, stopSending: boolean): void {
    if (s.recvDone) return;
    s.recvDone = true;
    s.blocked = false;
    if (stopSending && !s.peerEnded) this.transport.stopSending(s.id, code);
    this.decoder.cancelStream(s.id);
    this.flushDecoder();
  }

  private closeSend(s: RequestStream, code: number): void {
    if (s.send === 'closed') return;
    s.send = 'closed';
    this.transport.resetStream(s.id, code);
  }

  private finishSend(s: RequestStream): void {
    s.send = 'closed';
    this.maybeForget(s);
  }

  private maybeForget(s: RequestStream): void {
    if (s.peerEnded && s.send === 'closed') this.requests.delete(s.id);
  }

  private sendable(streamId: number): RequestStream | undefined {
    if (this.closed) return undefined;
    const s = this.requests.get(streamId);
    // A stream the peer cancelled (or that we reset) silently drops late writes.
    return s && s.send !== 'closed' ? s : undefined;
  }

  private writeFieldSection(s: RequestStream, fields: HeaderField[], fin: boolean): void {
    const block = this.encoder.encodeFieldSection(s.id, fields);
    // Encoder instructions go out before the section that references them (RFC 9204 §2.1.2).
    const instructions = this.encoder.takeEncoderStreamData();
    if (instructions.length > 0) this.transport.write(ENCODER_STREAM_ID, instructions, false);
    this.transport.write(s.id, encodeHeadersFrame(block), fin);
  }

  private flushDecoder(): void {
    const data = this.decoder.takeDecoderStreamData();
    if (data.length > 0) this.transport.write(DECODER_STREAM_ID, data, false);
  }

  // ---- unidirectional streams ----

  private onUniData(id: number, data: Uint8Array, fin: boolean, out: H3Event[]): void {
    let u = this.uni.get(id);
    if (!u) {
      u = { id, kind: 'new', typeBytes: new Uint8Array(8), typeLength: 0 };
      this.uni.set(id, u);
    }
    let off = 0;
    while (u.kind === 'new' && off < data.length) {
      u.typeBytes[u.typeLength++] = data[off++];
      const type = decodeVarintSaturating(u.typeBytes.subarray(0, u.typeLength), 0);
      if (type) this.openUni(u, type.value);
    }
    // draft-ietf-webtrans-http3 §4.1: after stream type 0x54 comes the session id.
    while (u.kind === 'webtransport-header' && off < data.length) {
      u.typeBytes[u.typeLength++] = data[off++];
      const session = decodeVarintSaturating(u.typeBytes.subarray(0, u.typeLength), 0);
      if (!session) continue;
      this.checkSessionId(session.value);
      u.kind = 'webtransport';
      out.push({ type: 'webtransport-stream', streamId: id, sessionId: session.value, bidirectional: false });
    }
    const rest = off === 0 ? data : data.subarray(off);
    switch (u.kind) {
      case 'control':
        u.reader!.push(rest);
        for (let f = u.reader!.next(); f; f = u.reader!.next()) this.onControlFrame(f, out);
        break;
      case 'encoder':
        if (rest.length > 0) this.onEncoderStream(rest, out);
        break;
      case 'decoder':
        if (rest.length > 0) this.encoder.feedDecoderStream(rest);
        break;
      case 'webtransport':
        pushWtData(out, id, rest, fin);
        break;
    }
    if (fin) {
      // RFC 9114 §6.2.1, RFC 9204 §4.2: closing a critical stream MUST be H3_CLOSED_CRITICAL_STREAM.
      if (isCritical(u)) throw new H3Error(H3_CLOSED_CRITICAL_STREAM, `peer closed its ${u.kind} stream`);
      this.uni.delete(id);
    }
  }

  private openUni(u: UniStream, type: number): void {
    if (type === StreamType.WEBTRANSPORT && this.wtMaxSessions > 0) {
      u.kind = 'webtransport-header';
      u.typeLength = 0;
      return;
    }
    let kind: UniKind;
    switch (type) {
      case StreamType.CONTROL:
        kind = 'control';
        u.reader = new FrameReader({ onFrameStart: (t) => this.checkControlFrame(t) });
        break;
      case StreamType.PUSH:
        // RFC 9114 §6.2.2: a server receiving a client-initiated push stream: H3_STREAM_CREATION_ERROR.
        throw new H3Error(H3_STREAM_CREATION_ERROR, 'client opened a push stream');
      case StreamType.QPACK_ENCODER:
        kind = 'encoder';
        break;
      case StreamType.QPACK_DECODER:
        kind = 'decoder';
        break;
      default:
        // RFC 9114 §6.2: abort reading unknown stream types (GREASE too, §6.2.3) with H3_STREAM_CREATION_ERROR.
        u.kind = 'ignored';
        this.transport.stopSending(u.id, H3_STREAM_CREATION_ERROR);
        return;
    }
    // RFC 9114 §6.2.1 and RFC 9204 §4.2: a second control, encoder or decoder stream is H3_STREAM_CREATION_ERROR.
    if (this.peerStreams.has(kind)) throw new H3Error(H3_STREAM_CREATION_ERROR, `second ${kind} stream`);
    this.peerStreams.add(kind);
    u.kind = kind;
  }

  private checkControlFrame(type: number): void {
    const first = this.controlFramesSeen++ === 0;
    // RFC 9114 §6.2.1: the first control frame MUST be SETTINGS, else H3_MISSING_SETTINGS.
    if (first && type !== FrameType.SETTINGS) throw new H3Error(H3_MISSING_SETTINGS, 'first control frame is not SETTINGS');
    // RFC 9114 §7.2.4: a second SETTINGS frame MUST be H3_FRAME_UNEXPECTED.
    if (!first && type === FrameType.SETTINGS) throw new H3Error(H3_FRAME_UNEXPECTED, 'second SETTINGS frame');
    // RFC 9114 §7.2.1, §7.2.2, §7.2.5: DATA, HEADERS, PUSH_PROMISE on the control stream: H3_FRAME_UNEXPECTED.
    if (type === FrameType.DATA || type === FrameType.HEADERS || type === FrameType.PUSH_PROMISE) {
      throw new H3Error(H3_FRAME_UNEXPECTED, `frame 0x${type.toString(16)} on the control stream`);
    }
    // draft-ietf-webtrans-http3 §4.2: WEBTRANSPORT_STREAM on any other stream MUST be H3_FRAME_ERROR.
    if (type === FrameType.WEBTRANSPORT_STREAM && this.wtMaxSessions > 0) throw new H3Error(H3_FRAME_ERROR, 'WEBTRANSPORT_STREAM on the control stream');
  }

  private onControlFrame(f: ReadFrame, out: H3Event[]): void {
    switch (f.kind) {
      case 'settings':
        return this.onSettings(f.settings, out);
      case 'goaway':
        // RFC 9114 §5.2: a GOAWAY id larger than a previous one MUST be H3_ID_ERROR.
        if (this.peerGoaway !== undefined && f.id > this.peerGoaway) throw new H3Error(H3_ID_ERROR, 'GOAWAY id increased');
        this.peerGoaway = f.id;
        out.push({ type: 'goaway', id: f.id });
        return;
      case 'max-push-id':
        // RFC 9114 §7.2.7: a MAX_PUSH_ID smaller than a previous one MUST be H3_ID_ERROR. We never push.
        if (this.peerMaxPushId !== undefined && f.pushId < this.peerMaxPushId) throw new H3Error(H3_ID_ERROR, 'MAX_PUSH_ID decreased');
        this.peerMaxPushId = f.pushId;
        return;
      case 'cancel-push':
        // RFC 9114 §7.2.3: CANCEL_PUSH for a push id never promised MUST be H3_ID_ERROR; we promise none.
        throw new H3Error(H3_ID_ERROR, `CANCEL_PUSH for unpromised push ${f.pushId}`);
    }
  }

  private onSettings(settings: Settings, out: H3Event[]): void {
    for (const id of [SettingsId.ENABLE_CONNECT_PROTOCOL, SettingsId.H3_DATAGRAM]) {
      const v = settings.get(id);
      // RFC 9220 §3 (RFC 8441 §3) and RFC 9297 §2.1.1: values other than 0 or 1 are H3_SETTINGS_ERROR.
      if (v !== undefined && v > 1n) throw new H3Error(H3_SETTINGS_ERROR, `setting 0x${id.toString(16)} = ${v}`);
    }
    this.settings = settings;
    // RFC 9204 §5: without these settings the peer's table capacity and blocked streams are 0.
    this.encoder.configure(
      clampToU32(settings.get(SettingsId.QPACK_MAX_TABLE_CAPACITY)),
      clampToU32(settings.get(SettingsId.QPACK_BLOCKED_STREAMS)),
    );
    const instructions = this.encoder.takeEncoderStreamData();
    if (instructions.length > 0) this.transport.write(ENCODER_STREAM_ID, instructions, false);
    out.push({ type: 'settings', settings });
  }

  private onEncoderStream(data: Uint8Array, out: H3Event[]): void {
    const unblocked = this.decoder.feedEncoderStream(data);
    this.flushDecoder();
    for (const section of unblocked) {
      const s = this.requests.get(section.streamId);
      if (!s || !s.blocked) continue;
      s.blocked = false;
      // The decoder reports an oversized section that was blocked instead of throwing.
      const tooLarge = (section as { error?: unknown }).error instanceof FieldSectionTooLarge;
      this.withStream(s, out, () => (tooLarge ? this.onTooLarge(s) : this.onFields(s, section.headers, out)));
      this.pump(s, out);
    }
  }
}

function pushWtData(out: H3Event[], streamId: number, data: Uint8Array, fin: boolean): void {
  if (data.length > 0 || fin) out.push({ type: 'webtransport-data', streamId, data, fin });
}

function isCritical(u: UniStream): boolean {
  return u.kind === 'control' || u.kind === 'encoder' || u.kind === 'decoder';
}

function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(Math.random() * 256);
  return out;
}
