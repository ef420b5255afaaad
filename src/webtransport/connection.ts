/**
 * The WebTransport sessions of one HTTP/3 connection: routes the HTTP/3 layer's
 * 'webtransport-*' and 'datagram' events to sessions, enforces the session limit, and buffers
 * streams and datagrams that arrive before their session (draft-ietf-webtrans-http3 §4.5).
 */
import type { H3Event } from '../h3/types';
import { WT_BUFFERED_STREAM_REJECTED } from './errors';
import { WebTransportSession, type SessionOptions, type SessionRequest, type WebTransportIO } from './session';

export interface WebTransportOptions extends SessionOptions {
  /** Sessions per connection (advertised as SETTINGS_WEBTRANSPORT_MAX_SESSIONS). Default 16. */
  maxSessions?: number;
  /** Streams held for sessions that have not arrived yet, per connection (draft §4.5). Default 16. */
  maxBufferedStreams?: number;
  /** Datagrams held for sessions that have not arrived yet, per connection. Default 32. */
  maxBufferedDatagrams?: number;
}

interface Buffered {
  sessionId: number;
  bidirectional: boolean;
  chunks: Array<{ data: Uint8Array; fin: boolean }>;
  reset?: number;
}

export class WebTransportConnection {
  readonly maxSessions: number;
  private readonly options: WebTransportOptions;
  private readonly sessions = new Map<number, WebTransportSession>();
  /** Data stream id to its session id. */
  private readonly streams = new Map<number, number>();
  private readonly buffered = new Map<number, Buffered>();
  private bufferedDatagrams: Array<{ sessionId: number; payload: Uint8Array }> = [];

  constructor(
    private readonly io: WebTransportIO,
    options: WebTransportOptions = {},
  ) {
    this.options = options;
    this.maxSessions = options.maxSessions ?? 16;
  }

  get size(): number {
    return this.sessions.size;
  }

  session(sessionId: number): WebTransportSession | undefined {
    return this.sessions.get(sessionId);
  }

  /**
   * An extended CONNECT with `:protocol webtransport` arrived on `streamId`. Returns the new
   * (pending) session, or undefined when the connection has its maximum: draft §3.4 then
   * requires resetting the CONNECT stream with H3_REQUEST_REJECTED, which the caller does.
   */
  open(streamId: number, request: SessionRequest): WebTransportSession | undefined {
    if (this.sessions.size >= this.maxSessions) return undefined;
    // The session's own streams are routed back to it by id.
    const io: WebTransportIO = Object.create(this.io);
    io.openStream = (bidirectional) => {
      const id = this.io.openStream(bidirectional);
      this.streams.set(id, streamId);
      return id;
    };
    const session = new WebTransportSession(io, streamId, request, this.options);
    this.sessions.set(streamId, session);
    session.onEnded = () => this.forget(session);
    session.onStreamDone = (id) => this.streams.delete(id);
    for (const [id, b] of [...this.buffered]) {
      if (b.sessionId !== streamId) continue;
      this.buffered.delete(id);
      this.attach(session, id, b.bidirectional);
      for (const c of b.chunks) session._streamData(id, c.data, c.fin);
      if (b.reset !== undefined) session._streamReset(id, b.reset);
    }
    const early = this.bufferedDatagrams.filter((d) => d.sessionId === streamId);
    this.bufferedDatagrams = this.bufferedDatagrams.filter((d) => d.sessionId !== streamId);
    for (const d of early) session._datagram(d.payload);
    return session;
  }

  /** Handles the WebTransport events of the HTTP/3 layer; returns false for any other event. */
  handle(e: H3Event): boolean {
    switch (e.type) {
      case 'webtransport-stream': {
        const session = this.sessions.get(e.sessionId);
        if (session) this.attach(session, e.streamId, e.bidirectional);
        else this.buffer(e.streamId, e.sessionId, e.bidirectional);
        return true;
      }
      case 'webtransport-data': {
        const sessionId = this.streams.get(e.streamId);
        if (sessionId !== undefined) {
          this.sessions.get(sessionId)?._streamData(e.streamId, e.data, e.fin);
        } else {
          this.buffered.get(e.streamId)?.chunks.push({ data: e.data.slice(), fin: e.fin });
        }
        return true;
      }
      case 'webtransport-reset': {
        const sessionId = this.streams.get(e.streamId);
        if (sessionId !== undefined) this.sessions.get(sessionId)?._streamReset(e.streamId, e.code);
        else {
          const b = this.buffered.get(e.streamId);
          if (b) b.reset = e.code;
        }
        return true;
      }
      case 'webtransport-stop': {
        const sessionId = this.streams.get(e.streamId);
        if (sessionId !== undefined) this.sessions.get(sessionId)?._streamStop(e.streamId, e.code);
        return true;
      }
      case 'datagram': {
        const session = this.sessions.get(e.streamId);
        if (session) session._datagram(e.payload);
        else if (this.bufferedDatagrams.length < (this.options.maxBufferedDatagrams ?? 32)) {
          this.bufferedDatagrams.push({ sessionId: e.streamId, payload: e.payload.slice() });
        }
        // draft §4.5: past the limit, a datagram SHALL be dropped.
        return true;
      }
      default:
        return false;
    }
  }

  /** DATA payload on a session's CONNECT stream. Returns false if the stream is no session. */
  connectData(streamId: number, data: Uint8Array, fin: boolean): boolean {
    const session = this.sessions.get(streamId);
    if (!session) return false;
    session._connectData(data, fin);
    return true;
  }

  /** The CONNECT stream was reset or cancelled. */
  connectAborted(streamId: number, code: number): void {
    this.sessions.get(streamId)?._aborted(`CONNECT stream reset (0x${code.toString(16)})`);
  }

  /** GOAWAY: every session is asked to drain (draft §4.6). */
  goaway(): void {
    for (const s of this.sessions.values()) s._goaway();
  }

  /** The connection closed: every session ends abruptly. */
  closed(reason: string): void {
    for (const s of [...this.sessions.values()]) s._aborted(reason);
    this.buffered.clear();
    this.bufferedDatagrams = [];
  }

  private attach(session: WebTransportSession, streamId: number, bidirectional: boolean): void {
    if (session._incomingStream(streamId, bidirectional)) this.streams.set(streamId, session.sessionId);
  }

  private buffer(streamId: number, sessionId: number, bidirectional: boolean): void {
    if (this.buffered.size >= (this.options.maxBufferedStreams ?? 16)) {
      // draft §4.5: past the buffering limit, RESET_STREAM/STOP_SENDING with WEBTRANSPORT_BUFFERED_STREAM_REJECTED.
      this.io.stopSending(streamId, WT_BUFFERED_STREAM_REJECTED);
      if (bidirectional) this.io.resetStream(streamId, WT_BUFFERED_STREAM_REJECTED);
      return;
    }
    this.buffered.set(streamId, { sessionId, bidirectional, chunks: [] });
  }

  private forget(session: WebTransportSession): void {
    this.sessions.delete(session.sessionId);
    for (const [id, sid] of [...this.streams]) if (sid === session.sessionId) this.streams.delete(id);
  }
}
