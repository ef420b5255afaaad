// QPACK: Field Compression for HTTP/3 (RFC 9204).
export type { HeaderField } from './header-field';
export { fieldSize } from './header-field';
export {
  QpackError,
  FieldSectionTooLarge,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_ENCODER_STREAM_ERROR,
  QPACK_DECODER_STREAM_ERROR,
  type QpackErrorCode,
} from './errors';
export { QpackDecoder, type QpackDecoderOptions, type UnblockedSection } from './decoder';
export { QpackEncoder, type QpackEncoderOptions } from './encoder';
export { decodeInteger, encodeInteger, integerLength, writeInteger, MAX_INTEGER, type Decoded } from './integer';
export { huffmanDecode, huffmanEncode, huffmanEncodedLength, writeHuffman } from './huffman';
export { decodeStringLiteral, stringLiteralLength, writeStringLiteral } from './string-literal';
export { STATIC_TABLE, staticIndexOf, staticNameIndexOf } from './static-table';
export { DynamicTable } from './table';
export {
  parseEncoderInstruction,
  writeEncoderInstruction,
  type EncoderInstruction,
} from './encoder-instructions';
export {
  parseDecoderInstruction,
  writeDecoderInstruction,
  type DecoderInstruction,
} from './decoder-instructions';
export {
  parseFieldSectionPrefix,
  parseFieldLine,
  writeFieldLine,
  writeFieldSectionPrefix,
  decodeRequiredInsertCount,
  encodeRequiredInsertCount,
  decodeBase,
  type FieldLine,
  type FieldSectionPrefix,
} from './field-lines';
export { ByteWriter, StreamBuffer } from './writer';
