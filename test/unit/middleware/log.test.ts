import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import { createServer, type Server } from '../../../src';
import { App } from '../../../src/http/app';
import { Context, Request, type Protocol, type ResponseSink } from '../../../src/http/context';
import { HttpError } from '../../../src/http/errors';
import { Fields } from '../../../src/http/fields';
import { accessLog, clfDate } from '../../../src/http/middleware/log';
import { makeTestCert, type TestCert } from '../../helpers/certs';

interface FakeSink extends ResponseSink { status?: number; bytes: number; ended: boolean; aborted: boolean; events: string[] }

function fakeSink(): FakeSink {
  const s: FakeSink = {
    supportsTrailers: true, bytes: 0, ended: false, aborted: false, events: [],
    sendInterim() {},
    sendHead(status, _headers, end) {
      s.status = status;
      s.events.push('head');
      if (end) s.ended = true;
    },
    async write(chunk) {
      s.bytes += chunk.byteLength;
      s.events.push('data');
    },
    end() {
      s.ended = true;
      s.events.push('end');
    },
    abort() {
      s.aborted = true;
      s.events.push('abort');
    },
  };
  return s;
}

function makeCtx(opts: { method?: string; target?: string; protocol?: Protocol; headers?: Array<[string, string]>; remoteAddress?: string } = {}): { ctx: Context; sink: FakeSink } {
  const sink = fakeSink();
  const req = new Request({
    method: opts.method ?? 'GET', target: opts.target ?? '/', headers: new Fields(opts.headers ?? []),
    protocol: opts.protocol ?? 'h3', scheme: 'https', authority: 'example.com',
    remoteAddress: opts.remoteAddress ?? '192.0.2.7', remotePort: 4711, body: Readable.from([]),
  });
  return { ctx: new Context(req, sink), sink };
}

const CLF = /^(\S+) - - \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] "(.*)" (\d{3}) (\d+|-)$/;

