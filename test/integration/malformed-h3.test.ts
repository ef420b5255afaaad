import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, type Server } from '../../src';
import {
  H3_CLOSED_CRITICAL_STREAM, H3_FRAME_ERROR, H3_FRAME_UNEXPECTED, H3_ID_ERROR, H3_MESSAGE_ERROR, H3_MISSING_SETTINGS,
  H3_NO_ERROR, H3_SETTINGS_ERROR, H3_STREAM_CREATION_ERROR, StreamType, encodeCancelPushFrame, encodeDataFrame,
  encodeFrame, encodeFrameHeader, encodeGoawayFrame, encodeHeadersFrame, encodeMaxPushIdFrame, encodePushPromiseFrame,
  encodeSettingsFrame,
} from '../../src/h3';
import { FrameReader } from '../../src/h3/frame-reader';
import { encodeVarint } from '../../src/h3/varint';
import {
  QPACK_DECOMPRESSION_FAILED, QPACK_ENCODER_STREAM_ERROR, QpackDecoder, QpackEncoder, encodeInteger, type HeaderField,
} from '../../src/qpack';
import { QuicEndpoint, type CloseInfo, type QuicConnection, type QuicStream } from '../../src/quic';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { peerScript, python, runPeer } from '../helpers/peers';
import { sleep } from '../helpers/raw-udp';

const concat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);

/** SETTINGS with QPACK off (RFC 9204 §5: absent settings are 0), so the server's responses use no dynamic table. */
const SETTINGS = encodeSettingsFrame([[0x06, 65536]]);
const CONTROL_PREFIX = encodeVarint(StreamType.CONTROL);

interface Response { status?: string; headers: HeaderField[]; body: Buffer; reset?: number }

/**
 * A hand-driven HTTP/3 client on our own QUIC client mode: it writes whatever bytes a case
 * needs on whichever stream, and decodes responses with our QPACK decoder.
 */
