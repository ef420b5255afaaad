import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { Context } from '../../src/http/context';
import { bodyParser, negotiate, respondWith } from '../../src/http/middleware/body';
import { compress } from '../../src/http/middleware/compress';
import { forwarded } from '../../src/http/middleware/forwarded';
import { allowedHosts } from '../../src/http/middleware/hosts';
import { accessLog } from '../../src/http/middleware/log';
import { staticFiles } from '../../src/http/middleware/static';
import { createServer, type Server } from '../../src/server';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../helpers/peers';

/**
 * The middleware (staticFiles, compress, negotiate, bodyParser, forwarded, allowedHosts,
 * accessLog) and the request limits over HTTP/3, driven by two independent clients: aioquic
 * (test/peers/aioquic_h3.py) and quic-go (build/peers/h3get). Both send chosen request fields
 * (--header / -header), methods, :authority and bodies with a chosen Content-Type, and report
 * each response's headers and body (body_b64), so the rules the HTTP/1.1 + HTTP/2 tests
 * (test/unit/middleware, test/integration/server-limits.test.ts) check are checked here over
 * HTTP/3 with each client. The proxy middleware has its own HTTP/3 tests (proxy.test.ts), the
 * 413 by Content-Length and the 414 are in server-limits.test.ts.
 *
 * Without an explicit Accept-Encoding quic-go asks for gzip on its own and decodes it
 * transparently (the first quic-go test relies on that); with one it hands over the coded bytes.
 */

interface PeerResponse {
  path: string; method?: string; status?: number; headers: Record<string, string>; bytes: number; sha256: string;
  body_b64?: string; uncompressed?: boolean; error?: string | null;
}
interface PeerReport { ok: boolean; error: string | null; responses: PeerResponse[]; post: (PeerResponse & { sent_bytes: number }) | null }
interface Seen { protocol: string; method: string; path: string; status: number; acceptEncoding?: string; headers: Record<string, string | string[]> }

const sha256 = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

type Client = 'aioquic' | 'quic-go';
const CLIENTS: Client[] = ['aioquic', 'quic-go'];

/** One run of a peer client: one connection, every request with the same fields. */
interface H3Run {
  base: string;
  paths?: string[];
  method?: string;
  headers?: Array<[string, string]> | Record<string, string>;
  authority?: string;
  post?: { path: string; body?: Buffer | string; size?: number; type?: string; method?: string; noContentLength?: boolean; rate?: number };
  noRedirect?: boolean;
}

let bodyFiles: string | undefined;
let bodyFileCount = 0;

/** At most this many peer processes at once (each aioquic run is mostly Python start-up CPU). */
const MAX_PEERS = 3;
let peersRunning = 0;
const peerQueue: Array<() => void> = [];
async function peerSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (peersRunning >= MAX_PEERS) await new Promise<void>((resolve) => peerQueue.push(resolve));
  peersRunning++;
  try {
    return await fn();
  } finally {
    peersRunning--;
    peerQueue.shift()?.();
  }
}

/** Runs aioquic_h3.py or h3get with the same request(s); bodies up to 4 MB come back in body_b64. */
async function h3(client: Client, run: H3Run): Promise<PeerReport> {
  const headers = Array.isArray(run.headers) ? run.headers : Object.entries(run.headers ?? {});
  let bodyFile: string | undefined;
  if (run.post?.body !== undefined) {
    bodyFiles ??= fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-mw-h3-bodies-'));
    bodyFile = path.join(bodyFiles, `body-${++bodyFileCount}`);
    fs.writeFileSync(bodyFile, run.post.body);
  }
  const py = client === 'aioquic';
  const f = (name: string): string => (py ? `--${name}` : `-${name}`);
  const args = py
    ? [peerScript('aioquic_h3.py'), '--url-base', run.base, '--server-name', 'localhost']
    : ['-base', run.base, ...(run.noRedirect ? ['-no-redirect'] : [])];
  args.push(f('timeout'), '60', f('body-b64'), String(4_000_000));
  if (run.paths?.length) args.push(f('paths'), run.paths.join(','));
  if (run.method) args.push(f('method'), run.method);
  for (const [k, v] of headers) args.push(f('header'), `${k}: ${v}`);
  if (run.authority) args.push(f('authority'), run.authority);
  const p = run.post;
  if (p) {
    args.push(f('post'), p.path);
    if (bodyFile) args.push(f('body-file'), bodyFile);
    else args.push(f('post-size'), String(p.size ?? 0));
    if (p.type !== undefined) args.push(f('content-type'), p.type);
    if (p.method) args.push(f('post-method'), p.method);
    if (p.noContentLength) args.push(f('no-content-length'));
    if (p.rate) args.push(f('post-rate'), String(p.rate));
  }
  const { report, stderr } = await peerSlot(() => runPeer<PeerReport>(py ? python : goPeer('h3get'), args));
  assert.equal(report.error, null, `${client}: ${report.error}\n${stderr.slice(-2000)}`);
  assert.equal(report.ok, true);
  return report;
}

