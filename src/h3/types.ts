/**
 * The boundary between a request-stream protocol (HTTP/3, HTTP/0.9 over QUIC) and the
 * listener that drives it. Both H3ServerConnection and HqServerConnection implement
 * RequestConnection, so one handler serves both.
 */
import type { HeaderField } from '../qpack';

export type { HeaderField };

/**
 * What the protocol needs from a QUIC connection; implemented by the listener. Writes are
 * buffered by the implementation and never partial. Stream ids are QUIC stream ids.
 */
export interface H3Transport {
  /** Writes bytes on a stream (opening it if it is a new server stream); `fin` ends it. */
  write(streamId: number, data: Uint8Array, fin: boolean): void;
  /** Abruptly ends our sending side (QUIC RESET_STREAM). */
  resetStream(streamId: number, code: number): void;
  /** Asks the peer to stop sending on a stream (QUIC STOP_SENDING). */
  stopSending(streamId: number, code: number): void;
  /** Closes the connection with an application error (QUIC CONNECTION_CLOSE, type 0x1d). */
  close(code: number, reason: string): void;
  /** Sends a QUIC DATAGRAM frame (RFC 9221); false when it could not be queued. Optional: HTTP/3 datagrams need it. */
  sendDatagram?(data: Uint8Array): boolean;
}

/**
 * Events out of the receive* methods (past tense: something the peer did). Byte payloads are
 * views into the input passed to receiveStreamData: copy them to keep them past that call.
 */
export type H3Event =
  /** A validated request head. `fin`: the request has no body. */
  | { type: 'headers'; streamId: number; headers: HeaderField[]; fin: boolean }
  /** Request body bytes; the last event of a request has `fin` (its data may be empty). */
  | { type: 'data'; streamId: number; data: Uint8Array; fin: boolean }
  /** Request trailers; they imply the end of the request. */
  | { type: 'trailers'; streamId: number; headers: HeaderField[] }
  /** The peer reset or stopped the request stream, or we rejected it (a stream error). */
  | { type: 'request-cancelled'; streamId: number; code: number }
  /** The peer's SETTINGS (HTTP/3 only). */
  | { type: 'settings'; settings: Map<number, bigint> }
  /** The peer's GOAWAY (HTTP/3 only; from a client it carries a push id). */
  | { type: 'goaway'; id: bigint }
  /** We closed the connection with a protocol error; transport.close was already called. */
  | { type: 'closed'; code: number; reason: string }
  /**
   * WebTransport (draft-ietf-webtrans-http3 §4.1, §4.2), only with H3Options.webTransport: the
   * peer opened a stream whose header names `sessionId` (the CONNECT stream id). Its bytes
   * follow as 'webtransport-data' events.
   */
  | { type: 'webtransport-stream'; streamId: number; sessionId: number; bidirectional: boolean }
  /** Payload bytes on a WebTransport stream (after its header); `fin` ends the peer's side. */
  | { type: 'webtransport-data'; streamId: number; data: Uint8Array; fin: boolean }
  /** The peer reset its side of a WebTransport stream (RESET_STREAM). */
  | { type: 'webtransport-reset'; streamId: number; code: number }
  /** The peer asked us to stop sending on a WebTransport stream (STOP_SENDING). */
  | { type: 'webtransport-stop'; streamId: number; code: number }
  /** An HTTP/3 Datagram (RFC 9297 §2.1) for the request stream `streamId`. */
  | { type: 'datagram'; streamId: number; payload: Uint8Array };

/** A server connection carrying requests on client-initiated bidirectional streams. */
export interface RequestConnection {
  /** Opens the server's own streams, if the protocol has any. Idempotent. */
  start(): void;
  /** Bytes (and FIN) received on a stream. */
  receiveStreamData(streamId: number, data: Uint8Array, fin: boolean): H3Event[];
  /** The peer reset its sending side of a stream (RESET_STREAM). */
  receiveStreamReset(streamId: number, code: number): H3Event[];
  /** The peer asked us to stop sending on a stream (STOP_SENDING). */
  receiveStopSending(streamId: number, code: number): H3Event[];
  /** Sends a response head; 1xx heads may precede the final one. */
  sendHeaders(streamId: number, headers: HeaderField[], fin?: boolean): void;
  /** Sends response body bytes. */
  sendData(streamId: number, data: Uint8Array, fin?: boolean): void;
  /** Sends trailers and ends the response. */
  sendTrailers(streamId: number, headers: HeaderField[]): void;
  /** Ends the response without more data. */
  end(streamId: number): void;
  /** Aborts a request stream in both directions with an application error code. */
  resetStream(streamId: number, code: number): void;
  /** Starts a graceful shutdown: requests not yet seen are refused. */
  goaway(): void;
}
