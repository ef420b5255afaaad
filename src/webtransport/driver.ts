/**
 * The I/O side of WebTransport: binds the sessions of one HTTP/3 connection to its QUIC
 * connection. The QUIC listener creates one per HTTP/3 connection when WebTransport is on and
 * hands it the HTTP/3 events first. This is the only file in src/webtransport that touches
 * QUIC objects.
 */
import type { H3ServerConnection } from '../h3/connection';
import { H3_REQUEST_REJECTED } from '../h3/errors';
import type { H3Event, HeaderField } from '../h3/types';
import type { ResponseSink } from '../http/context';
import type { QuicConnection } from '../quic/connection';
import { WebTransportConnection, type WebTransportOptions } from './connection';
import { connectSink } from './middleware';
import type { WebTransportIO, WebTransportSession } from './session';

/** Bytes queued per WebTransport stream before writers wait (as for HTTP responses). */
const HIGH_WATER = 256 * 1024;
/**
 * Largest datagram payload we send: QUIC DATAGRAM frames must fit one packet (RFC 9221 §5);
 * with 1350-byte packets this leaves room for headers, the frame and the Quarter Stream ID.
 */
const MAX_DATAGRAM_PAYLOAD = 1200;


export class WebTransportDriver {
  readonly sessions: WebTransportConnection;

  constructor(
    private readonly conn: QuicConnection,
    private readonly h3: H3ServerConnection,
    options: WebTransportOptions = {},
  ) {
    const io: WebTransportIO = {
      write: (id, data, fin) => {
        const s = conn.stream(id);
        if (s.writeEnded) return true;
        s.write(data, fin);
        return s.writableLength <= HIGH_WATER;
      },
      drained: async (id) => {
        const s = conn.streams.get(id);
        if (s) await s.drained();
      },
      openStream: (bidirectional) => conn.openStream(bidirectional).id,
      resetStream: (id, code) => conn.resetStream(id, code),
      stopSending: (id, code) => conn.stopSending(id, code),
      pauseReading: (id, paused) => {
        const s = conn.streams.get(id);
        if (paused) s?.pause();
        else s?.resume();
      },
      sendCapsules: (sessionId, data, fin) => {
        if (data.length > 0) h3.sendData(sessionId, data, fin);
        else if (fin) h3.sendData(sessionId, data, true);
      },
      abortConnect: (sessionId, code) => h3.resetStream(sessionId, code),
      sendDatagram: (sessionId, payload) => h3.sendDatagram(sessionId, payload),
      maxDatagramSize: MAX_DATAGRAM_PAYLOAD,
    };
    this.sessions = new WebTransportConnection(io, options);
  }

  /** The H3Transport.sendDatagram for this connection. */
  static datagramSender(conn: QuicConnection): (data: Uint8Array) => boolean {
    return (data) => {
      try {
        conn.sendDatagram(data);
        return true;
      } catch {
        return false; // queue full or too large: datagrams are unreliable
      }
    };
  }

  /**
   * Takes the HTTP/3 events that belong to WebTransport (streams, datagrams, capsules on
   * CONNECT streams, cancelled CONNECT streams); returns false for the listener's own.
   */
  event(e: H3Event): boolean {
    if (e.type === 'data') return this.sessions.connectData(e.streamId, e.data, e.fin);
    if (e.type === 'request-cancelled') {
      this.sessions.connectAborted(e.streamId, e.code);
      return false;
    }
    return this.sessions.handle(e);
  }

  /**
   * A request head arrived. For an extended CONNECT with `:protocol webtransport` returns its
   * pending session; when the connection has all its sessions, resets the stream with
   * H3_REQUEST_REJECTED (draft-ietf-webtrans-http3 §3.4) and returns 'rejected'. Other requests: undefined.
   */
  connectRequest(streamId: number, fields: HeaderField[]): WebTransportSession | 'rejected' | undefined {
    let method = '';
    let protocol = '';
    let path = '/';
    let authority = '';
    let origin: string | undefined;
    for (const [name, value] of fields) {
      if (name === ':method') method = value;
      else if (name === ':protocol') protocol = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      else if (name === 'origin') origin = value;
    }
    if (method !== 'CONNECT' || protocol !== 'webtransport') return undefined;
    const session = this.sessions.open(streamId, { path, authority, origin, headers: fields.filter(([n]) => !n.startsWith(':')) });
    if (session) return session;
    // draft-ietf-webtrans-http3 §3.4: CONNECT streams over the limit MUST be reset with H3_REQUEST_REJECTED.
    this.h3.resetStream(streamId, H3_REQUEST_REJECTED);
    return 'rejected';
  }

  /**
   * The response sink of a session's CONNECT request: a 2xx head accepts the session and
   * leaves the stream open for capsules; anything else rejects it and is sent as usual.
   */
  sink(session: WebTransportSession, streamId: number, base: ResponseSink): ResponseSink {
    return connectSink(session, base, (status, headers) => {
      // draft-ietf-webtrans-http3-02 clients expect the last field; later drafts ignore it.
      const fields: HeaderField[] = [[':status', String(status)], ...headers, ['sec-webtransport-http3-draft', 'draft02']];
      this.h3.sendHeaders(streamId, fields, false);
      session._accepted();
    }, () => session._aborted('the request failed'));
  }

  /** GOAWAY: sessions are asked to drain. */
  goaway(): void {
    this.sessions.goaway();
  }

  /** The QUIC connection closed. */
  closed(reason: string): void {
    this.sessions.closed(reason);
  }

  get connection(): QuicConnection {
    return this.conn;
  }
}
