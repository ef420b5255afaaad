import { strict as assert } from 'node:assert';
import * as zlib from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { Context } from '../../../src/http/context';
import { bodyParser, negotiate, negotiateFormat, parseMediaType, respondWith } from '../../../src/http/middleware/body';
import { PROTOCOLS, TestServer } from './http-client';

const VALUE = { a: [1, 2, 3], b: 'héllo', c: { d: null, e: true, f: 1.5 } };

describe('body codecs', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    const echo = (ctx: Context): void => {
      ctx.body = { present: 'body' in ctx.state, body: ctx.state.body ?? null };
    };
    server = await TestServer.start((s) => {
      s.use(negotiate());
      s.post('/echo', bodyParser(), echo);
      s.post('/small', bodyParser({ limit: 100 }), echo);
      s.post('/strict', bodyParser({ strict: true }), echo);
      s.patch('/strict', bodyParser({ strict: true }), echo);
      s.post('/no-json', bodyParser({ json: false, strict: true }), echo);
      s.post('/roundtrip', bodyParser(), (ctx) => respondWith(ctx, ctx.state.body));
      s.get('/value', (ctx) => { ctx.body = VALUE; });
      s.get('/list', (ctx) => { ctx.body = [1, 'two', { three: 3 }]; });
      s.get('/string', (ctx) => { ctx.body = 'just text'; });
      s.get('/date', (ctx) => { ctx.body = new Date(0); });
      s.post('/created', (ctx) => {
        ctx.status = 201;
        respondWith(ctx, { id: 7 });
      });
    });
  });

  after(() => server.close());

  for (const proto of PROTOCOLS) {
    describe(`over ${proto}`, () => {
      const post = (p: string, type: string | undefined, body: Uint8Array | string, extra: Record<string, string> = {}, method = 'POST') =>
        server.request(proto, p, { method, body, headers: { ...(type ? { 'content-type': type } : {}), ...extra } });
      const json = (r: { body: Buffer }): { present: boolean; body: unknown } => JSON.parse(r.body.toString());

      describe('bodyParser', () => {
        it('application/json → the value', async () => {
          const r = await post('/echo', 'application/json', JSON.stringify(VALUE));
          assert.equal(r.status, 200);
          assert.deepEqual(json(r), { present: true, body: VALUE });
        });

        it('+json types (RFC 6839 §3.1) and an explicit utf-8 charset', async () => {
          assert.deepEqual(json(await post('/echo', 'application/problem+json', '{"x":1}')).body, { x: 1 });
          assert.deepEqual(json(await post('/echo', 'Application/JSON; charset="UTF-8"', '[1]')).body, [1]);
        });

        it('a UTF-8 byte order mark is ignored (RFC 8259 §8.1)', async () => {
          const r = await post('/echo', 'application/json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":1}')]));
          assert.deepEqual(json(r).body, { bom: 1 });
        });

        it('malformed JSON → 400 with a clear message', async () => {
          const r = await post('/echo', 'application/json', '{"a":');
          assert.equal(r.status, 400);
          assert.match(r.body.toString(), /^malformed JSON: /);
        });

        it('JSON that is not UTF-8 → 400; a charset other than UTF-8 → 415', async () => {
          const bad = await post('/echo', 'application/json', Buffer.from([0x22, 0xff, 0x22]));
          assert.equal(bad.status, 400);
          assert.match(bad.body.toString(), /not valid utf-8/);
          assert.equal((await post('/echo', 'application/json; charset=latin1', '{}')).status, 415);
        });

        for (const type of ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']) {
          it(`${type} → the value (msgpackr)`, async () => {
            const r = await post('/echo', type, pack(VALUE));
            assert.equal(r.status, 200);
            assert.deepEqual(json(r), { present: true, body: VALUE });
          });
        }

        it('malformed MessagePack → 400', async () => {
          const truncated = pack(VALUE).subarray(0, 10);
          const r = await post('/echo', 'application/msgpack', truncated);
          assert.equal(r.status, 400);
          assert.match(r.body.toString(), /^malformed MessagePack: /);
          const trailing = Buffer.concat([pack(1), Buffer.from([0x01])]);
          assert.equal((await post('/echo', 'application/msgpack', trailing)).status, 400);
        });

        it('text/plain → a string, in the declared charset; an unknown charset → 415', async () => {
          assert.deepEqual(json(await post('/echo', 'text/plain', 'héllo')).body, 'héllo');
          assert.deepEqual(json(await post('/echo', 'text/plain; charset=iso-8859-1', Buffer.from([0x68, 0xe9]))).body, 'hé');
          assert.equal((await post('/echo', 'text/plain; charset=no-such-charset', 'x')).status, 415);
        });

        it('over the limit → 413, whether Content-Length says so or the bytes do', async () => {
          const big = JSON.stringify({ s: 'x'.repeat(200) });
          const r = await post('/small', 'application/json', big);
          assert.equal(r.status, 413);
          assert.match(r.body.toString(), /over 100 bytes/);
          assert.equal((await post('/small', 'application/json', JSON.stringify({ s: 'x'.repeat(50) }))).status, 200);
        });

        it('a gzip or br request body is decoded (RFC 9110 §8.4)', async () => {
          const gz = await post('/echo', 'application/json', zlib.gzipSync(JSON.stringify(VALUE)), { 'content-encoding': 'gzip' });
          assert.deepEqual(json(gz).body, VALUE);
          const br = await post('/echo', 'application/json', zlib.brotliCompressSync(JSON.stringify(VALUE)), { 'content-encoding': 'br' });
          assert.deepEqual(json(br).body, VALUE);
        });

        it('the limit applies to the decoded size (a gzip bomb is 413)', async () => {
          const bomb = zlib.gzipSync(Buffer.alloc(10_000_000, 0x20));
          assert.ok(bomb.byteLength < 20_000);
          const r = await post('/small', 'application/json', bomb, { 'content-encoding': 'gzip' });
          assert.equal(r.status, 413);
        });

        it('broken gzip → 400; an unknown content coding → 415 with Accept-Encoding (§15.5.16)', async () => {
          const broken = await post('/echo', 'application/json', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' });
          assert.equal(broken.status, 400);
          const unknown = await post('/echo', 'application/json', 'x', { 'content-encoding': 'compress' });
          assert.equal(unknown.status, 415);
          assert.equal(unknown.headers['accept-encoding'], 'gzip, deflate, br');
        });

        it('an unsupported type is left unread; with strict it is 415 with Accept-Post / Accept-Patch', async () => {
          assert.deepEqual(json(await post('/echo', 'application/xml', '<a/>')), { present: false, body: null });
          const r = await post('/strict', 'application/xml', '<a/>');
          assert.equal(r.status, 415);
          assert.equal(r.headers['accept-post'], 'application/json, application/msgpack, text/plain');
          const patch = await post('/strict', 'application/xml', '<a/>', {}, 'PATCH');
          assert.equal(patch.status, 415);
          assert.equal(patch.headers['accept-patch'], 'application/json, application/msgpack, text/plain');
          assert.equal((await post('/strict', undefined, 'no type')).status, 415);
          assert.equal((await post('/no-json', 'application/json', '{}')).status, 415);
        });

        it('no body: ctx.state.body stays unset, even with strict', async () => {
          assert.deepEqual(json(await post('/strict', 'application/json', '')), { present: false, body: null });
          assert.deepEqual(json(await post('/strict', undefined, '')), { present: false, body: null });
        });
      });

      describe('negotiate / respondWith (RFC 9110 §12.5.1)', () => {
        const get = (p: string, accept?: string) => server.request(proto, p, { headers: accept === undefined ? {} : { accept } });

        for (const [accept, want] of [
          [undefined, 'application/json; charset=utf-8'],
          ['application/json', 'application/json; charset=utf-8'],
          ['*/*', 'application/json; charset=utf-8'],
          ['application/msgpack', 'application/msgpack'],
          ['application/x-msgpack', 'application/x-msgpack'],
          ['application/json, application/msgpack', 'application/json; charset=utf-8'],
          ['application/msgpack;q=0.9, application/json;q=0.8', 'application/msgpack'],
          ['application/*;q=0.5, application/msgpack', 'application/msgpack'],
          ['application/json;q=0, */*', 'application/msgpack'],
          ['application/msgpack;q=0.5, application/x-msgpack', 'application/x-msgpack'],
          ['text/html', 'application/json; charset=utf-8'],
        ] as Array<[string | undefined, string]>) {
          it(`Accept: ${accept ?? '(none)'} → ${want}`, async () => {
            const r = await get('/value', accept);
            assert.equal(r.status, 200);
            assert.equal(r.headers['content-type'], want);
            assert.equal(r.headers['vary'], 'Accept');
            assert.equal(r.headers['content-length'], String(r.body.byteLength));
            const v = want.startsWith('application/json') ? JSON.parse(r.body.toString()) : unpack(r.body);
            assert.deepEqual(v, VALUE);
          });
        }

        it('arrays are encoded too', async () => {
          assert.deepEqual(unpack((await get('/list', 'application/msgpack')).body), [1, 'two', { three: 3 }]);
        });

        it('strings and class instances are left alone', async () => {
          const s = await get('/string', 'application/msgpack');
          assert.equal(s.headers['content-type'], 'text/plain; charset=utf-8');
          assert.equal(s.headers['vary'], undefined);
          const d = await get('/date', 'application/msgpack');
          assert.equal(d.headers['content-type'], 'application/json; charset=utf-8');
          assert.equal(JSON.parse(d.body.toString()), new Date(0).toISOString());
        });

        it('respondWith keeps an explicit status', async () => {
          const r = await server.request(proto, '/created', { method: 'POST', headers: { accept: 'application/msgpack' } });
          assert.equal(r.status, 201);
          assert.deepEqual(unpack(r.body), { id: 7 });
        });

        it('MessagePack in, MessagePack out', async () => {
          const r = await post('/roundtrip', 'application/msgpack', pack(VALUE), { accept: 'application/msgpack' });
          assert.equal(r.headers['content-type'], 'application/msgpack');
          assert.deepEqual(unpack(r.body), VALUE);
        });
      });
    });
  }

  it('HTTP/1.1 chunked bodies over the limit are cut at the limit → 413', async () => {
    const r = await server.request('http/1.1', '/small', {
      method: 'POST', body: JSON.stringify({ s: 'x'.repeat(500) }), headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    assert.equal(r.status, 413);
  });

  it('parseMediaType and negotiateFormat', () => {
    assert.deepEqual(parseMediaType('Text/Plain ; Charset="utf-8"; q=1'), { type: 'text/plain', params: { charset: 'utf-8', q: '1' } });
    assert.deepEqual(parseMediaType(undefined), { type: '', params: {} });
    assert.equal(negotiateFormat('application/msgpack;q=0'), 'json');
    assert.equal(negotiateFormat('application/msgpack;q=0.001, application/json;q=0'), 'application/msgpack');
  });
});
