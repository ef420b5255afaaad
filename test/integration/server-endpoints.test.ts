import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { createServer, type Server } from '../../src';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { goPeer, runPeer } from '../helpers/peers';
import { h1, h2, sleep, unixGet } from './server-util';

/** A self-signed certificate for `name` (openssl, so the code under test does not make it). */
function certFor(name: string, dir: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return { cert, key };
}

/** The subject CN of the certificate the server presents for `servername`. */
function presentedCN(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.destroy();
      resolve(String(Array.isArray(cn) ? cn[0] : cn));
    });
    s.on('error', reject);
  });
}

describe('server endpoints: Alt-Svc, cleartext, Unix socket, SNI, maxConnections', function () {
  this.timeout(120_000);
  let cert: TestCert;
  const servers: Server[] = [];

  before(() => {
    cert = makeTestCert();
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close({ timeoutMs: 1000 })));
  });

  function start(options: Parameters<typeof createServer>[0]): Server {
    const s = createServer({ tls: { cert: cert.certFile, key: cert.keyFile }, ...options });
    s.get('/hello', (ctx) => {
      ctx.body = `hello ${ctx.protocol}`;
    });
    servers.push(s);
    return s;
  }

  it('a TLS endpoint with h3 sends alt-svc: h3=":<udp port>"; ma=86400 on HTTP/1.1 and HTTP/2, and HTTP/3 answers there', async () => {
    const s = start({ endpoints: [{ host: '127.0.0.1', port: 0 }] });
    const addrs = await s.listen();
    assert.deepEqual(addrs.map((a) => a.transport).sort(), ['tcp', 'udp']);
    const udp = s.quicListeners[0].port;
    const tcp = s.tcpListeners[0].port;
    assert.equal(udp, tcp, 'HTTP/3 on the same port number as TLS');
    const a = await h1(`https://127.0.0.1:${tcp}/hello`);
    assert.equal(a.body, 'hello http/1.1');
    assert.equal(a.headers['alt-svc'], `h3=":${udp}"; ma=86400`);
    const b = await h2(`https://127.0.0.1:${tcp}`, { ':path': '/hello' });
    assert.equal(b.body, 'hello h2');
    assert.equal(b.headers['alt-svc'], `h3=":${udp}"; ma=86400`);
    const { report } = await runPeer<{ ok: boolean; responses: Array<{ status: number; bytes: number }> }>(goPeer('h3get'),
      ['-base', `https://127.0.0.1:${udp}`, '-paths', '/hello', '-timeout', '20']);
    assert.equal(report.ok, true);
    assert.equal(report.responses[0].status, 200);
    assert.equal(report.responses[0].bytes, 'hello h3'.length);
  });

  it('altSvc: false removes the header; a TLS endpoint without h3 never sends it', async () => {
    const s = start({ endpoints: [{ host: '127.0.0.1', port: 0, altSvc: false }, { host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }] });
    await s.listen();
    assert.equal(s.tcpListeners.length, 2);
    for (const t of s.tcpListeners) {
      const a = await h1(`https://127.0.0.1:${t.port}/hello`);
      assert.equal(a.status, 200);
      assert.equal(a.headers['alt-svc'], undefined);
      const b = await h2(`https://127.0.0.1:${t.port}`, { ':path': '/hello' });
      assert.equal(b.status, 200);
      assert.equal(b.headers['alt-svc'], undefined);
    }
  });

  it('a cleartext endpoint serves HTTP/1.1 without Alt-Svc, even beside an HTTP/3 endpoint', async () => {
    const s = start({ endpoints: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: false }] });
    const addrs = await s.listen();
    const plain = addrs.find((a) => a.url.startsWith('http://'))!;
    const r = await h1(`${plain.url}hello`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello http/1.1');
    assert.equal(r.headers['alt-svc'], undefined);
  });

  it('a Unix socket endpoint serves HTTP/1.1 (http.request({ socketPath })) and its file is removed on close', async () => {
    const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-sock-')), 'h.sock');
    const s = start({ endpoints: [{ path: sock }] });
    const addrs = await s.listen();
    assert.deepEqual(addrs, [{ url: `unix:${sock}`, protocols: ['http/1.1'], transport: 'unix' }]);
    const r = await unixGet(sock, '/hello');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello http/1.1');
    assert.equal(r.headers['alt-svc'], undefined);
    await s.close({ timeoutMs: 1000 });
    assert.equal(fs.existsSync(sock), false);
  });

  it('a Unix socket path that is a regular file is not deleted (EADDRINUSE)', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-sock-')), 'not-a-socket');
    fs.writeFileSync(file, 'keep me');
    const s = start({ endpoints: [{ path: file }] });
    await assert.rejects(s.listen(), /EADDRINUSE/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
  });

  it('several certificates: TCP picks by SNI (hosts or the certificate names, wildcards), unknown names get the first', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-sni-'));
    const a = certFor('a.test', dir);
    const b = certFor('b.test', dir);
    const c = certFor('c.test', dir);
    const s = start({
      endpoints: [{ host: '127.0.0.1', port: 0 }],
      tls: { certificates: [{ cert: a.cert, key: a.key }, { ...b, hosts: ['b.test', '*.wild.test'] }, { cert: fs.readFileSync(c.cert, 'utf8'), key: fs.readFileSync(c.key) }] },
    });
    await s.listen();
    const port = s.tcpListeners[0].port;
    assert.equal(await presentedCN(port, 'a.test'), 'a.test');
    assert.equal(await presentedCN(port, 'b.test'), 'b.test');
    assert.equal(await presentedCN(port, 'x.wild.test'), 'b.test');
    assert.equal(await presentedCN(port, 'C.TEST'), 'c.test');
    assert.equal(await presentedCN(port, 'unknown.test'), 'a.test');
    // HTTP/3 presents the first certificate (one per QUIC endpoint).
    const { report } = await runPeer<{ ok: boolean; responses: Array<{ status: number }> }>(goPeer('h3get'),
      ['-base', `https://127.0.0.1:${s.quicListeners[0].port}`, '-server-name', 'b.test', '-paths', '/hello', '-timeout', '20']);
    assert.equal(report.responses[0].status, 200);
  });

  it('limits.maxConnections caps TCP connections: the connection over the limit is closed at once', async () => {
    const s = start({ endpoints: [{ host: '127.0.0.1', port: 0, tls: false }], limits: { maxConnections: 2 } });
    await s.listen();
    const port = s.tcpListeners[0].port;
    const open = async (): Promise<net.Socket> => {
      const sock = net.connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      return sock;
    };
    const first = [await open(), await open()];
    await sleep(100);
    const third = await open();
    const closed = await Promise.race([new Promise((r) => third.once('close', () => r(true))), sleep(2000).then(() => false)]);
    assert.equal(closed, true, 'third connection closed by the server');
    for (const x of first) x.destroy();
    await sleep(100);
    const r = await h1(`http://127.0.0.1:${port}/hello`, { agent: false });
    assert.equal(r.status, 200);
    assert.equal(s.quicListeners.length, 0);
  });
});
