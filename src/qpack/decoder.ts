// RFC 9204 Section 2.2: the QPACK decoder.
import { writeDecoderInstruction } from './decoder-instructions';
import { parseEncoderInstruction, type EncoderInstruction } from './encoder-instructions';
import {
  FieldSectionTooLarge,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_ENCODER_STREAM_ERROR,
  QpackError,
} from './errors';
import { decodeBase, decodeRequiredInsertCount, parseFieldLine, parseFieldSectionPrefix } from './field-lines';
import { fieldSize, type HeaderField } from './header-field';
import { STATIC_TABLE } from './static-table';
import { DynamicTable } from './table';
import { ByteWriter, StreamBuffer } from './writer';

export interface QpackDecoderOptions {
  /** Our SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 Section 5). */
  maxTableCapacity: number;
  /** Our SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 Section 5). */
  maxBlockedStreams: number;
  /**
   * Our SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 Section 4.2.2): the sum over field
   * lines of name + value + 32. A larger section makes decoding throw (or report)
   * FieldSectionTooLarge. Unlimited when absent.
   */
  maxFieldSectionSize?: number;
}

/** A field section that became decodable after encoder stream data arrived. */
export interface UnblockedSection {
  streamId: number;
  headers: HeaderField[];
  /** Set (and `headers` empty) when the section exceeded maxFieldSectionSize. */
  error?: FieldSectionTooLarge;
}

interface BlockedSection {
  streamId: number;
  block: Uint8Array;
  requiredInsertCount: number;
  base: number;
  /** Offset of the first field line in `block`. */
  linesStart: number;
}

const F = QPACK_DECOMPRESSION_FAILED;
const E = QPACK_ENCODER_STREAM_ERROR;

/**
 * Decodes field sections (HEADERS frame payloads) and applies the peer's encoder
 * stream. Sans-I/O: bytes in, header lists and decoder-stream bytes out.
 */
export class QpackDecoder {
  private readonly table = new DynamicTable();
  private readonly maxTableCapacity: number;
  private readonly maxBlockedStreams: number;
  private readonly maxFieldSectionSize: number;
  /** RFC 9204 Section 4.5.1.1: MaxEntries = floor(MaxTableCapacity / 32). */
  private readonly maxEntries: number;
  private readonly encoderStream = new StreamBuffer();
  private readonly decoderStream = new ByteWriter();
  /** RFC 9204 Section 2.1.4, as the encoder will compute it from what we sent. */
  private knownReceivedCount = 0;
  /** Blocked sections in arrival order. */
  private blocked: BlockedSection[] = [];
  /** Number of blocked sections per stream (a stream counts once however many). */
  private readonly blockedPerStream = new Map<number, number>();

  constructor(opts: QpackDecoderOptions) {
    this.maxTableCapacity = opts.maxTableCapacity;
    this.maxBlockedStreams = opts.maxBlockedStreams;
    this.maxFieldSectionSize = opts.maxFieldSectionSize ?? Infinity;
    this.maxEntries = Math.floor(opts.maxTableCapacity / 32);
  }

  /** Number of streams with a blocked field section. */
  get blockedStreamCount(): number {
    return this.blockedPerStream.size;
  }

  /** The decoder's Insert Count: entries received on the encoder stream. */
  get insertCount(): number {
    return this.table.insertCount;
  }

  /**
   * Decodes a complete encoded field section (HEADERS frame payload). Returns the
   * fields, or 'blocked' when its Required Insert Count is not yet reached: the
   * decoder keeps the section and returns it from feedEncoderStream once decodable.
   * A section arriving on a stream that already has a blocked section waits behind it.
   *
   * Throws QpackError 0x0200 (QPACK_DECOMPRESSION_FAILED) on malformed input, invalid
   * references, or more blocked streams than maxBlockedStreams; throws
   * FieldSectionTooLarge past maxFieldSectionSize (the section is still acknowledged).
   */
  decodeFieldSection(streamId: number, block: Uint8Array): HeaderField[] | 'blocked' {
    const prefix = parseFieldSectionPrefix(block);
    const { encodedInsertCount, sign, deltaBase } = prefix.value;
    const ric = decodeRequiredInsertCount(encodedInsertCount, this.maxEntries, this.table.insertCount);
    const base = decodeBase(ric, sign, deltaBase);
    const section: BlockedSection = { streamId, block, requiredInsertCount: ric, base, linesStart: prefix.next };

    const waiting = this.blockedPerStream.get(streamId);
    if (waiting !== undefined || ric > this.table.insertCount) {
      // RFC 9204 Section 2.1.2: "If a decoder encounters more blocked streams than it
      // promised to support, it MUST treat this as a connection error of type
      // QPACK_DECOMPRESSION_FAILED."
      if (waiting === undefined && this.blockedPerStream.size >= this.maxBlockedStreams) {
        throw new QpackError(F, `more than ${this.maxBlockedStreams} blocked streams`);
      }
      // The caller's buffer may be reused once we return: keep a copy.
      this.blocked.push({ ...section, block: block.slice() });
      this.blockedPerStream.set(streamId, (waiting ?? 0) + 1);
      return 'blocked';
    }
    return this.decodeLines(section);
  }

