import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { compress, negotiateEncoding } from '../../../src/http/middleware/compress';
import { staticFiles } from '../../../src/http/middleware/static';
import { PROTOCOLS, TestServer, type Reply } from './http-client';

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(200); // 9000 bytes
const BIG_TEXT = Array.from({ length: 40_000 }, (_, i) => `line ${i}: ${'abcdefghij'.repeat(i % 7)}\n`).join(''); // ~1.8 MB
const JSON_VALUE = { items: Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item ${i}` })) };

function decode(r: Reply): Buffer {
  const enc = r.headers['content-encoding'];
  if (enc === 'br') return zlib.brotliDecompressSync(r.body);
  if (enc === 'gzip') return zlib.gunzipSync(r.body);
  assert.equal(enc, undefined);
  return r.body;
}

describe('compress', function () {
  this.timeout(60_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-compress-'));
  const siteText = crypto.createHash('shake128', { outputLength: 50_000 }).update('x').digest('hex'); // 100 KB of hex
  fs.writeFileSync(path.join(tmp, 'page.txt'), siteText);
  fs.writeFileSync(path.join(tmp, 'photo.png'), crypto.randomBytes(20_000));
  let server: TestServer;
  let release: (() => void) | undefined;

  before(async () => {
    server = await TestServer.start((s) => {
      s.use(compress());
      s.get('/text', (ctx) => { ctx.body = TEXT; });
      s.get('/small', (ctx) => { ctx.body = 'tiny'; });
      s.get('/json', (ctx) => { ctx.body = JSON_VALUE; });
      s.get('/bytes-big', (ctx) => {
        ctx.set('content-type', 'text/plain; charset=utf-8');
        ctx.body = Buffer.from(BIG_TEXT);
      });
      s.get('/png', (ctx) => {
        ctx.set('content-type', 'image/png');
        ctx.body = Buffer.from(TEXT);
      });
      s.get('/stream', (ctx) => {
        ctx.set('content-type', 'text/plain; charset=utf-8');
        ctx.set('content-length', Buffer.byteLength(BIG_TEXT));
        ctx.body = Readable.from((function* () {
          for (let i = 0; i < BIG_TEXT.length; i += 16384) yield Buffer.from(BIG_TEXT.slice(i, i + 16384));
        })());
      });
      s.get('/iterable', (ctx) => {
        ctx.set('content-type', 'text/csv');
        ctx.body = (async function* () {
          for (let i = 0; i < 100; i++) yield Buffer.from(`${i},${TEXT.slice(0, 100)}\n`);
        })();
      });
      s.get('/slow', (ctx) => {
        ctx.set('content-type', 'text/plain');
        ctx.body = (async function* () {
          yield Buffer.from('first chunk, flushed at once\n');
          await new Promise<void>((resolve) => (release = resolve));
          yield Buffer.from('second chunk\n');
        })();
      });
      s.get('/failing', (ctx) => {
        ctx.set('content-type', 'text/plain');
        ctx.body = (async function* () {
          yield Buffer.from(TEXT);
          throw new Error('source broke');
        })();
      });
      s.get('/strong-etag', (ctx) => {
        ctx.set('etag', '"v1"');
        ctx.body = TEXT;
      });
      s.get('/encoded', (ctx) => {
        ctx.set('content-encoding', 'br');
        ctx.set('content-type', 'text/plain');
        ctx.body = zlib.brotliCompressSync(TEXT);
      });
      s.get('/no-transform', (ctx) => {
        ctx.set('cache-control', 'public, no-transform');
        ctx.body = TEXT;
      });
      s.get('/vary', (ctx) => {
        ctx.set('vary', 'Origin');
        ctx.body = TEXT;
      });
      s.get('/sse', (ctx) => {
        ctx.set('content-type', 'text/event-stream');
        ctx.body = TEXT;
      });
      s.get('/nocontent', (ctx) => { ctx.status = 204; });
      s.get('/error', (ctx) => ctx.throw(418, TEXT));
      s.use(staticFiles(tmp));
    });
  });

  after(async () => {
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const proto of PROTOCOLS) {
    describe(`over ${proto}`, () => {
      const get = (p: string, ae?: string, extra: Record<string, string> = {}, method = 'GET') =>
        server.request(proto, p, { method, headers: { ...(ae === undefined ? {} : { 'accept-encoding': ae }), ...extra } });

      describe('Accept-Encoding negotiation (RFC 9110 §12.5.3)', () => {
        for (const [ae, want] of [
          [undefined, undefined], ['', undefined], ['identity', undefined], ['deflate', undefined],
          ['gzip', 'gzip'], ['br', 'br'], ['gzip, br', 'br'], ['br, gzip', 'br'], ['GZIP', 'gzip'], ['x-gzip', 'gzip'],
          ['gzip;q=1, br;q=0.5', 'gzip'], ['br;q=0, gzip', 'gzip'], ['*', 'br'], ['*;q=0.1, gzip;q=0.5', 'gzip'],
          ['gzip;q=0.5, identity', undefined], ['br;q=0.5, *;q=0', 'br'], ['identity;q=0', undefined],
          ['gzip, deflate, br, zstd', 'br'], ['gzip;q=0', undefined],
        ] as Array<[string | undefined, string | undefined]>) {
          it(`${ae === undefined ? '(no header)' : JSON.stringify(ae)} → ${want ?? 'identity'}`, async () => {
            const r = await get('/text', ae);
            assert.equal(r.status, 200);
            assert.equal(r.headers['content-encoding'], want);
            assert.equal(r.headers['vary'], 'Accept-Encoding');
            assert.equal(decode(r).toString(), TEXT);
            if (want) assert.ok(r.body.byteLength < TEXT.length / 5);
          });
        }
      });

      it('a compressed byte body keeps an exact Content-Length', async () => {
        const r = await get('/text', 'gzip');
        assert.equal(r.headers['content-length'], String(r.body.byteLength));
      });

      it('JSON values are compressed as JSON', async () => {
        const r = await get('/json', 'br');
        assert.equal(r.headers['content-encoding'], 'br');
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
        assert.deepEqual(JSON.parse(decode(r).toString()), JSON_VALUE);
      });

      it('a 1.8 MB byte body is compressed off the event loop, byte-exact, both codings', async () => {
        for (const ae of ['br', 'gzip']) {
          const r = await get('/bytes-big', ae);
          assert.equal(r.headers['content-encoding'], ae);
          assert.equal(r.headers['content-length'], String(r.body.byteLength));
          assert.equal(decode(r).toString(), BIG_TEXT);
        }
      });

      it('a stream body is compressed as a stream: Content-Length removed', async () => {
        for (const ae of ['br', 'gzip']) {
          const r = await get('/stream', ae);
          assert.equal(r.headers['content-encoding'], ae);
          assert.equal(r.headers['content-length'], undefined);
          assert.equal(decode(r).toString(), BIG_TEXT);
        }
        const plain = await get('/stream');
        assert.equal(plain.headers['content-length'], String(Buffer.byteLength(BIG_TEXT)));
        assert.equal(plain.body.toString(), BIG_TEXT);
      });

      it('an async iterable body of unknown length is compressed', async () => {
        const r = await get('/iterable', 'gzip');
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.equal(decode(r).toString().split('\n').length, 101);
      });

      it('a static file is compressed and its Accept-Ranges dropped; its ETag stays weak', async () => {
        const r = await get('/page.txt', 'br');
        assert.equal(r.headers['content-encoding'], 'br');
        assert.equal(r.headers['accept-ranges'], undefined);
        assert.match(r.headers['etag'], /^W\//);
        assert.equal(decode(r).toString(), siteText);
      });

      it('a strong ETag is weakened when compressing (RFC 9110 §8.8.1), kept otherwise', async () => {
        assert.equal((await get('/strong-etag', 'gzip')).headers['etag'], 'W/"v1"');
        assert.equal((await get('/strong-etag')).headers['etag'], '"v1"');
      });

      it('a 206 range is never compressed (it is part of the identity bytes)', async () => {
        const r = await get('/page.txt', 'br, gzip', { range: 'bytes=0-4999' });
        assert.equal(r.status, 206);
        assert.equal(r.headers['content-encoding'], undefined);
        assert.equal(r.body.toString(), siteText.slice(0, 5000));
      });

      it('does not compress: PNG, text/event-stream, small bodies, 204, 304, already-encoded, no-transform', async () => {
        const png = await get('/photo.png', 'br, gzip');
        assert.equal(png.headers['content-encoding'], undefined);
        assert.equal(png.headers['vary'], undefined);
        assert.equal((await get('/png', 'br')).headers['content-encoding'], undefined);
        assert.equal((await get('/sse', 'br')).headers['content-encoding'], undefined);
        const small = await get('/small', 'br');
        assert.equal(small.headers['content-encoding'], undefined);
        assert.equal(small.body.toString(), 'tiny');
        assert.equal((await get('/nocontent', 'br')).status, 204);
        const page = await get('/page.txt');
        const nm = await get('/page.txt', 'br', { 'if-none-match': page.headers['etag'] });
        assert.equal(nm.status, 304);
        assert.equal(nm.headers['content-encoding'], undefined);
        const enc = await get('/encoded', 'gzip');
        assert.equal(enc.headers['content-encoding'], 'br');
        assert.equal(decode(enc).toString(), TEXT);
        const nt = await get('/no-transform', 'gzip');
        assert.equal(nt.headers['content-encoding'], undefined);
        assert.equal(nt.body.toString(), TEXT);
      });

      it('HEAD is not compressed but says Vary: Accept-Encoding', async () => {
        const r = await get('/page.txt', 'br', {}, 'HEAD');
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-encoding'], undefined);
        assert.equal(r.headers['content-length'], String(siteText.length));
        assert.equal(r.headers['vary'], 'Accept-Encoding');
      });

      it('Vary is merged with what the handler set', async () => {
        assert.equal((await get('/vary', 'gzip')).headers['vary'], 'Origin, Accept-Encoding');
      });

      it('error responses from HttpError pass through untouched (they are made after the pipeline)', async () => {
        const r = await get('/error', 'gzip');
        assert.equal(r.status, 418);
        assert.equal(r.body.toString(), TEXT);
      });
    });
  }

  it('a slow stream is flushed chunk by chunk: the first part decodes before the stream ends', async () => {
    const port = server.port;
    const text = await new Promise<string>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/slow', headers: { 'accept-encoding': 'gzip' }, rejectUnauthorized: false, agent: false }, (res) => {
        assert.equal(res.headers['content-encoding'], 'gzip');
        const gunzip = zlib.createGunzip();
        let out = '';
        gunzip.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('first chunk') && release) {
            release(); // only now may the server finish the body
            release = undefined;
          }
        });
        gunzip.on('end', () => resolve(out));
        gunzip.on('error', reject);
        res.pipe(gunzip);
      });
      req.on('error', reject);
    });
    assert.equal(text, 'first chunk, flushed at once\nsecond chunk\n');
  });

  it('a stream that fails mid-body aborts the response instead of ending it cleanly', async () => {
    await assert.rejects(server.request('h2', '/failing', { headers: { 'accept-encoding': 'gzip' } }));
  });

  it('negotiateEncoding', () => {
    assert.equal(negotiateEncoding(undefined), undefined);
    assert.equal(negotiateEncoding('br;q=0.9, gzip;q=0.9'), 'br');
    assert.equal(negotiateEncoding('br;q=0.8, gzip;q=0.9'), 'gzip');
    assert.equal(negotiateEncoding('br ; q=0.5 , identity;q=0.4'), 'br');
    assert.equal(negotiateEncoding('gzip;q=2'), undefined); // not a qvalue: treated as 0
    assert.equal(negotiateEncoding('*;q=0'), undefined);
  });
});
