import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { createServer, type Server } from '../../src';
import { nodeHandler } from '../../src/http/node-adapter';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../helpers/peers';

const sha256 = (b: Uint8Array | string): string => crypto.createHash('sha256').update(b).digest('hex');
const shake = (label: string, size: number): Buffer => crypto.createHash('shake128', { outputLength: size }).update(label).digest();

const STREAM = shake('harrier-express-stream', 1024 * 1024 + 5);
const FILE = shake('harrier-express-file', 300_000);
const POST_SIZE = 1_000_000;

/** Headers whose values must be the same on every protocol. */
const COMPARED = ['content-type', 'content-length', 'location', 'x-one', 'x-many', 'x-streamed', 'x-powered-by', 'etag', 'set-cookie', 'accept-ranges', 'cache-control'];
const PATHS = ['/users/42?q=hello', '/old', '/new', '/headers', '/stream', '/created', '/file', '/missing/thing'];

interface Observed { status: number; headers: Record<string, string>; sha256: string }
interface H3Response { path: string; status: number; headers: Record<string, string>; bytes: number; sha256: string; error?: string }
interface H3Report { ok: boolean; error: string | null; responses: H3Response[]; post: (H3Response & { sent_sha256: string; sent_bytes: number }) | null }

function pick(headers: Record<string, string | string[] | number | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of COMPARED) {
    const v = headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

function makeApp(filePath: string): express.Express {
  const app = express();
  app.get('/users/:id', (req, res) => {
    res.json({ id: req.params.id, q: req.query.q ?? null });
  });
  app.post('/json', express.json(), (req, res) => {
    res.status(201).json({ received: req.body, type: req.get('content-type') });
  });
  app.post('/upload', express.raw({ type: () => true, limit: '10mb' }), (req, res) => {
    const body = req.body as Buffer;
    res.json({ bytes: body.length, sha256: sha256(body) });
  });
  app.get('/old', (_req, res) => res.redirect(301, '/new'));
  app.get('/new', (_req, res) => {
    res.type('text').send('the new place');
  });
  app.get('/headers', (_req, res) => {
    res.set({ 'X-One': '1', 'X-Many': ['a', 'b'] });
    res.cookie('first', '1', { path: '/' });
    res.cookie('second', '2', { httpOnly: true });
    res.send('headers set');
  });
  app.get('/stream', async (_req, res) => {
    res.type('application/octet-stream');
    res.set('x-streamed', 'yes');
    for (let i = 0; i < STREAM.length; i += 16 * 1024) {
      if (!res.write(STREAM.subarray(i, i + 16 * 1024))) await once(res, 'drain');
    }
    res.end();
  });
  app.get('/created', (_req, res) => {
    res.status(201).send(Buffer.from('created as bytes'));
  });
  app.get('/file', (_req, res) => res.sendFile(filePath, { maxAge: 0 }));
  app.get('/info', (req, res) => {
    res.json({ ip: req.ip, protocol: req.protocol, secure: req.secure, httpVersion: req.httpVersion, hostname: req.hostname });
  });
  app.use((req, res) => {
    res.status(404).json({ error: 'not found', path: req.path });
  });
  return app;
}

/** An app without a 404 handler: what it does not answer goes on down Harrier's pipeline. */
function makeInnerApp(): express.Express {
  const app = express();
  app.get('/ft/express', (_req, res) => res.send('from express'));
  app.get('/ft/boom', () => {
    throw new Error('route failed');
  });
  return app;
}

function h1(port: number, method: string, p: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Observed & { body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path: p, headers, rejectUnauthorized: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: pick(res.headers), sha256: sha256(b), body: b });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function h2(session: http2.ClientHttp2Session, method: string, p: string, headers: http2.OutgoingHttpHeaders = {}, body?: Buffer): Promise<Observed & { body: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': method, ':path': p, ...headers }, { endStream: body === undefined });
    let status = 0;
    let h: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    s.on('response', (rh) => {
      status = Number(rh[':status']);
      h = rh as Record<string, string | string[] | undefined>;
    });
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => {
      const b = Buffer.concat(chunks);
      resolve({ status, headers: pick(h), sha256: sha256(b), body: b });
    });
    s.on('error', reject);
    if (body !== undefined) s.end(body);
  });
}

