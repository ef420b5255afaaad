import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import { App } from '../../src/http/app';
import { TcpListener } from '../../src/listeners/tcp';
import {
  Http2CapsuleReader, Http2WebTransport, WebTransportError, webTransport, webTransportEcho,
  type EchoStats, type Http2CapsuleEvent, type WebTransportCloseInfo, type WebTransportSession,
} from '../../src/webtransport';
import { parseWebTransportInit } from '../../src/webtransport/h2';
import { makeTestCert, type TestCert } from '../helpers/certs';

/**
 * WebTransport over HTTP/2 (draft-ietf-webtrans-http2), the TCP fallback: the same
 * `webTransport(path, handler)` route as over HTTP/3, served by the TLS listener.
 *
 * Peers: @fails-components/webtransport 1.6.8's client (forceReliable: HTTP/2 only), the one
 * independent implementation there is, for the echo, server-opened streams, rejection and
 * shutdown; hand-made capsules on node:http2 CONNECT streams (their codec below is the test's
 * own) for the session limit and for what a good client never sends.
 */

// ---- A raw peer: node:http2 and a capsule codec of its own. ----

/** Capsule types, from draft-ietf-webtrans-http2-14 §11.4 and RFC 9297 §5.4 (not from the code under test). */
const C = {
  DATAGRAM: 0x00, PADDING: 0x190b4d38, WT_RESET_STREAM: 0x190b4d39, WT_STOP_SENDING: 0x190b4d3a, WT_STREAM: 0x190b4d3b,
  WT_STREAM_FIN: 0x190b4d3c, WT_MAX_DATA: 0x190b4d3d, WT_MAX_STREAM_DATA: 0x190b4d3e, WT_MAX_STREAMS_BIDI: 0x190b4d3f,
  WT_MAX_STREAMS_UNI: 0x190b4d40, WT_STREAM_DATA_BLOCKED: 0x190b4d42, WT_CLOSE_SESSION: 0x2843, WT_DRAIN_SESSION: 0x78ae,
};
/** WT_FLOW_CONTROL_ERROR as draft-ietf-webtrans-http3 registers it (0xTBD in the HTTP/2 draft). */
const WT_FLOW_CONTROL_ERROR = 0x045d4487;
/** SETTINGS_WT_INITIAL_MAX_DATA, _STREAM_DATA_UNI, _STREAM_DATA_BIDI(_LOCAL), _STREAMS_UNI, _STREAMS_BIDI (§11.2). */
const SETTINGS = { 0x2b61: 1 << 20, 0x2b62: 1 << 18, 0x2b63: 1 << 18, 0x2b64: 10, 0x2b65: 10 };

function varint(v: number): Buffer {
  if (v < 0x40) return Buffer.from([v]);
  if (v < 0x4000) return Buffer.from([0x40 | (v >> 8), v & 0xff]);
  if (v < 0x40000000) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE((0x80000000 | v) >>> 0);
    return b;
  }
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(0xc000000000000000n | BigInt(v));
  return b;
}

function readVarint(buf: Buffer, off: number): [number, number] | null {
  if (off >= buf.length) return null;
  const n = 1 << (buf[off]! >> 6);
  if (off + n > buf.length) return null;
  let v = buf[off]! & 0x3f;
  for (let i = 1; i < n; i++) v = v * 256 + buf[off + i]!;
  return [v, off + n];
}

const capsule = (type: number, ...parts: Buffer[]): Buffer => {
  const value = Buffer.concat(parts);
  return Buffer.concat([varint(type), varint(value.length), value]);
};
const wtStream = (id: number, data: Buffer | string = Buffer.alloc(0), fin = false): Buffer => capsule(fin ? C.WT_STREAM_FIN : C.WT_STREAM, varint(id), Buffer.from(data));
const closeSession = (code: number, reason: string): Buffer => {
  const c = Buffer.alloc(4);
  c.writeUInt32BE(code);
  return capsule(C.WT_CLOSE_SESSION, c, Buffer.from(reason));
};

interface Seen { type: number; value: Buffer }

const rawSessions = new WeakMap<http2.ClientHttp2Session, RawSession[]>();