class RawH3 {
  readonly encoder = new QpackEncoder();
  readonly decoder = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0 });
  closed: CloseInfo | undefined;
  private constructor(readonly client: QuicEndpoint, readonly conn: QuicConnection) {
    conn.on('close', (info: CloseInfo) => (this.closed = info));
    // The server's control, QPACK and GREASE streams: read and ignored.
    conn.on('stream', (s: QuicStream) => s.on('data', () => undefined));
  }

  static async connect(port: number, withControl = true): Promise<RawH3> {
    const client = QuicEndpoint.client({ alpn: ['h3'] });
    const conn = client.connect('127.0.0.1', port);
    await once(conn, 'connect');
    const h = new RawH3(client, conn);
    if (withControl) h.uni(concat(CONTROL_PREFIX, SETTINGS));
    return h;
  }

  /** Opens a client unidirectional stream (ids 2, 6, 10...) and writes `data` on it. */
  uni(data: Uint8Array): QuicStream {
    const s = this.conn.openStream(false);
    s.write(data);
    return s;
  }

  /** The encoded field section of `fields` for the next request stream. */
  section(streamId: number, fields: HeaderField[]): Uint8Array {
    return this.encoder.encodeFieldSection(streamId, fields);
  }

  /** Opens a request stream, writes `build(id)` and FIN, and collects the response. */
  exchange(build: (id: number) => Uint8Array): Promise<Response> {
    const s = this.conn.openStream(true);
    const done = collect(s, this.decoder);
    s.end(build(s.id));
    return done;
  }

  get(path: string): Promise<Response> {
    return this.exchange((id) => encodeHeadersFrame(this.section(id, request(path))));
  }

  /** Resolves with the CloseInfo, or rejects after `ms`. */
  async whenClosed(ms = 5000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the connection did not close')), ms)));
    try {
      return await Promise.race([this.conn.whenClosed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.conn.close(H3_NO_ERROR);
    await this.client.close({ timeoutMs: 1000 });
  }
}

const request = (path: string, extra: HeaderField[] = []): HeaderField[] =>
  [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', path], ...extra];

/** Reads one response: HEADERS (QPACK-decoded), DATA, until FIN; or the RESET_STREAM code. */
function collect(s: QuicStream, decoder: QpackDecoder): Promise<Response> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    const res: Response = { headers: [], body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no response on stream ${s.id}`)), 10_000);
    s.on('data', (d: Buffer) => reader.push(Buffer.from(d)));
    s.on('reset', (code: number | bigint) => {
      clearTimeout(timer);
      res.reset = Number(code);
      resolve(res);
    });
    s.on('end', () => {
      clearTimeout(timer);
      try {
        reader.end();
        for (let f = reader.next(); f; f = reader.next()) {
          if (f.kind === 'data') chunks.push(Buffer.from(f.chunk));
          else if (f.kind === 'headers' && res.status === undefined) {
            const fields = decoder.decodeFieldSection(s.id, f.block);
            assert.ok(fields !== 'blocked', 'the server used no dynamic table');
            res.headers = fields;
            res.status = fields.find(([n]) => n === ':status')?.[1];
          }
        }
        res.body = Buffer.concat(chunks);
        resolve(res);
      } catch (e) {
        reject(e);
      }
    });
  });
}

describe('malformed HTTP/3 peers', function () {
  this.timeout(120_000);
  let cert: TestCert;
  let server: Server;
  let port: number;
  const clients: RawH3[] = [];

  const connect = async (withControl = true): Promise<RawH3> => {
    const c = await RawH3.connect(port, withControl);
    clients.push(c);
    return c;
  };

  /** A well-behaved connection opened before the bad one; it must keep working. */
  async function bystander(): Promise<RawH3> {
    const good = await connect();
    const r = await good.get('/ok');
    assert.equal(r.status, '200');
    return good;
  }

  async function stillServes(good: RawH3): Promise<void> {
    const r = await good.get('/ok');
    assert.equal(r.status, '200', 'the other connection is unaffected');
    assert.equal(r.body.toString(), 'ok');
    assert.equal(good.closed, undefined);
  }

  async function expectClose(bad: RawH3, code: number, reason: RegExp): Promise<void> {
    const info = await bad.whenClosed();
    assert.deepEqual({ isApp: info.isApp, code: Number(info.code), byPeer: info.byPeer },
      { isApp: true, code, byPeer: true }, `closed with ${info.code} (${info.reason})`);
    assert.match(info.reason, reason);
  }

  before(async () => {
    cert = makeTestCert();
    server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3'] }], tls: { cert: cert.certFile, key: cert.keyFile } });
    server.get('/ok', (ctx) => {
      ctx.body = 'ok';
    });
    await server.listen();
    port = server.quicListeners[0].port;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  after(async () => {
    await server.close({ timeoutMs: 1000 });
  });

  describe('connection errors, with the exact RFC 9114 / RFC 9204 code', () => {
    // RFC 9114 §7.2.1: DATA frames on the control stream MUST be H3_FRAME_UNEXPECTED.
    it('DATA on the control stream: H3_FRAME_UNEXPECTED', async () => {
      const good = await bystander();
      const bad = await connect(false);
      bad.uni(concat(CONTROL_PREFIX, SETTINGS, encodeDataFrame(Buffer.from('hello'))));
      await expectClose(bad, H3_FRAME_UNEXPECTED, /control stream/);
      await stillServes(good);
    });

    // RFC 9114 §6.2.1: if the first frame of the control stream is any other frame type than
    // SETTINGS, this MUST be treated as a connection error of type H3_MISSING_SETTINGS.
    it('a control stream that does not start with SETTINGS: H3_MISSING_SETTINGS', async () => {
      const good = await bystander();
      const bad = await connect(false);
      bad.uni(concat(CONTROL_PREFIX, encodeGoawayFrame(0), SETTINGS));
      await expectClose(bad, H3_MISSING_SETTINGS, /SETTINGS/);
      await stillServes(good);
    });

    // RFC 9114 §7.2.4: a second SETTINGS frame on the control stream MUST be H3_FRAME_UNEXPECTED.
    it('a second SETTINGS frame: H3_FRAME_UNEXPECTED', async () => {
      const good = await bystander();
      const bad = await connect(false);
      bad.uni(concat(CONTROL_PREFIX, SETTINGS, SETTINGS));
      await expectClose(bad, H3_FRAME_UNEXPECTED, /SETTINGS/);
      await stillServes(good);
    });

    // RFC 9114 §6.2.1: receipt of a second stream claiming to be a control stream MUST be
    // treated as a connection error of type H3_STREAM_CREATION_ERROR.
    it('a second control stream: H3_STREAM_CREATION_ERROR', async () => {
      const good = await bystander();
      const bad = await connect();
      assert.equal((await bad.get('/ok')).status, '200', 'the first control stream was fine');
      bad.uni(concat(CONTROL_PREFIX, SETTINGS));
      await expectClose(bad, H3_STREAM_CREATION_ERROR, /control/);
      await stillServes(good);
    });

    // RFC 9114 §4.1: receipt of DATA before HEADERS MUST be H3_FRAME_UNEXPECTED.
    it('DATA before HEADERS on a request stream: H3_FRAME_UNEXPECTED', async () => {
      const good = await bystander();
      const bad = await connect();
      void bad.exchange((id) => concat(encodeDataFrame(Buffer.from('body first')), encodeHeadersFrame(bad.section(id, request('/ok'))))).catch(() => undefined);
      await expectClose(bad, H3_FRAME_UNEXPECTED, /DATA before HEADERS/);
      await stillServes(good);
    });

    // RFC 9204 §4.5.2: a reference to a dynamic table entry with an absolute index at or
    // beyond the Required Insert Count MUST be QPACK_DECOMPRESSION_FAILED.
    it('a field line referencing a dynamic entry that does not exist: QPACK_DECOMPRESSION_FAILED', async () => {
      const good = await bystander();
      const bad = await connect();
      // Required Insert Count 0, Base 0, then an Indexed Field Line, dynamic (T=0), relative index 0.
      void bad.exchange(() => encodeHeadersFrame(Buffer.from([0x00, 0x00, 0x80]))).catch(() => undefined);
      await expectClose(bad, QPACK_DECOMPRESSION_FAILED, /./);
      await stillServes(good);
    });

    // RFC 9204 §4.5.1.1: an Encoded Required Insert Count a conformant encoder cannot produce
    // (here: with our table capacity 4096, anything above 2 * 128) is QPACK_DECOMPRESSION_FAILED.
    it('a Required Insert Count out of range: QPACK_DECOMPRESSION_FAILED', async () => {
      const bad = await connect();
      void bad.exchange(() => encodeHeadersFrame(Buffer.from([0xff, 0x80, 0x02, 0x00, 0xd1]))).catch(() => undefined);
      await expectClose(bad, QPACK_DECOMPRESSION_FAILED, /Required Insert Count/);
    });

    // More of RFC 9114 §6-§7 and RFC 9204 §4, one connection each: [what, how, code].
    const control = (...frames: Uint8Array[]) => (c: RawH3) => void c.uni(concat(CONTROL_PREFIX, SETTINGS, ...frames));
    const onRequest = (build: (c: RawH3, id: number) => Uint8Array) => (c: RawH3) =>
      void c.exchange((id) => build(c, id)).catch(() => undefined);
    const table: Array<[string, (c: RawH3) => void | Promise<void>, number]> = [
      // §7.2.2: HEADERS on the control stream: H3_FRAME_UNEXPECTED.
      ['HEADERS on the control stream', control(encodeHeadersFrame(Buffer.from([0, 0, 0xd1]))), H3_FRAME_UNEXPECTED],
      // §7.2.5: a client's PUSH_PROMISE: H3_FRAME_UNEXPECTED.
      ['PUSH_PROMISE on a request stream', onRequest((c, id) => concat(encodeHeadersFrame(c.section(id, request('/ok'))), encodePushPromiseFrame(0, Buffer.from([0, 0, 0xd1])))), H3_FRAME_UNEXPECTED],
      // §7.2.4: SETTINGS on a request stream: H3_FRAME_UNEXPECTED.
      ['SETTINGS on a request stream', onRequest(() => SETTINGS), H3_FRAME_UNEXPECTED],
      // §7.2.8: HTTP/2 frame types (here PRIORITY 0x02): H3_FRAME_UNEXPECTED.
      ['an HTTP/2 PRIORITY frame on the control stream', control(encodeFrame(0x02, Buffer.from([0]))), H3_FRAME_UNEXPECTED],
      // §4.1: HEADERS after the trailers: H3_FRAME_UNEXPECTED.
      ['HEADERS after trailers', onRequest((c, id) => concat(encodeHeadersFrame(c.section(id, request('/ok'))),
        encodeHeadersFrame(c.section(id, [['x-t', '1']])), encodeHeadersFrame(c.section(id, [['x-t', '2']])))), H3_FRAME_UNEXPECTED],
      // §7.1: a stream that ends inside a frame: H3_FRAME_ERROR.
      ['a request stream ending inside a frame', onRequest(() => concat(encodeFrameHeader(0x01, 10), Buffer.from([0, 0, 0xd1]))), H3_FRAME_ERROR],
      // §7.1: a SETTINGS payload that ends inside a setting: H3_FRAME_ERROR.
      ['a truncated SETTINGS payload', (c) => void c.uni(concat(CONTROL_PREFIX, encodeFrame(0x04, Buffer.from([0x06])))), H3_FRAME_ERROR],
      // §7.2.4.1: HTTP/2 setting identifiers (0x02): H3_SETTINGS_ERROR.
      ['an HTTP/2 setting in SETTINGS', (c) => void c.uni(concat(CONTROL_PREFIX, encodeSettingsFrame([[0x02, 1]]))), H3_SETTINGS_ERROR],
      // §7.2.4: the same setting twice: H3_SETTINGS_ERROR.
      ['a setting repeated in SETTINGS', (c) => void c.uni(concat(CONTROL_PREFIX, encodeSettingsFrame([[0x06, 1], [0x06, 2]]))), H3_SETTINGS_ERROR],
      // §7.2.3: CANCEL_PUSH for a push never promised: H3_ID_ERROR.
      ['CANCEL_PUSH for a push never promised', control(encodeCancelPushFrame(3)), H3_ID_ERROR],
      // §7.2.7: a MAX_PUSH_ID smaller than before: H3_ID_ERROR.
      ['a decreasing MAX_PUSH_ID', control(encodeMaxPushIdFrame(10), encodeMaxPushIdFrame(5)), H3_ID_ERROR],
      // §5.2: a client GOAWAY carries a push id that MUST NOT increase: H3_ID_ERROR.
      ['an increasing GOAWAY', control(encodeGoawayFrame(4), encodeGoawayFrame(8)), H3_ID_ERROR],
      // §6.2.1: closing the control stream: H3_CLOSED_CRITICAL_STREAM.
      ['the control stream ended (FIN)', (c) => void c.uni(concat(CONTROL_PREFIX, SETTINGS)).end(), H3_CLOSED_CRITICAL_STREAM],
      // (Reset only once the stream type has arrived: a stream reset before its type byte is
      // of no known type, so not critical; a request round trip makes sure.)
      ['the control stream reset', async (c) => {
        const s = c.uni(concat(CONTROL_PREFIX, SETTINGS));
        assert.equal((await c.get('/ok')).status, '200');
        s.reset(H3_NO_ERROR);
      }, H3_CLOSED_CRITICAL_STREAM],
      // §6.2.1: "The receiver MUST NOT request that the sender close the control stream";
      // STOP_SENDING on the server's control stream (id 3) is H3_CLOSED_CRITICAL_STREAM.
      ['STOP_SENDING on the server control stream', async (c) => {
        c.uni(concat(CONTROL_PREFIX, SETTINGS));
        assert.equal((await c.get('/ok')).status, '200');
        c.conn.stream(3).stopSending(H3_NO_ERROR);
      }, H3_CLOSED_CRITICAL_STREAM],
      ['STOP_SENDING on the server QPACK encoder stream', async (c) => {
        c.uni(concat(CONTROL_PREFIX, SETTINGS));
        assert.equal((await c.get('/ok')).status, '200');
        c.conn.stream(7).stopSending(H3_NO_ERROR);
      }, H3_CLOSED_CRITICAL_STREAM],
      // RFC 9204 §4.2: closing the encoder stream: H3_CLOSED_CRITICAL_STREAM.
      ['the QPACK encoder stream ended', (c) => void c.uni(encodeVarint(StreamType.QPACK_ENCODER)).end(), H3_CLOSED_CRITICAL_STREAM],
      // RFC 9204 §4.2: a second encoder stream: H3_STREAM_CREATION_ERROR.
      ['a second QPACK encoder stream', (c) => {
        c.uni(encodeVarint(StreamType.QPACK_ENCODER));
        c.uni(encodeVarint(StreamType.QPACK_ENCODER));
      }, H3_STREAM_CREATION_ERROR],
      // RFC 9204 §4.3.1: a capacity above our SETTINGS_QPACK_MAX_TABLE_CAPACITY (4096): QPACK_ENCODER_STREAM_ERROR.
      ['a dynamic table capacity above the maximum', (c) => void c.uni(concat(encodeVarint(StreamType.QPACK_ENCODER), encodeInteger(5000, 5, 0x20))), QPACK_ENCODER_STREAM_ERROR],
      // RFC 9114 §6.2.2: a client-initiated push stream: H3_STREAM_CREATION_ERROR.
      ['a push stream from the client', (c) => void c.uni(encodeVarint(StreamType.PUSH)), H3_STREAM_CREATION_ERROR],
    ];
    for (const [what, misbehave, code] of table) {
      it(`${what}: 0x${code.toString(16)}`, async () => {
        const bad = await connect(false);
        await misbehave(bad);
        const info = await bad.whenClosed();
        assert.deepEqual([info.isApp, Number(info.code), info.byPeer], [true, code, true], `closed with 0x${info.code.toString(16)} (${info.reason})`);
      });
    }

    it('reserved frame types are ignored where the RFC says so (control and request streams)', async () => {
      const ok = await connect(false);
      ok.uni(concat(CONTROL_PREFIX, SETTINGS, encodeFrame(0x21, Buffer.from('grease'))));
      const r = await ok.exchange((id) => concat(encodeFrame(0x1f * 7 + 0x21, Buffer.alloc(10)), encodeHeadersFrame(ok.section(id, request('/ok')))));
      assert.equal(r.status, '200');
      assert.equal(ok.closed, undefined);
    });
  });

  describe('stream errors: the connection stays usable', () => {
    // RFC 9114 §6.2: a stream of unknown type (here a reserved one, §6.2.3) is aborted with
    // STOP_SENDING H3_STREAM_CREATION_ERROR; the connection is not affected.
    it('a unidirectional stream of reserved type: STOP_SENDING H3_STREAM_CREATION_ERROR', async () => {
      const c = await connect();
      const s = c.uni(concat(encodeVarint(0x1f * 3 + 0x21), Buffer.alloc(100)));
      const stopped = Promise.race([once(s, 'stop'), sleep(5000).then(() => [undefined])]);
      assert.equal((await c.get('/ok')).status, '200');
      const [code] = await stopped;
      assert.equal(Number(code), H3_STREAM_CREATION_ERROR);
      assert.equal((await c.get('/ok')).status, '200');
      assert.equal(c.closed, undefined);
    });

    // RFC 9114 §4.2.2: a request over SETTINGS_MAX_FIELD_SECTION_SIZE may be answered with
    // 431 (Request Header Fields Too Large); limits.maxRequestHeadersTotalSize is 32 KiB.
    it('a 40 KB request header section gets 431, and the next request on the connection 200', async () => {
      const good = await bystander();
      const c = await connect();
      const big = await c.exchange((id) => encodeHeadersFrame(c.section(id, request('/ok', [['x-big', 'a'.repeat(40_000)]]))));
      assert.equal(big.reset, undefined);
      assert.equal(big.status, '431');
      assert.equal((await c.get('/ok')).status, '200');
      assert.equal(c.closed, undefined);
      await stillServes(good);
    });

    it('a section over quic.h3.maxFieldSectionSize (1 KiB) gets 431', async () => {
      const small = createServer({
        endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3'] }],
        tls: { cert: cert.certFile, key: cert.keyFile },
        quic: { h3: { maxFieldSectionSize: 1024 } },
      });
      small.get('/ok', (ctx) => {
        ctx.body = 'ok';
      });
      await small.listen();
      const c = await RawH3.connect(small.quicListeners[0].port);
      try {
        // A HEADERS frame longer than the limit: skipped unread.
        const big = await c.exchange((id) => encodeHeadersFrame(c.section(id, request('/ok', [['x-big', 'b'.repeat(1500)]]))));
        assert.equal(big.status, '431');
        // A frame under the limit whose decoded size (name + value + 32 per line, RFC 9114
        // §4.2.2) is over it: '0' Huffman-codes in 5 bits.
        let frameSize = 0;
        const dense = await c.exchange((id) => {
          const frame = encodeHeadersFrame(c.section(id, request('/ok', [['x-dense', '0'.repeat(1500)]])));
          frameSize = frame.length;
          return frame;
        });
        assert.ok(frameSize < 1024, `frame of ${frameSize} bytes`);
        assert.equal(dense.status, '431');
        assert.equal((await c.get('/ok')).status, '200');
        assert.equal(c.closed, undefined);
      } finally {
        await c.close();
        await small.close({ timeoutMs: 1000 });
      }
    });

    for (const [name, fields] of [
      ['an uppercase field name', request('/ok', [['X-Upper', 'yes']])],
      ['no :path', request('/ok').filter(([n]) => n !== ':path')],
      ['a pseudo-header after a regular field', [...request('/ok').filter(([n]) => n !== ':path'), ['accept', '*/*'], [':path', '/ok']]],
      ['a connection-specific field', request('/ok', [['connection', 'keep-alive']])],
    ] as Array<[string, HeaderField[]]>) {
      // RFC 9114 §4.1.2: a malformed request is a stream error of type H3_MESSAGE_ERROR.
      it(`a request with ${name}: stream reset H3_MESSAGE_ERROR, then 200 on a new stream`, async () => {
        const good = await bystander();
        const c = await connect();
        const r = await c.exchange((id) => encodeHeadersFrame(c.section(id, fields)));
        assert.equal(r.reset, H3_MESSAGE_ERROR, `reset code ${r.reset}, status ${r.status}`);
        const next = await c.get('/ok');
        assert.equal(next.status, '200');
        assert.equal(c.closed, undefined);
        await stillServes(good);
      });
    }
  });

  it('an aioquic client is unaffected while every malformed peer above misbehaves', async () => {
    const run = runPeer<{ ok: boolean; responses: Array<{ status: number }>; error: string | null }>(python,
      [peerScript('aioquic_h3.py'), '--url-base', `https://127.0.0.1:${port}`, '--paths', Array(20).fill('ok').join(','), '--timeout', '30']);
    const attacks: Array<[Uint8Array, number]> = [
      [concat(CONTROL_PREFIX, SETTINGS, encodeDataFrame(Buffer.from('x'))), H3_FRAME_UNEXPECTED],
      [concat(CONTROL_PREFIX, encodeGoawayFrame(0)), H3_MISSING_SETTINGS],
      [concat(CONTROL_PREFIX, SETTINGS, SETTINGS), H3_FRAME_UNEXPECTED],
      [encodeVarint(0x01), H3_STREAM_CREATION_ERROR], // RFC 9114 §6.2.2: a client's push stream
    ];
    for (let round = 0; round < 5; round++) {
      await Promise.all(attacks.map(async ([bytes, code]) => {
        const bad = await connect(false);
        bad.uni(bytes);
        assert.equal(Number((await bad.whenClosed()).code), code);
      }));
      await sleep(10);
    }
    const { report } = await run;
    assert.equal(report.error, null);
    assert.equal(report.ok, true);
    assert.deepEqual(report.responses.map((r) => r.status), Array(20).fill(200));
  });
});

