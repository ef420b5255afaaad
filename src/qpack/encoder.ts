// RFC 9204 Section 2.1: the QPACK encoder.
import { parseDecoderInstruction, type DecoderInstruction } from './decoder-instructions';
import { writeEncoderInstruction, type EncoderInstruction } from './encoder-instructions';
import { QPACK_DECODER_STREAM_ERROR, QpackError } from './errors';
import { writeFieldLine, writeFieldSectionPrefix } from './field-lines';
import { fieldSize, type HeaderField } from './header-field';
import { staticIndexOf, staticNameIndexOf } from './static-table';
import { DynamicTable } from './table';
import { ByteWriter, StreamBuffer } from './writer';

export interface QpackEncoderOptions {
  /** Our own upper bound for the dynamic table we use; default 4096. */
  maxTableCapacity?: number;
  /** Huffman-code string literals when that is shorter; default true. */
  huffman?: boolean;
}

/** An encoded field section with dynamic references, not yet acknowledged. */
interface OutstandingSection {
  requiredInsertCount: number;
  /** Absolute indices it references, each once. */
  refs: number[];
}

const D = QPACK_DECODER_STREAM_ERROR;
/** How many recently seen fields shouldInsert remembers. */
const SEEN_LIMIT = 1024;

/**
 * Encodes field sections, inserting into the dynamic table when the peer allows
 * it. Sans-I/O: header lists in, field sections and encoder-stream bytes out;
 * decoder-stream bytes in.
 *
 * Strategy (RFC 9204 Appendix C, single pass): exact static match, else an exact
 * dynamic match, else insert the field and reference it, else a literal with a
 * static or dynamic name reference, else a literal. Entries not yet acknowledged are
 * referenced only on streams allowed to block (SETTINGS_QPACK_BLOCKED_STREAMS), and
 * an insert happens only when every entry it would evict is evictable (Section 2.1.1).
 */
export class QpackEncoder {
  private readonly table = new DynamicTable();
  private readonly ownMaxCapacity: number;
  private readonly encoderStream: ByteWriter;
  private readonly lines: ByteWriter;
  private readonly prefix: ByteWriter;
  private readonly decoderStream = new StreamBuffer();

  /** min(our maximum, the peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY); 0 until configured. */
  private capacity = 0;
  private capacitySent = false;
  /** RFC 9204 Section 4.5.1.1: floor(peer's maximum table capacity / 32). */
  private maxEntries = 0;
  private maxBlockedStreams = 0;
  /** RFC 9204 Section 2.1.4. */
  private _knownReceivedCount = 0;

  /** Outstanding sections per stream, oldest first. */
  private readonly outstanding = new Map<number, OutstandingSection[]>();
  /** Number of outstanding sections referencing each absolute index. */
  private readonly refCounts = new Map<number, number>();
  /** Streams with an outstanding section that could block (Required Insert Count > Known Received Count). */
  private readonly blockingStreams = new Set<number>();

  /** Newest absolute index of each dynamic entry, by name then value. */
  private readonly fieldIndex = new Map<string, Map<string, number>>();
  /** Fields recently encoded but not inserted (oldest first), see shouldInsert. */
  private readonly seen = new Set<string>();
  /** Newest absolute index of a dynamic entry with each name. */
  private readonly nameIndex = new Map<string, number>();

  constructor(opts: QpackEncoderOptions = {}) {
    this.ownMaxCapacity = opts.maxTableCapacity ?? 4096;
    const huffman = opts.huffman ?? true;
    this.encoderStream = new ByteWriter(huffman);
    this.lines = new ByteWriter(huffman);
    this.prefix = new ByteWriter(huffman, 16);
  }

  /** Entries inserted so far. */
  get insertCount(): number {
    return this.table.insertCount;
  }

  /** Insertions the decoder has acknowledged (RFC 9204 Section 2.1.4). */
  get knownReceivedCount(): number {
    return this._knownReceivedCount;
  }

  /** Streams that could currently be blocked at the decoder. */
  get blockedStreamCount(): number {
    return this.blockingStreams.size;
  }

  /**
   * Applies the peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY and
   * SETTINGS_QPACK_BLOCKED_STREAMS. Until then only the static table and literals are
   * used (RFC 9204 Section 3.2.3: the maximum table capacity is 0 until SETTINGS).
   * The table capacity is fixed once the first insert has been sent.
   */
  configure(peerMaxTableCapacity: number, peerMaxBlockedStreams: number): void {
    this.maxBlockedStreams = peerMaxBlockedStreams;
    if (this.capacitySent) return;
    this.maxEntries = Math.floor(peerMaxTableCapacity / 32);
    this.capacity = Math.min(this.ownMaxCapacity, peerMaxTableCapacity);
  }

