/**
 * Hand-built QUIC datagrams for robustness tests: a raw node:dgram socket that records every
 * reply, builders for hostile and valid-looking packets, RFC 9001 Initial packet protection
 * (§5.2 keys, §5.3 AEAD, §5.4 header protection), Retry integrity (§5.8), and parsers for the
 * server's Version Negotiation (RFC 9000 §17.2.1) and Retry (RFC 9000 §17.2.5) packets.
 *
 * Written from the RFCs with node:crypto only, so it shares nothing with the code under test.
 */
import * as crypto from 'node:crypto';
import * as dgram from 'node:dgram';

export const QUIC_V1 = 0x00000001;

// ---- a seeded generator, so a failing run can be replayed ----

/** mulberry32: small, fast, good enough to pick sizes and bytes for fuzzing. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.u32() % items.length];
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.u32() % (i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

// ---- varints (RFC 9000 §16), kept local so the helper does not use the code under test ----

export function varint(v: number): Buffer {
  if (v < 0x40) return Buffer.from([v]);
  if (v < 0x4000) return Buffer.from([0x40 | (v >> 8), v & 0xff]);
  if (v < 0x40000000) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    b[0] |= 0x80;
    return b;
  }
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  b[0] |= 0xc0;
  return b;
}

/** A varint forced into two bytes (the Length field of a long header is usually sent so). */
function varint2(v: number): Buffer {
  if (v >= 0x4000) throw new RangeError(`length ${v} does not fit a 2-byte varint`);
  return Buffer.from([0x40 | (v >> 8), v & 0xff]);
}

// ---- RFC 9001 §5.2 Initial secrets ----

/** RFC 9001 §5.2: the version 1 initial salt. */
export const INITIAL_SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, over SHA-256. */
export function hkdfExpandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'ascii');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  // HKDF-Expand (RFC 5869 §2.3): T(1) | T(2) | ... with T(i) = HMAC(PRK, T(i-1) | info | i).
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    prev = crypto.createHmac('sha256', secret).update(Buffer.concat([prev, info, Buffer.from([i])])).digest();
    blocks.push(prev);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

export interface PacketKeys { key: Buffer; iv: Buffer; hp: Buffer }

/** The Initial packet protection keys of one side, from the client's first DCID. */
export function initialKeys(dcid: Buffer, side: 'client' | 'server'): PacketKeys {
  const initialSecret = crypto.createHmac('sha256', INITIAL_SALT_V1).update(dcid).digest(); // HKDF-Extract
  const secret = hkdfExpandLabel(initialSecret, side === 'client' ? 'client in' : 'server in', 32);
  return {
    key: hkdfExpandLabel(secret, 'quic key', 16),
    iv: hkdfExpandLabel(secret, 'quic iv', 12),
    hp: hkdfExpandLabel(secret, 'quic hp', 16),
  };
}

// ---- Initial packets ----

export interface InitialPacket {
  dcid: Buffer;
  scid: Buffer;
  token?: Buffer;
  /** Packet number and its encoded length (RFC 9000 §17.1). Default 0 in 4 bytes. */
  pn?: number;
  pnLength?: 1 | 2 | 3 | 4;
  /** Plaintext frames. */
  payload: Buffer;
  /** Pad the payload with PADDING frames until the datagram is at least this long. */
  minDatagram?: number;
  version?: number;
}

/** An Initial packet protected as RFC 9001 §5 says a client protects it. */
export function protectInitial(p: InitialPacket): Buffer {
  const pnLength = p.pnLength ?? 4;
  const pn = p.pn ?? 0;
  const token = p.token ?? Buffer.alloc(0);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(p.version ?? QUIC_V1);
  const pnBytes = Buffer.alloc(4);
  pnBytes.writeUInt32BE(pn >>> 0);
  const beforeLength = Buffer.concat([
    Buffer.from([0xc0 | (pnLength - 1)]), version,
    Buffer.from([p.dcid.length]), p.dcid, Buffer.from([p.scid.length]), p.scid,
    varint(token.length), token,
  ]);
  let payload = p.payload;
  const fixed = beforeLength.length + 2 + pnLength + 16;
  if (p.minDatagram !== undefined && fixed + payload.length < p.minDatagram) {
    payload = Buffer.concat([payload, Buffer.alloc(p.minDatagram - fixed - payload.length)]);
  }
  const header = Buffer.concat([beforeLength, varint2(pnLength + payload.length + 16), pnBytes.subarray(4 - pnLength)]);
  return protect(header, header.length - pnLength, pnLength, pn, payload, initialKeys(p.dcid, 'client'));
}