/** One CONNECT stream of a raw peer: what it sends, and the capsules the server sends back. */
class RawSession {
  readonly stream: http2.ClientHttp2Stream;
  readonly capsules: Seen[] = [];
  status = 0;
  readonly closed: Promise<number>;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  constructor(client: http2.ClientHttp2Session, readonly path: string, headers: http2.OutgoingHttpHeaders = {}) {
    this.stream = client.request({
      ':method': 'CONNECT', ':protocol': 'webtransport', ':scheme': 'https', ':path': path, ':authority': 'localhost', ...headers,
    }, { endStream: false });
    rawSessions.set(client, [...(rawSessions.get(client) ?? []), this]);
    this.stream.on('response', (h) => {
      this.status = Number(h[':status']);
      this.wake();
    });
    this.stream.on('data', (d: Buffer) => this.onData(d));
    this.stream.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.stream.on('close', () => {
      resolve(this.stream.rstCode ?? 0);
      this.wake();
    }));
  }

  send(...bytes: Buffer[]): void {
    this.stream.write(Buffer.concat(bytes));
  }

  /** Waits until `ready()` holds (the response, a capsule...), or fails after `ms`. */
  async until(what: string, ready: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${this.path}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  accepted(): Promise<void> {
    return this.until('the response', () => this.status !== 0).then(() => assert.equal(this.status, 200));
  }

  /** The bytes the server sent on stream `id`, and whether its WT_STREAM_FIN came. */
  streamBytes(id: number): { data: Buffer; fin: boolean } {
    const parts: Buffer[] = [];
    let fin = false;
    for (const c of this.capsules) {
      if (c.type !== C.WT_STREAM && c.type !== C.WT_STREAM_FIN) continue;
      const [sid, off] = readVarint(c.value, 0)!;
      if (sid !== id) continue;
      parts.push(c.value.subarray(off));
      if (c.type === C.WT_STREAM_FIN) fin = true;
    }
    return { data: Buffer.concat(parts), fin };
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const t = readVarint(this.buf, 0);
      const l = t && readVarint(this.buf, t[1]);
      if (!t || !l || this.buf.length < l[1] + l[0]) break;
      this.capsules.push({ type: t[0], value: this.buf.subarray(l[1], l[1] + l[0]) });
      this.buf = this.buf.subarray(l[1] + l[0]);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A node:http2 connection that announces the WebTransport SETTINGS, once the server's have come. */
async function rawClient(port: number, settings: Record<number, number> = SETTINGS): Promise<http2.ClientHttp2Session> {
  const client = http2.connect(`https://127.0.0.1:${port}`, {
    rejectUnauthorized: false,
    settings: { enableConnectProtocol: true, customSettings: settings },
    remoteCustomSettings: [0x2b61, 0x2b62, 0x2b63, 0x2b64, 0x2b65, 0x2b66],
  } as http2.SecureClientSessionOptions);
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    client.once('remoteSettings', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/**
 * Ends every session of a raw connection (END_STREAM: the server closes them with code 0), then
 * the connection. Not destroy(): node 20.20's ClientHttp2Session.destroy() can spin forever in
 * SendPendingData when a CONNECT stream is still open (seen here after a sibling stream was reset).
 */
async function closeClient(client: http2.ClientHttp2Session | undefined): Promise<void> {
  if (!client || client.closed) return;
  for (const s of rawSessions.get(client) ?? []) if (!s.stream.closed && !s.stream.destroyed) s.stream.end();
  await within(new Promise<void>((resolve) => client.close(() => resolve())), 5000, 'closing the raw connection');
}

// ---- The fails-components client (ESM only: a real import() from CommonJS). ----

interface FailsStream { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }
interface FailsWebTransport {
  ready: Promise<void>;
  closed: Promise<WebTransportCloseInfo>;
  draining?: Promise<void>;
  incomingBidirectionalStreams: ReadableStream<FailsStream>;
  incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  datagrams: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array>; createWritable?: () => WritableStream<Uint8Array> };
  createBidirectionalStream(): Promise<FailsStream>;
  createUnidirectionalStream(): Promise<WritableStream<Uint8Array>>;
  close(info?: Partial<WebTransportCloseInfo>): void;
}
type FailsWebTransportClass = new (url: string, options: object) => FailsWebTransport;

const esmImport = new Function('s', 'return import(s)') as (s: string) => Promise<{ WebTransport: FailsWebTransportClass }>;

async function readAll(readable: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of readable as unknown as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)))])
    .finally(() => clearTimeout(timer));
}

