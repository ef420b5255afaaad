/**
 * WebTransport error codes (draft-ietf-webtrans-http3 §8.5) and the mapping of application
 * stream error codes into the HTTP/3 error space (§4.3). Codes are plain numbers: every value
 * here is below 2^53.
 */
import { h3ErrorName } from '../h3/errors';
import { H3_DATAGRAM_ERROR } from '../h3/frames';

export { H3_DATAGRAM_ERROR };

/** A data stream arrived for a session that never came, or too many were buffered (§4.5). */
export const WT_BUFFERED_STREAM_REJECTED = 0x3994bd84;
/** A data stream aborted because its session ended (§5). */
export const WT_SESSION_GONE = 0x170d7b68;
/** First and last HTTP/3 codes of the WEBTRANSPORT_APPLICATION_ERROR range (§4.3). */
export const WT_APPLICATION_ERROR_FIRST = 0x52e4a40fa8db;
export const WT_APPLICATION_ERROR_LAST = 0x52e5ac983162;

/** An application stream error code (u32) as the HTTP/3 code on the wire (§4.3, Figure 3). */
export function webTransportCodeToHttp3(code: number): number {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) throw new RangeError(`WebTransport error code must be a u32 (got ${code})`);
  // §4.3: codepoints 0x1f * N + 0x21 inside the range are skipped.
  return WT_APPLICATION_ERROR_FIRST + code + Math.floor(code / 0x1e);
}

/** The application code carried by an HTTP/3 stream error code, or null outside the range (§4.3). */
export function http3CodeToWebTransport(code: number): number | null {
  if (code < WT_APPLICATION_ERROR_FIRST || code > WT_APPLICATION_ERROR_LAST) return null;
  if ((code - 0x21) % 0x1f === 0) return null; // a reserved (GREASE) codepoint
  const shifted = code - WT_APPLICATION_ERROR_FIRST;
  return shifted - Math.floor(shifted / 0x1f);
}

/** 'WT_SESSION_GONE', 'H3_NO_ERROR', 'WT_APPLICATION_ERROR(7)', or hex. */
export function webTransportErrorName(code: number): string {
  if (code === WT_SESSION_GONE) return 'WT_SESSION_GONE';
  if (code === WT_BUFFERED_STREAM_REJECTED) return 'WT_BUFFERED_STREAM_REJECTED';
  if (code === H3_DATAGRAM_ERROR) return 'H3_DATAGRAM_ERROR';
  const app = http3CodeToWebTransport(code);
  return app === null ? h3ErrorName(code) : `WT_APPLICATION_ERROR(${app})`;
}

/**
 * A protocol error on one session's CONNECT stream (the Capsule Protocol): the session, not the
 * connection, ends, its CONNECT stream reset with `code`. Never reaches application code.
 */
export class CapsuleError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`${webTransportErrorName(code)}: ${reason}`);
    this.name = 'CapsuleError';
  }
}

/**
 * What application code sees when a stream or session ends abruptly (after the W3C
 * WebTransportError). `code` is a stable string:
 * - HARRIER_ERR_WT_STREAM_RESET: the peer reset the stream (streamErrorCode: its application code, or null);
 * - HARRIER_ERR_WT_STREAM_STOPPED: the peer asked us to stop sending (STOP_SENDING);
 * - HARRIER_ERR_WT_SESSION_GONE: the session ended while the stream was open;
 * - HARRIER_ERR_WT_SESSION_ABORTED: the session ended without a clean close (CONNECT stream reset,
 *   connection lost, or a protocol error);
 * - HARRIER_ERR_WT_SESSION_CLOSED: an operation on a session that is closed.
 */
export class WebTransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly source: 'stream' | 'session',
    readonly streamErrorCode: number | null = null,
  ) {
    super(message);
    this.name = 'WebTransportError';
  }
}
