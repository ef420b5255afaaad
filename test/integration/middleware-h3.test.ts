import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { bodyParser, negotiate } from '../../src/http/middleware/body';
import { compress } from '../../src/http/middleware/compress';
import { staticFiles } from '../../src/http/middleware/static';
import { createServer, type Server } from '../../src/server';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../helpers/peers';

/**
 * staticFiles, compress, negotiate and bodyParser over HTTP/3, driven by aioquic and quic-go.
 *
 * What the clients can send limits what is checked here: neither takes arbitrary request
 * headers, so conditional requests, Range, Accept and explicit Accept-Encoding are covered by
 * the HTTP/1.1 + HTTP/2 unit tests (test/unit/middleware) and reach HTTP/3 through the same
 * protocol-neutral pipeline; the last test checks that an HTTP/3 answer and an HTTP/2 answer
 * carry the same headers. quic-go asks for gzip on its own (and decodes it), so compression
 * is exercised over HTTP/3 with it; aioquic sends no Accept-Encoding, so it gets identity.
 */

interface PeerResponse { path: string; status?: number; headers: Record<string, string>; bytes: number; sha256: string; error?: string | null }
interface PeerReport { ok: boolean; error: string | null; responses: PeerResponse[]; post: PeerResponse | null }
interface Seen { protocol: string; method: string; path: string; status: number; acceptEncoding?: string; headers: Record<string, string | string[]> }

const sha256 = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

