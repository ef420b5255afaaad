// QPACK offline interop ("QIF") tools: the format of the qpackers/qifs corpus
// (see ../shared/conformance/qifs/README.md).
//
// - A QIF file lists header lists: `name<TAB>value` per line, a blank line after each
//   list, `#` starts a comment line.
// - An encoded file is a sequence of blocks: 8-byte stream ID, 4-byte length (both
//   big endian), payload. Stream 0 carries encoder-stream bytes; any other stream one
//   encoded field section. In increasing stream ID order the sections are the QIF's
//   header lists.
import { readFileSync } from 'node:fs';
import { QpackDecoder, QpackEncoder, encodeInteger, type HeaderField } from '../qpack';

/** One block of an encoded file. */
export interface QifBlock {
  streamId: number;
  payload: Uint8Array;
}

/** Parses QIF text (latin1: one char per byte) into header lists. */
export function parseQif(text: string): HeaderField[][] {
  const sections: HeaderField[][] = [];
  let current: HeaderField[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line === '') {
      if (current.length > 0) sections.push(current);
      current = [];
      continue;
    }
    const tab = line.indexOf('\t');
    current.push(tab < 0 ? [line, ''] : [line.slice(0, tab), line.slice(tab + 1)]);
  }
  if (current.length > 0) sections.push(current);
  return sections;
}

/** Formats header lists as QIF: `name<TAB>value` lines, a blank line after each list. */
export function formatQif(sections: HeaderField[][]): string {
  let out = '';
  for (const headers of sections) {
    for (const [name, value] of headers) out += `${name}\t${value}\n`;
    out += '\n';
  }
  return out;
}

/** Splits an encoded file into its blocks. Throws on a truncated block. */
export function readQifBlocks(data: Uint8Array): QifBlock[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const blocks: QifBlock[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + 12 > data.length) throw new Error(`truncated block header at offset ${offset}`);
    const streamId = view.getUint32(offset) * 2 ** 32 + view.getUint32(offset + 4);
    const length = view.getUint32(offset + 8);
    offset += 12;
    if (offset + length > data.length) throw new Error(`truncated block at offset ${offset - 12}`);
    blocks.push({ streamId, payload: data.subarray(offset, offset + length) });
    offset += length;
  }
  return blocks;
}

/** Serialises blocks in the encoded-file format. */
export function writeQifBlocks(blocks: QifBlock[]): Buffer {
  const total = blocks.reduce((n, b) => n + 12 + b.payload.length, 0);
  const out = Buffer.alloc(total);
  let offset = 0;
  for (const { streamId, payload } of blocks) {
    out.writeUInt32BE(Math.floor(streamId / 2 ** 32), offset);
    out.writeUInt32BE(streamId % 2 ** 32, offset + 4);
    out.writeUInt32BE(payload.length, offset + 8);
    out.set(payload, offset + 12);
    offset += 12 + payload.length;
  }
  return out;
}

/**
 * Decodes blocks as the offline format prescribes: encoder-stream blocks are fed in
 * file order, field sections decoded when they arrive or when the encoder stream
 * unblocks them. Returns the header lists in increasing stream ID order.
 */
export function decodeQifBlocks(blocks: QifBlock[], tableCapacity: number, blockedStreams: number): HeaderField[][] {
  const decoder = new QpackDecoder({ maxTableCapacity: tableCapacity, maxBlockedStreams: blockedStreams });
  // Offline interop convention: the table starts at capacity TABLE, as if the encoder
  // had sent Set Dynamic Table Capacity first (most encoders in the corpus do not send it).
  if (tableCapacity > 0) decoder.feedEncoderStream(encodeInteger(tableCapacity, 5, 0x20));
  const decoded = new Map<number, HeaderField[]>();
  for (const { streamId, payload } of blocks) {
    if (streamId === 0) {
      for (const s of decoder.feedEncoderStream(payload)) decoded.set(s.streamId, s.headers);
      continue;
    }
    if (decoded.has(streamId)) throw new Error(`stream ${streamId} appears twice`);
    const headers = decoder.decodeFieldSection(streamId, payload);
    if (headers !== 'blocked') decoded.set(streamId, headers);
  }
  if (decoder.blockedStreamCount > 0) {
    throw new Error(`${decoder.blockedStreamCount} field sections still blocked at end of input`);
  }
  return [...decoded.entries()].sort((a, b) => a[0] - b[0]).map(([, headers]) => headers);
}

/**
 * Encodes header lists into blocks. Before each section, the encoder-stream bytes it
 * needs go out as a stream-0 block. With `ackMode` 1 a decoder acknowledges every
 * section at once (its decoder stream is fed straight back); with 0 nothing is ever
 * acknowledged.
 */
export function encodeQifSections(
  sections: HeaderField[][],
  tableCapacity: number,
  blockedStreams: number,
  ackMode: 0 | 1,
): QifBlock[] {
  const encoder = new QpackEncoder({ maxTableCapacity: tableCapacity });
  encoder.configure(tableCapacity, blockedStreams);
  const peer = new QpackDecoder({ maxTableCapacity: tableCapacity, maxBlockedStreams: blockedStreams });
  const blocks: QifBlock[] = [];
  sections.forEach((headers, i) => {
    const streamId = i + 1;
    const section = encoder.encodeFieldSection(streamId, headers);
    const instructions = encoder.takeEncoderStreamData();
    if (instructions.length > 0) blocks.push({ streamId: 0, payload: instructions });
    blocks.push({ streamId, payload: section });
    if (ackMode === 1) {
      peer.feedEncoderStream(instructions);
      if (peer.decodeFieldSection(streamId, section) === 'blocked') {
        throw new Error(`section ${streamId} blocked although its instructions were sent first`);
      }
      encoder.feedDecoderStream(peer.takeDecoderStreamData());
    }
  });
  return blocks;
}

/**
 * `harrier qif decode`: decodes an encoded file with the given table capacity and
 * blocked-stream limit; returns the header lists as QIF text in stream order.
 */
export function qifDecode(file: string, tableCapacity: number, blockedStreams: number): string {
  const blocks = readQifBlocks(readFileSync(file));
  return formatQif(decodeQifBlocks(blocks, tableCapacity, blockedStreams));
}

/**
 * `harrier qif encode`: encodes a QIF file into the offline interop format with the
 * given table capacity, blocked-stream limit and ack mode (1: every section is
 * acknowledged at once; 0: none is).
 */
export function qifEncode(qifFile: string, tableCapacity: number, blockedStreams: number, ackMode: 0 | 1): Buffer {
  const sections = parseQif(readFileSync(qifFile, 'latin1'));
  return writeQifBlocks(encodeQifSections(sections, tableCapacity, blockedStreams, ackMode));
}