describe('WebTransport over HTTP/2 (draft-ietf-webtrans-http2)', function () {
  this.timeout(120_000);
  let cert: TestCert;
  let listener: TcpListener;
  let h2wt: Http2WebTransport;
  let port: number;
  let WebTransport: FailsWebTransportClass;
  let clientOptions: object;
  const echoed: Array<{ session: WebTransportSession; stats: EchoStats }> = [];
  const sinks = new Map<string, WebTransportSession>();
  const rejected: WebTransportSession[] = [];
  const later = new Map<string, WebTransportSession>();
  const appErrors: unknown[] = [];
  const clients: FailsWebTransport[] = [];

  const open = async (path: string): Promise<FailsWebTransport> => {
    const t = new WebTransport(`https://127.0.0.1:${port}${path}`, clientOptions);
    clients.push(t);
    t.closed.catch(() => undefined);
    return t;
  };

  before(async () => {
    cert = makeTestCert();
    const app = new App();
    app.on('error', (err: unknown) => appErrors.push(err));
    app.get('/hello', (ctx) => void (ctx.body = 'plain HTTP/2'));
    app.use(webTransport('/echo', webTransportEcho({ onSession: (session, stats) => echoed.push({ session, stats }) })));
    // Takes sessions and reads nothing: the client runs into our flow-control limits.
    app.use(webTransport('/sink', (session) => void sinks.set(session.request.path, session)));
    app.use(webTransport('/private', () => undefined, {
      accept: (_ctx, session) => {
        rejected.push(session);
        return 403;
      },
    }));
    // Opens a bidirectional and a unidirectional stream of its own, each larger than one capsule.
    app.use(webTransport('/push', async (session) => {
      const bidi = await session.createBidirectionalStream();
      const w = bidi.writable.getWriter();
      await w.write(Buffer.alloc(100_000, 0x61));
      await w.close();
      const uni = await session.createUnidirectionalStream();
      const u = uni.getWriter();
      await u.write(Buffer.alloc(50_000, 0x62));
      await u.close();
      const back = await readAll(bidi.readable);
      session.datagrams.write(Buffer.from(`got ${back.length}`));
    }));
    // Takes its time to decide: capsules that come before the answer wait for it.
    app.use(webTransport('/later', webTransportEcho(), {
      accept: async (ctx, session) => {
        later.set(ctx.request.target, session);
        await new Promise((resolve) => setTimeout(resolve, 200));
        return true;
      },
    }));
    // Reads its first stream slowly, then says how much came: the client waits on our credit.
    app.use(webTransport('/slow', async (session) => {
      for await (const s of session.incomingBidirectionalStreams as unknown as AsyncIterable<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>) {
        let n = 0;
        for await (const c of s.readable as unknown as AsyncIterable<Uint8Array>) {
          n += c.byteLength;
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        const w = s.writable.getWriter();
        await w.write(Buffer.from(`read ${n}`));
        await w.close();
      }
    }));
    // Until src/server.ts takes a WebTransport-over-HTTP/2 option: the TLS listener itself, with its hook.
    h2wt = new Http2WebTransport({ maxSessions: 4, grease: !process.env.NOGREASE });
    listener = new TcpListener(app, { host: '127.0.0.1', port: 0, tls: { cert: cert.cert, key: cert.key }, webTransport: h2wt });
    await listener.listen();
    port = listener.port;
    ({ WebTransport } = await esmImport('@fails-components/webtransport'));
    const hash = crypto.createHash('sha256').update(new crypto.X509Certificate(cert.cert).raw).digest();
    clientOptions = { forceReliable: true, serverCertificateHashes: [{ algorithm: 'sha-256', value: hash }] };
  });

  afterEach(() => assert.deepEqual(appErrors.splice(0), [], 'nothing reached the pipeline\'s error report'));

  after(() => {
    for (const t of clients) {
      try {
        t.close();
      } catch {
        // already closed
      }
    }
    listener?.close();
    if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
  });

  it('advertises extended CONNECT and the WebTransport SETTINGS, and still serves plain requests', async () => {
    const client = await rawClient(port);
    try {
      const s = client.remoteSettings as http2.Settings & { customSettings?: Record<number, number> };
      assert.equal(s.enableConnectProtocol, true);
      assert.deepEqual(s.customSettings, h2wt.settings().customSettings);
      const req = client.request({ ':path': '/hello' });
      const body = await new Promise<string>((resolve, reject) => {
        let text = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (text += c));
        req.on('end', () => resolve(text));
        req.on('error', reject);
      });
      assert.equal(body, 'plain HTTP/2');
    } finally {
      await closeClient(client);
    }
  });

  it('fails-components client: 100 bidirectional streams of 64 KiB, 20 unidirectional streams, 1,000 datagrams, then a close with a code', async () => {
    const t = await open('/echo');
    await within(t.ready, 10_000, 'ready');

    const t0 = Date.now();
    const bidi = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const s = await t.createBidirectionalStream();
      const payload = crypto.createHash('shake256', { outputLength: 64 * 1024 }).update(`bidi ${i}`).digest();
      const back = readAll(s.readable);
      const w = s.writable.getWriter();
      await w.write(payload);
      await w.close();
      return (await back).equals(payload);
    }));
    const bidiMs = Date.now() - t0;
    assert.equal(bidi.filter(Boolean).length, 100, 'every bidirectional stream echoed intact');

    const incoming = t.incomingUnidirectionalStreams.getReader();
    const sent = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const w = (await t.createUnidirectionalStream()).getWriter();
      const text = `uni ${i} `.repeat(1000);
      sent.add(text);
      await w.write(Buffer.from(text));
      await w.close();
    }
    const back = new Set<string>();
    for (let i = 0; i < 20; i++) back.add((await readAll((await within(incoming.read(), 10_000, 'uni echo')).value!)).toString());
    incoming.releaseLock();
    assert.deepEqual(back, sent, 'every unidirectional stream echoed on a stream of the server');

    const writer = (t.datagrams.createWritable ? t.datagrams.createWritable() : t.datagrams.writable).getWriter();
    const reader = t.datagrams.readable.getReader();
    const got = new Set<string>();
    const reading = (async () => {
      while (got.size < 1000) {
        const r = await reader.read();
        if (r.done) break;
        got.add(Buffer.from(r.value).toString());
      }
    })();
    for (let i = 0; i < 1000; i++) await writer.write(Buffer.from(`datagram ${i}`));
    await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 5000))]);
    const lost = 1000 - got.size;
    const mib = (100 * 64 * 1024 * 2) / (1 << 20);
    console.log(`      bidi: 100 x 64 KiB echoed in ${bidiMs} ms (${(mib / (bidiMs / 1000)).toFixed(1)} MiB/s both ways); datagrams: 1000 sent, ${got.size} echoed, ${lost} lost`);
    assert.equal(lost, 0, 'HTTP/2 carries datagrams reliably');

    t.close({ closeCode: 4242, reason: 'bye over h2' });
    const { session, stats } = echoed[echoed.length - 1]!;
    assert.equal(session.request.path, '/echo');
    assert.deepEqual(await within(session.closed, 10_000, 'server close'), { closeCode: 4242, reason: 'bye over h2' });
    assert.deepEqual({ ...stats, bytes: undefined }, { bidirectionalStreams: 100, unidirectionalStreams: 20, datagrams: 1000, bytes: undefined });
    assert.equal(stats.bytes, 100 * 64 * 1024 + [...sent].reduce((n, s) => n + s.length, 0));
  });

  it('fails-components client: 8 MiB each way on one stream, as the windows of both sides open with the reads', async () => {
    const t = await open('/echo');
    await within(t.ready, 10_000, 'ready');
    const s = await t.createBidirectionalStream();
    const payload = crypto.createHash('shake256', { outputLength: 8 << 20 }).update('big').digest();
    const back = readAll(s.readable);
    const w = s.writable.getWriter();
    const t0 = Date.now();
    for (let off = 0; off < payload.length; off += 256 * 1024) await w.write(payload.subarray(off, off + 256 * 1024));
    await w.close();
    const got = await within(back, 60_000, 'echo');
    const ms = Date.now() - t0;
    console.log(`      one stream: 8 MiB echoed in ${ms} ms (${(8 / (ms / 1000)).toFixed(1)} MiB/s each way)`);
    assert.ok(got.equals(payload), 'echoed intact');
    t.close();
  });

  it('a slow reader holds the client back with its credit, and lets it go on as it reads', async () => {
    const t = await open('/slow');
    await within(t.ready, 10_000, 'ready');
    const s = await t.createBidirectionalStream();
    const back = readAll(s.readable);
    const w = s.writable.getWriter();
    for (let i = 0; i < 32; i++) await w.write(Buffer.alloc(64 * 1024, i));
    await w.close();
    assert.equal((await within(back, 60_000, 'answer')).toString(), `read ${32 * 64 * 1024}`);
    t.close();
  });

  it('streams the server opens reach the client whole (the library drops split capsules on stream 0: we start at 4)', async () => {
    const t = await open('/push');
    await within(t.ready, 10_000, 'ready');
    const bidi = (await within(t.incomingBidirectionalStreams.getReader().read(), 10_000, 'server bidi')).value!;
    const data = await readAll(bidi.readable);
    assert.equal(data.length, 100_000);
    assert.ok(data.every((b) => b === 0x61));
    const uni = (await within(t.incomingUnidirectionalStreams.getReader().read(), 10_000, 'server uni')).value!;
    assert.equal((await readAll(uni)).length, 50_000);
    const w = bidi.writable.getWriter();
    await w.write(Buffer.alloc(70_000, 1));
    await w.close();
    const dg = await within(t.datagrams.readable.getReader().read(), 10_000, 'datagram');
    assert.equal(Buffer.from(dg.value!).toString(), 'got 70000');
    t.close();
  });

  it('a session its route rejects gets that status: the client\'s ready rejects', async () => {
    const t = await open('/private');
    await assert.rejects(within(t.ready, 10_000, 'ready'));
    const session = rejected[rejected.length - 1]!;
    await assert.rejects(session.ready, (e: WebTransportError) => e.code === 'HARRIER_ERR_WT_SESSION_REJECTED' && /403/.test(e.message));
    // The status itself, seen by a raw peer.
    const client = await rawClient(port);
    try {
      const raw = new RawSession(client, '/private');
      await raw.until('the response', () => raw.status !== 0);
      assert.equal(raw.status, 403);
    } finally {
      await closeClient(client);
    }
  });

  it('capsules sent before the session is accepted are read once it is (draft §3.2), a malformed one too', async () => {
    const client = await rawClient(port);
    try {
      const early = new RawSession(client, '/later?early');
      early.send(wtStream(1, 'before the answer'), wtStream(1, '', true), capsule(C.DATAGRAM, Buffer.from('early datagram')));
      const bad = new RawSession(client, '/later?bad');
      bad.send(capsule(C.WT_STREAM));
      await early.accepted();
      await early.until('the echo on stream 1', () => early.streamBytes(1).fin);
      assert.equal(early.streamBytes(1).data.toString(), 'before the answer');
      await early.until('the datagram', () => early.capsules.some((c) => c.type === C.DATAGRAM && c.value.toString() === 'early datagram'));
      assert.equal(await within(bad.closed, 5000, 'reset'), http2.constants.NGHTTP2_PROTOCOL_ERROR);
      assert.equal(bad.status, 200, 'read, and found malformed, only once accepted');
      await assert.rejects(later.get('/later?bad')!.closed, (e: WebTransportError) => e.code === 'HARRIER_ERR_WT_SESSION_ABORTED' && /without a stream id/.test(e.message));
      assert.equal(client.destroyed || client.closed, false, 'the connection lives on');
    } finally {
      await closeClient(client);
    }
  });

  it('a rejected session\'s capsules are never read', async () => {
    const client = await rawClient(port);
    try {
      const raw = new RawSession(client, '/private');
      raw.send(capsule(C.WT_STREAM)); // malformed, were it read
      await raw.until('the response', () => raw.status !== 0);
      assert.equal(raw.status, 403);
      assert.notEqual(await within(raw.closed, 5000, 'close'), http2.constants.NGHTTP2_PROTOCOL_ERROR);
    } finally {
      await closeClient(client);
    }
  });

  it('sends a capsule of a reserved type first (GREASE, RFC 9297 §5.4)', async () => {
    const client = await rawClient(port);
    try {
      const raw = new RawSession(client, '/echo?grease');
      await raw.accepted();
      await raw.until('a capsule', () => raw.capsules.length > 0);
      assert.equal((raw.capsules[0]!.type - 0x17) % 0x29, 0, `type 0x${raw.capsules[0]!.type.toString(16)}`);
    } finally {
      await closeClient(client);
    }
  });

  it('takes the client\'s initial stream limits from WebTransport-Init (draft §4.3.2) and sends no byte beyond them', async () => {
    // SETTINGS allow no stream data (absent: 0, draft §11.2; node refuses to send a 0), only the
    // header field does (bl: the client's bidirectional streams).
    const { 0x2b62: _u, 0x2b63: _b, ...noStreamData } = SETTINGS;
    const client = await rawClient(port, noStreamData);
    try {
      const bad = new RawSession(client, '/echo?init=bad', { 'webtransport-init': 'bl=1.5' });
      await bad.until('the response', () => bad.status !== 0);
      assert.equal(bad.status, 400);
      const raw = new RawSession(client, '/echo?init', { 'webtransport-init': 'u=10, bl=5000;x, other="ignored"' });
      await raw.accepted();
      raw.send(wtStream(1, Buffer.alloc(20_000, 5), true));
      await raw.until('WT_STREAM_DATA_BLOCKED', () => raw.capsules.some((c) => c.type === C.WT_STREAM_DATA_BLOCKED));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(raw.streamBytes(1).data.length, 5000, 'exactly the limit');
      const blocked = raw.capsules.find((c) => c.type === C.WT_STREAM_DATA_BLOCKED)!.value;
      assert.deepEqual([readVarint(blocked, 0)![0], readVarint(blocked, readVarint(blocked, 0)![1])![0]], [1, 5000]);
      raw.send(capsule(C.WT_MAX_STREAM_DATA, varint(1), varint(20_000)));
      await raw.until('the rest', () => raw.streamBytes(1).fin);
      assert.equal(raw.streamBytes(1).data.length, 20_000);
    } finally {
      await closeClient(client);
    }
  });

  it('a stream reset by the client is reset back by the echo with the same application code', async () => {
    const client = await rawClient(port);
    try {
      const raw = new RawSession(client, '/echo?reset');
      await raw.accepted();
      // draft §6.2: Reliable Size (here all 5 bytes sent) as the third field.
      raw.send(wtStream(1, 'abcde'), capsule(C.WT_RESET_STREAM, varint(1), varint(77), varint(5)));
      await raw.until('the reset', () => raw.capsules.some((c) => c.type === C.WT_RESET_STREAM));
      const reset = raw.capsules.find((c) => c.type === C.WT_RESET_STREAM)!.value;
      const [id, off] = readVarint(reset, 0)!;
      assert.deepEqual([id, readVarint(reset, off)![0]], [1, 77]);
    } finally {
      await closeClient(client);
    }
  });

  it('refuses sessions over the per-connection limit (RST_STREAM REFUSED_STREAM), and takes one again when a session ends', async () => {
    const client = await rawClient(port);
    try {
      const four = Array.from({ length: 4 }, (_, i) => new RawSession(client, `/sink?limit=${i}`));
      await Promise.all(four.map((s) => s.accepted()));
      const fifth = new RawSession(client, '/sink?limit=4');
      assert.equal(await within(fifth.closed, 5000, 'refusal'), http2.constants.NGHTTP2_REFUSED_STREAM);
      assert.equal(fifth.status, 0, 'no response: the stream was refused unprocessed');
      four[0]!.send(closeSession(5, 'making room'));
      four[0]!.stream.end();
      assert.deepEqual(await within(sinks.get('/sink?limit=0')!.closed, 5000, 'close'), { closeCode: 5, reason: 'making room' });
      const again = new RawSession(client, '/sink?limit=5');
      await again.accepted();
    } finally {
      await closeClient(client);
    }
  });

  it('follows a client that numbers its streams as the draft does (client-initiated even)', async () => {
    const client = await rawClient(port);
    try {
      const echo = new RawSession(client, '/echo');
      await echo.accepted();
      echo.send(wtStream(0, 'draft parity'), wtStream(0, '', true), wtStream(2, 'uni, draft parity', true));
      await echo.until('the echo on stream 0', () => echo.streamBytes(0).fin);
      assert.equal(echo.streamBytes(0).data.toString(), 'draft parity');
      // The echo of a unidirectional stream comes on the server's first one: 3 with this parity.
      await echo.until('the echo on stream 3', () => echo.streamBytes(3).fin);
      assert.equal(echo.streamBytes(3).data.toString(), 'uni, draft parity');
    } finally {
      await closeClient(client);
    }
  });

  describe('malformed capsules end that session only', () => {
    const malformed: Array<{ name: string; code: number; reason: RegExp; bytes: (s: RawSession) => Buffer[]; end?: boolean; cleanClose?: boolean }> = [
      { name: 'a field cut short (WT_MAX_DATA of one byte, a 4-byte varint)', code: 1, reason: /ends inside a field/, bytes: () => [capsule(C.WT_MAX_DATA, Buffer.from([0x80]))] },
      { name: 'bytes after the fields (WT_MAX_STREAMS with two varints)', code: 1, reason: /bytes after its fields/, bytes: () => [capsule(C.WT_MAX_STREAMS_BIDI, varint(5), varint(1))] },
      { name: 'WT_STREAM without a stream id', code: 1, reason: /without a stream id/, bytes: () => [capsule(C.WT_STREAM)] },
      { name: 'a stream id that runs past its capsule', code: 1, reason: /runs past the capsule/, bytes: () => [capsule(C.WT_STREAM, Buffer.from([0x40]))] },
      { name: 'WT_STREAM on a stream of the server it never opened', code: 1, reason: /never opened/, bytes: () => [wtStream(1, 'mine'), wtStream(4, 'yours?')] },
      { name: 'WT_STOP_SENDING for the client\'s own unidirectional stream', code: 1, reason: /unidirectional the other way/, bytes: () => [wtStream(3, 'uni'), capsule(C.WT_STOP_SENDING, varint(3), varint(0))] },
      { name: 'data past the end of a stream', code: 1, reason: /after its end/, bytes: () => [wtStream(1, 'done', true), wtStream(1, 'more')] },
      { name: 'WT_CLOSE_SESSION with a message over 1024 bytes', code: 1, reason: /capsule 0x2843 of 1029 bytes/, bytes: () => [closeSession(1, 'x'.repeat(1025))] },
      { name: 'a capsule cut short by END_STREAM', code: 1, reason: /ended inside a capsule/, bytes: () => [capsule(C.WT_MAX_DATA, varint(1 << 20)).subarray(0, 3)], end: true },
      { name: 'data after WT_CLOSE_SESSION', code: 1, reason: /./, bytes: () => [closeSession(3, 'bye'), capsule(C.WT_MAX_DATA, varint(1 << 21))], cleanClose: true },
      { name: 'stream data beyond the flow-control limit', code: WT_FLOW_CONTROL_ERROR, reason: /WT_FLOW_CONTROL_ERROR: stream 1 data beyond/, bytes: () => [wtStream(1, Buffer.alloc(2 << 20))] },
      { name: 'a stream beyond the stream limit', code: WT_FLOW_CONTROL_ERROR, reason: /WT_FLOW_CONTROL_ERROR: stream 513 beyond the limit of 128/, bytes: () => [wtStream(1, 'x'), wtStream(4 * 128 + 1, 'y')] },
      { name: 'WT_MAX_DATA that goes down', code: WT_FLOW_CONTROL_ERROR, reason: /WT_MAX_DATA went down from 1048576 to 1000/, bytes: () => [capsule(C.WT_MAX_DATA, varint(1000))] },
      { name: 'WT_MAX_STREAMS that goes down', code: WT_FLOW_CONTROL_ERROR, reason: /WT_MAX_STREAMS went down from 10 to 9/, bytes: () => [capsule(C.WT_MAX_STREAMS_UNI, varint(9))] },
      { name: 'a second WT_RESET_STREAM', code: 1, reason: /second WT_RESET_STREAM on stream 1/, bytes: () => [wtStream(1, 'a'), capsule(C.WT_RESET_STREAM, varint(1), varint(0)), wtStream(1, 'flushed after the reset: dropped'), capsule(C.WT_RESET_STREAM, varint(1), varint(0))] },
      { name: 'a second WT_STOP_SENDING', code: 1, reason: /second WT_STOP_SENDING on stream 1/, bytes: () => [wtStream(1, 'a'), capsule(C.WT_STOP_SENDING, varint(1), varint(0)), capsule(C.WT_STOP_SENDING, varint(1), varint(0))] },
      { name: 'WT_MAX_STREAM_DATA after WT_STOP_SENDING', code: 1, reason: /after its WT_STOP_SENDING/, bytes: () => [wtStream(1, 'a'), capsule(C.WT_STOP_SENDING, varint(1), varint(0)), capsule(C.WT_MAX_STREAM_DATA, varint(1), varint(1 << 20))] },
      { name: 'an error code over 32 bits', code: 1, reason: /WT_RESET_STREAM with error code 4294967296/, bytes: () => [wtStream(1, 'a'), capsule(C.WT_RESET_STREAM, varint(1), varint(2 ** 32))] },
      { name: 'a Reliable Size beyond the data sent', code: 1, reason: /promises 10 bytes, 1 came/, bytes: () => [wtStream(1, 'a'), capsule(C.WT_RESET_STREAM, varint(1), varint(0), varint(10))] },
    ];
    let client: http2.ClientHttp2Session;
    let healthy: RawSession;
    let n = 0;

    const echoOnHealthy = async (): Promise<void> => {
      const id = 1 + 4 * n++;
      const text = `still here ${id}`;
      healthy.send(wtStream(id, text), wtStream(id, '', true), capsule(C.DATAGRAM, Buffer.from(text)));
      await healthy.until(`the echo on stream ${id}`, () => healthy.streamBytes(id).fin);
      assert.equal(healthy.streamBytes(id).data.toString(), text);
      await healthy.until('the datagram', () => healthy.capsules.some((c) => c.type === C.DATAGRAM && c.value.toString() === text));
    };

    before(async () => {
      client = await rawClient(port);
      healthy = new RawSession(client, '/echo');
      await healthy.accepted();
      await echoOnHealthy();
    });

    after(() => closeClient(client));

    for (const [i, m] of malformed.entries()) {
      it(m.name, async () => {
        const path = `/sink?malformed=${i}`;
        const raw = new RawSession(client, path);
        await raw.accepted();
        const session = sinks.get(path)!;
        raw.send(...m.bytes(raw));
        if (m.end) raw.stream.end();
        assert.equal(await within(raw.closed, 10_000, 'reset'), m.code, 'RST_STREAM code of the CONNECT stream');
        if (m.cleanClose) {
          assert.deepEqual(await session.closed, { closeCode: 3, reason: 'bye' });
        } else {
          await assert.rejects(within(session.closed, 5000, 'server close'), (e: WebTransportError) => {
            assert.equal(e.code, 'HARRIER_ERR_WT_SESSION_ABORTED');
            assert.match(e.message, m.reason);
            return true;
          });
        }
        assert.equal(client.closed || client.destroyed, false, 'the connection lives on');
        await echoOnHealthy();
      });
    }
  });

  // Last: it closes every session there is.
  describe('graceful shutdown', () => {
    it('drain() asks every session to wind down; closeAll() closes the open ones with the code and reason given, and refuses pending ones', async () => {
      const drained = await open('/echo');
      await within(drained.ready, 10_000, 'ready');
      const first = echoed[echoed.length - 1]!.session;
      h2wt.drain();
      await within(first.draining, 1000, 'server draining');
      await within(drained.draining!, 10_000, 'client draining (WT_DRAIN_SESSION)');
      const t = await open('/echo');
      await within(t.ready, 10_000, 'ready');
      const second = echoed[echoed.length - 1]!.session;
      // And one its route has not decided on yet.
      const client = await rawClient(port);
      const pending = new RawSession(client, '/later?pending');
      await within((async () => { while (!later.has('/later?pending')) await new Promise((resolve) => setTimeout(resolve, 5)); })(), 5000, 'the pending session');
      assert.ok(h2wt.size >= 3);
      h2wt.closeAll('shutting down', 1001);
      assert.deepEqual(await within(t.closed, 10_000, 'closed'), { closeCode: 1001, reason: 'shutting down' });
      assert.equal(await within(pending.closed, 5000, 'refusal'), http2.constants.NGHTTP2_REFUSED_STREAM);
      assert.equal(pending.status, 0);
      await assert.rejects(later.get('/later?pending')!.ready, (e: WebTransportError) => e.code === 'HARRIER_ERR_WT_SESSION_ABORTED');
      await new Promise((resolve) => setTimeout(resolve, 300)); // the route's answer comes, and goes nowhere
      await closeClient(client);
      for (const session of [first, second]) assert.deepEqual(await session.closed, { closeCode: 1001, reason: 'shutting down' });
      // fails-components 1.6.8 leaves its 'connected' state on WT_DRAIN_SESSION, and then takes
      // any close for a failed opening handshake.
      await assert.rejects(drained.closed, /Opening handshake failed/);
      assert.equal(h2wt.size, 0);
    });

    it('an abrupt stop (the listener destroys its connections) aborts open sessions, a reset sibling beside them', async () => {
      const client = await rawClient(port);
      const open = new RawSession(client, '/echo?abrupt');
      await open.accepted();
      open.send(wtStream(1, 'x'));
      await open.until('the echo', () => open.streamBytes(1).data.length === 1);
      const session = echoed[echoed.length - 1]!.session;
      const bad = new RawSession(client, '/sink?abrupt');
      await bad.accepted();
      bad.send(capsule(C.WT_STREAM));
      assert.equal(await within(bad.closed, 5000, 'reset'), http2.constants.NGHTTP2_PROTOCOL_ERROR);
      listener.close();
      await assert.rejects(within(session.closed, 5000, 'abort'), (e: WebTransportError) => e.code === 'HARRIER_ERR_WT_SESSION_ABORTED');
      assert.equal(h2wt.size, 0);
      await within(open.closed, 5000, 'the client sees the end');
      client.destroy();
    });
  });
});

