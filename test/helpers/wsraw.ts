import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * Hand-made WebSocket frames for the cases a well-behaved client never sends (unmasked
 * frames, invalid UTF-8, bad close codes), over a raw HTTP/1.1 socket or an HTTP/2 extended
 * CONNECT stream. Only for tests: the server's framing is the `ws` library's.
 */
export function frame(opcode: number, payload: Buffer, options: { mask?: boolean; fin?: boolean } = {}): Buffer {
  const mask = options.mask ?? true;
  const len = payload.length;
  const head: number[] = [(options.fin ?? true ? 0x80 : 0) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    head.push(maskBit | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

export const closeFrame = (code: number, reason = ''): Buffer => {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return frame(0x8, p);
};

export interface ServerFrame { opcode: number; payload: Buffer }

/** Splits the server's (unmasked) frames off the front of `buf`; returns them and the rest. */
export function parseFrames(buf: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b1 = buf[off + 1]!;
    let len = b1 & 0x7f;
    let hdr = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      hdr = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      hdr = 10;
    }
    if (buf.length - off < hdr + len) break;
    frames.push({ opcode: buf[off]! & 0x0f, payload: buf.subarray(off + hdr, off + hdr + len) });
    off += hdr + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** A raw WebSocket connection: frames out, the server's Close frame (or the end) awaited. */
export interface RawWebSocket {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  send(bytes: Buffer): void;
  /** The server's Close (code, reason), or code 1006 when the transport ended without one. */
  closed: Promise<{ code: number; reason: string }>;
  /** Data frames received (opcode, payload), in order. */
  frames: ServerFrame[];
  /** Stops and restarts reading (the server's writes then back up). */
  pause(): void;
  resume(): void;
  destroy(): void;
}

function collect(onData: (cb: (d: Buffer) => void) => void, onEnd: (cb: () => void) => void, initial: Buffer): Pick<RawWebSocket, 'closed' | 'frames'> {
  const frames: ServerFrame[] = [];
  let pending = initial;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    const take = (): void => {
      const { frames: got, rest } = parseFrames(pending);
      pending = rest;
      for (const f of got) {
        if (f.opcode === 0x8) resolve({ code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString() });
        else frames.push(f);
      }
    };
    onData((d) => {
      pending = Buffer.concat([pending, d]);
      take();
    });
    onEnd(() => resolve({ code: 1006, reason: '' }));
    take();
  });
  return { closed, frames };
}

/** HTTP/1.1 Upgrade on a TLS (or, with `tls: false`, plain) socket. */
export function rawHttp1(port: number, path: string, headers: Record<string, string> = {}, useTls = true): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = useTls
      ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port });
    socket.once(useTls ? 'secureConnect' : 'connect', () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: localhost:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13'];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
    socket.on('error', reject);
    let buf = Buffer.alloc(0);
    const onHead = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      const [statusLine, ...rest] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const h: Record<string, string> = {};
      for (const l of rest) {
        const i = l.indexOf(':');
        h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(statusLine!.split(' ')[1]);
      const { closed, frames } = collect((cb) => socket.on('data', cb), (cb) => socket.once('close', cb), buf.subarray(end + 4));
      resolve({ status, headers: h, send: (b) => socket.write(b), closed, frames, pause: () => socket.pause(), resume: () => socket.resume(), destroy: () => socket.destroy() });
    };
    socket.on('data', onHead);
  });
}

/** RFC 8441: an extended CONNECT with `:protocol websocket` on an HTTP/2 connection. */
export function rawHttp2(port: number, path: string, headers: Record<string, string> = {}): Promise<RawWebSocket & { session: http2.ClientHttp2Session }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { rejectUnauthorized: false, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    session.on('error', reject);
    session.once('remoteSettings', (settings) => {
      if (!settings.enableConnectProtocol) return reject(new Error('the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL'));
      const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path,
        ':authority': `localhost:${port}`, 'sec-websocket-version': '13', ...headers });
      stream.on('error', () => undefined);
      stream.once('response', (h) => {
        const { closed, frames } = collect((cb) => stream.on('data', cb), (cb) => stream.once('close', cb), Buffer.alloc(0));
        resolve({ status: Number(h[':status']), headers: h, send: (b) => stream.write(b), closed, frames,
          pause: () => stream.pause(), resume: () => stream.resume(), destroy: () => session.destroy(), session });
      });
    });
  });
}
