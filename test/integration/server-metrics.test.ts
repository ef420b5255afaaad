import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { createServer, type Server } from '../../src';
import { formatPrometheus } from '../../src/metrics';
import { makeTestCert } from '../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../helpers/peers';
import { h1, h2, sleep } from './server-util';

describe('server metrics: API and Prometheus endpoint', function () {
  this.timeout(120_000);
  let server: Server;
  let tlsPort: number;
  let plain: string;

  before(async () => {
    const cert = makeTestCert();
    server = createServer({
      endpoints: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: false }],
      tls: { cert: cert.certFile, key: cert.keyFile },
      quic: { hq: false },
      metrics: { path: '/metrics' },
    });
    server.get('/hello', (ctx) => {
      ctx.body = 'hello';
    });
    server.post('/size', async (ctx) => {
      ctx.body = String((await ctx.request.bytes()).byteLength);
    });
    await server.listen();
    tlsPort = server.tcpListeners[0].port;
    plain = `http://127.0.0.1:${server.tcpListeners[1].port}`;
  });

  after(async () => {
    await server.close({ timeoutMs: 1000 });
  });

  it('counts requests by protocol and status, connections, body bytes and handshake failures', async () => {
    const before = server.metrics();
    assert.deepEqual(before.requests.total, { h3: {}, hq: {}, h2: {}, 'http/1.1': {} });
    assert.deepEqual(before.handshakeFailures, { quic: 0, tls: 0 });

    assert.equal((await h1(`${plain}/hello`, { agent: false })).status, 200);
    assert.equal((await h1(`https://127.0.0.1:${tlsPort}/hello`, { agent: false })).status, 200);
    assert.equal((await h1(`${plain}/missing`, { agent: false })).status, 404);
    assert.equal((await h1(`${plain}/size`, { method: 'POST', body: Buffer.alloc(1000), agent: false })).body, '1000');
    assert.equal((await h2(`https://127.0.0.1:${tlsPort}`, { ':path': '/hello' })).status, 200);
    const { report } = await runPeer<{ ok: boolean }>(goPeer('h3get'), ['-base', `https://127.0.0.1:${tlsPort}`, '-paths', '/hello,/hello,/nope', '-timeout', '20']);
    assert.equal(report.ok, true);

    // A TLS handshake that fails (garbage instead of a ClientHello).
    await new Promise<void>((resolve) => {
      const s = net.connect(tlsPort, '127.0.0.1', () => s.write('this is not TLS\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    // A QUIC handshake that fails: the client offers only hq-interop, which is off.
    const hq = await runPeer<{ ok: boolean; error: string | null }>(python, [peerScript('aioquic_h3.py'), '--url-base', `https://127.0.0.1:${tlsPort}`,
      '--server-name', 'localhost', '--hq', '--paths', '/hello', '--handshake-timeout', '3', '--timeout', '10']);
    assert.equal(hq.report.ok, false);

    let m = server.metrics();
    for (let i = 0; i < 100 && (m.handshakeFailures.quic < 1 || m.connections.active.quic > 0); i++) {
      await sleep(50);
      m = server.metrics();
    }
    assert.deepEqual(m.requests.total, {
      h3: { 200: 2, 404: 1 },
      hq: {},
      h2: { 200: 1 },
      'http/1.1': { 200: 3, 404: 1 },
    });
    assert.deepEqual(m.requests.active, { h3: 0, hq: 0, h2: 0, 'http/1.1': 0 });
    assert.equal(m.handshakeFailures.tls, 1);
    // Each Initial aioquic retransmits after the refusal is a new failed attempt for the endpoint.
    assert.ok(m.handshakeFailures.quic >= 1, JSON.stringify(m.handshakeFailures));
    assert.equal(m.connections.total.quic, 1);
    assert.equal(m.connections.active.quic, 0);
    assert.ok(m.connections.total.tls >= 3, JSON.stringify(m.connections));
    assert.ok(m.connections.total.tcp >= 3, JSON.stringify(m.connections));
    assert.equal(m.connections.total.unix, 0);
    assert.equal(m.bytes.received['http/1.1'], 1000);
    assert.equal(m.bytes.sent.h3, 2 * 'hello'.length + 'Not Found'.length);
    assert.equal(m.bytes.sent.h2, 'hello'.length);
    // The snapshot is a copy, not a live view.
    m.requests.total.h3[200] = 99;
    assert.equal(server.metrics().requests.total.h3[200], 2);
  });

  it('serves the Prometheus text format at metrics.path', async () => {
    const r = await h1(`${plain}/metrics`, { agent: false });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = r.body;
    assert.match(text, /^# HELP harrier_requests_total .+$/m);
    assert.match(text, /^# TYPE harrier_requests_total counter$/m);
    assert.match(text, /^harrier_requests_total\{protocol="h3",status="200"\} 2$/m);
    assert.match(text, /^harrier_requests_total\{protocol="http\/1\.1",status="404"\} 1$/m);
    assert.match(text, /^# TYPE harrier_connections_active gauge$/m);
    assert.match(text, /^harrier_connections_active\{transport="tcp"\} [1-9]\d*$/m);
    assert.match(text, /^harrier_requests_active\{protocol="http\/1\.1"\} 1$/m, 'the /metrics request itself');
    assert.match(text, /^harrier_handshake_failures_total\{transport="tls"\} 1$/m);
    assert.match(text, /^harrier_received_bytes_total\{protocol="http\/1\.1"\} 1000$/m);
    // Every sample line is `name{labels} value`, every family has HELP and TYPE.
    for (const line of text.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) harrier_\w+ .+|harrier_\w+(\{[^}]*\})? \d+)$/, line);
    // POST is not the metrics endpoint.
    assert.equal((await h1(`${plain}/metrics`, { method: 'POST', agent: false })).status, 404);
  });

  it('formatPrometheus escapes label values', () => {
    const m = server.metrics();
    m.requests.total.h3 = { 'a"b\\c\nd': 1 };
    assert.match(formatPrometheus(m), /^harrier_requests_total\{protocol="h3",status="a\\"b\\\\c\\nd"\} 1$/m);
  });
});
