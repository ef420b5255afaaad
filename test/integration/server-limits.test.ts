import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createServer, type Server } from '../../src';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../helpers/peers';
import { h1, h2, sleep, type Reply } from './server-util';

interface H3Report { ok: boolean; error: string | null; responses: Array<{ path: string; status: number; error?: string }>; post: { status: number } | null }

/** Sends `head` bytes a few at a time; resolves with what came back and when the server closed. */
function dribble(connect: () => net.Socket, head: string, everyMs: number): Promise<{ data: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = connect();
    let data = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < head.length && sock.writable) sock.write(head.slice(i, i + 4));
      i += 4;
    }, everyMs);
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('error', () => { /* reset: the close below reports it */ });
    sock.on('close', () => {
      clearInterval(timer);
      resolve({ data, closedAfterMs: Date.now() - started });
    });
  });
}

/** A POST whose body trickles in: `bytes` every `everyMs` (declared length much larger). */
function slowPost(url: string, bytes: number, everyMs: number, h2session?: http2.ClientHttp2Session): Promise<Reply> {
  const body = Buffer.alloc(bytes, 0x61);
  if (h2session) {
    return new Promise((resolve) => {
      const stream = h2session.request({ ':method': 'POST', ':path': '/consume', 'content-length': '1000000' }, { endStream: false });
      const timer = setInterval(() => !stream.destroyed && stream.write(body), everyMs);
      let status = 0;
      let text = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => (text += c));
      const done = (error?: string): void => {
        clearInterval(timer);
        resolve({ status, headers: {}, body: text, error });
      };
      stream.on('end', () => done());
      stream.on('error', (e: NodeJS.ErrnoException) => done(e.code));
    });
  }
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-length': '1000000' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => {
        clearInterval(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
      });
    });
    const timer = setInterval(() => !req.destroyed && req.write(body), everyMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearInterval(timer);
      resolve({ status: 0, headers: {}, body: '', error: e.code });
    });
  });
}