  /**
   * Applies bytes from the peer's encoder stream, split anywhere. Returns the blocked
   * sections that became decodable, in arrival order. Throws QpackError 0x0201 on a
   * malformed instruction, a capacity above our maximum, or a bad reference; a
   * section that unblocks but fails to decode throws QpackError 0x0200.
   */
  feedEncoderStream(data: Uint8Array): UnblockedSection[] {
    const buf = this.encoderStream;
    buf.append(data);
    const done: UnblockedSection[] = [];
    for (;;) {
      // Nothing longer than the table capacity can ever be inserted (Section 3.2.2).
      const maxString = Math.max(this.maxTableCapacity - 32, 0);
      const parsed = parseEncoderInstruction(buf.data, buf.start, buf.end, maxString);
      if (parsed === undefined) break;
      buf.consume(parsed.next);
      if (this.apply(parsed.value) && this.blocked.length > 0) this.unblock(done);
    }
    return done;
  }

  /**
   * The request stream was reset or abandoned: drops its blocked sections and queues
   * a Stream Cancellation (RFC 9204 Section 4.4.2).
   */
  cancelStream(streamId: number): void {
    if (this.blockedPerStream.delete(streamId)) {
      this.blocked = this.blocked.filter((s) => s.streamId !== streamId);
    }
    // RFC 9204 Section 2.2.2.2: "A decoder with a maximum dynamic table capacity equal
    // to zero MAY omit sending Stream Cancellations."
    if (this.maxTableCapacity > 0) {
      writeDecoderInstruction(this.decoderStream, { type: 'stream-cancellation', streamId });
    }
  }

  /**
   * Bytes for our decoder stream: the Section Acknowledgments and Stream
   * Cancellations queued so far, then an Insert Count Increment for any inserts not
   * yet acknowledged (RFC 9204 Section 4.4.3). Empty when there is nothing to send.
   */
  takeDecoderStreamData(): Uint8Array {
    const increment = this.table.insertCount - this.knownReceivedCount;
    if (increment > 0) {
      writeDecoderInstruction(this.decoderStream, { type: 'insert-count-increment', increment });
      this.knownReceivedCount = this.table.insertCount;
    }
    return this.decoderStream.take();
  }

  /** Applies one encoder instruction; returns true when it inserted an entry. */
  private apply(ins: EncoderInstruction): boolean {
    const table = this.table;
    switch (ins.type) {
      case 'set-capacity':
        // RFC 9204 Section 4.3.1: "The decoder MUST treat a new dynamic table capacity
        // value that exceeds this limit as a connection error of type QPACK_ENCODER_STREAM_ERROR."
        if (ins.capacity > this.maxTableCapacity) {
          throw new QpackError(E, `capacity ${ins.capacity} exceeds maximum ${this.maxTableCapacity}`);
        }
        table.setCapacity(ins.capacity);
        return false;
      case 'insert-name-ref': {
        let name: string;
        if (ins.isStatic) {
          // RFC 9204 Section 3.1: an invalid static index on the encoder stream is a
          // QPACK_ENCODER_STREAM_ERROR.
          const entry = STATIC_TABLE[ins.nameIndex];
          if (entry === undefined) throw new QpackError(E, `invalid static index ${ins.nameIndex}`);
          name = entry[0];
        } else {
          name = this.relative(ins.nameIndex)[0];
        }
        this.insert(name, ins.value);
        return true;
      }
      case 'insert-literal-name':
        this.insert(ins.name, ins.value);
        return true;
      case 'duplicate': {
        const [name, value] = this.relative(ins.index);
        this.insert(name, value);
        return true;
      }
    }
  }

