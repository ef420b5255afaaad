export { QuicEndpoint, type QuicEndpointOptions, type ConnectOptions } from './endpoint';
export { QuicConnection, type CloseInfo, type ConnectionInfo } from './connection';
export { QuicStream, isBidi, isClientInitiated } from './stream';
export { QuicError, TransportError, type QuicErrorCode } from './errors';
