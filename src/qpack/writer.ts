import { huffmanEncodedLength } from './huffman';
import { integerLength, writeInteger } from './integer';
import { writeStringLiteral } from './string-literal';

/** A growable byte buffer for building instructions and field sections. */
export class ByteWriter {
  private buf: Uint8Array;
  private len = 0;

  /** `huffman`: whether string literals may use Huffman coding (when it is shorter). */
  constructor(private readonly huffman = true, initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.len + n, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }

  /** An integer with an N-bit prefix; `flags` fill the first byte's upper bits. */
  integer(value: number, prefixBits: number, flags = 0): this {
    this.reserve(integerLength(value, prefixBits));
    this.len = writeInteger(this.buf, this.len, value, prefixBits, flags);
    return this;
  }

  /** An N-bit prefix string literal (RFC 9204 Section 4.1.2); `flags` sit above the H bit. */
  string(s: string, prefixBits: number, flags = 0): this {
    const huffmanLength = this.huffman ? huffmanEncodedLength(s) : Infinity;
    const len = Math.min(huffmanLength, s.length);
    this.reserve(integerLength(len, prefixBits - 1) + len);
    this.len = writeStringLiteral(this.buf, this.len, s, prefixBits, flags, huffmanLength);
    return this;
  }

  bytes(data: Uint8Array): this {
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  /** Returns a copy of the bytes written so far and empties the writer. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    return out;
  }
}

/** Bytes arriving on a stream, split anywhere: append, parse from `start`, consume. */
export class StreamBuffer {
  private buf = new Uint8Array(0);
  /** Offset of the first unconsumed byte in `data`. */
  start = 0;
  /** End of the buffered bytes in `data`. */
  end = 0;

  get data(): Uint8Array {
    return this.buf;
  }

  get size(): number {
    return this.end - this.start;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      const next =
        live + chunk.length <= this.buf.length
          ? this.buf
          : new Uint8Array(Math.max(live + chunk.length, this.buf.length * 2, 64));
      if (next === this.buf) this.buf.copyWithin(0, this.start, this.end);
      else next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  consume(upTo: number): void {
    this.start = upTo;
    if (this.start === this.end) this.start = this.end = 0;
  }
}
