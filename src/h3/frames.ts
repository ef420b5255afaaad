/**
 * HTTP/3 frame codecs (RFC 9114 §7). Encoders return whole frames; payload decoders take a
 * complete frame payload. Streaming input goes through FrameReader (frame-reader.ts).
 */
import { H3Error, H3_FRAME_ERROR, H3_SETTINGS_ERROR } from './errors';
import { decodeVarintBig, encodeVarintInto, varintLength } from './varint';

/** Frame types of RFC 9114 §7.2 (§11.2.1 registry). */
export const FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
  /**
   * WEBTRANSPORT_STREAM (draft-ietf-webtrans-http3 §4.2): a signal, not a frame; it has no
   * length and is only valid as the very first bytes of a bidirectional stream.
   */
  WEBTRANSPORT_STREAM: 0x41,
} as const;

/** HTTP/2 frame types with no HTTP/3 equivalent (PRIORITY, PING, WINDOW_UPDATE, CONTINUATION). */
export const HTTP2_ONLY_FRAME_TYPES: ReadonlySet<number> = new Set([0x02, 0x06, 0x08, 0x09]);

/** Setting identifiers (RFC 9114 §7.2.4.1, RFC 9204 §5, RFC 9220 §3, RFC 9297 §2.1.1). */
export const SettingsId = {
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  MAX_FIELD_SECTION_SIZE: 0x06,
  QPACK_BLOCKED_STREAMS: 0x07,
  ENABLE_CONNECT_PROTOCOL: 0x08,
  H3_DATAGRAM: 0x33,
  /** SETTINGS_H3_DATAGRAM of draft-ietf-masque-h3-datagram-04, still sent by Chromium. */
  H3_DATAGRAM_DRAFT04: 0xffd277,
  /** SETTINGS_ENABLE_WEBTRANSPORT of draft-ietf-webtrans-http3-02. */
  ENABLE_WEBTRANSPORT_DRAFT02: 0x2b603742,
  /** SETTINGS_WEBTRANSPORT_MAX_SESSIONS of draft-ietf-webtrans-http3-07/08 (§8.2). */
  WEBTRANSPORT_MAX_SESSIONS_DRAFT07: 0xc671706a,
} as const;

/** HTTP/2 setting identifiers reserved in HTTP/3 (RFC 9114 §7.2.4.1). */
export const HTTP2_ONLY_SETTINGS: ReadonlySet<number> = new Set([0x02, 0x03, 0x04, 0x05]);

/** Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2). */
export const StreamType = {
  CONTROL: 0x00,
  PUSH: 0x01,
  QPACK_ENCODER: 0x02,
  QPACK_DECODER: 0x03,
  /** WebTransport unidirectional stream (draft-ietf-webtrans-http3 §4.1): type, session id, body. */
  WEBTRANSPORT: 0x54,
} as const;

/** H3_DATAGRAM_ERROR (RFC 9297 §5.2): "Datagram or Capsule Protocol parse error". */
export const H3_DATAGRAM_ERROR = 0x33;

/** Peer settings as received: identifier to value. Unknown identifiers are kept. */
export type Settings = Map<number, bigint>;

/**
 * True for reserved ("GREASE") values 0x1f*N+0x21 used for frame types, setting ids, stream
 * types and error codes (RFC 9114 §7.2.8, §7.2.4.1, §6.2.3, §8.1).
 */
export function isReserved(value: number | bigint): boolean {
  const v = BigInt(value);
  return v >= 0x21n && (v - 0x21n) % 0x1fn === 0n;
}

/** A reserved value 0x1f*N+0x21 with a random small N (keeps it in a 4-byte varint). */
export function greaseValue(random: () => number = Math.random): number {
  return 0x1f * Math.floor(random() * 0x10000) + 0x21;
}

/** A frame header (type and payload length). */
export function encodeFrameHeader(type: number | bigint, length: number): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(length));
  encodeVarintInto(length, out, encodeVarintInto(type, out, 0));
  return out;
}

function frame(type: number, payload: Uint8Array): Uint8Array {
  const t = varintLength(type);
  const l = varintLength(payload.length);
  const out = new Uint8Array(t + l + payload.length);
  encodeVarintInto(payload.length, out, encodeVarintInto(type, out, 0));
  out.set(payload, t + l);
  return out;
}

function varintFrame(type: number, value: number | bigint): Uint8Array {
  const payload = new Uint8Array(varintLength(value));
  encodeVarintInto(value, payload, 0);
  return frame(type, payload);
}

/** DATA (§7.2.1). For large bodies prefer encodeFrameHeader + the payload, to avoid a copy. */
export const encodeDataFrame = (payload: Uint8Array): Uint8Array => frame(FrameType.DATA, payload);
/** HEADERS (§7.2.2) carrying an encoded field section. */
export const encodeHeadersFrame = (block: Uint8Array): Uint8Array => frame(FrameType.HEADERS, block);
/** CANCEL_PUSH (§7.2.3). */
export const encodeCancelPushFrame = (pushId: number | bigint): Uint8Array => varintFrame(FrameType.CANCEL_PUSH, pushId);
/** GOAWAY (§7.2.6): a client-initiated bidi stream id (from a server) or a push id (from a client). */
export const encodeGoawayFrame = (id: number | bigint): Uint8Array => varintFrame(FrameType.GOAWAY, id);
/** MAX_PUSH_ID (§7.2.7). */
export const encodeMaxPushIdFrame = (pushId: number | bigint): Uint8Array => varintFrame(FrameType.MAX_PUSH_ID, pushId);

