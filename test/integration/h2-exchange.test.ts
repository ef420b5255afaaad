import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { createServer, type Server } from '../../src';
import { App } from '../../src/http/app';
import { Fields } from '../../src/http/fields';
import { bodyParser } from '../../src/http/middleware/body';
import { TcpListener } from '../../src/listeners/tcp';
import { makeTestCert, type TestCert } from '../helpers/certs';

interface Exchange {
  status: number;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number;
}

/** One HTTP/2 request; `end` false leaves the request body open (the response may come first). */
function exchange(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string, end = true): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: false });
    let status = 0;
    let text = '';
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('trailers', (t) => (trailers = t));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('error', () => {});
    req.on('close', () => resolve({ status, body: text, trailers, rstCode: req.rstCode ?? 0 }));
    setTimeout(() => reject(new Error(`no answer for ${headers[':path']}`)), 10_000).unref();
    if (body !== undefined) req.write(body);
    if (end) req.end();
  });
}

/**
 * HTTP/2 exchanges served from node's core stream API (src/listeners/h2.ts): a response that
 * ends before its request keeps its trailers, a request body given up by the application does
 * not take the response with it, and the rest of such a request is refused with NO_ERROR.
 */
describe('HTTP/2 exchanges (core stream API)', function () {
  this.timeout(60_000);
  let cert: TestCert;
  let server: Server;
  let origin: string;
  let session: http2.ClientHttp2Session;

  before(async () => {
    cert = makeTestCert();
    server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.certFile, key: cert.keyFile } });
    server.on('error', () => {});
    // Answers at once, with trailers, whatever the request is still sending.
    server.post('/early', (ctx) => {
      ctx.body = 'x'.repeat(Number(ctx.query.get('n') ?? 10));
      ctx.response.trailers = new Fields([['grpc-status', '0']]);
    });
    // Reads at most 10 bytes of the body (413 beyond), whatever the method.
    server.all('/small', async (ctx) => {
      ctx.body = { bytes: (await ctx.request.bytes(10)).byteLength };
    });
    // Stops reading after the first chunk.
    server.all('/first', async (ctx) => {
      for await (const chunk of ctx.request.body) {
        ctx.body = `first ${(chunk as Buffer).byteLength}`;
        break;
      }
    });
    await server.listen();
    origin = `https://127.0.0.1:${server.tcpListeners[0].port}`;
    session = http2.connect(origin, { rejectUnauthorized: false });
  });

  after(async () => {
    session?.close();
    await server?.close({ timeoutMs: 1000 });
  });

  for (const n of [10, 400_000]) {
    it(`a response of ${n} bytes with trailers, complete before the request: the trailers arrive, then RST_STREAM NO_ERROR`, async () => {
      const r = await exchange(session, { ':method': 'POST', ':path': `/early?n=${n}` }, 'partial', false);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, n);
      assert.equal(r.trailers?.['grpc-status'], '0');
      assert.equal(r.rstCode, http2.constants.NGHTTP2_NO_ERROR);
    });
  }

  it('a request body over what the handler reads gets 413 on GET and POST; the session carries on', async () => {
    for (const method of ['GET', 'POST']) {
      const r = await exchange(session, { ':method': method, ':path': '/small' }, 'y'.repeat(100));
      assert.equal(r.status, 413, `${method}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(JSON.parse((await exchange(session, { ':method': 'POST', ':path': '/small' }, 'short')).body), { bytes: 5 });
  });

  it('a handler that stops reading after the first chunk still answers', async () => {
    const r = await exchange(session, { ':method': 'POST', ':path': '/first' }, 'z'.repeat(1000));
    assert.equal(r.status, 200);
    assert.match(r.body, /^first \d+$/);
  });

  it('the same on a bare App behind a TcpListener (bodyParser limit 10 → 413)', async () => {
    const app = new App();
    app.use(bodyParser({ limit: 10 }));
    app.post('/p', (ctx) => {
      ctx.body = 'parsed';
    });
    const listener = new TcpListener(app, { host: '127.0.0.1', port: 0, tls: { cert: cert.cert, key: cert.key } });
    await listener.listen();
    const s = http2.connect(`https://127.0.0.1:${listener.port}`, { rejectUnauthorized: false });
    try {
      const r = await exchange(s, { ':method': 'POST', ':path': '/p', 'content-type': 'application/json' }, JSON.stringify({ long: 'x'.repeat(100) }));
      assert.equal(r.status, 413, JSON.stringify(r));
    } finally {
      s.close();
      listener.close();
    }
  });

  it('a trailer name given twice goes out twice, on HTTP/2 and on HTTP/1.1 (chunked)', async () => {
    server.get('/two-trailers', (ctx) => {
      ctx.body = Readable.from([Buffer.from('ab'), Buffer.from('cd')]);
      ctx.response.trailers = new Fields([['x-a', '1'], ['x-a', '2'], ['x-b', '3']]);
    });
    const r2 = await exchange(session, { ':method': 'GET', ':path': '/two-trailers' });
    assert.equal(r2.body, 'abcd');
    assert.equal(r2.trailers?.['x-a'], '1, 2');
    assert.equal(r2.trailers?.['x-b'], '3');
    const r1 = await new Promise<{ body: string; rawTrailers: string[] }>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: server.tcpListeners[0].port, path: '/two-trailers', rejectUnauthorized: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ body, rawTrailers: res.rawTrailers }));
      }).on('error', reject);
    });
    assert.equal(r1.body, 'abcd');
    assert.deepEqual(r1.rawTrailers, ['x-a', '1', 'x-a', '2', 'x-b', '3']);
  });

  it('HTTP/1.1 head: a repeated name goes out as repeated lines, the application\'s Connection: close is kept, request headers arrive lowercased', async () => {
    server.get('/h1-head', (ctx) => {
      ctx.set('set-cookie', ['a=1', 'b=2']);
      ctx.set('x-seen', ctx.get('x-mixed-case') ?? 'none');
      if (ctx.query.get('close')) ctx.set('connection', 'close');
      ctx.body = 'ok';
    });
    const rawGet = async (path: string): Promise<{ head: string; closed: boolean }> => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.tcpListeners[0].port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      await new Promise((r) => socket.once('secureConnect', r));
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: yes\r\n\r\n`);
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (data += d));
      // The server closes when told to; otherwise the connection stays (keep-alive) and we end it.
      const closed = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 500);
        socket.once('end', () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      socket.destroy();
      return { head: data.slice(0, data.indexOf('\r\n\r\n')), closed };
    };
    const kept = await rawGet('/h1-head');
    const lines = kept.head.split('\r\n').map((l) => l.toLowerCase());
    assert.deepEqual(lines.filter((l) => l.startsWith('set-cookie:')), ['set-cookie: a=1', 'set-cookie: b=2']);
    assert.ok(lines.includes('x-seen: yes'), kept.head);
    assert.ok(lines.includes('connection: keep-alive'), kept.head);
    assert.equal(kept.closed, false);
    const closing = await rawGet('/h1-head?close=1');
    assert.ok(closing.head.toLowerCase().split('\r\n').includes('connection: close'), closing.head);
    assert.equal(closing.closed, true);
  });

  it('HTTP/1.1: trailers asked for after the client aborted the body resolve (empty)', async () => {
    let settled: string | undefined;
    const done = new Promise<void>((resolve) => {
      server.post('/aborted', async (ctx) => {
        try {
          await ctx.request.bytes(Infinity);
        } catch {
          // the client went away
        }
        await new Promise((r) => setTimeout(r, 100));
        const t = await Promise.race([ctx.request.trailers(), new Promise((r) => setTimeout(() => r('pending'), 2000))]);
        settled = t === 'pending' ? 'pending' : 'resolved';
        resolve();
      });
    });
    const socket = tls.connect({ host: '127.0.0.1', port: server.tcpListeners[0].port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write('POST /aborted HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    await done;
    assert.equal(settled, 'resolved');
  });
});