describe('WebTransport-Init (draft-ietf-webtrans-http2 §4.3.2, an RFC 8941 Dictionary)', () => {
  it('reads u, bl and br, and ignores other keys and parameters', () => {
    assert.deepEqual(parseWebTransportInit('u=1, bl=2, br=3'), { u: 1, bl: 2, br: 3 });
    assert.deepEqual(parseWebTransportInit(' u=10;a=b,x="s\\"q", y=(1 2 "z");p=?0,  z, t=:aGk=:, d=1.25, bl=4\t'), { u: 10, bl: 4 });
    assert.deepEqual(parseWebTransportInit('br=999999999999999, br=7'), { br: 7 }, 'the last of a key wins');
    assert.deepEqual(parseWebTransportInit(''), {});
  });

  it('refuses what does not parse, and u, bl, br that are not non-negative Integers', () => {
    for (const bad of ['u=1.5', 'u="x"', 'u', 'u=?1', 'u=-1', 'u=(1)', 'u=1,', 'u=1 bl=2', 'U=1', 'u=1234567890123456', 'x="unterminated', ',u=1', 'u==1']) {
      assert.equal(parseWebTransportInit(bad), null, bad);
    }
  });
});

describe('Http2CapsuleReader (draft-ietf-webtrans-http2 capsules)', () => {
  type Flat = { kind: string; streamId?: number; type?: number; data?: string; fin?: boolean };

  /**
   * Events with a stream's consecutive pieces merged (a capsule split anywhere gives more
   * pieces), so that any split of the input compares equal.
   */
  function flatten(events: Http2CapsuleEvent[]): Flat[] {
    const out: Flat[] = [];
    for (const e of events) {
      if (e.kind === 'stream') {
        const last = out[out.length - 1];
        if (last && last.kind === 'stream' && last.streamId === e.streamId && !last.fin) {
          last.data += Buffer.from(e.data).toString('hex');
          last.fin = e.fin;
        } else out.push({ kind: 'stream', streamId: e.streamId, data: Buffer.from(e.data).toString('hex'), fin: e.fin });
      } else if (e.kind === 'capsule') out.push({ kind: 'capsule', type: e.type, data: Buffer.from(e.value).toString('hex') });
      else out.push({ kind: e.kind });
    }
    return out;
  }

  function feed(input: Buffer, cuts: number[]): Http2CapsuleEvent[] {
    const r = new Http2CapsuleReader(100);
    const events: Http2CapsuleEvent[] = [];
    let from = 0;
    for (const cut of [...cuts, input.length]) {
      // Copies: the reader must not depend on the caller keeping its buffers.
      for (const e of r.push(Buffer.from(input.subarray(from, cut)))) events.push(e.kind === 'stream' ? { ...e, data: e.data.slice() } : e);
      from = cut;
    }
    r.end();
    return events;
  }

  // What fails-components 1.6.8 sent at the start of a session (captured on loopback):
  // WT_MAX_STREAM_DATA for stream 1 at 16384, then WT_MAX_DATA at 49117.
  const fromTheLibrary = Buffer.from('990b4d3e050180004000' + '990b4d3d048000bfdd', 'hex');

  const input = Buffer.concat([
    fromTheLibrary,
    wtStream(1), // opens stream 1
    wtStream(1, Buffer.alloc(300, 7)),
    capsule(0x17, Buffer.alloc(40, 9)), // unknown: skipped
    capsule(C.PADDING, Buffer.alloc(70)),
    capsule(C.DATAGRAM, Buffer.from('dgram')),
    capsule(C.DATAGRAM, Buffer.alloc(101)), // over the reader's 100: dropped
    wtStream(5, 'x'.repeat(90), true),
    wtStream(1, '', true),
    closeSession(7, 'bye'),
  ]);
  const expected: Flat[] = [
    { kind: 'capsule', type: C.WT_MAX_STREAM_DATA, data: '0180004000' },
    { kind: 'capsule', type: C.WT_MAX_DATA, data: '8000bfdd' },
    { kind: 'stream', streamId: 1, data: '07'.repeat(300), fin: false }, // the empty WT_STREAM that opened it, then 300 bytes
    { kind: 'capsule', type: C.DATAGRAM, data: Buffer.from('dgram').toString('hex') },
    { kind: 'datagram-dropped' },
    { kind: 'stream', streamId: 5, data: Buffer.from('x'.repeat(90)).toString('hex'), fin: true },
    { kind: 'stream', streamId: 1, data: '', fin: true },
    { kind: 'capsule', type: C.WT_CLOSE_SESSION, data: '00000007' + Buffer.from('bye').toString('hex') },
  ];

  it('reads capsules whole, one byte at a time, and split at every point', () => {
    const whole = feed(input, []);
    assert.deepEqual(whole.slice(2, 4).map((e) => e.kind === 'stream' && [e.streamId, e.data.length, e.fin]), [[1, 0, false], [1, 300, false]]);
    assert.deepEqual(flatten(whole), expected);
    assert.deepEqual(flatten(feed(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1))), expected);
    for (let cut = 1; cut < input.length; cut++) assert.deepEqual(flatten(feed(input, [cut])), expected, `split at ${cut}`);
  });

  it('reads capsules split at random points', () => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let run = 0; run < 300; run++) {
      const cuts = [...new Set(Array.from({ length: 1 + Math.floor(random() * 12) }, () => 1 + Math.floor(random() * (input.length - 1))))].sort((a, b) => a - b);
      assert.deepEqual(flatten(feed(input, cuts)), expected, `cuts ${cuts}`);
    }
  });

  it('streams a WT_STREAM payload through as views, without waiting for the whole capsule', () => {
    const r = new Http2CapsuleReader();
    const whole = wtStream(9, Buffer.alloc(1 << 20, 3), true);
    const first = r.push(whole.subarray(0, 1000));
    assert.equal(first.length, 1);
    assert.deepEqual({ ...first[0], data: undefined }, { kind: 'stream', streamId: 9, data: undefined, fin: false });
    assert.ok(first[0]!.kind === 'stream' && first[0]!.data.buffer === whole.buffer, 'a view of the input');
    const rest = r.push(whole.subarray(1000));
    assert.equal(rest.length, 1);
    assert.ok(rest[0]!.kind === 'stream' && rest[0]!.fin);
    assert.ok(r.idle);
  });

  it('throws PROTOCOL_ERROR for malformed capsules, with the input split anywhere', () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['no stream id', capsule(C.WT_STREAM), /without a stream id/],
      ['stream id past the capsule', capsule(C.WT_STREAM_FIN, Buffer.from([0x80, 0, 0])), /runs past the capsule/],
      ['oversized control capsule', capsule(C.WT_MAX_DATA, Buffer.alloc(9)), /capsule 0x190b4d3d of 9 bytes/],
      ['DRAIN with a value', capsule(C.WT_DRAIN_SESSION, Buffer.from([0])), /capsule 0x78ae of 1 bytes/],
      ['cut by the end', wtStream(1, 'abc').subarray(0, 6), /ended inside a capsule/],
    ];
    for (const [name, bytes, reason] of cases) {
      for (let cut = 0; cut <= bytes.length; cut++) {
        const r = new Http2CapsuleReader();
        assert.throws(() => {
          r.push(bytes.subarray(0, cut));
          r.push(bytes.subarray(cut));
          r.end();
        }, (e: Error & { code?: number }) => e.name === 'Http2CapsuleError' && e.code === 1 && reason.test(e.message), `${name}, split at ${cut}`);
      }
    }
  });
});

