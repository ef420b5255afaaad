/**
 * HTTP/3 error codes (RFC 9114 §8.1). A code is a plain number: codes we do not know (an
 * extension's, or a GREASE code 0x1f*N+0x21) pass through unchanged.
 */
export type H3ErrorCode = number;

export const H3_NO_ERROR = 0x0100;
export const H3_GENERAL_PROTOCOL_ERROR = 0x0101;
export const H3_INTERNAL_ERROR = 0x0102;
export const H3_STREAM_CREATION_ERROR = 0x0103;
export const H3_CLOSED_CRITICAL_STREAM = 0x0104;
export const H3_FRAME_UNEXPECTED = 0x0105;
export const H3_FRAME_ERROR = 0x0106;
export const H3_EXCESSIVE_LOAD = 0x0107;
export const H3_ID_ERROR = 0x0108;
export const H3_SETTINGS_ERROR = 0x0109;
export const H3_MISSING_SETTINGS = 0x010a;
export const H3_REQUEST_REJECTED = 0x010b;
export const H3_REQUEST_CANCELLED = 0x010c;
export const H3_REQUEST_INCOMPLETE = 0x010d;
export const H3_MESSAGE_ERROR = 0x010e;
export const H3_CONNECT_ERROR = 0x010f;
export const H3_VERSION_FALLBACK = 0x0110;

const NAMES: ReadonlyMap<number, string> = new Map([
  [H3_NO_ERROR, 'H3_NO_ERROR'],
  [H3_GENERAL_PROTOCOL_ERROR, 'H3_GENERAL_PROTOCOL_ERROR'],
  [H3_INTERNAL_ERROR, 'H3_INTERNAL_ERROR'],
  [H3_STREAM_CREATION_ERROR, 'H3_STREAM_CREATION_ERROR'],
  [H3_CLOSED_CRITICAL_STREAM, 'H3_CLOSED_CRITICAL_STREAM'],
  [H3_FRAME_UNEXPECTED, 'H3_FRAME_UNEXPECTED'],
  [H3_FRAME_ERROR, 'H3_FRAME_ERROR'],
  [H3_EXCESSIVE_LOAD, 'H3_EXCESSIVE_LOAD'],
  [H3_ID_ERROR, 'H3_ID_ERROR'],
  [H3_SETTINGS_ERROR, 'H3_SETTINGS_ERROR'],
  [H3_MISSING_SETTINGS, 'H3_MISSING_SETTINGS'],
  [H3_REQUEST_REJECTED, 'H3_REQUEST_REJECTED'],
  [H3_REQUEST_CANCELLED, 'H3_REQUEST_CANCELLED'],
  [H3_REQUEST_INCOMPLETE, 'H3_REQUEST_INCOMPLETE'],
  [H3_MESSAGE_ERROR, 'H3_MESSAGE_ERROR'],
  [H3_CONNECT_ERROR, 'H3_CONNECT_ERROR'],
  [H3_VERSION_FALLBACK, 'H3_VERSION_FALLBACK'],
]);

/** 'H3_FRAME_UNEXPECTED' for known codes, '0x21' style hex for any other. */
export function h3ErrorName(code: H3ErrorCode): string {
  return NAMES.get(code) ?? `0x${code.toString(16)}`;
}

/** A connection error (RFC 9114 §8): the whole connection closes with `code`. */
export class H3Error extends Error {
  constructor(
    readonly code: H3ErrorCode,
    readonly reason: string,
  ) {
    super(`${h3ErrorName(code)}: ${reason}`);
    this.name = 'H3Error';
  }
}

/** A stream error (RFC 9114 §8): only the request stream is aborted with `code`. */
export class H3StreamError extends Error {
  constructor(
    readonly code: H3ErrorCode,
    readonly reason: string,
  ) {
    super(`${h3ErrorName(code)}: ${reason}`);
    this.name = 'H3StreamError';
  }
}

/**
 * Misuse of the connection API by the application (for example sendData before the final
 * response head). Not a wire error: `code` is a stable string.
 */
export class H3StateError extends Error {
  readonly code = 'ERR_H3_STREAM_STATE';
  constructor(message: string) {
    super(message);
    this.name = 'H3StateError';
  }
}
