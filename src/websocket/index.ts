export { webSocket, sendMessage, isWebSocketRequest, type WebSocket, type WebSocketHandler, type WebSocketRouteOptions } from './route';
export { WebSocketHub, DEFAULT_WEBSOCKET_LIMITS, type WebSocketLimits } from './hub';
