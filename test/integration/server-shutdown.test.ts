import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createServer, type Server } from '../../src';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { python, runPeer } from '../helpers/peers';
import { h1, h2On, sleep, type Reply } from './server-util';

/**
 * aioquic HTTP/3 client for graceful shutdown: sends N GETs at once, waits for the server's
 * GOAWAY (aioquic skips it, so the control stream is read here), then sends one more request
 * on the same connection and reports how each ended.
 */
const GOAWAY_CLIENT = String.raw`
import asyncio, json, ssl, sys, time
from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def control_frames(data):
    # The server's control stream: stream type, then (type, length, payload) frames.
    buf = Buffer(data=data)
    buf.pull_uint_var()
    while not buf.eof():
        try:
            t, n = buf.pull_uint_var(), buf.pull_uint_var()
            payload = buf.pull_bytes(n)
        except Exception:
            return
        yield t, payload

class Client(QuicConnectionProtocol):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.h3 = H3Connection(self._quic)
        self.control = b""
        self.goaway = None
        self.goaway_at = None
        self.goaway_seen = asyncio.Event()
        self.reqs = {}
        self.closed = None

    def on_goaway(self, stream_id):
        self.goaway, self.goaway_at = stream_id, time.time()
        self.goaway_seen.set()

    def finish(self, r):
        if not r["done"].done():
            r["done"].set_result(None)

    def quic_event_received(self, ev):
        # aioquic skips GOAWAY payloads, so the server's control stream (id 3) is read here too.
        if isinstance(ev, events.StreamDataReceived) and ev.stream_id == 3:
            self.control += ev.data
            for t, payload in control_frames(self.control):
                if t == FrameType.GOAWAY and self.goaway is None:
                    self.on_goaway(Buffer(data=payload).pull_uint_var())
        if isinstance(ev, events.StreamReset) and ev.stream_id in self.reqs:
            r = self.reqs[ev.stream_id]
            r["reset"] = ev.error_code
            self.finish(r)
        if isinstance(ev, events.ConnectionTerminated):
            self.closed = {"code": ev.error_code, "reason": ev.reason_phrase}
            for r in self.reqs.values():
                self.finish(r)
        for e in self.h3.handle_event(ev):
            r = self.reqs.get(getattr(e, "stream_id", None))
            if r is None:
                continue
            if isinstance(e, HeadersReceived):
                r["status"] = int(dict(e.headers)[b":status"])
            elif isinstance(e, DataReceived):
                r["bytes"] += len(e.data)
            if e.stream_ended:
                r["ended"] = True
                self.finish(r)

    def get(self, p):
        sid = self._quic.get_next_available_stream_id()
        self.h3.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", p.encode())], end_stream=True)
        self.reqs[sid] = {"stream_id": sid, "path": p, "status": None, "bytes": 0, "ended": False, "reset": None,
                          "done": asyncio.get_running_loop().create_future()}
        self.transmit()
        return self.reqs[sid]

async def main():
    cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE, server_name="localhost")
    report = {}
    async with connect("127.0.0.1", port, configuration=cfg, create_protocol=Client, wait_connected=True) as c:
        first = [c.get(f"{path}/{i}") for i in range(n)]
        print("sent", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(c.goaway_seen.wait(), 20)
        except asyncio.TimeoutError:
            pass
        after = c.get(f"{path}/after-goaway") if c.closed is None else None
        await asyncio.wait([r["done"] for r in first] + ([after["done"]] if after else []), timeout=30)
        strip = lambda r: {k: v for k, v in r.items() if k != "done"}
        report = {"goaway": c.goaway, "responses": [strip(r) for r in first], "after": strip(after) if after else None, "closed": c.closed}
        await asyncio.sleep(0.2)
        report["closed"] = c.closed
    print(json.dumps(report))

asyncio.run(main())
`;

interface GoawayReport {
  goaway: number | null;
  responses: Array<{ stream_id: number; status: number | null; bytes: number; ended: boolean; reset: number | null }>;
  after: { stream_id: number; status: number | null; ended: boolean; reset: number | null } | null;
  closed: { code: number; reason: string } | null;
}

const H3_REQUEST_REJECTED = 0x010b;

