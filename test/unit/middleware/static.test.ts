import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseHttpDate, parseRange, requestSegments, staticFiles } from '../../../src/http/middleware/static';
import { PROTOCOLS, TestServer } from './http-client';

/**
 * A site under <tmp>/site, with things outside it to escape to: <tmp>/outside (a secret) and
 * <tmp>/site-secret (whose name starts with the root's, to catch a bare prefix check).
 */
function makeSite(): { tmp: string; root: string; big: Buffer; bin: Buffer } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-static-'));
  const root = path.join(tmp, 'site');
  const w = (rel: string, data: string | Buffer): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  };
  const bin = crypto.createHash('shake128', { outputLength: 1000 }).update('bin').digest();
  const big = crypto.createHash('shake128', { outputLength: 3_000_000 }).update('big').digest();
  w('index.html', '<h1>home</h1>\n');
  w('hello.txt', 'Hello, world!\n');
  w('data.bin', bin);
  w('big.bin', big);
  w('app.js', 'export const x = 1;\n');
  w('style.css', 'body{}\n');
  w('image.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  w('empty.txt', '');
  w('with space.txt', 'spaced\n');
  w('sub/index.html', '<h1>sub</h1>\n');
  w('nodir/file.txt', 'x');
  w('.env', 'SECRET=1\n');
  w('.hidden/x.txt', 'hidden\n');
  fs.mkdirSync(path.join(tmp, 'outside'));
  fs.writeFileSync(path.join(tmp, 'outside', 'secret.txt'), 'outside secret\n');
  fs.mkdirSync(path.join(tmp, 'site-secret'));
  fs.writeFileSync(path.join(tmp, 'site-secret', 'secret.txt'), 'sibling secret\n');
  fs.symlinkSync(path.join(root, 'hello.txt'), path.join(root, 'link-inside.txt'));
  fs.symlinkSync(path.join(tmp, 'outside', 'secret.txt'), path.join(root, 'link-outside.txt'));
  fs.symlinkSync(path.join(tmp, 'outside'), path.join(root, 'dir-outside'));
  fs.symlinkSync('../site-secret/secret.txt', path.join(root, 'link-sibling.txt'));
  spawnSync('mkfifo', [path.join(root, 'fifo')]);
  return { tmp, root, big, bin };
}