describe('accessLog', () => {
  it('formats the date as Common Log Format does', () => {
    assert.equal(clfDate(new Date('2000-10-10T13:55:36Z')), '10/Oct/2000:13:55:36 +0000');
    assert.equal(clfDate(new Date('2024-01-02T03:04:05.678Z')), '02/Jan/2024:03:04:05 +0000');
  });

  it('writes one Common Log Format line after the response, with status and body bytes', async () => {
    const lines: string[] = [];
    const app = new App();
    app.use(accessLog({ write: (l) => lines.push(l) }));
    app.use((ctx) => {
      ctx.body = 'hello world';
    });
    const { ctx, sink } = makeCtx({ target: '/path?x=1' });
    const before = Date.now();
    await app.handle(ctx);
    assert.equal(lines.length, 1);
    const m = CLF.exec(lines[0]);
    assert.ok(m, lines[0]);
    assert.equal(m[1], '192.0.2.7');
    assert.equal(m[3], 'GET /path?x=1 HTTP/3');
    assert.equal(m[4], '200');
    assert.equal(m[5], '11');
    assert.equal(sink.bytes, 11);
    // The time is the request's arrival, to the second.
    const [, d, mon, y, hh, mm, ss] = /^(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})/.exec(m[2])!;
    const logged = Date.UTC(+y, ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(mon), +d, +hh, +mm, +ss);
    assert.ok(Math.abs(logged - before) < 2000, `${m[2]} vs ${new Date(before).toISOString()}`);
  });

  it('names every protocol as the request line would', async () => {
    const names: Record<Protocol, string> = { h3: 'HTTP/3', h2: 'HTTP/2', 'http/1.1': 'HTTP/1.1', hq: 'HTTP/0.9' };
    for (const [protocol, name] of Object.entries(names) as Array<[Protocol, string]>) {
      const lines: string[] = [];
      const app = new App().use(accessLog({ write: (l) => lines.push(l) })).use((ctx) => void (ctx.body = 'x'));
      const { ctx } = makeCtx({ protocol, target: '/p' });
      await app.handle(ctx);
      assert.equal(CLF.exec(lines[0])?.[3], `GET /p ${name}`);
    }
  });

  it('writes "-" for an empty body and logs the status actually sent', async () => {
    const lines: string[] = [];
    const app = new App().use(accessLog({ write: (l) => lines.push(l) }));
    app.get('/empty', (ctx) => void (ctx.status = 204));
    app.get('/fail', () => {
      throw new HttpError(418, 'teapot');
    });
    app.get('/boom', () => {
      throw new Error('internal');
    });
    app.on('error', () => {});
    for (const target of ['/empty', '/fail', '/boom', '/missing']) await app.handle(makeCtx({ target }).ctx);
    const parsed = lines.map((l) => CLF.exec(l)!);
    assert.deepEqual(parsed.map((m) => [m[3], m[4], m[5]]), [
      ['GET /empty HTTP/3', '204', '-'],
      ['GET /fail HTTP/3', '418', '6'],
      ['GET /boom HTTP/3', '500', '21'],
      ['GET /missing HTTP/3', '404', '9'],
    ]);
  });

  it('escapes quotes and control characters so a request cannot forge a line', async () => {
    const lines: string[] = [];
    const app = new App().use(accessLog({ write: (l) => lines.push(l) }));
    await app.handle(makeCtx({ target: '/a"b\n" 200 1\\x' }).ctx);
    assert.equal(lines.length, 1);
    assert.ok(!lines[0].includes('\n'));
    assert.match(lines[0], /"GET \/a\\x22b\\x0A\\x22 200 1\\x5Cx HTTP\/3" 404 9$/);
  });

  it('counts streamed bytes and logs only once the stream has ended', async () => {
    const lines: string[] = [];
    const app = new App().use(accessLog({ write: (l) => lines.push(l) }));
    let loggedBeforeEnd = false;
    app.use((ctx) => {
      ctx.body = Readable.from((async function* () {
        for (let i = 0; i < 10; i++) {
          yield Buffer.alloc(1000, i);
          await new Promise((r) => setImmediate(r));
          if (lines.length > 0) loggedBeforeEnd = true;
        }
      })());
    });
    const { ctx, sink } = makeCtx();
    await app.handle(ctx);
    assert.equal(loggedBeforeEnd, false);
    assert.deepEqual(sink.events.slice(-1), ['end']);
    assert.equal(CLF.exec(lines[0])?.[5], '10000');
  });

  it('logs an aborted stream with the status that went out', async () => {
    const lines: string[] = [];
    const app = new App().use(accessLog({ format: 'json', write: (l) => lines.push(l) }));
    app.on('error', () => {});
    app.use((ctx) => {
      ctx.body = Readable.from((async function* () {
        yield Buffer.alloc(100);
        throw new Error('disk on fire');
      })());
    });
    const { ctx, sink } = makeCtx();
    await app.handle(ctx);
    assert.equal(sink.aborted, true);
    const rec = JSON.parse(lines[0]);
    assert.equal(rec.status, 200);
    assert.equal(rec.bytes, 100);
  });

  it('json: one object per line with exactly the documented fields', async () => {
    const lines: string[] = [];
    const app = new App().use(accessLog({ format: 'json', write: (l) => lines.push(l) }));
    app.use(async (ctx) => {
      await new Promise((r) => setTimeout(r, 20));
      ctx.status = 201;
      ctx.body = { ok: true };
    });
    const { ctx } = makeCtx({ method: 'POST', target: '/items?a=1', protocol: 'h2', headers: [['user-agent', 'curl/8.5.0']], remoteAddress: '2001:db8::1' });
    const t0 = Date.now();
    await app.handle(ctx);
    assert.equal(lines.length, 1);
    assert.ok(!lines[0].includes('\n'));
    const rec = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(rec), ['time', 'remote', 'method', 'path', 'protocol', 'status', 'bytes', 'durationMs', 'userAgent']);
    assert.equal(rec.remote, '2001:db8::1');
    assert.equal(rec.method, 'POST');
    assert.equal(rec.path, '/items?a=1');
    assert.equal(rec.protocol, 'HTTP/2');
    assert.equal(rec.status, 201);
    assert.equal(rec.bytes, Buffer.byteLength('{"ok":true}'));
    assert.equal(rec.userAgent, 'curl/8.5.0');
    assert.ok(rec.durationMs >= 19 && rec.durationMs < 5000, String(rec.durationMs));
    assert.ok(Math.abs(Date.parse(rec.time) - t0) < 1000);
    const { ctx: noUa } = makeCtx();
    await app.handle(noUa);
    assert.equal(JSON.parse(lines[1]).userAgent, null);
  });

  it('writes to stdout by default', async () => {
    const original = process.stdout.write.bind(process.stdout);
    const captured: string[] = [];
    (process.stdout as unknown as { write: (s: string) => boolean }).write = (s: string) => {
      captured.push(s);
      return true;
    };
    try {
      const app = new App().use(accessLog()).use((ctx) => void (ctx.body = 'x'));
      await app.handle(makeCtx().ctx);
    } finally {
      (process.stdout as unknown as { write: typeof original }).write = original;
    }
    assert.equal(captured.length, 1);
    assert.match(captured[0], /"GET \/ HTTP\/3" 200 1\n$/);
  });

  describe('on a server (HTTP/1.1 and HTTP/2)', () => {
    let cert: TestCert;
    let server: Server;
    let port: number;
    const lines: string[] = [];

    before(async () => {
      cert = makeTestCert();
      server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
      server.use(accessLog({ write: (l) => lines.push(l) }));
      server.get('/hello', (ctx) => void (ctx.body = 'hello'));
      await server.listen();
      port = server.tcpListeners[0].port;
    });
    after(async () => server.close({ timeoutMs: 1000 }));

    it('logs HTTP/1.1 and HTTP/2 requests with the client address', async () => {
      lines.length = 0;
      await new Promise<void>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/hello', rejectUnauthorized: false, agent: false }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).on('error', reject);
      });
      const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':path': '/hello' });
        s.resume();
        s.on('end', resolve);
        s.on('error', reject);
      });
      session.close();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(lines.length, 2);
      assert.deepEqual(lines.map((l) => CLF.exec(l)!.slice(1).filter((_, i) => i !== 1)), [
        ['127.0.0.1', 'GET /hello HTTP/1.1', '200', '5'],
        ['127.0.0.1', 'GET /hello HTTP/2', '200', '5'],
      ]);
    });
  });
});