/** Independent runs at once (each is its own process and connection): the aioquic start-up dominates. */
const h3All = (client: Client, runs: H3Run[]): Promise<PeerReport[]> => Promise.all(runs.map((r) => h3(client, r)));

/** The body of a response, as sent (still content-coded). */
function bodyOf(r: PeerResponse): Buffer {
  assert.ok(r.body_b64 !== undefined, `body of ${r.path} reported`);
  const b = Buffer.from(r.body_b64, 'base64');
  assert.equal(b.byteLength, r.bytes);
  assert.equal(sha256(b), r.sha256);
  return b;
}

/** The body with its Content-Encoding undone. */
function decodedOf(r: PeerResponse): Buffer {
  const b = bodyOf(r);
  const enc = r.headers['content-encoding'];
  if (enc === 'br') return zlib.brotliDecompressSync(b);
  if (enc === 'gzip') return zlib.gunzipSync(b);
  assert.equal(enc, undefined);
  return b;
}

const jsonOf = (r: PeerResponse): unknown => JSON.parse(decodedOf(r).toString());
const VALUE = { a: [1, 2, 3], b: 'héllo', c: { d: null, e: true, f: 1.5 } };
const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(200); // 9000 bytes
const CLF = /^(\S+) - - \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] "(.*)" (\d{3}) (\d+|-)$/;