/** PUSH_PROMISE (§7.2.5). */
export function encodePushPromiseFrame(pushId: number | bigint, block: Uint8Array): Uint8Array {
  const payload = new Uint8Array(varintLength(pushId) + block.length);
  payload.set(block, encodeVarintInto(pushId, payload, 0));
  return frame(FrameType.PUSH_PROMISE, payload);
}

/** Any frame, including reserved and extension types (used for GREASE). */
export function encodeFrame(type: number | bigint, payload: Uint8Array): Uint8Array {
  const header = encodeFrameHeader(type, payload.length);
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(payload, header.length);
  return out;
}

/** SETTINGS (§7.2.4): identifier/value pairs in the given order. */
export function encodeSettingsFrame(settings: Iterable<readonly [number | bigint, number | bigint]>): Uint8Array {
  const pairs = [...settings];
  let size = 0;
  for (const [id, value] of pairs) size += varintLength(id) + varintLength(value);
  const payload = new Uint8Array(size);
  let off = 0;
  for (const [id, value] of pairs) {
    off += encodeVarintInto(id, payload, off);
    off += encodeVarintInto(value, payload, off);
  }
  return frame(FrameType.SETTINGS, payload);
}

/** Decodes a SETTINGS payload (§7.2.4.1). Throws H3Error. */
export function decodeSettings(payload: Uint8Array): Settings {
  const seen = new Set<bigint>();
  const settings: Settings = new Map();
  let off = 0;
  while (off < payload.length) {
    const id = decodeVarintBig(payload, off);
    const value = id && decodeVarintBig(payload, off + id.length);
    // RFC 9114 §7.1: a payload that ends before its identified fields is an H3_FRAME_ERROR.
    if (!id || !value) throw new H3Error(H3_FRAME_ERROR, 'truncated SETTINGS payload');
    off += id.length + value.length;
    // RFC 9114 §7.2.4: the same setting identifier MUST NOT occur more than once: H3_SETTINGS_ERROR.
    if (seen.has(id.value)) throw new H3Error(H3_SETTINGS_ERROR, `duplicate setting 0x${id.value.toString(16)}`);
    seen.add(id.value);
    // RFC 9114 §7.2.4.1: receipt of an HTTP/2-only setting identifier MUST be H3_SETTINGS_ERROR.
    if (id.value <= 5n && HTTP2_ONLY_SETTINGS.has(Number(id.value))) {
      throw new H3Error(H3_SETTINGS_ERROR, `HTTP/2 setting 0x${id.value.toString(16)} in HTTP/3`);
    }
    // Ids beyond 2^53 are unknown to us; keeping them (rounded) only matters for display.
    settings.set(Number(id.value), value.value);
  }
  return settings;
}

/** Decodes a payload that is exactly one varint (CANCEL_PUSH, GOAWAY, MAX_PUSH_ID). */
export function decodeVarintPayload(payload: Uint8Array, what: string): bigint {
  const r = decodeVarintBig(payload, 0);
  // RFC 9114 §7.1: a payload with missing or extra bytes MUST be treated as H3_FRAME_ERROR.
  if (!r || r.length !== payload.length) throw new H3Error(H3_FRAME_ERROR, `malformed ${what} payload`);
  return r.value;
}

/** Decodes a PUSH_PROMISE payload (§7.2.5). */
export function decodePushPromise(payload: Uint8Array): { pushId: bigint; block: Uint8Array } {
  const r = decodeVarintBig(payload, 0);
  if (!r) throw new H3Error(H3_FRAME_ERROR, 'truncated PUSH_PROMISE payload');
  return { pushId: r.value, block: payload.subarray(r.length) };
}

/**
 * The header of an HTTP/3 Datagram (RFC 9297 §2.1): the Quarter Stream ID, which is the
 * request stream id divided by four. The payload follows it in the QUIC DATAGRAM frame.
 */
export function encodeDatagramHeader(streamId: number): Uint8Array {
  const quarter = Math.floor(streamId / 4);
  const out = new Uint8Array(varintLength(quarter));
  encodeVarintInto(quarter, out, 0);
  return out;
}

/**
 * Splits a QUIC DATAGRAM payload into request stream id and HTTP Datagram payload (a view).
 * Throws H3Error(H3_DATAGRAM_ERROR) as RFC 9297 §2.1 requires.
 */
export function decodeDatagram(data: Uint8Array): { streamId: number; payload: Uint8Array } {
  const q = decodeVarintBig(data, 0);
  // RFC 9297 §2.1: a payload too short to parse the Quarter Stream ID MUST be H3_DATAGRAM_ERROR.
  if (!q) throw new H3Error(H3_DATAGRAM_ERROR, 'datagram too short for its Quarter Stream ID');
  // RFC 9297 §2.1: a Quarter Stream ID above 2^60-1 MUST be treated as H3_DATAGRAM_ERROR.
  if (q.value > (1n << 60n) - 1n) throw new H3Error(H3_DATAGRAM_ERROR, 'Quarter Stream ID above 2^60-1');
  return { streamId: Number(q.value) * 4, payload: data.subarray(q.length) };
}