describe('createServer: WebTransport over HTTP/3 and HTTP/2 with one route', function () {
  this.timeout(60_000);
  it('quic.webtransport turns on the HTTP/2 fallback too: the fails-components client echoes over TCP, and shutdown closes the session', async () => {
    const cert = makeTestCert();
    const { createServer } = await import('../../src');
    const server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0 }], tls: { cert: cert.cert, key: cert.key }, quic: { webtransport: true } });
    const seen: string[] = [];
    server.use(async (ctx, next) => {
      seen.push(ctx.protocol);
      await next();
    });
    server.use(webTransport('/echo', webTransportEcho()));
    await server.listen();
    try {
      const { WebTransport } = await esmImport('@fails-components/webtransport');
      const hash = crypto.createHash('sha256').update(new crypto.X509Certificate(cert.cert).raw).digest();
      const t = new WebTransport(`https://127.0.0.1:${server.tcpListeners[0]!.port}/echo`, { forceReliable: true, serverCertificateHashes: [{ algorithm: 'sha-256', value: hash }] });
      const closed = t.closed.catch((e: unknown) => e);
      await within(t.ready, 10_000, 'ready');
      const s = await t.createBidirectionalStream();
      const payload = crypto.randomBytes(100_000);
      const back = readAll(s.readable);
      const w = s.writable.getWriter();
      await w.write(payload);
      await w.close();
      assert.ok((await back).equals(payload));
      assert.deepEqual(seen, ['h2']);
      // Shutdown drains the session (WT_DRAIN_SESSION); the echo does not end it, so it is
      // closed when the shutdown timeout runs out, as over HTTP/3.
      const t0 = Date.now();
      await server.close({ timeoutMs: 1500 });
      assert.ok(Date.now() - t0 < 4000, `shutdown took ${Date.now() - t0} ms`);
      await within(closed, 5000, 'the client saw the session end');
    } finally {
      await server.close({ timeoutMs: 1000 });
      fs.rmSync(cert.dir, { recursive: true, force: true });
    }
  });
});
