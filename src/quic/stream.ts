import { EventEmitter } from 'node:events';
import { drainOrClose } from '../util/drain';
import { QuicheError } from '../native';
import { QuicError } from './errors';
import type { QuicConnection } from './connection';

/** Stream id helpers (RFC 9000 §2.1). */
export const isBidi = (id: number): boolean => (id & 0x2) === 0;
export const isClientInitiated = (id: number): boolean => (id & 0x1) === 0;

/**
 * One QUIC stream. Reading: 'data' (Buffer), 'end', 'reset' (code). Writing: `write()`
 * never loses data: what the connection cannot take now is queued, `write()` returns false,
 * and 'drain' follows when the queue is empty. 'stop' (code) reports STOP_SENDING.
 *
 * Events: 'data' (chunk: Buffer), 'end', 'reset' (code), 'stop' (code), 'drain', 'close'.
 */
export class QuicStream extends EventEmitter {
  readonly id: number;
  readonly connection: QuicConnection;
  /** Bytes queued in JS because the connection could not take them yet. */
  writableLength = 0;
  /** True once the peer's side ended (fin) or was reset. */
  readEnded = false;
  /** True once our side ended (fin queued) or was reset/stopped. */
  writeEnded = false;
  private queue: Uint8Array[] = [];
  private finQueued = false;
  private finSent = false;
  private paused = false;

  constructor(connection: QuicConnection, id: number) {
    super();
    this.connection = connection;
    this.id = id;
    // Unidirectional streams have one direction only.
    if (!isBidi(id)) {
      const local = isClientInitiated(id) !== connection.isServer;
      if (local) this.readEnded = true;
      else this.writeEnded = true;
    }
  }

  get bidirectional(): boolean {
    return isBidi(this.id);
  }

  /**
   * Queues `data` (and the end of the stream when `fin`). Returns false when some of it
   * had to wait: wait for 'drain' before writing much more.
   */
  write(data: Uint8Array | undefined, fin = false): boolean {
    if (this.writeEnded) {
      throw new QuicError('HARRIER_ERR_STREAM_STATE', `stream ${this.id} is not writable`);
    }
    if (fin) this.writeEnded = true;
    if (this.queue.length === 0) {
      const len = data ? data.byteLength : 0;
      const n = this.connection.nativeWrite(this.id, data, fin);
      if (n === len && n >= 0) {
        if (fin) this.finishWrite();
        return true;
      }
      if (n < 0) return this.failWrite(n);
      if (data) this.enqueue(n === 0 ? data : data.subarray(n));
      this.finQueued = fin;
      return false;
    }
    if (data && data.byteLength > 0) this.enqueue(data);
    if (fin) this.finQueued = true;
    return false;
  }

  /** Ends our side, after anything queued. */
  end(data?: Uint8Array): void {
    if (this.writeEnded && !data) return;
    this.write(data, true);
  }

  /** Resolves once the queued bytes are handed to the connection (or the stream dies). */
  async drained(): Promise<void> {
    if (this.queue.length === 0) return;
    await drainOrClose(this);
  }

  /** Abandons our side (RESET_STREAM with an application code). */
  reset(code: number | bigint): void {
    this.queue = [];
    this.writableLength = 0;
    this.writeEnded = true;
    this.finQueued = false;
    this.connection.nativeShutdown(this.id, 1, code);
    this.maybeClose();
  }

  /** Asks the peer to stop sending (STOP_SENDING with an application code). */
  stopSending(code: number | bigint): void {
    this.readEnded = true;
    this.connection.nativeShutdown(this.id, 0, code);
    this.maybeClose();
  }

  /** Stops reading: the peer is held back by flow control until resume(). */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.connection.nativePause(this.id, true);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection.nativePause(this.id, false);
  }

  /** @internal called by the connection for each batch event. */
  _onData(data: Buffer | null, fin: boolean): void {
    if (this.readEnded) return;
    if (data && data.byteLength > 0) this.emit('data', data);
    if (fin) {
      this.readEnded = true;
      this.emit('end');
      this.maybeClose();
    }
  }

  /** @internal */
  _onReset(code: number | bigint): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.emit('reset', code);
    this.maybeClose();
  }

  /** @internal */
  _onStop(code: number | bigint): void {
    this.queue = [];
    this.writableLength = 0;
    const wasOpen = !this.finSent;
    this.writeEnded = true;
    this.finSent = true;
    if (wasOpen) this.emit('stop', code);
    this.maybeClose();
  }

  /** @internal the connection can take more data. */
  _onWritable(): void {
    let finWritten = false;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const last = this.queue.length === 1;
      const fin = last && this.finQueued;
      const n = this.connection.nativeWrite(this.id, head, fin);
      if (n < 0) {
        this.failWrite(n);
        return;
      }
      this.writableLength -= n;
      if (n < head.byteLength) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
      finWritten = fin;
    }
    if (this.finQueued) {
      if (!finWritten) {
        // The fin was queued with no data left to carry it.
        const n = this.connection.nativeWrite(this.id, undefined, true);
        if (n < 0) return void this.failWrite(n);
      }
      this.finQueued = false;
      this.finishWrite();
    }
    this.emit('drain');
  }

  /** @internal the connection closed. */
  _onConnectionClosed(): void {
    const hadQueue = this.queue.length > 0;
    this.queue = [];
    this.writableLength = 0;
    if (!this.readEnded) {
      this.readEnded = true;
      this.emit('reset', -1);
    }
    this.writeEnded = true;
    this.finSent = true;
    if (hadQueue) this.emit('drain');
    this.emit('close');
  }

  private enqueue(data: Uint8Array): void {
    this.queue.push(data);
    this.writableLength += data.byteLength;
  }

  private finishWrite(): void {
    this.finSent = true;
    this.maybeClose();
  }

  private failWrite(n: number): boolean {
    this.queue = [];
    this.writableLength = 0;
    this.writeEnded = true;
    // STREAM_STOPPED: a Stop event with the peer's code is already on its way.
    if (n !== QuicheError.STREAM_STOPPED) {
      this.finSent = true;
      this.maybeClose();
    }
    return false;
  }

  private maybeClose(): void {
    if (this.readEnded && this.writeEnded && this.queue.length === 0 && !this.finQueued) {
      if (this.connection._forgetStream(this)) this.emit('close');
    }
  }
}