/** RFC 9001 §5.3 (AEAD_AES_128_GCM) then §5.4.3 (AES-based header protection). */
export function protect(header: Buffer, pnOffset: number, pnLength: number, pn: number, payload: Buffer, keys: PacketKeys): Buffer {
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 8; i++) nonce[11 - i] ^= Number((BigInt(pn) >> BigInt(8 * i)) & 0xffn);
  const gcm = crypto.createCipheriv('aes-128-gcm', keys.key, nonce);
  gcm.setAAD(header);
  const packet = Buffer.concat([header, gcm.update(payload), gcm.final(), gcm.getAuthTag()]);
  // §5.4.2: the sample starts 4 bytes after the start of the Packet Number field.
  const sample = packet.subarray(pnOffset + 4, pnOffset + 20);
  const ecb = crypto.createCipheriv('aes-128-ecb', keys.hp, null);
  ecb.setAutoPadding(false);
  const mask = Buffer.concat([ecb.update(sample), ecb.final()]);
  packet[0] ^= mask[0] & ((packet[0] & 0x80) !== 0 ? 0x0f : 0x1f);
  for (let i = 0; i < pnLength; i++) packet[pnOffset + i] ^= mask[1 + i];
  return packet;
}

/** Frames for a protected Initial that carries no TLS: PING (RFC 9000 §19.2); the rest pads. */
export const PING_FRAME = Buffer.from([0x01]);

// ---- Retry (RFC 9000 §17.2.5, RFC 9001 §5.8) ----

const RETRY_KEY_V1 = Buffer.from('be0c690b9f66575a1d766b54e368c84e', 'hex');
const RETRY_NONCE_V1 = Buffer.from('461599d35d632bf2239825bb', 'hex');

/** RFC 9001 §5.8: the Retry Integrity Tag over the pseudo-packet (ODCID, then the Retry without its tag). */
export function retryIntegrityTag(odcid: Buffer, retryWithoutTag: Buffer): Buffer {
  const gcm = crypto.createCipheriv('aes-128-gcm', RETRY_KEY_V1, RETRY_NONCE_V1);
  gcm.setAAD(Buffer.concat([Buffer.from([odcid.length]), odcid, retryWithoutTag]));
  gcm.final();
  return gcm.getAuthTag();
}

export interface RetryPacket { version: number; dcid: Buffer; scid: Buffer; token: Buffer; tag: Buffer }

/** Parses a Retry packet; null if `buf` is not one. */
export function parseRetry(buf: Buffer): RetryPacket | null {
  if (buf.length < 7 || (buf[0] & 0xf0) !== 0xf0) return null;
  const version = buf.readUInt32BE(1);
  if (version === 0) return null;
  let off = 5;
  const dcid = buf.subarray(off + 1, off + 1 + buf[off]);
  off += 1 + dcid.length;
  if (off >= buf.length) return null;
  const scid = buf.subarray(off + 1, off + 1 + buf[off]);
  off += 1 + scid.length;
  if (buf.length - off < 16) return null;
  return { version, dcid, scid, token: buf.subarray(off, buf.length - 16), tag: buf.subarray(buf.length - 16) };
}

// ---- Version Negotiation (RFC 9000 §17.2.1) ----

export interface VersionNegotiation { firstByte: number; dcid: Buffer; scid: Buffer; versions: number[] }

/** Parses a Version Negotiation packet; null if `buf` is not one. */
export function parseVersionNegotiation(buf: Buffer): VersionNegotiation | null {
  if (buf.length < 7 || (buf[0] & 0x80) === 0 || buf.readUInt32BE(1) !== 0) return null;
  let off = 5;
  const dcid = buf.subarray(off + 1, off + 1 + buf[off]);
  off += 1 + dcid.length;
  if (off >= buf.length) return null;
  const scid = buf.subarray(off + 1, off + 1 + buf[off]);
  off += 1 + scid.length;
  if (off > buf.length || (buf.length - off) % 4 !== 0) return null;
  const versions: number[] = [];
  for (; off < buf.length; off += 4) versions.push(buf.readUInt32BE(off));
  return { firstByte: buf[0], dcid: Buffer.from(dcid), scid: Buffer.from(scid), versions };
}

// ---- hostile datagrams ----

export type HostileKind =
  | 'random'
  | 'truncated-long-header'
  | 'garbage-initial'
  | 'short-header'
  | 'unknown-version'
  | 'unknown-version-small'
  | 'small-initial';

export interface Hostile {
  kind: HostileKind;
  data: Buffer;
  /** For long headers we built: the CIDs, to match a Version Negotiation reply. */
  dcid?: Buffer;
  scid?: Buffer;
}

/** Versions no server supports: reserved (RFC 9000 §15, 0x?a?a?a?a), draft-29, v2, and others. */
const UNKNOWN_VERSIONS = [0x1a2a3a4a, 0xfafafafa, 0xff00001d, 0x6b3343cf, 0x00000002, 0xdeadbeef];

function longHeader(rng: Rng, first: number, version: number, dcid: Buffer, scid: Buffer): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version >>> 0);
  return Buffer.concat([Buffer.from([first]), v, Buffer.from([dcid.length]), dcid, Buffer.from([scid.length]), scid]);
}

