import type { WebSocket } from 'ws';

/** Server-wide WebSocket limits (set from the server's `limits`). */
export interface WebSocketLimits {
  /** Most open WebSockets on the server; beyond it upgrades are refused with 503. */
  maxWebSockets: number | undefined;
  /** Largest message (after reassembly and decompression); beyond it the socket closes with 1009. */
  maxMessageSize: number;
  /** A socket that received nothing for this long is sent a ping. 0: never. */
  pingIntervalMs: number;
  /** A socket that received nothing (not even a pong) for this long is closed with 1001. 0: never. */
  idleTimeoutMs: number;
}

export const DEFAULT_WEBSOCKET_LIMITS: WebSocketLimits = {
  maxWebSockets: undefined,
  maxMessageSize: 16 * 1024 * 1024,
  pingIntervalMs: 30_000,
  idleTimeoutMs: 120_000,
};

/**
 * The open WebSockets of one pipeline: counts them against the limit, keeps each one alive
 * with pings and closes idle ones, and closes them all (1001, going away) on shutdown.
 */
export class WebSocketHub {
  limits: WebSocketLimits = { ...DEFAULT_WEBSOCKET_LIMITS };
  /** Upgrades accepted since start. */
  accepted = 0;
  /** Upgrades refused because the server was at maxWebSockets. */
  refused = 0;
  private readonly open = new Set<WebSocket>();
  private shuttingDown = false;

  get size(): number {
    return this.open.size;
  }

  /** Whether another WebSocket may open now. */
  hasRoom(): boolean {
    if (this.shuttingDown) return false;
    const max = this.limits.maxWebSockets;
    return max === undefined || this.open.size < max;
  }

  /** Tracks an accepted socket until it closes; pings it when quiet, closes it when idle. */
  add(ws: WebSocket, timing: { pingIntervalMs?: number; idleTimeoutMs?: number } = {}): void {
    this.accepted++;
    this.open.add(ws);
    const pingEvery = timing.pingIntervalMs ?? this.limits.pingIntervalMs;
    const idleAfter = timing.idleTimeoutMs ?? this.limits.idleTimeoutMs;
    let lastHeard = Date.now();
    const heard = (): void => {
      lastHeard = Date.now();
    };
    ws.on('message', heard);
    ws.on('pong', heard);
    ws.on('ping', heard);
    const periods = [pingEvery, idleAfter].filter((ms) => ms > 0);
    let timer: NodeJS.Timeout | undefined;
    if (periods.length > 0) {
      const tick = Math.max(10, Math.min(...periods) / 2);
      timer = setInterval(() => {
        const quiet = Date.now() - lastHeard;
        if (idleAfter > 0 && quiet >= idleAfter) {
          ws.close(1001, 'idle timeout');
          clearInterval(timer);
        } else if (pingEvery > 0 && quiet >= pingEvery && ws.readyState === ws.OPEN) {
          ws.ping();
        }
      }, tick);
      timer.unref();
    }
    ws.once('close', () => {
      clearInterval(timer);
      this.open.delete(ws);
    });
    if (this.shuttingDown) ws.close(1001, 'server shutting down');
  }

  /** Graceful shutdown: every open WebSocket gets a Close frame with 1001 (going away). */
  closeAll(reason = 'server shutting down'): void {
    this.shuttingDown = true;
    for (const ws of this.open) ws.close(1001, reason);
  }

  /** End of shutdown: sockets whose close handshake did not finish are cut. */
  terminateAll(): void {
    for (const ws of this.open) ws.terminate();
  }
}
