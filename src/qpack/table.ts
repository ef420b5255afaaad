// RFC 9204 Section 3.2: the dynamic table, shared in shape by encoder and decoder.
import { fieldSize, type HeaderField } from './header-field';

/**
 * A FIFO of field lines addressed by absolute index (RFC 9204 Section 3.2.4): the
 * first entry ever inserted is 0. Eviction drops the oldest entries. This class
 * does not check who may evict what: the encoder checks evictability (Section 2.1.1)
 * before inserting, the decoder evicts whatever the encoder's instructions imply.
 */
export class DynamicTable {
  private entries: HeaderField[] = [];
  /** Index in `entries` of the oldest live entry. */
  private head = 0;
  private _capacity = 0;
  private _size = 0;
  private _insertCount = 0;

  /** Current capacity (RFC 9204 Section 3.2.2); initially zero. */
  get capacity(): number {
    return this._capacity;
  }

  /** Sum of entry sizes (RFC 9204 Section 3.2.1). */
  get size(): number {
    return this._size;
  }

  /** Total number of insertions so far (the Insert Count). */
  get insertCount(): number {
    return this._insertCount;
  }

  /** Number of live entries. */
  get length(): number {
    return this.entries.length - this.head;
  }

  /** Absolute index of the oldest live entry (= number of entries dropped). */
  get droppedCount(): number {
    return this._insertCount - this.length;
  }

  /** The entry with this absolute index, or undefined if evicted or not inserted. */
  get(absoluteIndex: number): HeaderField | undefined {
    if (absoluteIndex < this.droppedCount || absoluteIndex >= this._insertCount) return undefined;
    return this.entries[this.head + absoluteIndex - this.droppedCount];
  }

  /**
   * How many of the oldest entries must be evicted so that `size` more bytes fit
   * within `capacity` (RFC 9204 Section 3.2.2); -1 if they never fit.
   */
  evictionsNeeded(size: number, capacity = this._capacity): number {
    if (size > capacity) return -1;
    let free = capacity - this._size;
    let n = 0;
    while (free < size) {
      const [name, value] = this.entries[this.head + n];
      free += fieldSize(name, value);
      n++;
    }
    return n;
  }

  /** Sets the capacity, evicting the oldest entries until the table fits. */
  setCapacity(capacity: number): void {
    this._capacity = capacity;
    this.evict(this.evictionsNeeded(0));
  }

  /** Inserts an entry, evicting as needed. The caller has checked that it fits. */
  insert(name: string, value: string): void {
    const size = fieldSize(name, value);
    const n = this.evictionsNeeded(size);
    if (n < 0) throw new RangeError('entry larger than the table capacity');
    this.evict(n);
    this.entries.push([name, value]);
    this._size += size;
    this._insertCount++;
  }

  private evict(n: number): void {
    for (let i = 0; i < n; i++) {
      const [name, value] = this.entries[this.head];
      this._size -= fieldSize(name, value);
      this.head++;
    }
    // Compact occasionally so the array does not grow without bound.
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
