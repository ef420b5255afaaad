/**
 * The Capsule Protocol (RFC 9297 §3) and the WebTransport capsules
 * (draft-ietf-webtrans-http3 §4.6, §5). On HTTP/3 the capsules travel in the DATA frames of
 * the CONNECT stream: CapsuleReader takes those DATA payloads. Pure: no I/O, no clock.
 */
import { H3_EXCESSIVE_LOAD } from '../h3/errors';
import { decodeVarintSaturating, encodeVarintInto, varintLength } from '../h3/varint';
import { CapsuleError, H3_DATAGRAM_ERROR } from './errors';

/** Capsule types (RFC 9297 §5.4; draft-ietf-webtrans-http3 §8.6). */
export const CapsuleType = {
  DATAGRAM: 0x00,
  CLOSE_WEBTRANSPORT_SESSION: 0x2843,
  DRAIN_WEBTRANSPORT_SESSION: 0x78ae,
} as const;

/** draft-ietf-webtrans-http3 §5: the close message MUST NOT exceed 1024 bytes. */
export const MAX_CLOSE_REASON_BYTES = 1024;

export interface Capsule {
  type: number;
  value: Uint8Array;
}

/** One capsule: type, length, value (RFC 9297 §3.2). */
export function encodeCapsule(type: number, value: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(value.length) + value.length);
  let off = encodeVarintInto(type, out, 0);
  off += encodeVarintInto(value.length, out, off);
  out.set(value, off);
  return out;
}

/**
 * CLOSE_WEBTRANSPORT_SESSION (§5): a u32 code and a UTF-8 reason. A reason over 1024 bytes is
 * cut at a character boundary (as the W3C API does).
 */
export function encodeCloseSession(closeCode: number, reason = ''): Uint8Array {
  if (!Number.isInteger(closeCode) || closeCode < 0 || closeCode > 0xffffffff) throw new RangeError(`closeCode must be a u32 (got ${closeCode})`);
  let msg = Buffer.from(reason, 'utf8');
  if (msg.length > MAX_CLOSE_REASON_BYTES) {
    let end = MAX_CLOSE_REASON_BYTES;
    while (end > 0 && (msg[end] & 0xc0) === 0x80) end--; // do not split a UTF-8 sequence
    msg = msg.subarray(0, end);
  }
  const value = new Uint8Array(4 + msg.length);
  new DataView(value.buffer).setUint32(0, closeCode);
  value.set(msg, 4);
  return encodeCapsule(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, value);
}

/** DRAIN_WEBTRANSPORT_SESSION (§4.6): no value. */
export function encodeDrainSession(): Uint8Array {
  return encodeCapsule(CapsuleType.DRAIN_WEBTRANSPORT_SESSION);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The value of a CLOSE_WEBTRANSPORT_SESSION capsule. Throws CapsuleError. */
export function decodeCloseSession(value: Uint8Array): { closeCode: number; reason: string } {
  // RFC 9297 §3.3: a capsule value that ends before its fields is malformed.
  if (value.length < 4) throw new CapsuleError(H3_DATAGRAM_ERROR, 'CLOSE_WEBTRANSPORT_SESSION shorter than its error code');
  // draft-ietf-webtrans-http3 §5: the message MUST NOT exceed 1024 bytes.
  if (value.length - 4 > MAX_CLOSE_REASON_BYTES) throw new CapsuleError(H3_DATAGRAM_ERROR, 'CLOSE_WEBTRANSPORT_SESSION message over 1024 bytes');
  let reason: string;
  try {
    reason = utf8.decode(value.subarray(4));
  } catch {
    // draft-ietf-webtrans-http3 §5: the message is UTF-8.
    throw new CapsuleError(H3_DATAGRAM_ERROR, 'CLOSE_WEBTRANSPORT_SESSION message is not UTF-8');
  }
  const closeCode = new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
  return { closeCode, reason };
}

/**
 * Decodes one capsule at `offset`: the capsule (value is a view) and the bytes it took, or
 * null when more bytes are needed.
 */
export function decodeCapsule(buf: Uint8Array, offset = 0): { capsule: Capsule; length: number } | null {
  const t = decodeVarintSaturating(buf, offset);
  if (!t) return null;
  const l = decodeVarintSaturating(buf, offset + t.length);
  if (!l) return null;
  const start = offset + t.length + l.length;
  if (buf.length - start < l.value) return null;
  return { capsule: { type: t.value, value: buf.subarray(start, start + l.value) }, length: start - offset + l.value };
}

export interface CapsuleReaderOptions {
  /** Largest capsule value buffered; a longer known capsule is H3_EXCESSIVE_LOAD. Default 65,536. */
  maxCapsuleSize?: number;
}

const KNOWN: ReadonlySet<number> = new Set(Object.values(CapsuleType));

/**
 * Incremental capsule reader for one CONNECT stream. push() bytes (DATA frame payloads), then
 * call next() until it returns null. Unknown capsule types are skipped without buffering
 * (RFC 9297 §3.2: they MUST be silently skipped). Errors throw CapsuleError.
 */
export class CapsuleReader {
  private readonly maxCapsuleSize: number;
  private buf = new Uint8Array(0);
  private skip = 0;
  private ended = false;

  constructor(options: CapsuleReaderOptions = {}) {
    this.maxCapsuleSize = options.maxCapsuleSize ?? 65536;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.skip > 0) {
      const n = Math.min(this.skip, data.length);
      this.skip -= n;
      data = data.subarray(n);
      if (data.length === 0) return;
    }
    const merged = new Uint8Array(this.buf.length + data.length);
    merged.set(this.buf);
    merged.set(data, this.buf.length);
    this.buf = merged;
  }

  /** The stream ended (FIN); next() then reports a truncated capsule. */
  end(): void {
    this.ended = true;
  }

  /** True when every byte pushed so far was consumed at a capsule boundary. */
  get idle(): boolean {
    return this.buf.length === 0 && this.skip === 0;
  }

  next(): Capsule | null {
    for (;;) {
      const r = decodeCapsule(this.buf);
      if (!r) {
        const header = this.header();
        if (header && !KNOWN.has(header.type)) {
          // Unknown type: drop what we have of it and skip the rest as it arrives.
          this.skip = header.valueLength - (this.buf.length - header.length);
          this.buf = new Uint8Array(0);
          if (this.skip > 0) return this.needMore();
          continue;
        }
        if (header && header.valueLength > this.maxCapsuleSize) {
          throw new CapsuleError(H3_EXCESSIVE_LOAD, `capsule 0x${header.type.toString(16)} of ${header.valueLength} bytes`);
        }
        return this.needMore();
      }
      this.buf = this.buf.subarray(r.length);
      if (KNOWN.has(r.capsule.type)) return r.capsule;
    }
  }

  private header(): { type: number; valueLength: number; length: number } | null {
    const t = decodeVarintSaturating(this.buf, 0);
    const l = t && decodeVarintSaturating(this.buf, t.length);
    return t && l ? { type: t.value, valueLength: l.value, length: t.length + l.length } : null;
  }

  private needMore(): null {
    // RFC 9297 §3.3: a stream that ends inside a capsule is a malformed message.
    if (this.ended && !this.idle) throw new CapsuleError(H3_DATAGRAM_ERROR, 'CONNECT stream ended inside a capsule');
    return null;
  }
}
