// Shared by the @matrixai/quic quic-bulk scripts (plain ESM: the package is ESM-only, and
// the repository compiles TypeScript to CommonJS). Same protocol and output lines as
// protocol.ts.
import * as nodeCrypto from 'node:crypto';

export const MAX_UDP_PAYLOAD = 1452;
export const ALPN = 'bulk';
export const MiB = 1024 * 1024;

// Both sides: cap the UDP payload at 1452 bytes and use the same flow-control windows as
// ours. readableChunkSize stays at its default (4 KiB): 64 KiB reads measured slower here
// (about 4 against 6 Mbit/s, 15 s runs).
export const transportConfig = {
  verifyPeer: false,
  applicationProtos: [ALPN],
  maxIdleTimeout: 30_000,
  maxSendUdpPayloadSize: MAX_UDP_PAYLOAD,
  maxRecvUdpPayloadSize: MAX_UDP_PAYLOAD,
  initialMaxData: 64 * MiB,
  initialMaxStreamDataBidiLocal: 16 * MiB,
  initialMaxStreamDataBidiRemote: 16 * MiB,
  initialMaxStreamDataUni: 16 * MiB,
  maxStreamWindow: 64 * MiB,
  maxConnectionWindow: 64 * MiB,
};

const view = (data) =>
  ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

// The crypto operations @matrixai/quic asks for: random bytes (client) and an HMAC used to
// derive and check connection IDs and tokens (server).
export const clientCryptoOps = {
  async randomBytes(data) {
    nodeCrypto.randomFillSync(view(data));
  },
};

export const serverCryptoOps = {
  async sign(key, data) {
    const mac = nodeCrypto.createHmac('sha256', view(key)).update(view(data)).digest();
    return mac.buffer.slice(mac.byteOffset, mac.byteOffset + mac.byteLength);
  },
  async verify(key, data, sig) {
    const mac = nodeCrypto.createHmac('sha256', view(key)).update(view(data)).digest();
    const s = view(sig);
    return s.byteLength === mac.byteLength && nodeCrypto.timingSafeEqual(mac, s);
  },
};

export function cpuSeconds(since) {
  const u = process.cpuUsage(since);
  return { cpuUser: u.user / 1e6, cpuSystem: u.system / 1e6 };
}

export function printResult(r) {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

export function watchdog(sec, who) {
  setTimeout(() => {
    process.stderr.write(`${who}: timed out after ${sec} s\n`);
    process.exit(2);
  }, sec * 1000).unref();
}

/** Counts the datagrams the process sends through node:dgram and their sizes (JS owns the socket). */
export async function countDatagrams() {
  const dgram = await import('node:dgram');
  const counts = { datagrams: 0, bytes: 0, largest: 0 };
  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (msg, ...rest) {
    const len = typeof msg === 'string' ? Buffer.byteLength(msg)
      : Array.isArray(msg) ? msg.reduce((a, m) => a + m.byteLength, 0)
      : typeof rest[1] === 'number' && typeof rest[0] === 'number' ? rest[1] : msg.byteLength;
    counts.datagrams++;
    counts.bytes += len;
    if (len > counts.largest) counts.largest = len;
    return send.call(this, msg, ...rest);
  };
  return counts;
}

/** A logger at WARN: the library logs every stream's creation at INFO by default. */
export async function quietLogger() {
  const { default: Logger, LogLevel } = await import('@matrixai/logger');
  return new Logger('quic-bulk', LogLevel.WARN);
}
