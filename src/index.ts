/** Harrier: an HTTP/3 server for Node.js. */
export { createServer, Server, DEFAULT_LIMITS, type ServerOptions, type EndpointConfig, type Limits, type ListeningAddress, type WebSocketTransports } from './server';
export { App, Context, Request, Response, Fields, HttpError, Router, compose, type Handler, type Middleware, type Next, type Protocol, type ResponseBody } from './http';
export { QuicListener, type QuicListenerOptions } from './listeners/quic';
export { TcpListener, type TcpListenerOptions } from './listeners/tcp';
export { QuicEndpoint, QuicConnection, QuicStream, QuicError } from './quic';
export { loadOrCreateDevCertificate, createDevCertificate } from './tls/devcert';
export * from './http/middleware';
export { nodeHandler, type NodeRequestHandler } from './http/node-adapter';
export { loadConfig, parseConfig, ConfigError } from './config';
export { formatPrometheus, type MetricsSnapshot } from './metrics';
export type { TlsOptions, CertificateConfig, MetricsOptions } from './server';
export * as webtransport from './webtransport';
export { webTransport, webTransportEcho, type WebTransportSession } from './webtransport';
export { webSocket, sendMessage, isWebSocketRequest, type WebSocket, type WebSocketHandler, type WebSocketRouteOptions } from './websocket';
