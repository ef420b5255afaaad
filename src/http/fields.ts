/**
 * Header fields with lowercase names, in the order they were added, repeatable. Values are
 * latin1 strings (one char per byte), as on the wire.
 *
 * Kept as one flat array (name, value, name, value...): a request's or response's fields are a
 * handful, scanned faster than hashed, and one array per message costs a fraction of a Map
 * with an array per name (this is made twice for every request).
 */
export class Fields {
  private list: string[] = [];

  constructor(init?: Iterable<readonly [string, string]> | Record<string, string | string[] | number | undefined>) {
    if (!init) return;
    if (Symbol.iterator in init) {
      for (const [k, v] of init as Iterable<readonly [string, string]>) this.append(k, v);
    } else {
      for (const [k, v] of Object.entries(init)) if (v !== undefined) this.set(k, v);
    }
  }

  /**
   * Fields from a flat (name, value, ...) list whose names are lowercase already (node's
   * HTTP/2 raw headers), skipping pseudo-header fields (":method"...).
   */
  static fromLowercasePairs(raw: readonly string[]): Fields {
    const f = new Fields();
    // HTTP/2 and HTTP/3 put pseudo-header fields first (RFC 9113 §8.3, RFC 9114 §4.3): then
    // the rest is one copy.
    let start = 0;
    while (start < raw.length && raw[start].charCodeAt(0) === 0x3a) start += 2;
    let ordered = true;
    for (let i = start; i < raw.length && ordered; i += 2) ordered = raw[i].charCodeAt(0) !== 0x3a;
    if (ordered) f.list = raw.slice(start);
    else for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 0x3a) f.list.push(raw[i], raw[i + 1]);
    return f;
  }

  /** Fields from node's HTTP/1.1 rawHeaders (name, value, ...; names in any case). */
  static fromRawHeaders(raw: readonly string[]): Fields {
    const f = new Fields();
    const list: string[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i += 2) {
      list[i] = raw[i].toLowerCase();
      list[i + 1] = raw[i + 1];
    }
    f.list = list;
    return f;
  }

  /** All values joined with ", " (cookies with "; "), or undefined. */
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    const list = this.list;
    let out: string | undefined;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] !== n) continue;
      out = out === undefined ? list[i + 1] : out + (n === 'cookie' ? '; ' : ', ') + list[i + 1];
    }
    return out;
  }

  getAll(name: string): string[] {
    const n = name.toLowerCase();
    const list = this.list;
    const out: string[] = [];
    for (let i = 0; i < list.length; i += 2) if (list[i] === n) out.push(list[i + 1]);
    return out;
  }

  has(name: string): boolean {
    return this.indexOf(name.toLowerCase()) >= 0;
  }

  /** Replaces every value of `name` (at the place of its first one). */
  set(name: string, value: string | number | readonly string[]): this {
    const n = name.toLowerCase();
    const list = this.list;
    const at = this.indexOf(n);
    if (!Array.isArray(value)) {
      if (at < 0) list.push(n, String(value));
      else {
        list[at + 1] = String(value);
        this.removeFrom(n, at + 2);
      }
      return this;
    }
    const pairs = (value as readonly string[]).flatMap((v) => [n, String(v)]);
    if (at < 0) list.push(...pairs);
    else {
      this.removeFrom(n, at);
      list.splice(at, 0, ...pairs);
    }
    return this;
  }

  append(name: string, value: string | number): this {
    this.list.push(name.toLowerCase(), String(value));
    return this;
  }

  delete(name: string): boolean {
    const n = name.toLowerCase();
    const at = this.indexOf(n);
    if (at < 0) return false;
    this.removeFrom(n, at);
    return true;
  }

  /** How many distinct names. */
  get size(): number {
    const list = this.list;
    let n = 0;
    outer: for (let i = 0; i < list.length; i += 2) {
      for (let j = 0; j < i; j += 2) if (list[j] === list[i]) continue outer;
      n++;
    }
    return n;
  }

  /** Every (name, value) pair, in order, repeated names once per value. */
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.toList()[Symbol.iterator]();
  }

  toList(): Array<[string, string]> {
    const list = this.list;
    const out: Array<[string, string]> = new Array(list.length >> 1);
    for (let i = 0; i < list.length; i += 2) out[i >> 1] = [list[i], list[i + 1]];
    return out;
  }

  /** How many field lines (repeated names once per value). */
  get count(): number {
    return this.list.length >> 1;
  }

  /** The names' and values' length together (for header limits). */
  get byteLength(): number {
    const list = this.list;
    let size = 0;
    for (let i = 0; i < list.length; i++) size += list[i].length;
    return size;
  }

  /** Node-style object: repeated names as arrays. */
  toObject(): Record<string, string | string[]> {
    return toHeaderObject(this.toList(), {} as Record<string, string | string[]>);
  }

  private indexOf(n: string): number {
    const list = this.list;
    for (let i = 0; i < list.length; i += 2) if (list[i] === n) return i;
    return -1;
  }

  /** Removes every field named `n` from index `from` on. */
  private removeFrom(n: string, from: number): void {
    const list = this.list;
    let w = from;
    for (let r = from; r < list.length; r += 2) {
      if (list[r] === n) continue;
      list[w] = list[r];
      list[w + 1] = list[r + 1];
      w += 2;
    }
    list.length = w;
  }
}

/**
 * Adds (name, value) pairs to a node-style header object, repeated names as arrays (what
 * node:http's writeHead and node:http2's respond take); names in `skip` are left out.
 */
export function toHeaderObject<T extends Record<string, string | number | string[] | undefined>>(
  pairs: Iterable<readonly [string, string]>, into: T, skip?: ReadonlySet<string>,
): T {
  const o = into as Record<string, string | number | string[] | undefined>;
  for (const [k, v] of pairs) {
    if (skip?.has(k)) continue;
    const prev = o[k];
    if (prev === undefined) o[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else o[k] = [String(prev), v];
  }
  return into;
}