describe('staticFiles', function () {
  this.timeout(60_000);
  const site = makeSite();
  let main: TestServer;
  let strict: TestServer;
  let open: TestServer;
  const bodies: unknown[] = [];

  before(async () => {
    main = await TestServer.start((s) => {
      s.use(async (ctx, next) => {
        await next();
        bodies.push(ctx.body);
      });
      s.use(staticFiles(site.root));
      s.use(async (ctx) => {
        ctx.body = `fell through: ${ctx.method} ${ctx.path}`;
      });
    });
    strict = await TestServer.start((s) => s.use(staticFiles(site.root, { fallthrough: false, dotfiles: 'deny', maxAge: 3600, immutable: true })));
    open = await TestServer.start((s) => s.use(staticFiles(site.root, { dotfiles: 'allow', etag: false, lastModified: false, index: [] })));
  });

  after(async () => {
    await Promise.all([main.close(), strict.close(), open.close()]);
    fs.rmSync(site.tmp, { recursive: true, force: true });
  });

  const stat = (rel: string): fs.Stats => fs.statSync(path.join(site.root, rel));
  const etagOf = (rel: string): string => {
    const s = stat(rel);
    return `W/"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`;
  };
  const lastModifiedOf = (rel: string): string => new Date(Math.floor(stat(rel).mtimeMs / 1000) * 1000).toUTCString();

  for (const proto of PROTOCOLS) {
    describe(`over ${proto}`, () => {
      const get = (p: string, headers?: Record<string, string>, method = 'GET', server = (): TestServer => main) =>
        server().request(proto, p, { method, headers });

      it('serves a file with Content-Type, Content-Length, weak ETag, Last-Modified, Accept-Ranges', async () => {
        const r = await get('/hello.txt');
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'Hello, world!\n');
        assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(r.headers['content-length'], '14');
        assert.equal(r.headers['etag'], etagOf('hello.txt'));
        assert.match(r.headers['etag'], /^W\/"[0-9a-f]+-[0-9a-f]+"$/);
        assert.equal(r.headers['last-modified'], lastModifiedOf('hello.txt'));
        assert.equal(r.headers['accept-ranges'], 'bytes');
        assert.equal(r.headers['cache-control'], undefined);
      });

      it('picks the media type from the extension; unknown is application/octet-stream', async () => {
        const cases: Array<[string, string]> = [
          ['/app.js', 'text/javascript; charset=utf-8'],
          ['/style.css', 'text/css; charset=utf-8'],
          ['/index.html', 'text/html; charset=utf-8'],
          ['/image.png', 'image/png'],
          ['/data.bin', 'application/octet-stream'],
        ];
        for (const [p, type] of cases) assert.equal((await get(p)).headers['content-type'], type, p);
      });

      it('streams a 3 MB file from a file stream, byte-exact', async () => {
        bodies.length = 0;
        const r = await get('/big.bin');
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-length'], String(site.big.byteLength));
        assert.ok(r.body.equals(site.big));
        assert.ok(bodies[0] instanceof fs.ReadStream, 'the body is a file stream, not a buffer');
      });

      it('decodes percent-encoded names', async () => {
        const r = await get('/with%20space.txt');
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'spaced\n');
      });

      it('HEAD: the GET headers, no body (RFC 9110 §9.3.2)', async () => {
        const r = await get('/hello.txt', {}, 'HEAD');
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-length'], '14');
        assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(r.headers['etag'], etagOf('hello.txt'));
        assert.equal(r.body.byteLength, 0);
      });

      it('an empty file is 200 with Content-Length 0', async () => {
        const r = await get('/empty.txt');
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-length'], '0');
        assert.equal(r.body.byteLength, 0);
      });

      describe('conditional requests (RFC 9110 §13)', () => {
        it('If-None-Match with the ETag, weakly compared, in a list, or "*" → 304 with validators and no body', async () => {
          const etag = etagOf('hello.txt');
          for (const inm of [etag, etag.slice(2), `"other", ${etag}`, '*']) {
            const r = await get('/hello.txt', { 'if-none-match': inm });
            assert.equal(r.status, 304, inm);
            assert.equal(r.headers['etag'], etag);
            assert.equal(r.headers['last-modified'], lastModifiedOf('hello.txt'));
            assert.equal(r.headers['content-length'], undefined);
            assert.equal(r.body.byteLength, 0);
          }
          assert.equal((await get('/hello.txt', { 'if-none-match': '"nope"' })).status, 200);
        });

        it('If-None-Match on HEAD → 304 too', async () => {
          assert.equal((await get('/hello.txt', { 'if-none-match': etagOf('hello.txt') }, 'HEAD')).status, 304);
        });

        it('If-Modified-Since at or after Last-Modified → 304; before, or not a date → 200', async () => {
          const lm = lastModifiedOf('hello.txt');
          assert.equal((await get('/hello.txt', { 'if-modified-since': lm })).status, 304);
          assert.equal((await get('/hello.txt', { 'if-modified-since': new Date(Date.now() + 86400_000).toUTCString() })).status, 304);
          assert.equal((await get('/hello.txt', { 'if-modified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' })).status, 200);
          assert.equal((await get('/hello.txt', { 'if-modified-since': 'yesterday' })).status, 200);
        });

        it('If-None-Match takes precedence over If-Modified-Since (§13.1.3)', async () => {
          const r = await get('/hello.txt', { 'if-none-match': '"nope"', 'if-modified-since': lastModifiedOf('hello.txt') });
          assert.equal(r.status, 200);
        });

        it('If-Match "*" → 200; our weak ETag or another tag → 412 (strong comparison, §13.1.1)', async () => {
          assert.equal((await get('/hello.txt', { 'if-match': '*' })).status, 200);
          assert.equal((await get('/hello.txt', { 'if-match': etagOf('hello.txt') })).status, 412);
          assert.equal((await get('/hello.txt', { 'if-match': '"nope"' })).status, 412);
        });

        it('If-Unmodified-Since before Last-Modified → 412; after → 200; ignored with If-Match (§13.1.4)', async () => {
          assert.equal((await get('/hello.txt', { 'if-unmodified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' })).status, 412);
          assert.equal((await get('/hello.txt', { 'if-unmodified-since': lastModifiedOf('hello.txt') })).status, 200);
          assert.equal((await get('/hello.txt', { 'if-match': '*', 'if-unmodified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' })).status, 200);
        });

        it('412 from If-Match wins over 304 from If-None-Match (§13.2.2 order)', async () => {
          const r = await get('/hello.txt', { 'if-match': '"nope"', 'if-none-match': etagOf('hello.txt') });
          assert.equal(r.status, 412);
        });

        it('accepts the obsolete rfc850 and asctime date forms (RFC 9110 §5.6.7)', async () => {
          assert.equal((await get('/hello.txt', { 'if-modified-since': 'Sunday, 06-Nov-94 08:49:37 GMT' })).status, 200);
          assert.equal((await get('/hello.txt', { 'if-modified-since': 'Sun Nov  6 08:49:37 2094' })).status, 304);
        });
      });

      describe('byte ranges (RFC 9110 §14)', () => {
        const range = (spec: string, extra: Record<string, string> = {}) => get('/data.bin', { range: spec, ...extra });

        for (const [spec, start, end] of [
          ['bytes=0-9', 0, 9], ['bytes=990-', 990, 999], ['bytes=-10', 990, 999], ['bytes=995-2000', 995, 999],
          ['bytes=-2000', 0, 999], ['BYTES=0-0', 0, 0], ['bytes=10-19', 10, 19],
        ] as Array<[string, number, number]>) {
          it(`${spec} → 206 bytes ${start}-${end}/1000`, async () => {
            const r = await range(spec);
            assert.equal(r.status, 206);
            assert.equal(r.headers['content-range'], `bytes ${start}-${end}/1000`);
            assert.equal(r.headers['content-length'], String(end - start + 1));
            assert.ok(r.body.equals(site.bin.subarray(start, end + 1)));
            assert.equal(r.headers['etag'], etagOf('data.bin'));
          });
        }

        it('a range in a 3 MB file streams just that part', async () => {
          const r = await get('/big.bin', { range: 'bytes=1000000-1999999' });
          assert.equal(r.status, 206);
          assert.ok(r.body.equals(site.big.subarray(1_000_000, 2_000_000)));
        });

        it('first-pos at or past the end → 416 with Content-Range: bytes */1000 (§15.5.17)', async () => {
          for (const spec of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0', 'bytes=1000-1001,2000-2001']) {
            const r = await range(spec);
            assert.equal(r.status, 416, spec);
            assert.equal(r.headers['content-range'], 'bytes */1000');
          }
        });

        it('several ranges → the whole file, 200 (documented choice, §14.2 allows ignoring Range)', async () => {
          const r = await range('bytes=0-1,5-6');
          assert.equal(r.status, 200);
          assert.equal(r.body.byteLength, 1000);
          assert.equal(r.headers['content-range'], undefined);
        });

        it('invalid ranges and other units are ignored → 200', async () => {
          for (const spec of ['bytes=5-1', 'items=0-1', 'bytes=abc', 'bytes=', '0-5']) {
            const r = await range(spec);
            assert.equal(r.status, 200, spec);
            assert.equal(r.body.byteLength, 1000);
          }
        });

        it('Range on HEAD is ignored (range handling is defined for GET only)', async () => {
          const r = await get('/data.bin', { range: 'bytes=0-9' }, 'HEAD');
          assert.equal(r.status, 200);
          assert.equal(r.headers['content-length'], '1000');
        });

        it('an empty file ignores Range → 200', async () => {
          const r = await get('/empty.txt', { range: 'bytes=-5' });
          assert.equal(r.status, 200);
          assert.equal(r.headers['content-length'], '0');
        });

        it('If-Range with the exact Last-Modified → 206; another date → 200 (§13.1.5)', async () => {
          const ok = await range('bytes=0-9', { 'if-range': lastModifiedOf('data.bin') });
          assert.equal(ok.status, 206);
          const stale = await range('bytes=0-9', { 'if-range': 'Sat, 01 Jan 2000 00:00:00 GMT' });
          assert.equal(stale.status, 200);
          assert.equal(stale.body.byteLength, 1000);
        });

        it('If-Range with a weak ETag never matches (strong comparison) → 200', async () => {
          const r = await range('bytes=0-9', { 'if-range': etagOf('data.bin') });
          assert.equal(r.status, 200);
          assert.equal(r.body.byteLength, 1000);
        });

        it('a satisfied If-None-Match is 304 even with Range (§13.2.2: preconditions first)', async () => {
          assert.equal((await range('bytes=0-9', { 'if-none-match': etagOf('data.bin') })).status, 304);
        });
      });

      describe('paths', () => {
        for (const p of ['/../etc/passwd', '/%2e%2e/etc/passwd', '/%2E%2E/%2E%2E/etc/passwd', '/sub/../../etc/passwd',
          '/..%2f..%2fetc%2fpasswd', '/sub/%2e%2e/%2e%2e/site-secret/secret.txt']) {
          it(`${p} → 400 (climbs above the root)`, async () => {
            const r = await get(p);
            assert.equal(r.status, 400);
            assert.doesNotMatch(r.body.toString(), /secret|root:/);
          });
        }

        it('an encoded NUL → 400', async () => {
          assert.equal((await get('/hello.txt%00.png')).status, 400);
        });

        it('malformed percent-encoding → 400', async () => {
          assert.equal((await get('/%E0%A4%A')).status, 400);
          assert.equal((await get('/%zz')).status, 400);
        });

        it('dot-segments that stay inside the root are resolved (RFC 3986 §5.2.4)', async () => {
          const r = await get('/sub/../hello.txt');
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), 'Hello, world!\n');
        });

        it('a symlink inside the root is followed', async () => {
          const r = await get('/link-inside.txt');
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), 'Hello, world!\n');
          assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
        });

        it('symlinks out of the root (file, directory, sibling with the same prefix) are not served', async () => {
          for (const p of ['/link-outside.txt', '/dir-outside/secret.txt', '/link-sibling.txt']) {
            const r = await get(p);
            assert.equal(r.body.toString(), `fell through: GET ${p}`, p);
          }
          const r = await get('/link-outside.txt', {}, 'GET', () => strict);
          assert.equal(r.status, 404);
          assert.doesNotMatch(r.body.toString(), /secret/);
        });

        it('a FIFO under the root is not opened for reading (no hang) → not found', async () => {
          const r = await get('/fifo', {}, 'GET', () => strict);
          assert.equal(r.status, 404);
        });

        it('dotfiles: ignored by default (falls through), 403 with deny, served with allow', async () => {
          assert.equal((await get('/.env')).body.toString(), 'fell through: GET /.env');
          assert.equal((await get('/.hidden/x.txt')).body.toString(), 'fell through: GET /.hidden/x.txt');
          assert.equal((await get('/%2Eenv')).body.toString(), 'fell through: GET /%2Eenv');
          assert.equal((await get('/.env', {}, 'GET', () => strict)).status, 403);
          const r = await get('/.env', {}, 'GET', () => open);
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), 'SECRET=1\n');
        });
      });

      describe('directories', () => {
        it('/ serves index.html', async () => {
          const r = await get('/');
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), '<h1>home</h1>\n');
          assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
        });

        it('/sub → 301 Location /sub/ (query kept); /sub/ serves its index', async () => {
          const r = await get('/sub');
          assert.equal(r.status, 301);
          assert.equal(r.headers['location'], '/sub/');
          assert.equal((await get('/sub?x=1')).headers['location'], '/sub/?x=1');
          const idx = await get('/sub/');
          assert.equal(idx.status, 200);
          assert.equal(idx.body.toString(), '<h1>sub</h1>\n');
        });

        it('//sub redirects to /sub/, not to the host "sub" (no open redirect)', async () => {
          const r = await get('//sub');
          assert.equal(r.status, 301);
          assert.equal(r.headers['location'], '/sub/');
        });

        it('a directory without an index, or with index: [], is not found (no listings)', async () => {
          assert.equal((await get('/nodir/')).body.toString(), 'fell through: GET /nodir/');
          assert.equal((await get('/', {}, 'GET', () => open)).status, 404);
        });

        it('a file named with a trailing slash is not found', async () => {
          assert.equal((await get('/hello.txt/')).body.toString(), 'fell through: GET /hello.txt/');
        });
      });

      describe('methods and fallthrough', () => {
        it('a missing file goes to the next middleware; without fallthrough it is 404', async () => {
          assert.equal((await get('/missing.txt')).body.toString(), 'fell through: GET /missing.txt');
          assert.equal((await get('/missing.txt', {}, 'GET', () => strict)).status, 404);
        });

        it('POST goes to the next middleware; without fallthrough, POST on a file → 405 Allow: GET, HEAD', async () => {
          assert.equal((await get('/hello.txt', {}, 'POST')).body.toString(), 'fell through: POST /hello.txt');
          const r = await get('/hello.txt', {}, 'POST', () => strict);
          assert.equal(r.status, 405);
          assert.equal(r.headers['allow'], 'GET, HEAD');
          assert.equal((await get('/missing.txt', {}, 'DELETE', () => strict)).status, 404);
        });
      });

      describe('options', () => {
        it('maxAge + immutable → Cache-Control, on 200 and on 304', async () => {
          const r = await get('/hello.txt', {}, 'GET', () => strict);
          assert.equal(r.headers['cache-control'], 'public, max-age=3600, immutable');
          const nm = await get('/hello.txt', { 'if-none-match': r.headers['etag'] }, 'GET', () => strict);
          assert.equal(nm.status, 304);
          assert.equal(nm.headers['cache-control'], 'public, max-age=3600, immutable');
        });

        it('etag: false and lastModified: false leave them out, and conditionals on them are ignored', async () => {
          const r = await get('/hello.txt', { 'if-modified-since': new Date(Date.now() + 86400_000).toUTCString() }, 'GET', () => open);
          assert.equal(r.status, 200);
          assert.equal(r.headers['etag'], undefined);
          assert.equal(r.headers['last-modified'], undefined);
        });
      });
    });
  }

  describe('helpers', () => {
    it('requestSegments removes dot-segments and refuses to climb', () => {
      assert.deepEqual(requestSegments('/a/b'), ['a', 'b']);
      assert.deepEqual(requestSegments('/a/b/'), ['a', 'b', '']);
      assert.deepEqual(requestSegments('/a/./b/../c'), ['a', 'c']);
      assert.deepEqual(requestSegments('/a/..'), ['']);
      assert.deepEqual(requestSegments('/a//b'), ['a', 'b']);
      assert.deepEqual(requestSegments('/'), ['']);
      assert.throws(() => requestSegments('/..'), { status: 400 });
      assert.throws(() => requestSegments('/a/../..'), { status: 400 });
      assert.throws(() => requestSegments('/%00'), { status: 400 });
    });

    it('parseRange', () => {
      assert.deepEqual(parseRange('bytes=0-0', 1), { start: 0, end: 0 });
      assert.deepEqual(parseRange('bytes=-1', 10), { start: 9, end: 9 });
      assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
      assert.equal(parseRange('bytes=0-1,3-4', 10), undefined);
      assert.equal(parseRange('bytes=1-0', 10), undefined);
      assert.equal(parseRange('bytes=-', 10), undefined);
      // HTTP/2 refuses field values with outer whitespace, so this is checked here.
      assert.deepEqual(parseRange('bytes= 10-19 , ', 100), { start: 10, end: 19 });
    });

    it('parseHttpDate: the three forms of RFC 9110 §5.6.7 give the same instant', () => {
      const t = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;
      assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
      assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
      assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
      assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 UTC'), undefined);
      assert.equal(parseHttpDate('1994-11-06'), undefined);
    });
  });

  describe('small-file memory cache', () => {
    let cached: TestServer;
    let off: TestServer;
    let dir: string;
    const big = Buffer.alloc(100_000, 0x61);
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-static-cache-'));
      fs.writeFileSync(path.join(dir, 'a.txt'), 'version 1\n');
      fs.writeFileSync(path.join(dir, 'big.txt'), big);
      fs.mkdirSync(path.join(dir, 'd'));
      fs.writeFileSync(path.join(dir, 'd', 'index.html'), '<p>index</p>');
      cached = await TestServer.start((s) => s.use(staticFiles(dir, { cache: { validateMs: 300 } })));
      off = await TestServer.start((s) => s.use(staticFiles(dir, { cache: false })));
    });
    after(async () => {
      await cached.close();
      await off.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('answers small files from memory until validateMs passes, then sees the change', async () => {
      const first = await cached.request('h2', '/a.txt');
      assert.equal(first.body.toString(), 'version 1\n');
      assert.equal(first.headers['content-length'], '10');
      // Rewritten with another size and removed-then-recreated: the cache still answers...
      fs.writeFileSync(path.join(dir, 'a.txt'), 'version two\n');
      const soon = await cached.request('http/1.1', '/a.txt');
      assert.equal(soon.body.toString(), 'version 1\n');
      assert.equal(soon.headers['etag'], first.headers['etag']);
      // ...with the cached validators, so conditional requests and ranges agree with the body.
      assert.equal((await cached.request('h2', '/a.txt', { headers: { 'if-none-match': first.headers['etag']! } })).status, 304);
      const part = await cached.request('h2', '/a.txt', { headers: { range: 'bytes=2-4' } });
      assert.equal(part.status, 206);
      assert.equal(part.body.toString(), 'rsi');
      assert.equal(part.headers['content-range'], 'bytes 2-4/10');
      // Without the cache the change shows at once.
      assert.equal((await off.request('h2', '/a.txt')).body.toString(), 'version two\n');
      await new Promise((r) => setTimeout(r, 350));
      const later = await cached.request('h2', '/a.txt');
      assert.equal(later.body.toString(), 'version two\n');
      assert.notEqual(later.headers['etag'], first.headers['etag']);
      fs.rmSync(path.join(dir, 'a.txt'));
      await new Promise((r) => setTimeout(r, 350));
      assert.equal((await cached.request('h2', '/a.txt')).status, 404, 'a removed file is gone once checked again');
    });

    it('index files are cached under the directory path; files over maxFileSize are streamed as before', async () => {
      for (let i = 0; i < 2; i++) {
        const r = await cached.request('h2', '/d/');
        assert.equal(r.body.toString(), '<p>index</p>');
        assert.match(r.headers['content-type'] ?? '', /text\/html/);
      }
      assert.equal((await cached.request('h2', '/d')).status, 301);
      const b = await cached.request('http/1.1', '/big.txt');
      assert.ok(b.body.equals(big));
      const tail = await cached.request('h2', '/big.txt', { headers: { range: 'bytes=-5' } });
      assert.equal(tail.status, 206);
      assert.equal(tail.body.toString(), 'aaaaa');
    });

    it('a cached file still refuses other methods (405 when not falling through)', async () => {
      const strictCached = await TestServer.start((s) => s.use(staticFiles(dir, { fallthrough: false })));
      try {
        fs.writeFileSync(path.join(dir, 'b.txt'), 'b');
        assert.equal((await strictCached.request('h2', '/b.txt')).status, 200);
        const post = await strictCached.request('h2', '/b.txt', { method: 'POST', body: 'x' });
        assert.equal(post.status, 405);
        assert.equal(post.headers['allow'], 'GET, HEAD');
      } finally {
        await strictCached.close();
      }
    });
  });
});