  /** RFC 9204 Section 3.2.5: a relative index on the encoder stream (0 = newest). */
  private relative(index: number): HeaderField {
    const entry = this.table.get(this.table.insertCount - 1 - index);
    // RFC 9204 Section 2.2.3: a reference to an evicted entry in an encoder instruction
    // is a QPACK_ENCODER_STREAM_ERROR (so is one to an entry that never existed).
    if (entry === undefined) throw new QpackError(E, `invalid relative index ${index}`);
    return entry;
  }

  private insert(name: string, value: string): void {
    // RFC 9204 Section 3.2.2: "It is an error if the encoder attempts to add an entry
    // that is larger than the dynamic table capacity; the decoder MUST treat this as a
    // connection error of type QPACK_ENCODER_STREAM_ERROR."
    if (fieldSize(name, value) > this.table.capacity) {
      throw new QpackError(E, 'entry larger than the dynamic table capacity');
    }
    this.table.insert(name, value);
  }

  /** Decodes the blocked sections whose Required Insert Count is now reached. */
  private unblock(done: UnblockedSection[]): void {
    const insertCount = this.table.insertCount;
    const stillBlocked: BlockedSection[] = [];
    // Streams that keep a blocked section: later sections on them must keep waiting.
    const held = new Set<number>();
    for (const section of this.blocked) {
      if (held.has(section.streamId) || section.requiredInsertCount > insertCount) {
        held.add(section.streamId);
        stillBlocked.push(section);
        continue;
      }
      const left = this.blockedPerStream.get(section.streamId)! - 1;
      if (left === 0) this.blockedPerStream.delete(section.streamId);
      else this.blockedPerStream.set(section.streamId, left);
      try {
        done.push({ streamId: section.streamId, headers: this.decodeLines(section) });
      } catch (err) {
        if (!(err instanceof FieldSectionTooLarge)) throw err;
        done.push({ streamId: section.streamId, headers: [], error: err });
      }
    }
    this.blocked = stillBlocked;
  }

  /** Decodes the field lines of a section whose Required Insert Count is reached. */
  private decodeLines(section: BlockedSection): HeaderField[] {
    const { block, requiredInsertCount: ric, base, streamId } = section;
    const table = this.table;
    const headers: HeaderField[] = [];
    let size = 0;

    // RFC 9204 Section 2.2.3: a reference to an evicted entry, or to one at or above the
    // Required Insert Count, is a QPACK_DECOMPRESSION_FAILED connection error.
    const dynamic = (absolute: number): HeaderField => {
      if (absolute < 0 || absolute >= ric) {
        throw new QpackError(F, `reference to absolute index ${absolute} with Required Insert Count ${ric}`);
      }
      const entry = table.get(absolute);
      if (entry === undefined) throw new QpackError(F, `reference to evicted entry ${absolute}`);
      return entry;
    };
    const staticEntry = (index: number): HeaderField => {
      // RFC 9204 Section 3.1: an invalid static index is QPACK_DECOMPRESSION_FAILED.
      const entry = STATIC_TABLE[index];
      if (entry === undefined) throw new QpackError(F, `invalid static index ${index}`);
      return entry;
    };

    let offset = section.linesStart;
    while (offset < block.length) {
      const { value: line, next } = parseFieldLine(block, offset);
      offset = next;
      let name: string;
      let value: string;
      switch (line.type) {
        case 'indexed':
          [name, value] = line.isStatic ? staticEntry(line.index) : dynamic(base - 1 - line.index);
          break;
        case 'indexed-post-base':
          [name, value] = dynamic(base + line.index);
          break;
        case 'literal-name-ref':
          name = line.isStatic ? staticEntry(line.nameIndex)[0] : dynamic(base - 1 - line.nameIndex)[0];
          value = line.value;
          break;
        case 'literal-post-base-name-ref':
          name = dynamic(base + line.nameIndex)[0];
          value = line.value;
          break;
        case 'literal':
          name = line.name;
          value = line.value;
          break;
      }
      size += fieldSize(name, value);
      // Past the limit, keep validating the section but stop collecting it.
      if (size <= this.maxFieldSectionSize) headers.push([name, value]);
    }

    // RFC 9204 Section 4.4.1: "After processing an encoded field section whose declared
    // Required Insert Count is not zero, the decoder emits a Section Acknowledgment."
    if (ric > 0) {
      writeDecoderInstruction(this.decoderStream, { type: 'section-ack', streamId });
      if (ric > this.knownReceivedCount) this.knownReceivedCount = ric;
    }
    if (size > this.maxFieldSectionSize) throw new FieldSectionTooLarge(streamId, this.maxFieldSectionSize);
    return headers;
  }
}
