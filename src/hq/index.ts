/** HTTP/0.9 over QUIC (ALPN hq-interop), server side. */
export { HqServerConnection, HQ_ERROR_CODE } from './connection';
export type { HqOptions } from './connection';
export type { H3Event, H3Transport, HeaderField, RequestConnection } from '../h3/types';
