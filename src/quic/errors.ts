/**
 * Public errors of the QUIC layer. `code` is a stable string (documented below);
 * `wireCode` is the QUIC or application error code from the wire, when there is one.
 *
 * - HARRIER_ERR_STREAM_RESET: the peer reset the stream (RESET_STREAM); wireCode is its code.
 * - HARRIER_ERR_STREAM_STOPPED: the peer asked us to stop sending (STOP_SENDING).
 * - HARRIER_ERR_STREAM_STATE: the stream cannot be written (already ended or reset).
 * - HARRIER_ERR_CONNECTION_CLOSED: the connection is closed; wireCode is the close code.
 * - HARRIER_ERR_DATAGRAM: the datagram was not queued (too large, disabled or queue full).
 * - HARRIER_ERR_TLS_CERT / HARRIER_ERR_TLS_KEY: the certificate or key could not be loaded.
 * - HARRIER_ERR_INVALID_ARG: an option or argument is invalid.
 */
export type QuicErrorCode =
  | 'HARRIER_ERR_STREAM_RESET'
  | 'HARRIER_ERR_STREAM_STOPPED'
  | 'HARRIER_ERR_STREAM_STATE'
  | 'HARRIER_ERR_CONNECTION_CLOSED'
  | 'HARRIER_ERR_DATAGRAM'
  | 'HARRIER_ERR_TLS_CERT'
  | 'HARRIER_ERR_TLS_KEY'
  | 'HARRIER_ERR_INVALID_ARG';

export class QuicError extends Error {
  readonly code: QuicErrorCode;
  readonly wireCode: number | bigint | undefined;

  constructor(code: QuicErrorCode, message: string, wireCode?: number | bigint) {
    super(message);
    this.name = 'QuicError';
    this.code = code;
    this.wireCode = wireCode;
  }
}

/** RFC 9000 §20.1 transport error codes used by Harrier. */
export const TransportError = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  CONNECTION_REFUSED: 0x2,
  PROTOCOL_VIOLATION: 0xa,
  APPLICATION_ERROR: 0xc,
} as const;