describe('middleware over HTTP/3 with independent clients (aioquic, quic-go)', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let server: Server;
  let base: string;
  let root: string;
  const files = new Map<string, Buffer>();
  const seen: Seen[] = [];

  const mtimeOf = (rel: string): fs.Stats => fs.statSync(path.join(root, rel));
  const etagOf = (rel: string): string => `W/"${mtimeOf(rel).size.toString(16)}-${Math.floor(mtimeOf(rel).mtimeMs).toString(16)}"`;
  const lastModifiedOf = (rel: string): string => new Date(Math.floor(mtimeOf(rel).mtimeMs / 1000) * 1000).toUTCString();
  const lastSeen = (p: string): Seen => {
    const s = [...seen].reverse().find((x) => x.path === p);
    assert.ok(s, `the server saw ${p}`);
    return s;
  };

  before(async () => {
    cert = makeTestCert();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-mw-h3-'));
    const add = (rel: string, data: Buffer | string): void => {
      const b = Buffer.from(data);
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), b);
      files.set(`/${rel}`, b);
    };
    add('index.html', '<!doctype html><title>home</title>\n');
    add('style.css', 'body { margin: 0 }\n'.repeat(100));
    add('app.js', 'export function f(x) { return x * 2; }\n'.repeat(100));
    add('data.json', JSON.stringify({ list: Array.from({ length: 500 }, (_, i) => i) }));
    add('image.png', crypto.createHash('shake128', { outputLength: 50_000 }).update('png').digest());
    add('big.txt', Array.from({ length: 50_000 }, (_, i) => `line ${i} of a long text file\n`).join(''));
    add('empty.txt', '');
    add('sub/index.html', '<!doctype html><title>sub</title>\n');
    add('.env', 'SECRET=1\n');

    server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3', 'h2'] }], tls: { cert: cert.certFile, key: cert.keyFile } });
    server.on('error', () => undefined);
    server.use(async (ctx, next) => {
      try {
        await next();
      } finally {
        seen.push({
          protocol: ctx.protocol, method: ctx.method, path: ctx.path, status: ctx.status,
          acceptEncoding: ctx.get('accept-encoding'), headers: ctx.response.headers.toObject(),
        });
      }
    });
    server.use(compress());
    server.use(negotiate());
    server.get('/value', (ctx) => { ctx.body = { hello: 'h3', list: [1, 2, 3] }; });
    server.post('/strict', bodyParser({ strict: true }), (ctx) => { ctx.body = { got: ctx.state.body ?? null }; });
    server.use(staticFiles(root));
    await server.listen();
    base = `https://127.0.0.1:${server.quicListeners[0].port}`;
  });

  after(async () => {
    await server?.close({ timeoutMs: 2000 });
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  const staticPaths = ['/index.html', '/style.css', '/app.js', '/data.json', '/image.png', '/big.txt', '/empty.txt'];
  const types: Record<string, string> = {
    '/index.html': 'text/html; charset=utf-8', '/style.css': 'text/css; charset=utf-8', '/app.js': 'text/javascript; charset=utf-8',
    '/data.json': 'application/json; charset=utf-8', '/image.png': 'image/png', '/big.txt': 'text/plain; charset=utf-8', '/empty.txt': 'text/plain; charset=utf-8',
  };
  const compressible = new Set(['/style.css', '/app.js', '/data.json', '/big.txt']);

  const aioquic = (paths: string[]): Promise<PeerReport> => runPeer<PeerReport>(python, [peerScript('aioquic_h3.py'), '--url-base', base,
    '--server-name', 'localhost', '--paths', paths.join(','), '--timeout', '60']).then((r) => r.report);
  const quicGo = (paths: string[]): Promise<PeerReport> => runPeer<PeerReport>(goPeer('h3get'), ['-base', base, '-paths', paths.join(','),
    '-timeout', '60']).then((r) => r.report);
  const byPath = (report: PeerReport, p: string): PeerResponse => {
    const r = report.responses.find((x) => x.path === p);
    assert.ok(r, `response for ${p}`);
    return r;
  };

  it('aioquic: static files byte-exact with Content-Type, Content-Length, ETag, Last-Modified, Accept-Ranges; identity (no Accept-Encoding sent)', async () => {
    const report = await aioquic([...staticPaths, '/', '/sub/']);
    assert.equal(report.error, null);
    for (const p of staticPaths) {
      const r = byPath(report, p);
      const rel = p.slice(1);
      assert.equal(r.status, 200, p);
      assert.equal(r.sha256, sha256(files.get(p)!), `${p} byte-exact`);
      assert.equal(r.headers['content-type'], types[p], p);
      assert.equal(r.headers['content-length'], String(files.get(p)!.byteLength), p);
      assert.equal(r.headers['etag'], etagOf(rel), p);
      assert.equal(r.headers['last-modified'], lastModifiedOf(rel), p);
      assert.equal(r.headers['accept-ranges'], 'bytes', p);
      assert.equal(r.headers['content-encoding'], undefined, p);
      // Compressible and large enough: a cache must know other clients may get gzip or br.
      assert.equal(r.headers['vary'], compressible.has(p) ? 'Accept-Encoding' : undefined, p);
      assert.equal(lastSeen(p).protocol, 'h3');
      assert.equal(lastSeen(p).acceptEncoding, undefined);
    }
    assert.equal(byPath(report, '/').sha256, sha256(files.get('/index.html')!));
    assert.equal(byPath(report, '/sub/').sha256, sha256(files.get('/sub/index.html')!));
    assert.equal(report.ok, true);
  });

  it('aioquic: directory redirect, missing file, dotfile, traversal attempts', async () => {
    const report = await aioquic(['/sub', '/missing.txt', '/.env', '/../etc/passwd', '/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd', '/a%00b']);
    assert.equal(report.error, null);
    const sub = byPath(report, '/sub');
    assert.equal(sub.status, 301);
    assert.equal(sub.headers['location'], '/sub/');
    assert.equal(byPath(report, '/missing.txt').status, 404);
    assert.equal(byPath(report, '/.env').status, 404);
    for (const p of ['/../etc/passwd', '/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd', '/a%00b']) {
      assert.equal(byPath(report, p).status, 400, p);
      assert.equal(lastSeen(p).protocol, 'h3');
    }
  });

  it('quic-go: gzip negotiated from its own Accept-Encoding, streamed, and decoded byte-exact; PNG and small files stay identity', async () => {
    seen.length = 0;
    const report = await quicGo([...staticPaths, '/sub']);
    assert.equal(report.error, null);
    for (const p of staticPaths) {
      const r = byPath(report, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.sha256, sha256(files.get(p)!), `${p} byte-exact after quic-go's transparent gunzip`);
      assert.equal(r.headers['content-type'], types[p], p);
      const s = lastSeen(p);
      assert.equal(s.protocol, 'h3');
      assert.equal(s.acceptEncoding, 'gzip');
      if (compressible.has(p)) {
        assert.equal(s.headers['content-encoding'], 'gzip', `${p} sent gzipped`);
        assert.equal(s.headers['content-length'], undefined, `${p} streamed, so no Content-Length`);
        assert.equal(s.headers['accept-ranges'], undefined);
        assert.equal(s.headers['etag'], etagOf(p.slice(1)), 'a weak ETag stays as it is');
        assert.equal(r.headers['vary'], 'Accept-Encoding');
      } else {
        assert.equal(s.headers['content-encoding'], undefined, `${p} not compressed`);
        assert.equal(r.headers['content-length'], String(files.get(p)!.byteLength));
      }
    }
    // Go follows the 301 to /sub/ on the same connection.
    assert.equal(lastSeen('/sub').status, 301);
    const sub = byPath(report, '/sub');
    assert.equal(sub.status, 200);
    assert.equal(sub.sha256, sha256(files.get('/sub/index.html')!));
    assert.equal(report.ok, true);
  });

  it('negotiate: a plain object goes out as JSON with Vary: Accept to both clients (neither sends Accept)', async () => {
    for (const report of [await aioquic(['/value']), await quicGo(['/value'])]) {
      const r = byPath(report, '/value');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(r.headers['vary'], 'Accept');
      assert.equal(r.sha256, sha256(Buffer.from(JSON.stringify({ hello: 'h3', list: [1, 2, 3] }))));
    }
  });

  it('bodyParser over HTTP/3: a POST without Content-Type is 415 with strict (aioquic and quic-go)', async () => {
    const a = await runPeer<PeerReport>(python, [peerScript('aioquic_h3.py'), '--url-base', base, '--server-name', 'localhost',
      '--post', '/strict', '--post-size', '5000', '--timeout', '60']);
    const g = await runPeer<PeerReport>(goPeer('h3get'), ['-base', base, '-post', '/strict', '-post-size', '5000', '-timeout', '60']);
    for (const { report } of [a, g]) {
      assert.equal(report.error, null);
      assert.equal(report.post?.status, 415);
      assert.equal(report.post?.headers['accept-post'], 'application/json, application/msgpack, text/plain');
    }
  });

  it('the same file over HTTP/3 and HTTP/2 carries the same headers (the pipeline is protocol-neutral)', async () => {
    const report = await aioquic(['/app.js']);
    const h3 = byPath(report, '/app.js').headers;
    const tcpPort = server.tcpListeners[0].port;
    const session = http2.connect(`https://127.0.0.1:${tcpPort}`, { rejectUnauthorized: false });
    try {
      const h2 = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = session.request({ ':path': '/app.js' });
        req.on('response', resolve);
        req.on('error', reject);
        req.resume();
      });
      for (const name of ['content-type', 'content-length', 'etag', 'last-modified', 'accept-ranges', 'vary']) {
        assert.equal(h3[name], h2[name], name);
      }
    } finally {
      session.close();
    }
  });
});
