import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from '../../../src';
import { proxy } from '../../../src/http/middleware/proxy';
import { makeTestCert, type TestCert } from '../../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../../helpers/peers';

const sha256 = (b: Uint8Array | string): string => crypto.createHash('sha256').update(b).digest('hex');
const shake = (label: string, size: number): Buffer => crypto.createHash('shake128', { outputLength: size }).update(label).digest();
const BIG = shake('harrier-proxy-big', 3 * 1024 * 1024 + 17);

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; trailers: Record<string, string | string[] | undefined> }

/** The upstream: a plain node:http HTTP/1.1 server on loopback. */
function startUpstream(): Promise<{ server: http.Server; port: number; connections: () => number; release: () => void }> {
  let connections = 0;
  let release: () => void = () => {};
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    switch (url.pathname.replace(/^\/base/, '')) {
      case '/echo':
      case '/p/echo':
        req.resume();
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, httpVersion: req.httpVersion }));
        return;
      case '/upload': {
        const h = crypto.createHash('sha256');
        let bytes = 0;
        req.on('data', (d: Buffer) => {
          h.update(d);
          bytes += d.length;
        });
        req.on('end', () => res.end(JSON.stringify({ bytes, sha256: h.digest('hex') })));
        return;
      }
      case '/duplex': {
        // Answers as soon as the first request bytes arrive, then once more at the end.
        let total = 0;
        req.on('data', (d: Buffer) => {
          if (total === 0) {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write(`got ${d.length};`);
          }
          total += d.length;
        });
        req.on('end', () => res.end(`total ${total}`));
        return;
      }
      case '/stream':
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        release = () => res.end('second');
        return;
      case '/cookies':
        req.resume();
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']);
        res.end('cookies');
        return;
      case '/hop':
        req.resume();
        res.writeHead(200, {
          connection: 'x-resp-hop', 'x-resp-hop': 'secret', 'keep-alive': 'timeout=5',
          'proxy-authenticate': 'Basic realm="x"', upgrade: 'h2c', 'x-kept': 'yes',
        });
        res.end('hop');
        return;
      case '/trailers':
        req.resume();
        res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
        res.write('with trailers');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
        return;
      case '/big':
        req.resume();
        res.writeHead(200, { 'content-length': BIG.length, 'content-type': 'application/octet-stream' });
        if (req.method === 'HEAD') res.end();
        else res.end(BIG);
        return;
      case '/via':
        req.resume();
        res.end(String(req.headers.via));
        return;
      case '/slow':
        req.resume(); // never answers
        return;
      default:
        req.resume();
        res.statusCode = 404;
        res.end('upstream 404');
    }
  });
  server.on('connection', () => connections++);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server, port: (server.address() as AddressInfo).port, connections: () => connections, release: () => release(),
  })));
}

function h1(port: number, method: string, path: string, headers: Record<string, string | string[]> = {}, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function h2(session: http2.ClientHttp2Session, method: string, path: string, headers: http2.OutgoingHttpHeaders = {}, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined });
    let status = 0;
    let resHeaders: Record<string, string | string[] | undefined> = {};
    let trailers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    s.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h as Record<string, string | string[] | undefined>;
    });
    s.on('trailers', (t) => (trailers = t as Record<string, string | string[] | undefined>));
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks), trailers }));
    s.on('error', reject);
    if (body !== undefined) s.end(body);
  });
}

