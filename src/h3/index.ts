/** HTTP/3 (RFC 9114), server side: sans-I/O connection, frames, varints and error codes. */
export * from './errors';
export * from './varint';
export * from './frames';
export { FrameReader } from './frame-reader';
export type { FrameReaderOptions, ReadFrame } from './frame-reader';
export { checkRequestHeaders, checkTrailers, prepareResponseFields, CONNECTION_SPECIFIC_FIELDS } from './fields';
export type { RequestHead } from './fields';
export { H3ServerConnection } from './connection';
export type { H3Options } from './connection';
export type { H3Event, H3Transport, HeaderField, RequestConnection } from './types';
