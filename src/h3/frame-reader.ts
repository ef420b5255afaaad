/**
 * Incremental HTTP/3 frame reader for one stream (after hyperium/h3's FrameStream).
 *
 * Bytes go in with push(); frames come out one at a time with next(), which returns null when
 * it needs more input. DATA payloads stream through as views of the input, never buffered.
 * Other known frames are buffered (up to a limit) and returned whole. Unknown and reserved
 * frame types are skipped (RFC 9114 §9). Protocol errors throw H3Error.
 */
import { H3Error, H3_EXCESSIVE_LOAD, H3_FRAME_ERROR, H3_FRAME_UNEXPECTED } from './errors';
import {
  FrameType,
  HTTP2_ONLY_FRAME_TYPES,
  Settings,
  decodePushPromise,
  decodeSettings,
  decodeVarintPayload,
} from './frames';
import { decodeVarintSaturating } from './varint';

/** One item out of the reader. */
export type ReadFrame =
  /** A piece of a DATA payload; `first`/`last` mark the frame's boundaries (both for an empty frame). */
  | { kind: 'data'; chunk: Uint8Array; first: boolean; last: boolean }
  | { kind: 'headers'; block: Uint8Array }
  /** A HEADERS frame longer than maxHeadersFrameSize; its payload is skipped. */
  | { kind: 'headers-too-large'; length: number }
  | { kind: 'settings'; settings: Settings }
  | { kind: 'cancel-push'; pushId: bigint }
  | { kind: 'push-promise'; pushId: bigint; block: Uint8Array }
  | { kind: 'goaway'; id: bigint }
  | { kind: 'max-push-id'; pushId: bigint };

export interface FrameReaderOptions {
  /** Largest HEADERS/PUSH_PROMISE payload buffered; longer ones yield 'headers-too-large'. Default 64 KiB. */
  maxHeadersFrameSize?: number;
  /** Largest other buffered frame (SETTINGS and the like); longer is H3_EXCESSIVE_LOAD. Default 16 KiB. */
  maxControlFrameSize?: number;
  /**
   * Called with each frame header before any payload is read, so the caller can reject a frame
   * type that is not allowed on this stream (by throwing H3Error) before buffering it.
   */
  onFrameStart?: (type: number, length: number) => void;
}

const enum State {
  Header,
  Data,
  Buffer,
  Skip,
}

const EMPTY = new Uint8Array(0);

export class FrameReader {
  private readonly maxHeaders: number;
  private readonly maxControl: number;
  private readonly onFrameStart?: (type: number, length: number) => void;

  private chunks: Uint8Array[] = [];
  private head = 0; // read offset into chunks[0]
  private ended = false;

  private state = State.Header;
  private readonly hdr = new Uint8Array(16); // a frame header split across pushes
  private hdrLen = 0;
  private type = 0;
  private remaining = 0;
  private dataFirst = false;
  private buf = EMPTY;
  private bufLen = 0;

  constructor(options: FrameReaderOptions = {}) {
    this.maxHeaders = options.maxHeadersFrameSize ?? 65536;
    this.maxControl = options.maxControlFrameSize ?? 16384;
    this.onFrameStart = options.onFrameStart;
  }

  /** Appends stream bytes. The reader keeps a view: see retain(). */
  push(data: Uint8Array): void {
    if (this.ended) throw new Error('FrameReader: push after end');
    if (data.length > 0) this.chunks.push(data);
  }

  /** Marks the clean end of the stream (FIN); next() then checks for a truncated frame. */
  end(): void {
    this.ended = true;
  }

  /** True once the stream ended and every byte has been read at a frame boundary. */
  get done(): boolean {
    return this.ended && this.chunks.length === 0 && this.state === State.Header && this.hdrLen === 0;
  }

  /** Copies unread input, so the caller may reuse the buffers it pushed. */
  retain(): void {
    if (this.chunks.length === 0) return;
    this.chunks[0] = this.chunks[0].slice(this.head);
    this.head = 0;
    for (let i = 1; i < this.chunks.length; i++) this.chunks[i] = this.chunks[i].slice();
  }

  /** The next frame or DATA piece, or null if more input is needed. Throws H3Error. */
  next(): ReadFrame | null {
    for (;;) {
      switch (this.state) {
        case State.Header: {
          if (!this.readHeader()) return this.needMore();
          const early = this.startFrame();
          if (early) return early;
          continue;
        }
        case State.Data: {
          const chunk = this.take(this.remaining);
          if (!chunk) return this.needMore();
          this.remaining -= chunk.length;
          const first = this.dataFirst;
          this.dataFirst = false;
          const last = this.remaining === 0;
          if (last) this.state = State.Header;
          return { kind: 'data', chunk, first, last };
        }
        case State.Skip: {
          const chunk = this.take(this.remaining);
          if (!chunk) return this.needMore();
          this.remaining -= chunk.length;
          if (this.remaining === 0) this.state = State.Header;
          continue;
        }
        case State.Buffer: {
          const chunk = this.take(this.remaining);
          if (!chunk) return this.needMore();
          this.buf.set(chunk, this.bufLen);
          this.bufLen += chunk.length;
          this.remaining -= chunk.length;
          if (this.remaining > 0) continue;
          this.state = State.Header;
          return this.parse(this.buf);
        }
      }
    }
  }

