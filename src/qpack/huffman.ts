// RFC 7541 Section 5.2 and Appendix B: the Huffman string coding used by QPACK
// (RFC 9204 Section 4.1.2).
import { QPACK_DECOMPRESSION_FAILED, QpackError, type QpackErrorCode } from './errors';
import { HUFFMAN_CODES, HUFFMAN_CODE_LENGTHS, HUFFMAN_EOS } from './huffman-table';

/** Number of bytes `s` (latin1, one char per byte) takes Huffman-encoded. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new TypeError('field strings must be latin1 (one character per byte)');
    bits += HUFFMAN_CODE_LENGTHS[c];
  }
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of `s` at `out[offset]`, padded with the most
 * significant bits of EOS (all ones). Returns the offset after it.
 */
export function writeHuffman(out: Uint8Array, offset: number, s: string): number {
  // Fewer than 8 bits stay pending in `acc`. A code is pushed in parts of at most
  // 24 bits, flushing whole bytes after each, so `acc` never exceeds 31 bits.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    let len = HUFFMAN_CODE_LENGTHS[c];
    const code = HUFFMAN_CODES[c];
    while (len > 0) {
      const n = len > 24 ? len - 24 : len;
      len -= n;
      acc = (acc << n) | ((code >>> len) & ((1 << n) - 1));
      bits += n;
      while (bits >= 8) {
        bits -= 8;
        out[offset++] = acc >>> bits;
      }
      acc &= (1 << bits) - 1;
    }
  }
  if (bits > 0) out[offset++] = (acc << (8 - bits)) | (0xff >>> bits);
  return offset;
}

/** Huffman-encodes a latin1 string. */
export function huffmanEncode(s: string): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(s));
  writeHuffman(out, 0, s);
  return out;
}

// Decoding is a 4-bit state machine built once from the code table: a state is an
// internal node of the code tree (256 of them; 0 is the root) and each input nibble
// moves to another node, emitting at most one symbol (every code has 5+ bits).
// An entry of TRANSITIONS packs: next state (bits 0-7), symbol (8-15), and flags.
const EMIT = 1 << 16;
/** The next state is a valid place to stop: reached by at most 7 one-bits. */
const ACCEPT = 1 << 17;
/** The nibble completes EOS, which must not appear in a string. */
const FAIL = 1 << 18;

const TRANSITIONS = buildTransitions();

function buildTransitions(): Uint32Array {
  // Tree as child arrays; a negative child is a leaf holding symbol -(child + 1).
  const zero: number[] = [0];
  const one: number[] = [0];
  let nodes = 1;
  for (let sym = 0; sym <= HUFFMAN_EOS; sym++) {
    const len = HUFFMAN_CODE_LENGTHS[sym];
    const code = HUFFMAN_CODES[sym];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const children = (Math.floor(code / 2 ** i) & 1) === 0 ? zero : one;
      if (i === 0) {
        children[node] = -(sym + 1);
      } else {
        if (children[node] === 0) {
          children[node] = nodes;
          zero[nodes] = 0;
          one[nodes] = 0;
          nodes++;
        }
        node = children[node];
      }
    }
  }
  if (nodes !== 256) throw new Error('Huffman table is not a complete code');

  // Depth of each node on the all-ones path from the root (EOS's prefix), else -1.
  const onesDepth = new Int8Array(nodes).fill(-1);
  for (let node = 0, depth = 0; node >= 0 && node < nodes && depth < 30; depth++) {
    onesDepth[node] = depth;
    node = one[node];
  }

  const table = new Uint32Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = ((nibble >> bit) & 1) === 0 ? zero[node] : one[node];
        if (child < 0) {
          const sym = -child - 1;
          if (sym === HUFFMAN_EOS) entry |= FAIL;
          else entry |= EMIT | (sym << 8);
          node = 0;
        } else {
          node = child;
        }
      }
      if (onesDepth[node] >= 0 && onesDepth[node] <= 7) entry |= ACCEPT;
      table[state * 16 + nibble] = entry | node;
    }
  }
  return table;
}

let scratch = new Uint8Array(256);

/**
 * Decodes the Huffman string in `buf[start..end)` to a latin1 string. Throws
 * QpackError(errorCode) on EOS in the data, padding longer than 7 bits, or padding
 * that is not all ones (RFC 7541 Section 5.2).
 */
export function huffmanDecode(
  buf: Uint8Array,
  start = 0,
  end = buf.length,
  errorCode: QpackErrorCode = QPACK_DECOMPRESSION_FAILED,
): string {
  // Every code has at least 5 bits: 8 input bits yield at most 8/5 symbols.
  const maxOut = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < maxOut) scratch = new Uint8Array(Math.max(maxOut, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let state = 0;
  let accept = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    let t = TRANSITIONS[(state << 4) | (byte >> 4)];
    if (t & EMIT) out[n++] = (t >> 8) & 0xff;
    if (t & FAIL) throw new QpackError(errorCode, 'Huffman string contains EOS');
    state = t & 0xff;
    t = TRANSITIONS[(state << 4) | (byte & 0x0f)];
    if (t & EMIT) out[n++] = (t >> 8) & 0xff;
    if (t & FAIL) throw new QpackError(errorCode, 'Huffman string contains EOS');
    state = t & 0xff;
    accept = (t & ACCEPT) !== 0;
  }
  // RFC 7541 Section 5.2: padding longer than 7 bits, or not the MSBs of EOS, is an error.
  if (!accept) throw new QpackError(errorCode, 'invalid Huffman padding');
  return latin1(out, 0, n);
}

/** Bytes to a latin1 string (one char per byte). */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  if (end - start < 64) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}