describe('Express on every protocol (nodeHandler)', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let dir: string;
  let server: Server;
  let port: number;
  let h3port: number;
  let session: http2.ClientHttp2Session;
  const reference = new Map<string, Observed>();
  const errors: unknown[] = [];

  before(async () => {
    cert = makeTestCert();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-express-'));
    const filePath = path.join(dir, 'file.bin');
    fs.writeFileSync(filePath, FILE);
    fs.utimesSync(filePath, new Date('2024-01-01T00:00:00Z'), new Date('2024-01-01T00:00:00Z'));
    const main = nodeHandler(makeApp(filePath));
    const inner = nodeHandler(makeInnerApp());
    server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3', 'h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
    server.on('error', (e) => errors.push(e));
    server.use((ctx, next) => (ctx.path.startsWith('/ft/') ? inner(ctx, next) : main(ctx, next)));
    server.get('/ft/harrier', (ctx) => void (ctx.body = 'from harrier'));
    await server.listen();
    port = server.tcpListeners[0].port;
    h3port = server.quicListeners[0].port;
    session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  });

  after(async () => {
    session.close();
    await server.close({ timeoutMs: 1000 });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers over HTTP/1.1 as Express does', async () => {
    for (const p of PATHS) {
      const { body: _body, ...observed } = await h1(port, 'GET', p);
      reference.set(p, observed);
    }
    const r = (p: string): Observed => reference.get(p)!;
    assert.deepEqual([r('/users/42?q=hello').status, r('/users/42?q=hello').sha256], [200, sha256('{"id":"42","q":"hello"}')]);
    assert.equal(r('/users/42?q=hello').headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r('/old').status, 301);
    assert.equal(r('/old').headers.location, '/new');
    assert.equal(r('/new').sha256, sha256('the new place'));
    assert.equal(r('/headers').headers['x-one'], '1');
    assert.equal(r('/headers').headers['x-many'], 'a, b');
    assert.equal(r('/headers').headers['set-cookie'], 'first=1; Path=/, second=2; Path=/; HttpOnly');
    assert.equal(r('/stream').sha256, sha256(STREAM));
    assert.equal(r('/stream').headers['x-streamed'], 'yes');
    assert.deepEqual([r('/created').status, r('/created').sha256, r('/created').headers['content-type']], [201, sha256('created as bytes'), 'application/octet-stream']);
    assert.deepEqual([r('/file').status, r('/file').sha256, r('/file').headers['content-length']], [200, sha256(FILE), String(FILE.length)]);
    assert.equal(r('/missing/thing').status, 404);
    assert.equal(r('/missing/thing').sha256, sha256('{"error":"not found","path":"/missing/thing"}'));
    for (const p of PATHS) assert.equal(r(p).headers['x-powered-by'], 'Express', p);
  });

  it('answers the same over HTTP/2', async () => {
    for (const p of PATHS) {
      const { body: _body, ...observed } = await h2(session, 'GET', p);
      assert.deepEqual(observed, reference.get(p), p);
    }
  });

  it('answers the same over HTTP/3 (aioquic)', async () => {
    const run = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', `https://127.0.0.1:${h3port}`,
      '--paths', PATHS.join(','), '--post', '/upload', '--post-size', String(POST_SIZE), '--max-data', String(16 << 20), '--timeout', '90']);
    assert.equal(run.report.error, null);
    for (const r of run.report.responses) {
      const ref = reference.get(r.path)!;
      assert.deepEqual({ status: r.status, headers: pick(r.headers), sha256: r.sha256 }, ref, r.path);
    }
    const post = run.report.post!;
    assert.equal(post.status, 200);
    assert.equal(post.sha256, sha256(JSON.stringify({ bytes: POST_SIZE, sha256: post.sent_sha256 })));
  });

  it('answers the same over HTTP/3 (quic-go)', async () => {
    const run = await runPeer<H3Report>(goPeer('h3get'), ['-base', `https://127.0.0.1:${h3port}`,
      '-paths', PATHS.join(','), '-post', '/upload', '-post-size', String(POST_SIZE), '-timeout', '90']);
    assert.equal(run.report.error, null);
    for (const r of run.report.responses) {
      // Go's client follows the redirect: /old reports what /new answered.
      const ref = reference.get(r.path === '/old' ? '/new' : r.path)!;
      assert.deepEqual({ status: r.status, headers: pick(r.headers), sha256: r.sha256 }, ref, r.path);
    }
    const post = run.report.post!;
    assert.equal(post.status, 200);
    assert.equal(post.sha256, sha256(JSON.stringify({ bytes: POST_SIZE, sha256: post.sent_sha256 })));
  });

  it('parses JSON bodies with express.json() over HTTP/1.1 and HTTP/2', async () => {
    const body = Buffer.from(JSON.stringify({ name: 'harrier', n: [1, 2, 3] }));
    const expected = sha256(JSON.stringify({ received: { name: 'harrier', n: [1, 2, 3] }, type: 'application/json' }));
    const a = await h1(port, 'POST', '/json', { 'content-type': 'application/json' }, body);
    const b = await h2(session, 'POST', '/json', { 'content-type': 'application/json' }, body);
    for (const r of [a, b]) assert.deepEqual([r.status, r.sha256], [201, expected]);
    const up = shake('harrier-express-upload', 3_000_000);
    for (const r of [await h1(port, 'POST', '/upload', {}, up), await h2(session, 'POST', '/upload', {}, up)]) {
      assert.deepEqual(JSON.parse(r.body.toString()), { bytes: up.length, sha256: sha256(up) });
    }
  });

  it('gives the app the client address, scheme and HTTP version', async () => {
    const a = JSON.parse((await h1(port, 'GET', '/info')).body.toString());
    assert.deepEqual(a, { ip: '127.0.0.1', protocol: 'https', secure: true, httpVersion: '1.1', hostname: '127.0.0.1' });
    const b = JSON.parse((await h2(session, 'GET', '/info')).body.toString());
    assert.deepEqual(b, { ...a, httpVersion: '2.0' });
    const run = await runPeer<H3Report>(goPeer('h3get'), ['-base', `https://127.0.0.1:${h3port}`, '-paths', '/info', '-timeout', '30']);
    assert.equal(run.report.responses[0].sha256, sha256(JSON.stringify({ ...a, httpVersion: '3.0' })));
  });

  it('answers HEAD with the GET headers and no body, and 304 to a matching If-None-Match', async () => {
    const head = await h1(port, 'HEAD', '/new');
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], reference.get('/new')!.headers['content-length']);
    const etag = reference.get('/new')!.headers.etag;
    assert.ok(etag);
    for (const r of [await h1(port, 'GET', '/new', { 'if-none-match': etag }), await h2(session, 'GET', '/new', { 'if-none-match': etag })]) {
      assert.equal(r.status, 304);
      assert.equal(r.body.length, 0);
    }
  });

  it('goes on down the pipeline when the app does not answer, and turns its errors into 500', async () => {
    errors.length = 0;
    assert.equal((await h1(port, 'GET', '/ft/express')).body.toString(), 'from express');
    assert.equal((await h2(session, 'GET', '/ft/harrier')).body.toString(), 'from harrier');
    const boom = await h1(port, 'GET', '/ft/boom');
    assert.deepEqual([boom.status, boom.body.toString()], [500, 'Internal Server Error']);
    assert.equal((errors[0] as Error).message, 'route failed');
  });

  describe('plain (req, res) handlers', () => {
    let plain: Server;
    let plainPort: number;
    let plainSession: http2.ClientHttp2Session;

    before(async () => {
      plain = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
      plain.on('error', () => {});
      plain.use(nodeHandler((req, res) => {
        if (req.url === '/echo' || req.url === '/echo-duplex') {
          // Sends the request body back, with its hash in a trailer. /echo reads it all first;
          // /echo-duplex streams it back as it arrives.
          const hash = crypto.createHash('sha256');
          const held: Buffer[] = [];
          const duplex = req.url === '/echo-duplex';
          if (duplex) res.writeHead(200, [['content-type', 'application/octet-stream'], ['x-array-form', 'yes']]);
          req.on('data', (d: Buffer) => {
            hash.update(d);
            if (!duplex) held.push(d);
            else if (!res.write(d)) req.pause();
          });
          res.on('drain', () => req.resume());
          req.on('end', async () => {
            if (!duplex) {
              res.writeHead(200, ['content-type', 'application/octet-stream', 'x-array-form', 'yes']);
              for (const d of held) if (!res.write(d)) await once(res, 'drain');
            }
            res.addTrailers({ 'x-sha256': hash.digest('hex') });
            res.end();
          });
        } else if (req.url === '/destroy') {
          res.writeHead(200);
          res.write('partial');
          setTimeout(() => res.destroy(), 20);
        } else {
          res.statusCode = 418;
          res.setHeader('x-flat', ['1', '2']);
          res.end('teapot');
        }
      }));
      await plain.listen();
      plainPort = plain.tcpListeners[0].port;
      plainSession = http2.connect(`https://127.0.0.1:${plainPort}`, { rejectUnauthorized: false });
    });

    after(async () => {
      plainSession.close();
      await plain.close({ timeoutMs: 1000 });
    });

    function echo(p: string, up: Buffer): Promise<{ body: Buffer; trailers: http2.IncomingHttpHeaders; headers: http2.IncomingHttpHeaders }> {
      return new Promise((resolve, reject) => {
        const s = plainSession.request({ ':method': 'POST', ':path': p });
        const chunks: Buffer[] = [];
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        s.on('response', (h) => (headers = h));
        s.on('trailers', (t) => (trailers = t));
        s.on('data', (d) => chunks.push(d));
        s.on('end', () => resolve({ body: Buffer.concat(chunks), trailers, headers }));
        s.on('error', reject);
        s.end(up);
      });
    }

    it('sends a body written with backpressure, headers given as an array, and trailers (HTTP/2)', async () => {
      const up = shake('harrier-plain-echo', 2_000_000);
      const r = await echo('/echo', up);
      assert.equal(r.headers['x-array-form'], 'yes');
      assert.equal(sha256(r.body), sha256(up));
      assert.equal(r.trailers['x-sha256'], sha256(up));
    });

    // Needs Server's limits middleware to leave a request body that is still being read alone
    // once the pipeline has returned (today it destroys it when the head goes out first).
    it.skip('streams the request body back while it arrives (HTTP/2)', async () => {
      const up = shake('harrier-plain-echo', 2_000_000);
      const r = await echo('/echo-duplex', up);
      assert.equal(sha256(r.body), sha256(up));
      assert.equal(r.trailers['x-sha256'], sha256(up));
    });

    it('keeps status and repeated headers set without writeHead (HTTP/1.1)', async () => {
      const r = await new Promise<{ status: number; flat: unknown; body: string }>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: plainPort, path: '/tea', rejectUnauthorized: false, agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode!, flat: res.headers['x-flat'], body: b }));
        }).on('error', reject);
      });
      assert.deepEqual(r, { status: 418, flat: '1, 2', body: 'teapot' });
    });

    it('resets the stream when the handler destroys the response mid-body (HTTP/2)', async () => {
      const outcome = await new Promise<string>((resolve) => {
        const s = plainSession.request({ ':path': '/destroy' });
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('end', () => resolve(`ended cleanly after ${got}`));
        s.on('error', (e: Error & { code?: string }) => resolve(`reset after ${got}: ${e.code}`));
        s.on('close', () => resolve(`closed after ${got} with code ${s.rstCode}`));
      });
      assert.match(outcome, /^(reset|closed) after partial/);
      assert.doesNotMatch(outcome, /code 0$/);
    });
  });
});
