/**
 * The native boundary: the only module that loads the addon (build/Release/harrier_native.node).
 *
 * The addon owns the UDP socket and every quiche connection. Once per event-loop turn it
 * calls the `onEvents` callback given to {@link NativeEndpoint}'s constructor with every
 * event since the previous turn, as an array of small tuples ({@link NativeEvent}). JS calls
 * the methods below to act; packets are flushed once after the JS turn, never per call.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';

/** Kinds of events in a batch (the first element of each tuple). */
export const enum EventKind {
  /** A connection is usable (handshake done, or 0-RTT early data started). */
  Connection = 0,
  /** Bytes arrived on a stream, in order; `fin` marks the end of the peer's data. */
  StreamData = 1,
  /** The peer reset its sending side of a stream (RESET_STREAM) with an application code. */
  StreamReset = 2,
  /** The peer asked us to stop sending on a stream (STOP_SENDING) with an application code. */
  StopSending = 3,
  /** A stream whose last write was partial can take more data. */
  Writable = 4,
  /** A QUIC DATAGRAM frame (RFC 9221) arrived. */
  Datagram = 5,
  /** The connection is closed and forgotten; its handle is no longer valid. */
  Closed = 6,
  /** A connection announced during early data has completed its handshake. */
  HandshakeDone = 7,
}

/** Stream ids and error codes are u64 on the wire: a number while exact, a bigint beyond 2^53. */
export type U64 = number | bigint;

export type NativeEvent =
  | [kind: EventKind.Connection, conn: number, alpn: string, serverName: string, peerHost: string,
     peerPort: number, localHost: string, localPort: number, resumed: boolean, earlyData: boolean]
  | [kind: EventKind.StreamData, conn: number, streamId: number, data: Buffer | null, fin: boolean]
  | [kind: EventKind.StreamReset, conn: number, streamId: number, code: U64]
  | [kind: EventKind.StopSending, conn: number, streamId: number, code: U64]
  | [kind: EventKind.Writable, conn: number, streamId: number]
  | [kind: EventKind.Datagram, conn: number, data: Buffer]
  | [kind: EventKind.Closed, conn: number, isApp: boolean, code: U64, reason: string, byPeer: boolean,
     timedOut: boolean]
  | [kind: EventKind.HandshakeDone, conn: number];

/** quiche's error codes as returned (negated) by the write-side calls. */
export const QuicheError = {
  DONE: -1,
  BUFFER_TOO_SHORT: -2,
  INVALID_STATE: -6,
  INVALID_STREAM_STATE: -7,
  FLOW_CONTROL: -11,
  STREAM_LIMIT: -12,
  FINAL_SIZE: -13,
  STREAM_STOPPED: -15,
  STREAM_RESET: -16,
} as const;

/** Transport settings shared by the server and client sides. */
export interface NativeTransportOptions {
  /** ALPN protocols offered (server: in preference order). Required. */
  alpn: string[];
  /** Idle timeout in milliseconds (max_idle_timeout). Default 30000. */
  maxIdleTimeout?: number;
  /** Largest UDP payload we send. Default 1350; 1452 fits a 1500-byte MTU. */
  maxUdpPayloadSize?: number;
  /** Largest UDP payload we accept. Default 65527. */
  maxRecvUdpPayloadSize?: number;
  /** Connection flow-control window (initial_max_data). Default 16 MiB. */
  initialMaxData?: number;
  /** Default for the three per-stream windows below. Default 1 MiB. */
  initialMaxStreamData?: number;
  initialMaxStreamDataBidiLocal?: number;
  initialMaxStreamDataBidiRemote?: number;
  initialMaxStreamDataUni?: number;
  /** Concurrent streams the peer may open. Default 100 each. */
  initialMaxStreamsBidi?: number;
  initialMaxStreamsUni?: number;
  /** Upper bounds for flow-control window auto-tuning. Defaults 16 MiB / 24 MiB. */
  maxStreamWindow?: number;
  maxConnectionWindow?: number;
  /** Refuse active connection migration by the peer. Default false. */
  disableActiveMigration?: boolean;
  /** Enable QUIC datagrams (RFC 9221). Default false. */
  datagrams?: boolean;
  /** Receive and send queue length for datagrams. Default 1024. */
  datagramQueueLength?: number;
  /** Accept (server) or send (client) 0-RTT early data. Default false. */
  earlyData?: boolean;
  /** Congestion control: "cubic" (default), "reno" or "bbr2". */
  congestionControl?: string;
  /** Send GREASE values (RFC 9287 bits, reserved parameters). Default true. */
  grease?: boolean;
  /** Append TLS secrets to this file in NSS key log format (SSLKEYLOGFILE). */
  keylogFile?: string;
}