function padTo(buf: Buffer, size: number, rng: Rng): Buffer {
  return buf.length >= size ? buf : Buffer.concat([buf, rng.bytes(size - buf.length)]);
}

/** Random bytes, 1..1500 of them. */
export function randomDatagram(rng: Rng): Hostile {
  return { kind: 'random', data: rng.bytes(rng.int(1, 1500)) };
}

/** A version 1 long header cut off before its connection IDs are complete. */
export function truncatedLongHeader(rng: Rng): Hostile {
  const dcidLen = rng.int(1, 20);
  const full = longHeader(rng, 0xc0 | (rng.int(0, 3) << 4) | rng.int(0, 15), QUIC_V1, rng.bytes(dcidLen), rng.bytes(rng.int(0, 20)));
  // Keep at least the first byte; stop anywhere up to the last DCID byte.
  return { kind: 'truncated-long-header', data: full.subarray(0, rng.int(1, 5 + dcidLen)) };
}

/**
 * A version 1 Initial that parses (8..20-byte DCID and SCID, empty token, a Length field) but
 * whose protected payload is garbage; 1200..1500 bytes.
 */
export function garbageInitial(rng: Rng, size = rng.int(1200, 1500)): Hostile {
  const dcid = rng.bytes(rng.int(8, 20));
  const scid = rng.bytes(rng.int(8, 20));
  const head = Buffer.concat([longHeader(rng, 0xc0 | rng.int(0, 3), QUIC_V1, dcid, scid), varint(0)]);
  const rest = size - head.length - 2;
  return { kind: 'garbage-initial', data: Buffer.concat([head, varint2(rest), rng.bytes(rest)]), dcid, scid };
}

/** The same shape under 1200 bytes (RFC 9000 §14.1: to be dropped). */
export function smallInitial(rng: Rng): Hostile {
  return { ...garbageInitial(rng, rng.int(60, 1199)), kind: 'small-initial' };
}

/** A short-header (1-RTT) packet for a connection that does not exist. */
export function shortHeader(rng: Rng): Hostile {
  return { kind: 'short-header', data: Buffer.concat([Buffer.from([0x40 | rng.int(0, 0x3f)]), rng.bytes(rng.int(20, 1400))]) };
}

/**
 * A long header with a version the server does not support, shaped like a v1 Initial, 0-RTT
 * or Handshake packet: the bytes after the SCID are a zero token length and then random ones; `zeroCids` makes both CIDs empty (RFC 9000 §17.2.1
 * requires the server to echo them whatever their length). `size` < 1200 must get no reply.
 */
export function unknownVersion(rng: Rng, opts: { zeroCids?: boolean; size?: number } = {}): Hostile {
  const dcid = opts.zeroCids ? Buffer.alloc(0) : rng.bytes(rng.int(1, 20));
  const scid = opts.zeroCids ? Buffer.alloc(0) : rng.bytes(rng.int(1, 20));
  const size = opts.size ?? rng.int(1200, 1500);
  // Type bits 00..10 only: see the robustness test on Retry-shaped unknown versions.
  const first = 0xc0 | (rng.int(0, 2) << 4) | rng.int(0, 15);
  const head = Buffer.concat([longHeader(rng, first, rng.pick(UNKNOWN_VERSIONS), dcid, scid), Buffer.from([0])]);
  return { kind: size >= 1200 ? 'unknown-version' : 'unknown-version-small', data: padTo(head, size, rng).subarray(0, size), dcid, scid };
}

/** The CID pair a Version Negotiation reply to this packet carries, as a map key. */
export const vnKey = (dcidOfReply: Buffer, scidOfReply: Buffer): string => `${dcidOfReply.toString('hex')}/${scidOfReply.toString('hex')}`;

// ---- the raw socket ----

export interface Reply { data: Buffer; at: number; port: number }

/** A UDP socket on 127.0.0.1 that keeps every datagram it receives. */
export class RawUdp {
  readonly replies: Reply[] = [];
  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (data, rinfo) => this.replies.push({ data, at: Date.now(), port: rinfo.port }));
  }

  static async open(): Promise<RawUdp> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RawUdp(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(data: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Sends every datagram, `batch` at a time, yielding to the event loop (setImmediate)
   * between batches so the server in this process reads its socket as we go.
   */
  async sendPaced(datagrams: Uint8Array[], port: number, batch = 32): Promise<void> {
    for (let i = 0; i < datagrams.length; i += batch) {
      await Promise.all(datagrams.slice(i, i + batch).map((d) => this.send(d, port)));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Resolves with the first reply from index `from` on that satisfies `match`, or null after `ms`. */
  async waitFor(match: (r: Reply) => boolean, ms: number, from = 0): Promise<Reply | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.replies.slice(from).find(match);
      if (hit) return hit;
      if (Date.now() >= deadline) return null;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