  private needMore(): null {
    // RFC 9114 §7.1: a stream that terminates cleanly inside a frame MUST be treated as H3_FRAME_ERROR.
    if (this.ended && this.chunks.length === 0 && (this.state !== State.Header || this.hdrLen > 0)) {
      throw new H3Error(H3_FRAME_ERROR, 'stream ended inside a frame');
    }
    return null;
  }

  /** Chooses how to read the payload of the frame whose header was just read. */
  private startFrame(): ReadFrame | null {
    const { type, remaining: length } = this;
    this.onFrameStart?.(type, length);
    // RFC 9114 §7.2.8: HTTP/2-only frame types MUST be treated as H3_FRAME_UNEXPECTED.
    if (HTTP2_ONLY_FRAME_TYPES.has(type)) {
      throw new H3Error(H3_FRAME_UNEXPECTED, `HTTP/2 frame type 0x${type.toString(16)}`);
    }
    switch (type) {
      case FrameType.DATA:
        if (length === 0) return { kind: 'data', chunk: EMPTY, first: true, last: true };
        this.state = State.Data;
        this.dataFirst = true;
        return null;
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE:
        if (length > this.maxHeaders) {
          this.state = State.Skip;
          return { kind: 'headers-too-large', length };
        }
        return this.startBuffer(length);
      case FrameType.CANCEL_PUSH:
      case FrameType.GOAWAY:
      case FrameType.MAX_PUSH_ID:
        // RFC 9114 §7.1: these payloads are one varint; anything longer is an H3_FRAME_ERROR.
        if (length > 8) throw new H3Error(H3_FRAME_ERROR, `frame 0x${type.toString(16)} too long`);
        return this.startBuffer(length);
      case FrameType.SETTINGS:
        if (length > this.maxControl) throw new H3Error(H3_EXCESSIVE_LOAD, `SETTINGS frame of ${length} bytes`);
        return this.startBuffer(length);
      default:
        // RFC 9114 §9: frames of unknown types (GREASE included) MUST be ignored.
        if (length > 0) {
          this.state = State.Skip;
        }
        return null;
    }
  }

  private startBuffer(length: number): ReadFrame | null {
    if (length === 0) return this.parse(EMPTY);
    this.buf = new Uint8Array(length);
    this.bufLen = 0;
    this.state = State.Buffer;
    return null;
  }

  private parse(payload: Uint8Array): ReadFrame {
    this.buf = EMPTY;
    switch (this.type) {
      case FrameType.HEADERS:
        return { kind: 'headers', block: payload };
      case FrameType.SETTINGS:
        return { kind: 'settings', settings: decodeSettings(payload) };
      case FrameType.CANCEL_PUSH:
        return { kind: 'cancel-push', pushId: decodeVarintPayload(payload, 'CANCEL_PUSH') };
      case FrameType.GOAWAY:
        return { kind: 'goaway', id: decodeVarintPayload(payload, 'GOAWAY') };
      case FrameType.MAX_PUSH_ID:
        return { kind: 'max-push-id', pushId: decodeVarintPayload(payload, 'MAX_PUSH_ID') };
      default: {
        const { pushId, block } = decodePushPromise(payload);
        return { kind: 'push-promise', pushId, block };
      }
    }
  }

  /** Reads a frame header (type, length) into this.type/this.remaining. */
  private readHeader(): boolean {
    if (this.hdrLen === 0 && this.chunks.length > 0) {
      const c = this.chunks[0];
      const n = this.decodeHeader(c, this.head);
      if (n > 0) {
        this.advance(n);
        return true;
      }
    }
    // Slow path: the header spans pushes; gather it byte by byte (at most 16 bytes).
    for (;;) {
      const b = this.take(1);
      if (!b) return false;
      this.hdr[this.hdrLen++] = b[0];
      if (this.decodeHeader(this.hdr.subarray(0, this.hdrLen), 0) > 0) {
        this.hdrLen = 0;
        return true;
      }
    }
  }

  /** Decodes type and length at `off`; returns the header size, or 0 if incomplete. */
  private decodeHeader(buf: Uint8Array, off: number): number {
    const t = decodeVarintSaturating(buf, off);
    if (!t) return 0;
    const l = decodeVarintSaturating(buf, off + t.length);
    if (!l) return 0;
    this.type = t.value; // Infinity for types beyond 2^53: unknown, skipped
    this.remaining = l.value; // Infinity for lengths beyond 2^53: never completes
    return t.length + l.length;
  }

  private take(max: number): Uint8Array | null {
    while (this.chunks.length > 0 && this.head >= this.chunks[0].length) {
      this.chunks.shift();
      this.head = 0;
    }
    if (this.chunks.length === 0) return null;
    const c = this.chunks[0];
    const end = Math.min(c.length, this.head + max);
    const view = c.subarray(this.head, end);
    this.advance(end - this.head);
    return view;
  }

  private advance(n: number): void {
    this.head += n;
    if (this.head >= this.chunks[0].length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
