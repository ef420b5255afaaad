/**
 * Header fields with lowercase names, in insertion order, repeatable. Values are latin1
 * strings (one char per byte), as on the wire.
 */
export class Fields {
  private readonly map = new Map<string, string[]>();

  constructor(init?: Iterable<readonly [string, string]> | Record<string, string | string[] | number | undefined>) {
    if (!init) return;
    if (Symbol.iterator in init) {
      for (const [k, v] of init as Iterable<readonly [string, string]>) this.append(k, v);
    } else {
      for (const [k, v] of Object.entries(init)) if (v !== undefined) this.set(k, v);
    }
  }

  /** All values joined with ", " (cookies with "; "), or undefined. */
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    const v = this.map.get(n);
    if (!v) return undefined;
    return v.length === 1 ? v[0] : v.join(n === 'cookie' ? '; ' : ', ');
  }

  getAll(name: string): string[] {
    return this.map.get(name.toLowerCase()) ?? [];
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  set(name: string, value: string | number | readonly string[]): this {
    this.map.set(name.toLowerCase(), Array.isArray(value) ? [...value] : [String(value)]);
    return this;
  }

  append(name: string, value: string | number): this {
    const n = name.toLowerCase();
    const v = this.map.get(n);
    if (v) v.push(String(value));
    else this.map.set(n, [String(value)]);
    return this;
  }

  delete(name: string): boolean {
    return this.map.delete(name.toLowerCase());
  }

  get size(): number {
    return this.map.size;
  }

  /** Every (name, value) pair, repeated names once per value. */
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.toList()[Symbol.iterator]();
  }

  toList(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [k, vs] of this.map) for (let i = 0; i < vs.length; i++) out.push([k, vs[i]]);
    return out;
  }

  /** How many field lines, and their names' and values' length together (for header limits). */
  measure(): { count: number; size: number } {
    let count = 0;
    let size = 0;
    for (const [k, vs] of this.map) {
      count += vs.length;
      for (let i = 0; i < vs.length; i++) size += k.length + vs[i].length;
    }
    return { count, size };
  }

  /** Node-style object: repeated names as arrays. */
  toObject(): Record<string, string | string[]> {
    const o: Record<string, string | string[]> = {};
    for (const [k, vs] of this.map) o[k] = vs.length === 1 ? vs[0] : [...vs];
    return o;
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