  /**
   * Encodes one field section for `streamId`. May queue encoder-stream instructions
   * (take them with takeEncoderStreamData and send them before or with the section).
   */
  encodeFieldSection(streamId: number, headers: HeaderField[]): Uint8Array {
    const lines = this.lines;
    const base = this.table.insertCount;
    const refs: number[] = [];
    let ric = 0;
    const canBlock =
      this.blockingStreams.has(streamId) || this.blockingStreams.size < this.maxBlockedStreams;
    const usable = (absolute: number): boolean => absolute < this._knownReceivedCount || canBlock;
    const reference = (absolute: number): void => {
      if (!refs.includes(absolute)) {
        refs.push(absolute);
        this.refCounts.set(absolute, (this.refCounts.get(absolute) ?? 0) + 1);
      }
      if (absolute + 1 > ric) ric = absolute + 1;
    };
    const indexed = (absolute: number): void => {
      reference(absolute);
      if (absolute < base) writeFieldLine(lines, { type: 'indexed', isStatic: false, index: base - 1 - absolute });
      else writeFieldLine(lines, { type: 'indexed-post-base', index: absolute - base });
    };

    for (const [name, value] of headers) {
      const staticIndex = staticIndexOf(name, value);
      if (staticIndex >= 0) {
        writeFieldLine(lines, { type: 'indexed', isStatic: true, index: staticIndex });
        continue;
      }
      const existing = this.fieldIndex.get(name)?.get(value);
      if (existing !== undefined && usable(existing)) {
        indexed(existing);
        continue;
      }
      const staticName = staticNameIndexOf(name);
      if (existing === undefined && this.shouldInsert(name, value)) {
        const inserted = this.insert(name, value, staticName);
        if (inserted >= 0 && usable(inserted)) {
          indexed(inserted);
          continue;
        }
      }
      if (staticName >= 0) {
        writeFieldLine(lines, { type: 'literal-name-ref', neverIndexed: false, isStatic: true, nameIndex: staticName, value });
        continue;
      }
      const dynamicName = this.nameIndex.get(name);
      if (dynamicName !== undefined && usable(dynamicName)) {
        reference(dynamicName);
        if (dynamicName < base) {
          const nameIndex = base - 1 - dynamicName;
          writeFieldLine(lines, { type: 'literal-name-ref', neverIndexed: false, isStatic: false, nameIndex, value });
        } else {
          const nameIndex = dynamicName - base;
          writeFieldLine(lines, { type: 'literal-post-base-name-ref', neverIndexed: false, nameIndex, value });
        }
        continue;
      }
      writeFieldLine(lines, { type: 'literal', neverIndexed: false, name, value });
    }

    if (ric > 0) {
      let list = this.outstanding.get(streamId);
      if (list === undefined) this.outstanding.set(streamId, (list = []));
      list.push({ requiredInsertCount: ric, refs });
      if (ric > this._knownReceivedCount) this.blockingStreams.add(streamId);
    }
    writeFieldSectionPrefix(this.prefix, ric, base, this.maxEntries);
    const prefix = this.prefix.take();
    const body = lines.take();
    const out = new Uint8Array(prefix.length + body.length);
    out.set(prefix);
    out.set(body, prefix.length);
    return out;
  }

  /** Bytes queued for our encoder stream; empty when there are none. */
  takeEncoderStreamData(): Uint8Array {
    return this.encoderStream.take();
  }

  /**
   * Applies bytes from the peer's decoder stream, split anywhere. Throws QpackError
   * 0x0202 (QPACK_DECODER_STREAM_ERROR) on an invalid instruction.
   */
  feedDecoderStream(data: Uint8Array): void {
    const buf = this.decoderStream;
    buf.append(data);
    for (;;) {
      const parsed = parseDecoderInstruction(buf.data, buf.start, buf.end);
      if (parsed === undefined) break;
      buf.consume(parsed.next);
      this.apply(parsed.value);
    }
  }

  /**
   * The stream was reset locally. Its references stay pinned: the peer's decoder may
   * still have the section and must answer with a Section Acknowledgment or a Stream
   * Cancellation (RFC 9204 Section 2.2.2.2), which releases them. Evicting earlier
   * could make a section the peer still decodes reference evicted entries.
   */
  cancelStream(_streamId: number): void {}