describe('server limits over HTTP/1.1, HTTP/2 and HTTP/3', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let server: Server;
  let https: string; // TLS origin (HTTP/2, HTTP/1.1, and HTTP/3 on UDP)
  let plain: string; // cleartext HTTP/1.1
  let tlsPort: number;
  let plainPort: number;
  const bodyErrors: string[] = [];

  before(async () => {
    cert = makeTestCert();
    server = createServer({
      endpoints: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: false }],
      tls: { cert: cert.certFile, key: cert.keyFile },
      limits: { maxRequestBodySize: 1_000_000, requestHeadersTimeoutMs: 1000, minRequestBodyDataRate: 2000, minRequestBodyDataRateGraceMs: 1000 },
    });
    server.on('error', () => {});
    server.get('/hello', (ctx) => {
      ctx.body = 'hello';
    });
    // Reads the whole body, as an application would.
    server.post('/consume', async (ctx) => {
      try {
        const b = await ctx.request.bytes(Infinity);
        ctx.body = { bytes: b.byteLength };
      } catch (err) {
        bodyErrors.push((err as { code: string }).code);
        throw err;
      }
    });
    server.post('/upload', async (ctx) => {
      ctx.body = { bytes: (await ctx.request.bytes(Infinity)).byteLength };
    });
    const addrs = await server.listen();
    tlsPort = server.tcpListeners[0].port;
    plainPort = server.tcpListeners[1].port;
    https = `https://127.0.0.1:${tlsPort}`;
    plain = addrs.find((a) => a.url.startsWith('http://'))!.url.replace(/\/$/, '').replace('localhost', '127.0.0.1');
    assert.equal(server.quicListeners[0].port, tlsPort);
  });

  after(async () => {
    await server.close({ timeoutMs: 2000 });
  });

  describe('413: request body over maxRequestBodySize', () => {
    const big = Buffer.alloc(1_000_001, 0x62);
    it('HTTP/1.1 with a declared Content-Length', async () => {
      for (const base of [plain, https]) {
        const r = await h1(`${base}/consume`, { method: 'POST', body: big, agent: false });
        assert.equal(r.status, 413, base);
        assert.equal(r.headers.connection, 'close');
      }
    });
    it('HTTP/1.1 chunked, without a length', async () => {
      const r = await h1(`${plain}/consume`, { method: 'POST', body: big, agent: false, headers: { 'transfer-encoding': 'chunked' } });
      assert.equal(r.status, 413);
    });
    it('HTTP/2 with and without content-length; the session stays usable', async () => {
      const session = http2.connect(https, { rejectUnauthorized: false });
      const { h2On } = await import('./server-util');
      const a = await h2On(session, { ':method': 'POST', ':path': '/consume', 'content-length': String(big.byteLength) }, big);
      assert.equal(a.status, 413);
      const b = await h2On(session, { ':method': 'POST', ':path': '/consume' }, big);
      assert.equal(b.status, 413);
      const c = await h2On(session, { ':method': 'POST', ':path': '/consume' }, Buffer.alloc(1000));
      assert.equal(c.status, 200);
      assert.equal(c.body, '{"bytes":1000}');
      session.close();
    });
    it('HTTP/3 (quic-go and aioquic POST)', async () => {
      const go = await runPeer<H3Report>(goPeer('h3get'), ['-base', https, '-post', '/upload', '-post-size', '1500000', '-timeout', '30']);
      assert.equal(go.report.post?.status, 413, JSON.stringify(go.report));
      const py = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', https, '--server-name', 'localhost',
        '--post', '/upload', '--post-size', '1500000', '--timeout', '30']);
      assert.equal(py.report.post?.status, 413, JSON.stringify(py.report));
      // Under the limit it goes through.
      const ok = await runPeer<H3Report>(goPeer('h3get'), ['-base', https, '-post', '/upload', '-post-size', '999999', '-timeout', '30']);
      assert.equal(ok.report.post?.status, 200);
    });
  });

  describe('431 and 414: request head limits', () => {
    const manyHeaders = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`x-h${i}`, 'v']));
    const bigHeader = { 'x-big': 'a'.repeat(40 * 1024) };
    const longTarget = `/hello?q=${'a'.repeat(9000)}`;
    it('HTTP/1.1: too many header bytes (431 from node), too many headers (431), long target (414)', async () => {
      for (const base of [plain, https]) {
        assert.equal((await h1(`${base}/hello`, { headers: bigHeader, agent: false })).status, 431, base);
        assert.equal((await h1(`${base}/hello`, { headers: manyHeaders, agent: false })).status, 431, base);
        assert.equal((await h1(`${base}${longTarget}`, { agent: false })).status, 414, base);
        assert.equal((await h1(`${base}/hello`, { headers: { 'x-ok': 'a'.repeat(20 * 1024) }, agent: false })).status, 200, base);
      }
    });
    it('HTTP/2: too many header bytes (431), too many headers (431), long target (414)', async () => {
      assert.equal((await h2(https, { ':path': '/hello', ...bigHeader })).status, 431);
      assert.equal((await h2(https, { ':path': '/hello', ...manyHeaders })).status, 431);
      assert.equal((await h2(https, { ':path': longTarget })).status, 414);
      assert.equal((await h2(https, { ':path': '/hello', 'x-ok': 'a'.repeat(20 * 1024) })).status, 200);
    });
    it('HTTP/3: long target (414) from quic-go and aioquic', async () => {
      const go = await runPeer<H3Report>(goPeer('h3get'), ['-base', https, '-paths', `${longTarget},/hello`, '-timeout', '30']);
      assert.deepEqual(go.report.responses.map((r) => r.status), [414, 200]);
      const py = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', https, '--server-name', 'localhost',
        '--paths', `${longTarget},/hello`, '--timeout', '30']);
      assert.deepEqual(py.report.responses.map((r) => r.status), [414, 200]);
    });
  });

  describe('request headers timeout (HTTP/1.1)', () => {
    const head = `GET /hello HTTP/1.1\r\nHost: x\r\n${'X-Slow: y\r\n'.repeat(20)}\r\n`;
    it('a client dribbling its head is cut after requestHeadersTimeoutMs while another is served', async () => {
      for (const connect of [() => net.connect(plainPort, '127.0.0.1'),
        () => tls.connect({ port: tlsPort, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })]) {
        const slow = dribble(connect, head, 150); // 4 bytes / 150 ms: about 6 s for the whole head
        await sleep(300);
        const t0 = Date.now();
        const fast = await h1(`${plain}/hello`, { agent: false });
        assert.equal(fast.status, 200);
        assert.ok(Date.now() - t0 < 500, 'the other client is not held up');
        const r = await slow;
        assert.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 3500, `closed after ${r.closedAfterMs} ms`);
        assert.match(r.data, /^(HTTP\/1\.1 408|$)/);
      }
    });
  });

  describe('minimum request body data rate', () => {
    it('HTTP/1.1: a body slower than the rate after the grace period gets 408 and the connection closes', async () => {
      const t0 = Date.now();
      const r = await slowPost(`${plain}/consume`, 100, 200); // 500 B/s against 2000 B/s
      assert.equal(r.status, 408, JSON.stringify(r));
      assert.equal(r.headers.connection, 'close');
      assert.ok(Date.now() - t0 < 4000);
      assert.ok(bodyErrors.includes('HARRIER_ERR_BODY_TIMEOUT'));
    });
    it('HTTP/2: the same over a stream; the session stays usable', async () => {
      const session = http2.connect(https, { rejectUnauthorized: false });
      const r = await slowPost('', 100, 200, session);
      assert.equal(r.status, 408, JSON.stringify(r));
      const { h2On } = await import('./server-util');
      assert.equal((await h2On(session, { ':path': '/hello' })).status, 200);
      session.close();
    });
    it('a body at a good rate is not cut', async () => {
      const r = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${plain}/consume`, { method: 'POST', headers: { 'content-length': String(25 * 600) }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        let n = 0;
        const timer = setInterval(() => {
          req.write(Buffer.alloc(600)); // 6000 B/s
          if (++n === 25) {
            clearInterval(timer);
            req.end();
          }
        }, 100);
      });
      assert.equal(r, 200);
    });
  });

  describe('keep-alive timeout', () => {
    let ka: Server;
    let origin: string;
    before(async () => {
      ka = createServer({
        endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }],
        tls: { cert: cert.certFile, key: cert.keyFile },
        limits: { keepAliveTimeoutMs: 400 },
      });
      ka.get('/hello', (ctx) => {
        ctx.body = 'hello';
      });
      // Answers after `ms`: a stream open longer than the keep-alive timeout.
      ka.get('/slow', async (ctx) => {
        await sleep(Number(ctx.query.get('ms')));
        ctx.body = 'slow';
      });
      await ka.listen();
      origin = `https://127.0.0.1:${ka.tcpListeners[0].port}`;
    });
    after(() => ka.close({ timeoutMs: 1000 }));

    it('HTTP/2: an idle session gets GOAWAY after keepAliveTimeoutMs; one with an open stream is kept', async () => {
      const { h2On } = await import('./server-util');
      const idle = http2.connect(origin, { rejectUnauthorized: false });
      const busy = http2.connect(origin, { rejectUnauthorized: false });
      const goaway = (s: http2.ClientHttp2Session): Promise<number> => new Promise((resolve) => s.once('goaway', () => resolve(Date.now())));
      const idleGone = goaway(idle);
      let busyGone = 0;
      void goaway(busy).then((t) => (busyGone = t));
      assert.equal((await h2On(idle, { ':path': '/hello' })).status, 200);
      const t0 = Date.now();
      const slow = await h2On(busy, { ':path': '/slow?ms=1500' });
      const t1 = Date.now();
      assert.equal(slow.status, 200, 'a 1.5 s request outlives a 0.4 s keep-alive timeout');
      const idleAt = await idleGone;
      assert.ok(idleAt - t0 >= 300 && idleAt - t0 < 1400, `idle session closed after ${idleAt - t0} ms`);
      assert.ok(busyGone === 0 || busyGone >= t1, 'the busy session was not closed while its stream was open');
      idle.close();
      busy.close();
    });

    it('HTTP/1.1: an idle keep-alive connection is closed after keepAliveTimeoutMs', async () => {
      const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(origin).port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      let text = '';
      let answeredAt = 0;
      const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (!answeredAt && text.includes('\r\n\r\nhello')) answeredAt = Date.now();
      });
      socket.on('error', () => {});
      socket.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
      const after = (await closedAt) - answeredAt;
      assert.ok(answeredAt > 0, text);
      assert.match(text, /^HTTP\/1\.1 200/);
      assert.match(text, /connection: keep-alive/i, 'kept open after the response');
      assert.ok(after >= 300 && after < 1500, `closed ${after} ms after the response`);
    });
  });
});
