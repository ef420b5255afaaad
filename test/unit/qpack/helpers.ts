import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Hex string (spaces allowed, as the RFCs print them) to bytes. */
export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** Every way to cut `data` in two, plus byte-by-byte. */
export function* splitsAtEveryByte(data: Uint8Array): Generator<Uint8Array[]> {
  for (let i = 0; i <= data.length; i++) yield [data.subarray(0, i), data.subarray(i)];
  yield Array.from(data, (_, i) => data.subarray(i, i + 1));
}

/** Cuts `data` at the given (unsorted, possibly out of range) points. */
export function splitAt(data: Uint8Array, points: number[]): Uint8Array[] {
  const cuts = [...new Set(points.map((p) => p % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let last = 0;
  for (const c of cuts) {
    parts.push(data.subarray(last, c));
    last = c;
  }
  parts.push(data.subarray(last));
  return parts;
}

/**
 * The repository root: walk up from this file to the directory whose package.json
 * is Harrier's (works from test/ and from dist/test/).
 */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'harrier') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no harrier package.json above ${__dirname}`);
    dir = up;
  }
}

/** The QIF corpus: ../shared/conformance/qifs beside the repository. */
export function qifCorpus(): string {
  return path.resolve(repoRoot(), '../shared/conformance/qifs');
}
