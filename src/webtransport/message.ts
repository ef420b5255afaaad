/**
 * Messages over WebTransport, encoded with MessagePack (msgpackr, plain MessagePack with no
 * record extension, so any MessagePack library can read them):
 * - on streams, each message is a frame: a 32-bit big-endian length, then that many bytes;
 * - on datagrams, one message per datagram, unframed.
 * MessageReader is the pure, incremental frame decoder; the rest are conveniences over the
 * session's streams.
 */
import { Packr } from 'msgpackr';
import type { ReadableStream, WritableStream } from 'node:stream/web';
import type { WebTransportSession } from './session';

export interface MessageOptions {
  /** Largest message accepted on a stream; a longer frame is an error. Default 16 MiB. */
  maxMessageSize?: number;
}

/** Stable error for malformed or oversized messages: code HARRIER_ERR_WT_MESSAGE. */
export class MessageError extends Error {
  readonly code = 'HARRIER_ERR_WT_MESSAGE';
  constructor(message: string) {
    super(message);
    this.name = 'MessageError';
  }
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** The MessagePack bytes of a value (one datagram). */
export function encodeMessage(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** The value in a datagram's MessagePack bytes. Throws MessageError. */
export function decodeMessage(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (e) {
    throw new MessageError(`malformed message: ${(e as Error).message}`);
  }
}

/** One stream frame: u32 length, then the MessagePack bytes. */
export function encodeMessageFrame(value: unknown): Uint8Array {
  const body = packr.pack(value);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/**
 * Incremental frame decoder: push() stream bytes, then next() until it returns undefined.
 * Pure: no I/O. Throws MessageError on an oversized frame, a malformed body, or (after end())
 * a stream that stops inside a frame.
 */
export class MessageReader {
  private readonly max: number;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;

  constructor(options: MessageOptions = {}) {
    this.max = options.maxMessageSize ?? 16 * 1024 * 1024;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  end(): void {
    this.ended = true;
  }

  /** `{ value }` for the next complete message, or undefined when more bytes are needed. */
  next(): { value: unknown } | undefined {
    if (this.buffered < 4) return this.needMore();
    const head = this.peek(4);
    const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    if (length > this.max) throw new MessageError(`message of ${length} bytes (limit ${this.max})`);
    if (this.buffered < 4 + length) return this.needMore();
    const frame = this.take(4 + length);
    return { value: decodeMessage(frame.subarray(4)) };
  }

  private needMore(): undefined {
    if (this.ended && this.buffered > 0) throw new MessageError('stream ended inside a message');
    return undefined;
  }

  private peek(n: number): Uint8Array {
    if (this.chunks[0].length >= n) return this.chunks[0];
    this.flatten();
    return this.chunks[0];
  }

  private take(n: number): Uint8Array {
    if (this.chunks[0].length < n) this.flatten();
    const first = this.chunks[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }

  private flatten(): void {
    const all = new Uint8Array(this.buffered);
    let off = 0;
    for (const c of this.chunks) {
      all.set(c, off);
      off += c.length;
    }
    this.chunks = [all];
  }
}

/** The messages on a receive stream, in order, until it ends. */
export async function* readMessages(readable: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, options?: MessageOptions): AsyncGenerator<unknown> {
  const reader = new MessageReader(options);
  for await (const chunk of readable as AsyncIterable<Uint8Array>) {
    reader.push(chunk);
    for (let m = reader.next(); m; m = reader.next()) yield m.value;
  }
  reader.end();
  for (let m = reader.next(); m; m = reader.next()) yield m.value;
}

/**
 * A message channel over a bidirectional stream: `send()` waits for flow control, iterate
 * to receive, `close()` ends the sending side.
 */
export class MessageStream implements AsyncIterable<unknown> {
  private readonly writer: WritableStreamDefaultWriterLike;
  private readonly readable: ReadableStream<Uint8Array>;
  private readonly options?: MessageOptions;

  constructor(stream: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }, options?: MessageOptions) {
    this.writer = stream.writable.getWriter();
    this.readable = stream.readable;
    this.options = options;
  }

  send(value: unknown): Promise<void> {
    return this.writer.write(encodeMessageFrame(value));
  }

  close(): Promise<void> {
    return this.writer.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return readMessages(this.readable, this.options);
  }
}

interface WritableStreamDefaultWriterLike {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Sends a value as one datagram; false when it was dropped (too large, or the queue was full). */
export function sendDatagramMessage(session: WebTransportSession, value: unknown): boolean {
  return session.datagrams.write(encodeMessage(value));
}

/** Values of the session's incoming datagrams; malformed datagrams are skipped. */
export async function* datagramMessages(session: WebTransportSession): AsyncGenerator<unknown> {
  for await (const d of session.datagrams.readable as AsyncIterable<Uint8Array>) {
    try {
      yield decodeMessage(d);
    } catch {
      // an unreliable channel: a datagram that does not decode is dropped
    }
  }
}
