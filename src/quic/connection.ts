import { EventEmitter } from 'node:events';
import type { NativeConnStats, NativeEndpoint, U64 } from '../native';
import { QuicError } from './errors';
import { QuicStream, isBidi, isClientInitiated } from './stream';

/** Why a connection ended. */
export interface CloseInfo {
  /** True for an application error code (CONNECTION_CLOSE 0x1d), false for a transport one. */
  isApp: boolean;
  code: U64;
  reason: string;
  /** True when the peer closed; false when we did (or the idle timer did). */
  byPeer: boolean;
  timedOut: boolean;
}

export interface ConnectionInfo {
  alpn: string;
  serverName: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  resumed: boolean;
  earlyData: boolean;
}

/**
 * One QUIC connection. Events: 'stream' (QuicStream opened by the peer), 'open' (QuicStream
 * of ours, as it is created: the peer's data, resets and STOP_SENDING on it come there), 'datagram'
 * (Buffer), 'handshake' (early-data connection completed its handshake), 'close'
 * (CloseInfo). For client connections 'connect' fires once the connection is usable.
 */
export class QuicConnection extends EventEmitter {
  readonly handle: number;
  readonly isServer: boolean;
  info: ConnectionInfo | undefined;
  closed: CloseInfo | undefined;
  readonly streams = new Map<number, QuicStream>();
  private readonly ep: NativeEndpoint;
  private nextLocal = [0, 0]; // next index for [bidi, uni] locally initiated streams
  private readonly closedPromise: Promise<CloseInfo>;
  private resolveClosed!: (info: CloseInfo) => void;

  constructor(ep: NativeEndpoint, handle: number, isServer: boolean) {
    super();
    this.ep = ep;
    this.handle = handle;
    this.isServer = isServer;
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get alpn(): string {
    return this.info?.alpn ?? '';
  }

  /** Resolves when the connection is closed and forgotten. */
  get whenClosed(): Promise<CloseInfo> {
    return this.closedPromise;
  }

  /** Opens a stream of ours (bidirectional by default). */
  openStream(bidirectional = true): QuicStream {
    return this.stream(this.nextLocalId(bidirectional));
  }

  /** The next unused id for a stream we initiate (RFC 9000 §2.1 low bits). */
  nextLocalId(bidirectional: boolean): number {
    const kind = bidirectional ? 0 : 1;
    const low = (this.isServer ? 1 : 0) | (bidirectional ? 0 : 2);
    let id: number;
    do {
      id = this.nextLocal[kind]++ * 4 + low;
    } while (this.streams.has(id));
    return id;
  }

  /** The stream with this id, created if needed (for ids chosen by a protocol above, e.g. HTTP/3's control stream). */
  stream(id: number): QuicStream {
    let s = this.streams.get(id);
    if (!s) {
      s = new QuicStream(this, id);
      this.streams.set(id, s);
      const local = isClientInitiated(id) !== this.isServer;
      if (local) {
        const kind = isBidi(id) ? 0 : 1;
        const index = Math.floor(id / 4) + 1;
        if (index > this.nextLocal[kind]) this.nextLocal[kind] = index;
        this.emit('open', s);
      }
    }
    return s;
  }

  /** Abandons our side of a stream (RESET_STREAM), whether or not JS has an object for it. */
  resetStream(id: number, code: U64): void {
    const s = this.streams.get(id);
    if (s) s.reset(code);
    else this.nativeShutdown(id, 1, code);
  }

  /** Asks the peer to stop sending on a stream (STOP_SENDING), whether or not JS has an object for it. */
  stopSending(id: number, code: U64): void {
    const s = this.streams.get(id);
    if (s) s.stopSending(code);
    else this.nativeShutdown(id, 0, code);
  }

  /** Sends a QUIC datagram; throws when it cannot be queued (too large, disabled, queue full). */
  sendDatagram(data: Uint8Array): void {
    const n = this.ep.datagramSend(this.handle, data);
    if (n < 0) throw new QuicError('HARRIER_ERR_DATAGRAM', `datagram not sent (quiche error ${n})`);
  }

  /** Starts closing with an application (default) or transport error code. */
  close(code: U64 = 0, reason = '', isApp = true): void {
    if (this.closed) return;
    this.ep.connClose(this.handle, isApp, code, reason);
  }

  stats(): NativeConnStats | undefined {
    return this.ep.connStats(this.handle);
  }

  /** TLS session (client) for resumption and 0-RTT on a later connection. */
  session(): Buffer | undefined {
    return this.ep.connSession(this.handle);
  }

  /** @internal */
  nativeWrite(id: number, data: Uint8Array | undefined, fin: boolean): number {
    return this.ep.streamWrite(this.handle, id, data, fin);
  }

  /** @internal */
  nativeShutdown(id: number, direction: 0 | 1, code: U64): void {
    if (!this.closed) this.ep.streamShutdown(this.handle, id, direction, code);
  }

  /** @internal */
  nativePause(id: number, paused: boolean): void {
    if (!this.closed) this.ep.streamPause(this.handle, id, paused);
  }

  /** @internal a finished stream leaves the table; false if it already had. */
  _forgetStream(s: QuicStream): boolean {
    if (this.streams.get(s.id) !== s) return false;
    this.streams.delete(s.id);
    return true;
  }

  /** @internal */
  _onStreamData(id: number, data: Buffer | null, fin: boolean): void {
    let s = this.streams.get(id);
    if (!s) {
      const local = isClientInitiated(id) !== this.isServer;
      if (local) return; // a stream of ours that already finished
      s = this.stream(id);
      this.emit('stream', s);
    }
    s._onData(data, fin);
  }

  /** @internal */
  _onStreamReset(id: number, code: U64): void {
    let s = this.streams.get(id);
    if (!s) {
      if (isClientInitiated(id) !== this.isServer) return;
      s = this.stream(id);
      this.emit('stream', s);
    }
    s._onReset(code);
  }

  /** @internal */
  _onStopSending(id: number, code: U64): void {
    this.streams.get(id)?._onStop(code);
  }

  /** @internal */
  _onWritable(id: number): void {
    this.streams.get(id)?._onWritable();
  }

  /** @internal */
  _onClosed(info: CloseInfo): void {
    this.closed = info;
    for (const s of [...this.streams.values()]) s._onConnectionClosed();
    this.streams.clear();
    this.emit('close', info);
    this.resolveClosed(info);
  }
}