export interface NativeEndpointOptions extends NativeTransportOptions {
  /** Accept connections: certificate chain and key as PEM files. */
  server?: {
    certFile: string;
    keyFile: string;
    /** 48-byte key for session tickets; share it between endpoints to resume across them. */
    ticketKey?: Buffer;
  };
  /** Open connections. */
  client?: {
    /** Verify the server's certificate. Default false. */
    verifyPeer?: boolean;
    /** PEM file of trusted CA certificates for verifyPeer. */
    caFile?: string;
  };
  /** Answer Initials without a token with a stateless Retry (address validation). */
  retry?: boolean;
  /** Seconds a Retry token stays valid. Default 10. */
  retryTokenLifetime?: number;
  /** Refuse connections beyond this count with CONNECTION_REFUSED. 0 = unlimited. */
  maxConnections?: number;
  /** Write one qlog file per connection into this directory. */
  qlogDir?: string;
}

/** Per-connection statistics from quiche (times in milliseconds). */
export interface NativeConnStats {
  packetsSent: number; packetsReceived: number; packetsLost: number; packetsRetransmitted: number;
  bytesSent: number; bytesReceived: number; bytesLost: number;
  datagramsSent: number; datagramsReceived: number; paths: number;
  rtt: number; minRtt: number; rttVar: number; cwnd: number; pmtu: number; deliveryRate: number;
  peerAddress: string; peerPort: number; established: boolean; resumed: boolean;
}

/** Endpoint-wide counters. */
export interface NativeEndpointStats {
  connections: number; connectionIds: number; packetsReceived: number; packetsDropped: number;
  versionNegotiationsSent: number; retriesSent: number; tokensRejected: number; acceptFailed: number;
  connectionsAccepted: number; connectionsRefused: number; datagramsSent: number; sendCalls: number;
  sendDropped: number; gso: boolean;
}

/** The addon's endpoint class. Connection handles are small integers assigned natively. */
export interface NativeEndpoint {
  /** Binds the UDP socket. `ipv6Only` false makes `::` dual-stack. Throws EADDRINUSE etc. */
  listen(host: string, port: number, ipv6Only?: boolean, socketBufferBytes?: number): { host: string; port: number; gso: boolean };
  /** Opens a client connection (binding an ephemeral port first if needed); returns its handle. */
  connect(host: string, port: number, serverName: string, session?: Buffer): number;
  /** Writes to a stream; returns the bytes accepted (the rest waits for a Writable event) or a QuicheError. */
  streamWrite(conn: number, streamId: number, data: Uint8Array | undefined, fin: boolean): number;
  /** Direction 0: STOP_SENDING (stop reading); 1: RESET_STREAM (abandon writing). */
  streamShutdown(conn: number, streamId: number, direction: 0 | 1, code: U64): number;
  /** A paused stream is not read: its flow-control window stays shut until resumed. */
  streamPause(conn: number, streamId: number, paused: boolean): void;
  /** Bytes a write would accept now, or a QuicheError. */
  streamCapacity(conn: number, streamId: number): number;
  /** Queues a DATAGRAM; returns its length or a QuicheError (e.g. DONE when the queue is full). */
  datagramSend(conn: number, data: Uint8Array): number;
  /** Starts closing: CONNECTION_CLOSE with a transport (isApp false) or application code. */
  connClose(conn: number, isApp: boolean, code: U64, reason: string): number;
  connStats(conn: number): NativeConnStats | undefined;
  /** The TLS session (client side) for a later `connect(..., session)` to resume. */
  connSession(conn: number): Buffer | undefined;
  stats(): NativeEndpointStats;
  /**
   * Stops accepting and starts closing every connection (also those still in their
   * handshake) with the code; returns how many connections remain to finish closing.
   */
  closeAll(isApp: boolean, code: U64, reason: string): number;
  /** Frees every connection immediately and releases the socket. */
  close(): void;
  /** Whether the endpoint keeps the process alive. */
  ref(referenced: boolean): void;
}

export interface NativeEndpointConstructor {
  new (options: NativeEndpointOptions, onEvents: (events: NativeEvent[]) => void): NativeEndpoint;
}

interface Addon {
  Endpoint: NativeEndpointConstructor;
  quicheVersion: string;
}

function load(): Addon {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'build', 'Release', 'harrier_native.node');
    if (fs.existsSync(candidate)) return require(candidate) as Addon;
    dir = path.dirname(dir);
  }
  const err = new Error('harrier: the native addon is not built; run `npm install` (it builds quiche and the addon)');
  (err as NodeJS.ErrnoException).code = 'HARRIER_ERR_NO_ADDON';
  throw err;
}

let addon: Addon | undefined;

/** The loaded addon (loaded on first use, so pure-TypeScript modules work without it). */
export function native(): Addon {
  addon ??= load();
  return addon;
}
