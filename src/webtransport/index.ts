/**
 * WebTransport over HTTP/3 (draft-ietf-webtrans-http3, as Chromium speaks it), HTTP
 * datagrams and the Capsule Protocol (RFC 9297), extended CONNECT (RFC 9220).
 */
export * from './errors';
export * from './capsule';
export {
  WebTransportSession, WebTransportBidirectionalStream, WebTransportReceiveStream, WebTransportSendStream,
  WebTransportDatagrams,
} from './session';
export type { WebTransportIO, WebTransportCloseInfo, SessionOptions, SessionRequest } from './session';
export { WebTransportConnection } from './connection';
export type { WebTransportOptions } from './connection';
export { WebTransportDriver } from './driver';
export { webTransport, webTransportSession, acceptWebTransport, attachWebTransportSession } from './middleware';
export type { WebTransportHandler, WebTransportRouteOptions } from './middleware';
export { webTransportEcho } from './echo';
export type { EchoStats } from './echo';
export * from './message';
export {
  Http2WebTransport, Http2CapsuleReader, Http2CapsuleError, Http2CapsuleType, Http2WebTransportSetting, Http2WebTransportError,
} from './h2';
export type { Http2WebTransportOptions, Http2CapsuleEvent } from './h2';