  private apply(ins: DecoderInstruction): void {
    switch (ins.type) {
      case 'section-ack': {
        const list = this.outstanding.get(ins.streamId);
        // RFC 9204 Section 4.4.1: a Section Acknowledgment for a stream with no
        // unacknowledged section "MUST be treated as a connection error of type
        // QPACK_DECODER_STREAM_ERROR".
        if (list === undefined) throw new QpackError(D, `Section Acknowledgment for stream ${ins.streamId} with nothing outstanding`);
        const section = list.shift()!;
        if (list.length === 0) this.outstanding.delete(ins.streamId);
        this.release(section);
        // RFC 9204 Section 2.1.4: the Known Received Count rises to the section's Required Insert Count.
        if (section.requiredInsertCount > this._knownReceivedCount) {
          this._knownReceivedCount = section.requiredInsertCount;
        }
        this.refreshBlocking();
        return;
      }
      case 'stream-cancellation': {
        const list = this.outstanding.get(ins.streamId);
        if (list === undefined) return;
        this.outstanding.delete(ins.streamId);
        for (const section of list) this.release(section);
        this.blockingStreams.delete(ins.streamId);
        return;
      }
      case 'insert-count-increment':
        // RFC 9204 Section 4.4.3: an Increment of zero, or one beyond what the encoder
        // has sent, "MUST [be treated] as a connection error of type QPACK_DECODER_STREAM_ERROR".
        if (ins.increment === 0) throw new QpackError(D, 'Insert Count Increment of 0');
        if (this._knownReceivedCount + ins.increment > this.table.insertCount) {
          throw new QpackError(D, 'Insert Count Increment beyond the entries sent');
        }
        this._knownReceivedCount += ins.increment;
        this.refreshBlocking();
        return;
    }
  }

  private release(section: OutstandingSection): void {
    for (const absolute of section.refs) {
      const n = this.refCounts.get(absolute)! - 1;
      if (n === 0) this.refCounts.delete(absolute);
      else this.refCounts.set(absolute, n);
    }
  }

  /**
   * Drops the streams that can no longer block: after an acknowledgment, or when the
   * Known Received Count (which only grows) reaches all their Required Insert Counts.
   */
  private refreshBlocking(): void {
    for (const streamId of this.blockingStreams) {
      const list = this.outstanding.get(streamId);
      if (!list?.some((s) => s.requiredInsertCount > this._knownReceivedCount)) {
        this.blockingStreams.delete(streamId);
      }
    }
  }

  /**
   * Whether a field is worth a table entry: small enough not to flush the table, and
   * either fitting without eviction or seen recently (a value sent once is usually
   * never repeated: inserting it would only evict entries that are).
   */
  private shouldInsert(name: string, value: string): boolean {
    const size = fieldSize(name, value);
    if (this.capacity === 0 || size * 4 > this.capacity * 3) return false;
    if (this.table.size + size <= this.capacity) return true;
    const key = name + '\0' + value;
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
    return false;
  }

  /**
   * Inserts a field into the dynamic table if every entry that must make room is
   * evictable (RFC 9204 Section 2.1.1: acknowledged and not referenced by an
   * outstanding section). Returns its absolute index, or -1.
   */
  private insert(name: string, value: string, staticName: number): number {
    const table = this.table;
    if (!this.capacitySent) {
      // RFC 9204 Section 3.2.2: the initial capacity is zero; set it before the first insert.
      this.emit({ type: 'set-capacity', capacity: this.capacity });
      table.setCapacity(this.capacity);
      this.capacitySent = true;
    }
    const evictions = table.evictionsNeeded(fieldSize(name, value));
    if (evictions < 0) return -1;
    const dropped = table.droppedCount;
    for (let absolute = dropped; absolute < dropped + evictions; absolute++) {
      if (absolute >= this._knownReceivedCount || this.refCounts.has(absolute)) return -1;
    }

    // The name reference may point at an entry this insert evicts (RFC 9204 Section 3.2.2 allows it).
    const dynamicName = staticName < 0 ? this.nameIndex.get(name) : undefined;
    if (staticName >= 0) {
      this.emit({ type: 'insert-name-ref', isStatic: true, nameIndex: staticName, value });
    } else if (dynamicName !== undefined) {
      const nameIndex = table.insertCount - 1 - dynamicName;
      this.emit({ type: 'insert-name-ref', isStatic: false, nameIndex, value });
    } else {
      this.emit({ type: 'insert-literal-name', name, value });
    }

    for (let absolute = dropped; absolute < dropped + evictions; absolute++) this.forget(absolute);
    table.insert(name, value);
    const absolute = table.insertCount - 1;
    let values = this.fieldIndex.get(name);
    if (values === undefined) this.fieldIndex.set(name, (values = new Map()));
    values.set(value, absolute);
    this.nameIndex.set(name, absolute);
    return absolute;
  }

  /** Drops an entry about to be evicted from the lookup maps. */
  private forget(absolute: number): void {
    const [name, value] = this.table.get(absolute)!;
    const values = this.fieldIndex.get(name);
    if (values?.get(value) === absolute) {
      values.delete(value);
      if (values.size === 0) this.fieldIndex.delete(name);
    }
    if (this.nameIndex.get(name) === absolute) this.nameIndex.delete(name);
  }

  private emit(ins: EncoderInstruction): void {
    writeEncoderInstruction(this.encoderStream, ins);
  }
}
