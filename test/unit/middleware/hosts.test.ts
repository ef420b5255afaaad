import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import { createServer, type Server } from '../../../src';
import { App } from '../../../src/http/app';
import { Context, Request, type Protocol, type ResponseSink } from '../../../src/http/context';
import { Fields } from '../../../src/http/fields';
import { allowedHosts, type AllowedHostsOptions } from '../../../src/http/middleware/hosts';
import { makeTestCert, type TestCert } from '../../helpers/certs';

/** Status and body the client would get for a request to `authority`. */
async function statusFor(hosts: string[], authority: string, opts?: AllowedHostsOptions, protocol: Protocol = 'h3'): Promise<[number, string]> {
  let status = 0;
  const chunks: Buffer[] = [];
  const sink: ResponseSink = {
    supportsTrailers: true, sendInterim() {}, abort() {}, end() {},
    sendHead(s) { status = s; },
    async write(c) { chunks.push(Buffer.from(c)); },
  };
  const app = new App().use(allowedHosts(hosts, opts)).use((ctx) => void (ctx.body = 'ok'));
  const ctx = new Context(new Request({
    method: 'GET', target: '/', headers: new Fields(), protocol, scheme: 'https', authority,
    remoteAddress: '127.0.0.1', remotePort: 1, body: Readable.from([]),
  }), sink);
  await app.handle(ctx);
  return [status, Buffer.concat(chunks).toString()];
}

async function allowed(hosts: string[], authority: string, opts?: AllowedHostsOptions): Promise<boolean> {
  const [status] = await statusFor(hosts, authority, opts);
  assert.ok(status === 200 || status === 400, String(status));
  return status === 200;
}

describe('allowedHosts', () => {
  it('answers 400 "Invalid Hostname" to a host that is not allowed', async () => {
    assert.deepEqual(await statusFor(['example.com'], 'evil.com'), [400, 'Invalid Hostname']);
    assert.deepEqual(await statusFor(['example.com'], 'example.com'), [200, 'ok']);
  });

  it('matches exact names ignoring case and ports', async () => {
    const hosts = ['Example.COM', 'localhost:5000', '127.0.0.1'];
    for (const yes of ['example.com', 'EXAMPLE.com', 'example.com:443', 'example.com:8443', 'localhost', 'localhost:1', '127.0.0.1:4433', 'example.com.']) assert.ok(await allowed(hosts, yes), yes);
    for (const no of ['www.example.com', 'example.co', 'xexample.com', '127.0.0.2', 'example.com.evil', 'local']) assert.ok(!(await allowed(hosts, no)), no);
  });

  it('matches *.domain wildcards on subdomains at any depth, not the domain itself', async () => {
    const hosts = ['*.example.com'];
    for (const yes of ['a.example.com', 'A.B.Example.com:8080', 'x-y.example.com']) assert.ok(await allowed(hosts, yes), yes);
    for (const no of ['example.com', '.example.com', 'aexample.com', 'a.example.com.evil', 'example.org']) assert.ok(!(await allowed(hosts, no)), no);
  });

  it('matches IPv6 literals in brackets, with or without port', async () => {
    const hosts = ['[::1]', '[2001:DB8::1]:443'];
    for (const yes of ['[::1]', '[::1]:4433', '[2001:db8::1]', '[2001:db8::1]:80']) assert.ok(await allowed(hosts, yes), yes);
    for (const no of ['[::2]', '::1', '[2001:db8::2]:443']) assert.ok(!(await allowed(hosts, no)), no);
  });

  it('allows everything with "*"', async () => {
    for (const h of ['anything', 'a.b.c:1', '']) assert.ok(await allowed(['*'], h), h);
  });

  it('lets requests without a host through unless told otherwise (HTTP/0.9 has none)', async () => {
    assert.ok(await allowed(['example.com'], ''));
    assert.ok(!(await allowed(['example.com'], '', { allowEmpty: false })));
  });

  it('refuses authorities with userinfo, paths or spaces', async () => {
    for (const bad of ['user@example.com', 'example.com/x', 'example.com x', 'example.com\\']) assert.ok(!(await allowed(['example.com', '*.example.com'], bad)), bad);
  });

  describe('on a server', () => {
    let cert: TestCert;
    let server: Server;
    let port: number;

    before(async () => {
      cert = makeTestCert();
      server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
      server.use(allowedHosts(['localhost', '*.example.com']));
      server.use((ctx) => void (ctx.body = `hello ${ctx.request.hostname}`));
      await server.listen();
      port = server.tcpListeners[0].port;
    });
    after(async () => server.close({ timeoutMs: 1000 }));

    function h1(host: string): Promise<[number, string]> {
      return new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/', headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve([res.statusCode!, s]));
        }).on('error', reject);
      });
    }

    function h2(session: http2.ClientHttp2Session, authority: string): Promise<[number, string]> {
      return new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/', ':authority': authority });
        let status = 0;
        let body = '';
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (d) => (body += d));
        s.on('end', () => resolve([status, body]));
        s.on('error', reject);
      });
    }

    it('checks Host on HTTP/1.1', async () => {
      assert.deepEqual(await h1(`localhost:${port}`), [200, 'hello localhost']);
      assert.deepEqual(await h1('API.example.com'), [200, 'hello api.example.com']);
      assert.deepEqual(await h1(`127.0.0.1:${port}`), [400, 'Invalid Hostname']);
    });

    it('checks :authority on HTTP/2', async () => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      try {
        assert.deepEqual(await h2(session, `localhost:${port}`), [200, 'hello localhost']);
        assert.deepEqual(await h2(session, 'www.example.com'), [200, 'hello www.example.com']);
        assert.deepEqual(await h2(session, 'example.com'), [400, 'Invalid Hostname']);
      } finally {
        session.close();
      }
    });
  });
});