describe('proxy', function () {
  this.timeout(120_000);
  let cert: TestCert;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let deadPort: number;
  let server: Server;
  let port: number;
  let h3port: number;
  let session: http2.ClientHttp2Session;
  const errors: unknown[] = [];

  before(async () => {
    cert = makeTestCert();
    upstream = await startUpstream();
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    deadPort = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));

    const main = proxy(`http://127.0.0.1:${upstream.port}`, { timeoutMs: 400, headers: { 'x-proxy-secret': 's3' } });
    const prefixed = proxy(new URL(`http://127.0.0.1:${upstream.port}/base/`), { preserveHost: true, forwardedHeaders: 'set' });
    const down = proxy(`http://127.0.0.1:${deadPort}`);
    server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3', 'h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
    server.on('error', (e) => errors.push(e));
    server.use((ctx, next) => (ctx.path.startsWith('/down') ? down(ctx, next) : ctx.path.startsWith('/p/') ? prefixed(ctx, next) : main(ctx, next)));
    await server.listen();
    port = server.tcpListeners[0].port;
    h3port = server.quicListeners[0].port;
    session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  });

  after(async () => {
    session.close();
    await server.close({ timeoutMs: 1000 });
    upstream.server.closeAllConnections();
    upstream.server.close();
  });

  it('forwards method, target and end-to-end headers, with Host, Via and X-Forwarded-* (HTTP/1.1)', async () => {
    const r = await h1(port, 'GET', '/echo?x=1&y=%20', {
      'x-custom': 'kept', connection: 'x-custom-hop', 'x-custom-hop': 'dropped', 'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic Zm9vOmJhcg==', te: 'trailers', 'x-forwarded-for': '203.0.113.1', via: '1.0 corp-proxy',
    });
    assert.equal(r.status, 200);
    const up = JSON.parse(r.body.toString());
    assert.equal(up.method, 'GET');
    assert.equal(up.url, '/echo?x=1&y=%20');
    assert.equal(up.httpVersion, '1.1');
    const h = up.headers;
    assert.equal(h.host, `127.0.0.1:${upstream.port}`);
    assert.equal(h['x-custom'], 'kept');
    for (const gone of ['x-custom-hop', 'keep-alive', 'proxy-authorization', 'expect']) assert.equal(h[gone], undefined, gone);
    assert.equal(h.te, 'trailers');
    assert.match(h.connection, /^te$/i);
    assert.equal(h.via, '1.0 corp-proxy, 1.1 harrier');
    assert.equal(h['x-forwarded-for'], '203.0.113.1, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${port}`);
    assert.equal(h.forwarded, `for=127.0.0.1;host="127.0.0.1:${port}";proto=https`);
    assert.equal(h['x-proxy-secret'], 's3');
  });

  it('names HTTP/2 in Via and joins split cookies into one field (RFC 9113 §8.2.3)', async () => {
    const r = await h2(session, 'GET', '/echo', { cookie: ['a=1', 'b=2'], 'x-custom': 'h2' });
    const h = JSON.parse(r.body.toString()).headers;
    assert.equal(h.via, '2 harrier');
    assert.equal(h.cookie, 'a=1; b=2');
    assert.equal(h['x-custom'], 'h2');
    assert.equal(h.host, `127.0.0.1:${upstream.port}`);
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${port}`);
  });

  it('joins the upstream base path, keeps the client Host with preserveHost, and can set forwarding headers', async () => {
    const r = await h1(port, 'GET', '/p/echo?q=1', { host: `shop.example:${port}`, 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' });
    const up = JSON.parse(r.body.toString());
    assert.equal(up.url, '/base/p/echo?q=1');
    assert.equal(up.headers.host, `shop.example:${port}`);
    assert.equal(up.headers['x-forwarded-for'], '127.0.0.1', "'set' drops what the client claimed");
    assert.equal(up.headers.forwarded, `for=127.0.0.1;host="shop.example:${port}";proto=https`);
  });

  it('drops hop-by-hop response fields and keeps every Set-Cookie', async () => {
    for (const get of [() => h1(port, 'GET', '/hop'), () => h2(session, 'GET', '/hop')]) {
      const r = await get();
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-kept'], 'yes');
      for (const gone of ['x-resp-hop', 'proxy-authenticate', 'upgrade']) assert.equal(r.headers[gone], undefined, gone);
      assert.notEqual(r.headers['keep-alive'], 'timeout=5');
    }
    for (const get of [() => h1(port, 'GET', '/cookies'), () => h2(session, 'GET', '/cookies')]) {
      const r = await get();
      assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']);
      assert.equal(r.body.toString(), 'cookies');
    }
  });

  it('passes trailers through, to HTTP/1.1 and HTTP/2 clients', async () => {
    const a = await h1(port, 'GET', '/trailers');
    assert.equal(a.body.toString(), 'with trailers');
    assert.deepEqual(a.trailers, { 'x-checksum': 'abc123' });
    const b = await h2(session, 'GET', '/trailers');
    assert.equal(b.body.toString(), 'with trailers');
    assert.equal(b.trailers['x-checksum'], 'abc123');
  });

  it('streams the response: the first bytes arrive while the upstream is still writing', async () => {
    for (const proto of ['h1', 'h2']) {
      const body = await new Promise<string>((resolve, reject) => {
        let got = '';
        const onData = (d: Buffer): void => {
          if (got === '') setTimeout(() => upstream.release(), 10); // only once 'first;' came through
          got += d;
        };
        if (proto === 'h1') {
          https.get({ host: '127.0.0.1', port, path: '/stream', rejectUnauthorized: false, agent: false }, (res) => {
            res.on('data', onData);
            res.on('end', () => resolve(got));
          }).on('error', reject);
        } else {
          const s = session.request({ ':path': '/stream' });
          s.on('data', onData);
          s.on('end', () => resolve(got));
          s.on('error', reject);
        }
      });
      assert.equal(body, 'first;second', proto);
    }
  });

  it('streams the request: the upstream reads the first bytes before the client sends the rest', async () => {
    const s = session.request({ ':method': 'POST', ':path': '/upload' });
    const reply = new Promise<string>((resolve, reject) => {
      let body = '';
      s.on('data', (d) => (body += d));
      s.on('end', () => resolve(body));
      s.on('error', reject);
    });
    const first = shake('harrier-proxy-first', 100_000);
    const firstSeen = new Promise<number>((resolve) => upstream.server.once('request', (req: http.IncomingMessage) => {
      let n = 0;
      const onData = (d: Buffer): void => {
        n += d.length;
        if (n >= first.length) {
          req.off('data', onData);
          resolve(n);
        }
      };
      req.on('data', onData);
    }));
    s.write(first);
    assert.equal(await firstSeen, first.length); // the rest is not sent yet
    const second = shake('harrier-proxy-second', 50_000);
    s.end(second);
    assert.deepEqual(JSON.parse(await reply), { bytes: 150_000, sha256: sha256(Buffer.concat([first, second])) });
  });

  // Needs Server's limits middleware to leave a request body that is still being read alone
  // once the pipeline has returned (today it destroys it, which cuts a full-duplex upload).
  it.skip('streams both ways at once: the upstream answers before the client has finished sending (HTTP/2)', async () => {
    const s = session.request({ ':method': 'POST', ':path': '/duplex' });
    s.write(Buffer.alloc(1000, 1));
    let got = '';
    const first = await new Promise<string>((resolve, reject) => {
      s.once('data', (d) => resolve(String(d)));
      s.on('error', reject);
    });
    got += first;
    assert.equal(first, 'got 1000;');
    const rest = new Promise<void>((resolve) => {
      s.on('data', (d) => (got += d));
      s.on('end', resolve);
    });
    s.end(Buffer.alloc(500, 2));
    await rest;
    assert.equal(got, 'got 1000;total 1500');
  });

  it('carries large bodies both ways byte-exact', async () => {
    const up = shake('harrier-proxy-upload', 5 * 1024 * 1024 + 3);
    for (const send of [() => h1(port, 'POST', '/upload', {}, up), () => h2(session, 'POST', '/upload', {}, up)]) {
      const r = await send();
      assert.deepEqual(JSON.parse(r.body.toString()), { bytes: up.length, sha256: sha256(up) });
    }
    for (const get of [() => h1(port, 'GET', '/big'), () => h2(session, 'GET', '/big')]) {
      const r = await get();
      assert.equal(r.headers['content-length'], String(BIG.length));
      assert.equal(sha256(r.body), sha256(BIG));
    }
  });

  it('answers HEAD with the upstream Content-Length and no body', async () => {
    const r = await h1(port, 'HEAD', '/big');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(BIG.length));
    assert.equal(r.body.length, 0);
  });

  it('reuses upstream connections (keep-alive)', async () => {
    await h1(port, 'GET', '/echo');
    const before = upstream.connections();
    for (let i = 0; i < 5; i++) await h1(port, 'GET', '/echo');
    assert.equal(upstream.connections(), before);
  });

  it('passes upstream statuses through', async () => {
    const r = await h1(port, 'GET', '/nothing-here');
    assert.deepEqual([r.status, r.body.toString()], [404, 'upstream 404']);
  });

  it('answers 502 when the upstream is down, to GETs and to uploads', async () => {
    errors.length = 0;
    const a = await h1(port, 'GET', '/down');
    assert.deepEqual([a.status, a.body.toString()], [502, 'Bad Gateway']);
    const b = await h2(session, 'POST', '/down/upload', {}, Buffer.alloc(200_000, 7));
    assert.deepEqual([b.status, b.body.toString()], [502, 'Bad Gateway']);
    const c = await h1(port, 'POST', '/down/upload', {}, Buffer.alloc(200_000, 7));
    assert.equal(c.status, 502);
    assert.equal((errors[0] as { code?: string }).code, 'HARRIER_ERR_PROXY_UPSTREAM');
  });

  it('answers 504 when the upstream does not answer in time', async () => {
    errors.length = 0;
    const t0 = Date.now();
    const r = await h2(session, 'GET', '/slow');
    const took = Date.now() - t0;
    assert.deepEqual([r.status, r.body.toString()], [504, 'Gateway Timeout']);
    assert.ok(took >= 350 && took < 5000, `took ${took} ms`);
    assert.equal((errors[0] as { code?: string }).code, 'HARRIER_ERR_PROXY_TIMEOUT');
  });

  describe('over HTTP/3 (independent clients)', () => {
    interface H3Response { path: string; status: number; headers: Record<string, string>; bytes: number; sha256: string; error?: string }
    interface H3Report { ok: boolean; error: string | null; responses: H3Response[]; post: (H3Response & { sent_bytes: number; sent_sha256: string }) | null }

    function check(report: H3Report): void {
      assert.equal(report.error, null);
      const by = new Map(report.responses.map((r) => [r.path, r]));
      assert.equal(by.get('/big')?.sha256, sha256(BIG));
      assert.equal(by.get('/via')?.sha256, sha256('3 harrier'));
      assert.equal(by.get('/cookies')?.headers['set-cookie'], 'a=1; Path=/, b=2; HttpOnly, c=3; Secure');
      assert.equal(by.get('/hop')?.headers['x-kept'], 'yes');
      for (const gone of ['connection', 'keep-alive', 'x-resp-hop', 'upgrade', 'proxy-authenticate', 'transfer-encoding']) assert.equal(by.get('/hop')?.headers[gone], undefined, gone);
      assert.equal(by.get('/trailers')?.sha256, sha256('with trailers'));
      assert.equal(by.get('/down')?.status, 502);
      const post = report.post!;
      assert.equal(post.status, 200);
      const size = 2 * 1024 * 1024;
      assert.equal(post.sent_bytes, size);
      assert.equal(post.sent_sha256, sha256(shake('harrier-post', size)));
      // What the upstream counted and hashed came back.
      assert.equal(post.sha256, sha256(JSON.stringify({ bytes: size, sha256: post.sent_sha256 })));
    }

    it('aioquic: GETs, a POST upload, trailers and errors through the proxy', async () => {
      const run = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', `https://127.0.0.1:${h3port}`,
        '--paths', '/big,/via,/cookies,/hop,/trailers,/down', '--post', '/upload', '--post-size', String(2 * 1024 * 1024),
        '--max-data', String(16 << 20), '--max-stream-data', String(8 << 20), '--timeout', '90']);
      check(run.report);
      const trailers = (run.report.responses.find((r) => r.path === '/trailers') as H3Response & { trailers?: Record<string, string> }).trailers;
      assert.deepEqual(trailers, { 'x-checksum': 'abc123' });
    });

    it('quic-go: the same', async () => {
      const run = await runPeer<H3Report>(goPeer('h3get'), ['-base', `https://127.0.0.1:${h3port}`,
        '-paths', '/big,/via,/cookies,/hop,/trailers,/down', '-post', '/upload', '-post-size', String(2 * 1024 * 1024), '-timeout', '90']);
      check(run.report);
    });
  });
});