describe('middleware over HTTP/3 with independent clients (aioquic, quic-go)', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let server: Server;
  let base: string;
  let root: string;
  const files = new Map<string, Buffer>();
  const seen: Seen[] = [];
  const clfLines: string[] = [];
  const jsonLines: string[] = [];

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
    server.use(accessLog({ write: (l) => clfLines.push(l) }));
    server.use(accessLog({ format: 'json', write: (l) => jsonLines.push(l) }));
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
    server.patch('/strict', bodyParser({ strict: true }), (ctx) => { ctx.body = { got: ctx.state.body ?? null }; });
    const echo = (ctx: Context): void => { ctx.body = { present: 'body' in ctx.state, body: ctx.state.body ?? null }; };
    server.post('/echo', bodyParser(), echo);
    server.post('/small', bodyParser({ limit: 100 }), echo);
    server.post('/roundtrip', bodyParser(), (ctx) => respondWith(ctx, ctx.state.body));
    server.get('/codec', (ctx) => { ctx.body = VALUE; });
    server.get('/text', (ctx) => { ctx.body = TEXT; });
    server.get('/logged', (ctx) => { ctx.body = 'hello'; });
    const whoAmI = (ctx: Context): void => {
      const r = ctx.request;
      ctx.body = { remoteAddress: r.remoteAddress, scheme: r.scheme, authority: r.authority, protocol: r.protocol };
    };
    server.get('/fwd/trusted', forwarded({ trustedProxies: ['loopback'] }), whoAmI);
    server.get('/fwd/untrusted', forwarded({ trustedProxies: ['10.0.0.0/8', 'fd00::/8'] }), whoAmI);
    server.get('/hosted', allowedHosts(['localhost', '*.example.com']), (ctx) => { ctx.body = `hello ${ctx.request.hostname}`; });
    server.use(staticFiles(root));
    await server.listen();
    base = `https://127.0.0.1:${server.quicListeners[0].port}`;
  });

  after(async () => {
    await server?.close({ timeoutMs: 2000 });
    if (root) fs.rmSync(root, { recursive: true, force: true });
    if (bodyFiles) fs.rmSync(bodyFiles, { recursive: true, force: true });
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

  it('the same file over HTTP/3 and HTTP/2 carries the same headers, Date included (the pipeline is protocol-neutral)', async () => {
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
      // RFC 9110 §6.6.1: Date on both (HTTP/3 had none before the H3 sink added it), IMF-fixdate, now.
      for (const [proto, date] of [['h3', h3['date']], ['h2', h2['date']]] as const) {
        assert.match(String(date), /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/, proto);
        assert.ok(Math.abs(Date.parse(String(date)) - Date.now()) < 60_000, `${proto} date ${date}`);
      }
    } finally {
      session.close();
    }
  });

  // ---------------------------------------------------------------------------------------
  // Each rule below runs with both clients; the TCP counterpart is named in the describe.

  describe('compress over HTTP/3 (as test/unit/middleware/compress.test.ts)', () => {
    const COMPRESSIBLE_STATIC = ['/style.css', '/app.js', '/data.json', '/big.txt'];
    for (const client of CLIENTS) {
      for (const [ae, want] of [
        ['br', 'br'], ['gzip', 'gzip'], ['gzip, br', 'br'], ['gzip;q=1, br;q=0.5', 'gzip'], ['br;q=0, gzip', 'gzip'],
        ['*', 'br'], ['identity', undefined], ['gzip;q=0', undefined], ['deflate', undefined],
      ] as Array<[string, string | undefined]>) {
        it(`${client}: Accept-Encoding ${JSON.stringify(ae)} → ${want ?? 'identity'}, with Vary: Accept-Encoding`, async () => {
          const report = await h3(client, { base, paths: ['/text', ...COMPRESSIBLE_STATIC], headers: { 'accept-encoding': ae } });
          const text = byPath(report, '/text');
          assert.equal(text.status, 200);
          assert.equal(text.headers['content-encoding'], want);
          assert.equal(text.headers['vary'], 'Accept-Encoding');
          assert.equal(text.uncompressed, undefined, 'an explicit Accept-Encoding: the client hands over the coded bytes');
          assert.equal(decodedOf(text).toString(), TEXT);
          // A byte body keeps an exact Content-Length, compressed or not.
          assert.equal(text.headers['content-length'], String(text.bytes));
          if (want) assert.ok(text.bytes < TEXT.length / 5, `${text.bytes} bytes`);
          for (const p of COMPRESSIBLE_STATIC) {
            const r = byPath(report, p);
            assert.equal(r.status, 200, p);
            assert.equal(r.headers['content-encoding'], want, p);
            assert.equal(r.headers['vary'], 'Accept-Encoding', p);
            assert.equal(r.headers['content-type'], types[p], p);
            assert.ok(decodedOf(r).equals(files.get(p)!), `${p} decodes byte-exact`);
            assert.equal(r.headers['etag'], etagOf(p.slice(1)), `${p}: the weak ETag stays`);
            if (want) {
              // Compressed: a streamed (large) file has no Content-Length, a small one served from
              // staticFiles' memory cache has the exact coded length; no ranges on coded bytes.
              if (r.headers['content-length'] !== undefined) assert.equal(r.headers['content-length'], String(r.bytes), p);
              assert.equal(r.headers['accept-ranges'], undefined, p);
            } else {
              assert.equal(r.headers['content-length'], String(files.get(p)!.byteLength), p);
              assert.equal(r.headers['accept-ranges'], 'bytes', p);
            }
          }
        });
      }

      it(`${client}: not compressed: PNG (no Vary), small bodies, already-encoded types; JSON values are`, async () => {
        const report = await h3(client, { base, paths: ['/image.png', '/empty.txt', '/index.html', '/value', '/codec', '/data.json'], headers: { 'accept-encoding': 'br, gzip' } });
        const png = byPath(report, '/image.png');
        assert.equal(png.headers['content-encoding'], undefined);
        assert.equal(png.headers['vary'], undefined);
        assert.ok(bodyOf(png).equals(files.get('/image.png')!));
        for (const p of ['/empty.txt', '/index.html']) {
          const r = byPath(report, p);
          assert.equal(r.headers['content-encoding'], undefined, p);
          assert.ok(bodyOf(r).equals(files.get(p)!), p);
        }
        // Small JSON values stay identity; a JSON file over the threshold is compressed as JSON.
        assert.equal(byPath(report, '/value').headers['content-encoding'], undefined);
        assert.deepEqual(jsonOf(byPath(report, '/codec')), VALUE);
        const data = byPath(report, '/data.json');
        assert.equal(data.headers['content-encoding'], 'br');
        assert.equal(data.headers['content-type'], 'application/json; charset=utf-8');
        assert.deepEqual(jsonOf(data), JSON.parse(files.get('/data.json')!.toString()));
      });

      it(`${client}: HEAD is not compressed but says Vary: Accept-Encoding, with the identity Content-Length`, async () => {
        const report = await h3(client, { base, method: 'HEAD', paths: ['/big.txt', '/text'], headers: { 'accept-encoding': 'br' } });
        const r = byPath(report, '/big.txt');
        assert.equal(r.status, 200);
        assert.equal(r.method, 'HEAD');
        assert.equal(r.bytes, 0);
        assert.equal(r.headers['content-encoding'], undefined);
        assert.equal(r.headers['content-length'], String(files.get('/big.txt')!.byteLength));
        assert.equal(r.headers['vary'], 'Accept-Encoding');
        assert.equal(byPath(report, '/text').headers['content-encoding'], undefined);
        assert.equal(byPath(report, '/text').bytes, 0);
      });
    }
  });

  describe('staticFiles over HTTP/3 (as test/unit/middleware/static.test.ts)', () => {
    const conditionalPaths = ['/index.html', '/style.css', '/big.txt', '/image.png'];
    for (const client of CLIENTS) {
      it(`${client}: If-None-Match with the ETag (in a list, weakly compared) or "*" → 304 with validators, no body, not compressed`, async () => {
        const list = conditionalPaths.map((p) => etagOf(p.slice(1))).join(', ');
        const inms = [list, `"other", ${conditionalPaths.map((p) => etagOf(p.slice(1)).slice(2)).join(', ')}`, '*'];
        const [other, head, ...reports] = await h3All(client, [
          { base, paths: ['/index.html'], headers: { 'if-none-match': '"nope"' } },
          { base, method: 'HEAD', paths: ['/index.html'], headers: { 'if-none-match': etagOf('index.html') } },
          ...inms.map((inm) => ({ base, paths: conditionalPaths, headers: { 'if-none-match': inm, 'accept-encoding': 'br, gzip' } })),
        ]);
        for (const [i, inm] of inms.entries()) {
          const report = reports[i];
          for (const p of conditionalPaths) {
            const r = byPath(report, p);
            assert.equal(r.status, 304, `${p} with If-None-Match: ${inm}`);
            assert.equal(r.headers['etag'], etagOf(p.slice(1)), p);
            assert.equal(r.headers['last-modified'], lastModifiedOf(p.slice(1)), p);
            assert.equal(r.headers['content-length'], undefined, p);
            assert.equal(r.headers['content-encoding'], undefined, p);
            assert.equal(r.bytes, 0, p);
          }
        }
        assert.equal(byPath(other, '/index.html').status, 200);
        assert.ok(decodedOf(byPath(other, '/index.html')).equals(files.get('/index.html')!));
        assert.equal(byPath(head, '/index.html').status, 304);
      });

      it(`${client}: If-Modified-Since at or after Last-Modified → 304; before, or not a date → 200; If-None-Match wins`, async () => {
        const [exact, future, old, notADate, both] = await h3All(client, [
          { base, paths: ['/index.html'], headers: { 'if-modified-since': lastModifiedOf('index.html') } },
          { base, paths: conditionalPaths, headers: { 'if-modified-since': new Date(Date.now() + 86400_000).toUTCString() } },
          { base, paths: ['/index.html'], headers: { 'if-modified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' } },
          { base, paths: ['/index.html'], headers: { 'if-modified-since': 'yesterday' } },
          { base, paths: ['/index.html'], headers: { 'if-none-match': '"nope"', 'if-modified-since': lastModifiedOf('index.html') } },
        ]);
        assert.equal(byPath(exact, '/index.html').status, 304);
        assert.equal(byPath(exact, '/index.html').bytes, 0);
        for (const p of conditionalPaths) assert.equal(byPath(future, p).status, 304, p);
        assert.equal(byPath(old, '/index.html').status, 200);
        assert.equal(byPath(notADate, '/index.html').status, 200);
        assert.equal(byPath(both, '/index.html').status, 200);
      });

      it(`${client}: If-Match and If-Unmodified-Since → 412 when they fail (strong comparison)`, async () => {
        const p = '/index.html';
        const cases: Array<[Record<string, string>, number]> = [
          [{ 'if-match': '*' }, 200], [{ 'if-match': etagOf('index.html') }, 412], [{ 'if-match': '"nope"' }, 412],
          [{ 'if-unmodified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' }, 412], [{ 'if-unmodified-since': lastModifiedOf('index.html') }, 200],
        ];
        const reports = await h3All(client, cases.map(([headers]) => ({ base, paths: [p], headers })));
        for (const [i, [headers, status]] of cases.entries()) assert.equal(byPath(reports[i], p).status, status, JSON.stringify(headers));
      });

      it(`${client}: Range → 206 with Content-Range and the right bytes, never compressed`, async () => {
        const png = files.get('/image.png')!;
        const big = files.get('/big.txt')!;
        /** The range a single-range spec selects in a representation of `size` bytes. */
        const selected = (spec: string, size: number): [number, number] => {
          const m = /^bytes=(\d*)-(\d*)$/i.exec(spec)!;
          if (m[1] === '') return [Math.max(0, size - Number(m[2])), size - 1];
          return [Number(m[1]), m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)];
        };
        const specs = ['bytes=0-9', 'bytes=-10', 'bytes=49990-', 'bytes=10000-29999', 'bytes=49995-60000', 'BYTES=0-0'];
        const reports = await h3All(client, specs.map((spec) => ({ base, paths: ['/image.png', '/big.txt'], headers: { range: spec, 'accept-encoding': 'br, gzip' } })));
        for (const [i, spec] of specs.entries()) {
          const report = reports[i];
          // big.txt is compressible and the client accepts br: a 206 is still identity bytes.
          for (const [p, data] of [['/image.png', png], ['/big.txt', big]] as Array<[string, Buffer]>) {
            const [start, end] = selected(spec, data.byteLength);
            const r = byPath(report, p);
            assert.equal(r.status, 206, `${p} ${spec}`);
            assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${data.byteLength}`, `${p} ${spec}`);
            assert.equal(r.headers['content-length'], String(end - start + 1), `${p} ${spec}`);
            assert.equal(r.headers['content-encoding'], undefined, `${p} ${spec}`);
            assert.equal(r.headers['etag'], etagOf(p.slice(1)));
            assert.ok(bodyOf(r).equals(data.subarray(start, end + 1)), `${p} ${spec}: the right bytes`);
          }
        }
      });

      it(`${client}: Range past the end → 416 with Content-Range: bytes */size; several, invalid or stale ranges → 200`, async () => {
        const png = files.get('/image.png')!;
        const unsatisfiable = ['bytes=50000-', 'bytes=60000-70000', 'bytes=-0'];
        const ignored: Array<Record<string, string>> = [{ range: 'bytes=0-1,5-6' }, { range: 'bytes=5-1' }, { range: 'items=0-1' },
          { range: 'bytes=0-9', 'if-range': 'Sat, 01 Jan 2000 00:00:00 GMT' }, { range: 'bytes=0-9', 'if-range': etagOf('image.png') }];
        const [freshReport, emptyReport, headReport, ...reports] = await h3All(client, [
          { base, paths: ['/image.png'], headers: { range: 'bytes=0-9', 'if-range': lastModifiedOf('image.png') } },
          { base, paths: ['/empty.txt'], headers: { range: 'bytes=-5' } },
          { base, method: 'HEAD', paths: ['/image.png'], headers: { range: 'bytes=0-9' } },
          ...unsatisfiable.map((spec) => ({ base, paths: ['/image.png'], headers: { range: spec } })),
          ...ignored.map((headers) => ({ base, paths: ['/image.png'], headers })),
        ]);
        for (const [i, spec] of unsatisfiable.entries()) {
          const r = byPath(reports[i], '/image.png');
          assert.equal(r.status, 416, spec);
          assert.equal(r.headers['content-range'], 'bytes */50000', spec);
        }
        for (const [i, headers] of ignored.entries()) {
          const r = byPath(reports[unsatisfiable.length + i], '/image.png');
          assert.equal(r.status, 200, JSON.stringify(headers));
          assert.equal(r.headers['content-range'], undefined);
          assert.ok(bodyOf(r).equals(png), JSON.stringify(headers));
        }
        const fresh = byPath(freshReport, '/image.png');
        assert.equal(fresh.status, 206);
        assert.ok(bodyOf(fresh).equals(png.subarray(0, 10)));
        const empty = byPath(emptyReport, '/empty.txt');
        assert.equal(empty.status, 200);
        assert.equal(empty.headers['content-length'], '0');
        const head = byPath(headReport, '/image.png');
        assert.equal(head.status, 200, 'Range on HEAD is ignored');
        assert.equal(head.headers['content-length'], '50000');
      });

      it(`${client}: index files, directory redirect, content types, dotfiles, traversal refused`, async () => {
        // Go's URL parser refuses to send a malformed escape such as /%zz: aioquic only.
        const refused = ['/../etc/passwd', '/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd', '/sub/%2e%2e/%2e%2e/etc/passwd', '/a%00b',
          ...(client === 'aioquic' ? ['/%zz'] : [])];
        const report = await h3(client, {
          base, noRedirect: true, headers: { 'accept-encoding': 'identity' },
          paths: ['/', '/sub/', '/sub', '/sub?x=1', '/index.html', '/image.png', '/app.js', '/.env', '/missing.txt', ...refused],
        });
        assert.ok(bodyOf(byPath(report, '/')).equals(files.get('/index.html')!));
        assert.equal(byPath(report, '/').headers['content-type'], 'text/html; charset=utf-8');
        assert.ok(bodyOf(byPath(report, '/sub/')).equals(files.get('/sub/index.html')!));
        assert.equal(byPath(report, '/sub').status, 301);
        assert.equal(byPath(report, '/sub').headers['location'], '/sub/');
        assert.equal(byPath(report, '/sub?x=1').headers['location'], '/sub/?x=1');
        for (const p of ['/index.html', '/image.png', '/app.js']) {
          const r = byPath(report, p);
          assert.equal(r.headers['content-type'], types[p], p);
          assert.ok(bodyOf(r).equals(files.get(p)!), p);
        }
        assert.equal(byPath(report, '/.env').status, 404);
        assert.doesNotMatch(bodyOf(byPath(report, '/.env')).toString(), /SECRET/);
        assert.equal(byPath(report, '/missing.txt').status, 404);
        for (const p of refused) {
          const r = byPath(report, p);
          assert.equal(r.status, 400, p);
          assert.doesNotMatch(bodyOf(r).toString(), /root:/, p);
          assert.equal(lastSeen(p).protocol, 'h3');
        }
      });
    }
  });

  describe('bodyParser and negotiate over HTTP/3 (as test/unit/middleware/body.test.ts)', () => {
    for (const client of CLIENTS) {
      const post = (p: string, type: string | undefined, body: Buffer | string, extra: Partial<H3Run> & { method?: string; noContentLength?: boolean } = {}): Promise<PeerResponse> =>
        h3(client, { base, headers: extra.headers, post: { path: p, type, body, method: extra.method, noContentLength: extra.noContentLength } }).then((r) => r.post!);

      it(`${client}: application/json in → the value (also +json and an explicit utf-8 charset)`, async () => {
        const [r, problem, charset] = await Promise.all([
          post('/echo', 'application/json', JSON.stringify(VALUE)),
          post('/echo', 'application/problem+json', '{"x":1}'),
          post('/echo', 'Application/JSON; charset="UTF-8"', '[1]'),
        ]);
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
        assert.deepEqual(jsonOf(r), { present: true, body: VALUE });
        assert.deepEqual(jsonOf(problem), { present: true, body: { x: 1 } });
        assert.deepEqual(jsonOf(charset), { present: true, body: [1] });
        assert.equal(lastSeen('/echo').protocol, 'h3');
      });

      for (const type of ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']) {
        it(`${client}: ${type} in → the value (msgpackr)`, async () => {
          const r = await post('/echo', type, pack(VALUE));
          assert.equal(r.status, 200);
          assert.deepEqual(jsonOf(r), { present: true, body: VALUE });
        });
      }

      it(`${client}: malformed JSON or MessagePack → 400; JSON in another charset → 415; text/plain → a string`, async () => {
        const [badJson, badPack, trailing, latin1Json, text, latin1Text] = await Promise.all([
          post('/echo', 'application/json', '{"a":'),
          post('/echo', 'application/msgpack', pack(VALUE).subarray(0, 10)),
          post('/echo', 'application/msgpack', Buffer.concat([pack(1), Buffer.from([0x01])])),
          post('/echo', 'application/json; charset=latin1', '{}'),
          post('/echo', 'text/plain', 'héllo'),
          post('/echo', 'text/plain; charset=iso-8859-1', Buffer.from([0x68, 0xe9])),
        ]);
        assert.equal(badJson.status, 400);
        assert.match(decodedOf(badJson).toString(), /^malformed JSON: /);
        assert.equal(badPack.status, 400);
        assert.match(decodedOf(badPack).toString(), /^malformed MessagePack: /);
        assert.equal(trailing.status, 400, 'bytes after the MessagePack value');
        assert.equal(latin1Json.status, 415);
        assert.deepEqual(jsonOf(text), { present: true, body: 'héllo' });
        assert.deepEqual(jsonOf(latin1Text), { present: true, body: 'hé' });
      });

      it(`${client}: an unsupported type is left unread; with strict it is 415 with Accept-Post / Accept-Patch`, async () => {
        seen.length = 0;
        const [unread, r, patch, empty] = await Promise.all([
          post('/echo', 'application/xml', '<a/>'),
          post('/strict', 'application/xml', '<a/>'),
          post('/strict', 'application/xml', '<a/>', { method: 'PATCH' }),
          post('/strict', 'application/json', ''),
        ]);
        assert.deepEqual(jsonOf(unread), { present: false, body: null });
        assert.equal(r.status, 415);
        assert.equal(r.headers['accept-post'], 'application/json, application/msgpack, text/plain');
        assert.equal(patch.status, 415);
        assert.equal(patch.headers['accept-patch'], 'application/json, application/msgpack, text/plain');
        assert.ok(seen.some((x) => x.method === 'PATCH' && x.path === '/strict' && x.protocol === 'h3'), 'the server saw PATCH over HTTP/3');
        assert.deepEqual(jsonOf(empty), { got: null }, 'no body: nothing parsed, even with strict');
      });

      it(`${client}: over the bodyParser limit → 413, whether Content-Length says so or the streamed bytes do`, async () => {
        const [declared, streamed, fits] = await Promise.all([
          post('/small', 'application/json', JSON.stringify({ s: 'x'.repeat(200) })),
          post('/small', 'application/json', JSON.stringify({ s: 'x'.repeat(500) }), { noContentLength: true }),
          post('/small', 'application/json', JSON.stringify({ s: 'x'.repeat(50) }), { noContentLength: true }),
        ]);
        assert.equal(declared.status, 413);
        assert.match(decodedOf(declared).toString(), /over 100 bytes/);
        assert.equal(streamed.status, 413);
        assert.match(decodedOf(streamed).toString(), /over 100 bytes/);
        assert.equal(fits.status, 200);
        assert.deepEqual(jsonOf(fits), { present: true, body: { s: 'x'.repeat(50) } });
      });

      it(`${client}: a gzip or br request body is decoded; a gzip bomb is 413; broken gzip 400; an unknown coding 415`, async () => {
        const [gz, br, bomb, broken, unknown] = await Promise.all([
          post('/echo', 'application/json', zlib.gzipSync(JSON.stringify(VALUE)), { headers: { 'content-encoding': 'gzip' } }),
          post('/echo', 'application/json', zlib.brotliCompressSync(JSON.stringify(VALUE)), { headers: { 'content-encoding': 'br' } }),
          post('/small', 'application/json', zlib.gzipSync(Buffer.alloc(10_000_000, 0x20)), { headers: { 'content-encoding': 'gzip' } }),
          post('/echo', 'application/json', 'not gzip at all', { headers: { 'content-encoding': 'gzip' } }),
          post('/echo', 'application/json', 'x', { headers: { 'content-encoding': 'compress' } }),
        ]);
        assert.deepEqual(jsonOf(gz), { present: true, body: VALUE });
        assert.deepEqual(jsonOf(br), { present: true, body: VALUE });
        assert.equal(bomb.status, 413, 'the limit applies to the decoded size');
        assert.equal(broken.status, 400);
        assert.equal(unknown.status, 415);
        assert.equal(unknown.headers['accept-encoding'], 'gzip, deflate, br');
      });

      for (const [accept, want] of [
        ['application/msgpack', 'application/msgpack'],
        ['application/x-msgpack', 'application/x-msgpack'],
        ['application/json', 'application/json; charset=utf-8'],
        ['application/json;q=0, */*', 'application/msgpack'],
        ['application/msgpack;q=0.5, application/x-msgpack', 'application/x-msgpack'],
        ['text/html', 'application/json; charset=utf-8'],
      ] as Array<[string, string]>) {
        it(`${client}: Accept: ${accept} → ${want}, with Vary: Accept and an exact Content-Length`, async () => {
          const r = byPath(await h3(client, { base, paths: ['/codec'], headers: { accept } }), '/codec');
          assert.equal(r.status, 200);
          assert.equal(r.headers['content-type'], want);
          assert.equal(r.headers['vary'], 'Accept');
          assert.equal(r.headers['content-length'], String(r.bytes));
          const b = decodedOf(r);
          assert.deepEqual(want.startsWith('application/json') ? JSON.parse(b.toString()) : unpack(b), VALUE);
        });
      }

      it(`${client}: MessagePack in, MessagePack out (application/msgpack and application/x-msgpack)`, async () => {
        const msgpackTypes = ['application/msgpack', 'application/x-msgpack'];
        const replies = await Promise.all(msgpackTypes.map((type) => post('/roundtrip', type, pack(VALUE), { headers: { accept: type } })));
        for (const [i, type] of msgpackTypes.entries()) {
          const r = replies[i];
          assert.equal(r.status, 200);
          assert.equal(r.headers['content-type'], type);
          assert.deepEqual(unpack(decodedOf(r)), VALUE);
        }
      });
    }
  });

  describe('forwarded over HTTP/3 (as test/unit/middleware/forwarded.test.ts)', () => {
    for (const client of CLIENTS) {
      it(`${client}: X-Forwarded-* and Forwarded rewrite the request from a trusted proxy (loopback) only`, async () => {
        const authority = `127.0.0.1:${server.quicListeners[0].port}`;
        const xff = { 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'shop.example' };
        const [trusted, rfc, chain] = await h3All(client, [
          { base, paths: ['/fwd/trusted', '/fwd/untrusted'], headers: xff },
          { base, paths: ['/fwd/trusted', '/fwd/untrusted'], headers: { forwarded: 'for="[2001:db8::5]:1234";proto=https;host=api.example', 'x-forwarded-for': '6.6.6.6' } },
          { base, paths: ['/fwd/trusted'], headers: { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 127.0.0.1' } },
        ]);
        assert.deepEqual(jsonOf(byPath(trusted, '/fwd/trusted')), { remoteAddress: '198.51.100.1', scheme: 'http', authority: 'shop.example', protocol: 'h3' });
        assert.deepEqual(jsonOf(byPath(trusted, '/fwd/untrusted')), { remoteAddress: '127.0.0.1', scheme: 'https', authority, protocol: 'h3' },
          'the peer (127.0.0.1) is not a trusted proxy there: the headers are ignored');
        assert.deepEqual(jsonOf(byPath(rfc, '/fwd/trusted')), { remoteAddress: '2001:db8::5', scheme: 'https', authority: 'api.example', protocol: 'h3' });
        assert.deepEqual(jsonOf(byPath(rfc, '/fwd/untrusted')), { remoteAddress: '127.0.0.1', scheme: 'https', authority, protocol: 'h3' });
        assert.equal((jsonOf(byPath(chain, '/fwd/trusted')) as { remoteAddress: string }).remoteAddress, '2.2.2.2', 'walked from the right, stops at the first untrusted');
      });
    }
  });

  describe('allowedHosts over HTTP/3 (as test/unit/middleware/hosts.test.ts)', () => {
    for (const client of CLIENTS) {
      it(`${client}: an allowed :authority is served; another gets 400 Invalid Hostname`, async () => {
        const port = server.quicListeners[0].port;
        const cases: Array<[string, number, string]> = [
          [`localhost:${port}`, 200, 'hello localhost'], ['API.example.com', 200, 'hello api.example.com'], [`a.b.example.com:${port}`, 200, 'hello a.b.example.com'],
          [`127.0.0.1:${port}`, 400, 'Invalid Hostname'], ['example.com', 400, 'Invalid Hostname'], ['evil.com', 400, 'Invalid Hostname'],
        ];
        const reports = await h3All(client, cases.map(([authority]) => ({ base, paths: ['/hosted'], authority })));
        for (const [i, [authority, status, body]] of cases.entries()) {
          const r = byPath(reports[i], '/hosted');
          assert.equal(r.status, status, authority);
          assert.equal(decodedOf(r).toString(), body, authority);
        }
      });
    }
  });

  describe('accessLog over HTTP/3 (as test/unit/middleware/log.test.ts)', () => {
    for (const client of CLIENTS) {
      it(`${client}: one Common Log Format line and one JSON line per request, protocol HTTP/3`, async () => {
        clfLines.length = 0;
        jsonLines.length = 0;
        const t0 = Date.now();
        await h3(client, {
          base, paths: ['/logged?x=1', '/nowhere.txt'], headers: { 'user-agent': `harrier-log-test (${client})`, 'accept-encoding': 'identity' },
          post: { path: '/echo', type: 'application/json', body: '{"a":1}' },
        });
        await new Promise((r) => setTimeout(r, 50));
        const clf = clfLines.map((l) => CLF.exec(l)).filter((m): m is RegExpExecArray => m !== null);
        assert.equal(clf.length, clfLines.length, clfLines.join('\n'));
        const byTarget = new Map(clf.map((m) => [m[3], m]));
        const logged = byTarget.get('GET /logged?x=1 HTTP/3');
        assert.ok(logged, clfLines.join('\n'));
        assert.deepEqual([logged[1], logged[4], logged[5]], ['127.0.0.1', '200', '5']);
        assert.deepEqual(byTarget.get('GET /nowhere.txt HTTP/3')?.slice(4), ['404', '9']);
        assert.deepEqual(byTarget.get('POST /echo HTTP/3')?.slice(4), ['200', String('{"present":true,"body":{"a":1}}'.length)]);
        const rec = jsonLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((x) => x.path === '/logged?x=1');
        assert.ok(rec, jsonLines.join('\n'));
        assert.deepEqual(Object.keys(rec), ['time', 'remote', 'method', 'path', 'protocol', 'status', 'bytes', 'durationMs', 'userAgent']);
        assert.deepEqual([rec.remote, rec.method, rec.protocol, rec.status, rec.bytes, rec.userAgent],
          ['127.0.0.1', 'GET', 'HTTP/3', 200, 5, `harrier-log-test (${client})`]);
        assert.ok(Math.abs(Date.parse(String(rec.time)) - t0) < 5000);
      });
    }
  });

  describe('limits over HTTP/3 (as test/integration/server-limits.test.ts)', () => {
    let limited: Server;
    let limitedBase: string;
    const bodyErrors: string[] = [];

    before(async () => {
      limited = createServer({
        endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3'] }], tls: { cert: cert.certFile, key: cert.keyFile },
        limits: { maxRequestBodySize: 1_000_000, minRequestBodyDataRate: 2000, minRequestBodyDataRateGraceMs: 1000 },
      });
      limited.on('error', () => undefined);
      limited.get('/hello', (ctx) => { ctx.body = 'hello'; });
      limited.post('/consume', async (ctx) => {
        try {
          ctx.body = { bytes: (await ctx.request.bytes(Infinity)).byteLength };
        } catch (err) {
          bodyErrors.push((err as { code: string }).code);
          throw err;
        }
      });
      await limited.listen();
      limitedBase = `https://127.0.0.1:${limited.quicListeners[0].port}`;
    });

    after(async () => {
      await limited?.close({ timeoutMs: 2000 });
    });

    for (const client of CLIENTS) {
      it(`${client}: 413 when the streamed body (no content-length) passes maxRequestBodySize; under it, 200`, async () => {
        bodyErrors.length = 0;
        const [over, under] = await h3All(client, [
          { base: limitedBase, post: { path: '/consume', size: 1_500_000, noContentLength: true } },
          { base: limitedBase, post: { path: '/consume', size: 999_999, noContentLength: true } },
        ]);
        assert.equal(over.post?.status, 413);
        assert.match(decodedOf(over.post!).toString(), /over 1000000 bytes/);
        assert.deepEqual(bodyErrors, ['HARRIER_ERR_BODY_TOO_LARGE']);
        assert.equal(under.post?.status, 200);
        assert.deepEqual(jsonOf(under.post!), { bytes: 999_999 });
      });

      it(`${client}: 431 for too many header fields and for too many header bytes; 20 KiB of fields is fine`, async () => {
        const many = Array.from({ length: 150 }, (_, i) => [`x-h${i}`, 'v'] as [string, string]);
        const [count, bytes, fine] = await h3All(client, [
          { base: limitedBase, paths: ['/hello'], headers: many },
          { base: limitedBase, paths: ['/hello'], headers: { 'x-big': 'a'.repeat(40 * 1024) } },
          { base: limitedBase, paths: ['/hello'], headers: { 'x-ok': 'a'.repeat(20 * 1024) } },
        ]);
        assert.equal(byPath(count, '/hello').status, 431, '150 fields (maxRequestHeaderCount 100)');
        assert.equal(byPath(bytes, '/hello').status, 431, '40 KiB of fields (maxRequestHeadersTotalSize 32 KiB)');
        const ok = byPath(fine, '/hello');
        assert.equal(ok.status, 200);
        assert.equal(bodyOf(ok).toString(), 'hello');
      });

      it(`${client}: a body slower than minRequestBodyDataRate after the grace period gets 408; a good rate does not`, async () => {
        bodyErrors.length = 0;
        const t0 = Date.now();
        let slowMs = 0;
        const [slow, good] = await Promise.all([
          // 500 B/s against 2000 B/s
          h3(client, { base: limitedBase, post: { path: '/consume', size: 100_000, rate: 500 } }).then((r) => ((slowMs = Date.now() - t0), r)),
          h3(client, { base: limitedBase, post: { path: '/consume', size: 15_000, rate: 6000 } }),
        ]);
        assert.equal(slow.post?.status, 408, JSON.stringify(slow.post));
        assert.ok(slowMs < 6000, `${slowMs} ms`);
        assert.ok(slow.post!.sent_bytes < 100_000, 'cut before the whole body went out');
        assert.deepEqual(bodyErrors, ['HARRIER_ERR_BODY_TIMEOUT']);
        assert.equal(good.post?.status, 200);
        assert.deepEqual(jsonOf(good.post!), { bytes: 15_000 });
      });
    }
  });
});
