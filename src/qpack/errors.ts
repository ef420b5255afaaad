/** RFC 9204 Section 6: the decoder failed to interpret an encoded field section. */
export const QPACK_DECOMPRESSION_FAILED = 0x0200;
/** RFC 9204 Section 6: the decoder failed to interpret an encoder instruction. */
export const QPACK_ENCODER_STREAM_ERROR = 0x0201;
/** RFC 9204 Section 6: the encoder failed to interpret a decoder instruction. */
export const QPACK_DECODER_STREAM_ERROR = 0x0202;

export type QpackErrorCode =
  | typeof QPACK_DECOMPRESSION_FAILED
  | typeof QPACK_ENCODER_STREAM_ERROR
  | typeof QPACK_DECODER_STREAM_ERROR;

const NAMES: Record<number, string> = {
  [QPACK_DECOMPRESSION_FAILED]: 'QPACK_DECOMPRESSION_FAILED',
  [QPACK_ENCODER_STREAM_ERROR]: 'QPACK_ENCODER_STREAM_ERROR',
  [QPACK_DECODER_STREAM_ERROR]: 'QPACK_DECODER_STREAM_ERROR',
};

/**
 * A QPACK connection error (RFC 9204 Section 6). `code` is the HTTP/3 wire code the
 * connection must be closed with; `codeName` is its stable name.
 */
export class QpackError extends Error {
  readonly code: number;
  readonly codeName: string;

  constructor(code: QpackErrorCode, reason: string) {
    super(`${NAMES[code]}: ${reason}`);
    this.name = 'QpackError';
    this.code = code;
    this.codeName = NAMES[code];
  }
}

/**
 * A decoded field section is larger than the decoder's maxFieldSectionSize
 * (RFC 9114 Section 4.2.2: sum of name + value + 32 per field line). Not a QPACK
 * error: the decoder state is intact and only this message is affected, so the
 * HTTP/3 layer decides how to refuse it (e.g. H3_EXCESSIVE_LOAD or a 431).
 */
export class FieldSectionTooLarge extends Error {
  readonly code = 'QPACK_FIELD_SECTION_TOO_LARGE';
  readonly streamId: number;
  readonly limit: number;

  constructor(streamId: number, limit: number) {
    super(`field section on stream ${streamId} exceeds ${limit} bytes`);
    this.name = 'FieldSectionTooLarge';
    this.streamId = streamId;
    this.limit = limit;
  }
}