describe('graceful shutdown', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let script: string;

  before(() => {
    cert = makeTestCert();
    script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-goaway-')), 'goaway_client.py');
    fs.writeFileSync(script, GOAWAY_CLIENT);
  });

  /** Answers /slow/* `waitMs` after close() is called (so every request is in flight by then). */
  function slowServer(waitMs: number): Server {
    const s = createServer({ endpoints: [{ host: '127.0.0.1', port: 0 }], tls: { cert: cert.certFile, key: cert.keyFile } });
    let closing!: () => void;
    const closed = new Promise<void>((r) => (closing = r));
    const close = s.close.bind(s);
    s.close = (o) => {
      closing();
      return close(o);
    };
    s.get('/slow/:n', async (ctx) => {
      await closed;
      await sleep(waitMs);
      ctx.body = `done ${ctx.params.n} over ${ctx.protocol}`;
    });
    s.get('/hello', (ctx) => {
      ctx.body = 'hello';
    });
    return s;
  }

  async function until(cond: () => boolean, what: () => unknown, ms = 40_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting: ${JSON.stringify(what())}`);
      await sleep(20);
    }
  }

  it('in-flight requests on HTTP/3 (50), HTTP/1.1 (50) and HTTP/2 (20) all finish; new work is refused; close() resolves in time', async () => {
    const server = slowServer(1500);
    await server.listen();
    const port = server.tcpListeners[0].port;
    const origin = `https://127.0.0.1:${port}`;

    // An idle keep-alive HTTP/1.1 connection, to be closed by the drain.
    const idleAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await h1(`${origin}/hello`, { agent: idleAgent })).status, 200);
    const idleSocket = Object.values(idleAgent.freeSockets).flat()[0]!;
    const idleClosed = new Promise<number>((r) => idleSocket.once('close', () => r(Date.now())));

    const h3 = runPeer<GoawayReport>(python, [script, String(port), '50', '/slow'], 90_000);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 50 });
    const h1s = Array.from({ length: 50 }, (_, i) => h1(`${origin}/slow/${i}`, { agent }));
    const session = http2.connect(origin, { rejectUnauthorized: false });
    session.setMaxListeners(100);
    const goaway = new Promise<number>((r) => session.once('goaway', (code: number) => r(code)));
    const h2s: Array<Promise<Reply>> = Array.from({ length: 20 }, (_, i) => h2On(session, { ':path': `/slow/${i}` }));

    await until(() => {
      const a = server.metrics().requests.active;
      return a.h3 === 50 && a['http/1.1'] === 50 && a.h2 === 20;
    }, () => server.metrics().requests.active);
    const t0 = Date.now();
    const closed = server.close({ timeoutMs: 10_000 }).then(() => Date.now() - t0);

    // New TCP connections are refused at once.
    await sleep(50);
    await assert.rejects(h1(`${origin}/hello`, { agent: false }), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    assert.ok((await idleClosed) - t0 < 1000, 'the idle keep-alive connection closed at the start of the drain');

    const r1 = await Promise.all(h1s);
    for (const r of r1) {
      assert.equal(r.status, 200);
      assert.match(r.body, /^done \d+ over http\/1\.1$/);
      assert.equal(r.headers.connection, 'close');
    }
    const r2 = await Promise.all(h2s);
    for (const r of r2) {
      assert.equal(r.status, 200);
      assert.match(r.body, /^done \d+ over h2$/);
    }
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
    assert.throws(() => session.request({ ':path': '/hello' }), /GOAWAY|closed|destroyed/i);

    const { report } = await h3;
    assert.equal(report.responses.length, 50);
    for (const r of report.responses) {
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.ended, true);
    }
    // RFC 9114 §5.2: GOAWAY carries the first request stream id that will not be processed.
    assert.equal(report.goaway, 200, JSON.stringify({ ...report, responses: undefined }));
    assert.ok(report.after, 'a request was sent after the GOAWAY');
    assert.equal(report.after.stream_id, 200);
    assert.equal(report.after.status, null);
    assert.ok(report.after.reset === H3_REQUEST_REJECTED || report.closed !== null, JSON.stringify(report.after));
    assert.equal(report.after.reset, H3_REQUEST_REJECTED, 'refused with H3_REQUEST_REJECTED');

    const took = await closed;
    assert.ok(took >= 1000 && took < 10_000, `close() took ${took} ms`);
    assert.deepEqual(server.metrics().requests.active, { h3: 0, hq: 0, h2: 0, 'http/1.1': 0 });
    agent.destroy();
    idleAgent.destroy();
  });

  it('after the timeout, requests still running are cut and close() resolves', async () => {
    const server = slowServer(60_000);
    await server.listen();
    const port = server.tcpListeners[0].port;
    const origin = `https://127.0.0.1:${port}`;
    const h1Result = h1(`${origin}/slow/1`, { agent: false }).catch((e: NodeJS.ErrnoException) => e.code);
    const session = http2.connect(origin, { rejectUnauthorized: false });
    session.on('error', () => {});
    const h2Result = h2On(session, { ':path': '/slow/2' }).catch((e: NodeJS.ErrnoException) => e.code);
    await until(() => server.metrics().requests.active['http/1.1'] === 1 && server.metrics().requests.active.h2 === 1, () => server.metrics());
    const t0 = Date.now();
    await server.close({ timeoutMs: 1000 });
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 5000, `close() took ${took} ms`);
    assert.equal(await h1Result, 'ECONNRESET');
    const r2 = await h2Result;
    assert.ok(typeof r2 === 'string' || r2?.error !== undefined || r2?.status !== 200, JSON.stringify(r2));
    // Calling close() again is harmless.
    await server.close();
  });
});
