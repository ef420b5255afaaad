import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QuicEndpoint } from '../../src/quic';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { startEchoServer } from '../helpers/echo';
import { peerScript, python, runPeer } from '../helpers/peers';

interface EchoReport {
  ok: boolean; streams: number; streams_ok: number; bytes_echoed: number;
  datagrams_sent: number; datagrams_echoed: number; retry_seen: boolean; resumed: boolean;
  early_data_accepted: boolean; alpn: string; error: string | null;
}

// aioquic needs about 80 s of its own CPU for 100 x 1 MiB on our machines (it scans every
// stream per packet), hence the generous bound.
const aioquicEcho = (port: number, ...args: string[]) =>
  runPeer<EchoReport>(python, [peerScript('aioquic_echo.py'), '--port', String(port), '--server-name', 'localhost', ...args], 240_000);

describe('QUIC endpoint with aioquic as the peer', function () {
  this.timeout(300_000);
  let cert: TestCert;
  before(() => {
    cert = makeTestCert();
  });

  it('echoes 100 concurrent bidirectional streams of 1 MiB byte-exact, and datagrams', async () => {
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile });
    try {
      const { report } = await aioquicEcho(ep.address!.port, '--streams', '100', '--size', String(1 << 20),
        '--datagrams', '200', '--timeout', '200');
      assert.equal(report.error, null);
      assert.equal(report.alpn, 'harrier-echo');
      assert.equal(report.streams_ok, 100);
      assert.equal(report.bytes_echoed, 100 * (1 << 20));
      // Datagrams are unreliable by design; on loopback nearly all come back.
      assert.ok(report.datagrams_echoed >= 190, `datagrams echoed: ${report.datagrams_echoed}/200`);
      assert.equal(report.ok, true);
    } finally {
      await ep.close();
    }
  });

  it('accepts traditional EC keys given as PEM text, and RSA keys', async () => {
    for (const kind of ['ec-traditional', 'rsa'] as const) {
      const c = makeTestCert(kind);
      assert.match(c.key, kind === 'rsa' ? /BEGIN (RSA )?PRIVATE KEY/ : /BEGIN EC PRIVATE KEY/);
      const ep = await startEchoServer({ host: '127.0.0.1', cert: c.cert, key: c.key });
      try {
        const { report } = await aioquicEcho(ep.address!.port, '--streams', '2', '--size', '1000');
        assert.equal(report.ok, true, `${kind}: ${report.error}`);
      } finally {
        await ep.close();
      }
    }
  });

  it('sends a Retry when asked, and the client completes through it', async () => {
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile, retry: true });
    try {
      const { report } = await aioquicEcho(ep.address!.port, '--streams', '4', '--size', '10000');
      assert.equal(report.ok, true, String(report.error));
      assert.equal(report.retry_seen, true);
      assert.equal(ep.stats().retriesSent, 1);
    } finally {
      await ep.close();
    }
  });

  it('resumes a session from its ticket and accepts 0-RTT early data', async () => {
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile, earlyData: true });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-ticket-'));
    const ticket = path.join(dir, 'ticket.pickle');
    try {
      const first = await aioquicEcho(ep.address!.port, '--streams', '2', '--size', '1000', '--session-ticket-out', ticket);
      assert.equal(first.report.ok, true, String(first.report.error));
      assert.ok(fs.existsSync(ticket), 'the server issued a session ticket');
      const resumed: string[] = [];
      ep.on('connection', (c) => resumed.push(`${c.info?.resumed}/${c.info?.earlyData}`));
      const second = await aioquicEcho(ep.address!.port, '--streams', '2', '--size', '1000',
        '--session-ticket-in', ticket, '--zero-rtt');
      assert.equal(second.report.ok, true, String(second.report.error));
      assert.equal(second.report.resumed, true);
      assert.equal(second.report.early_data_accepted, true);
      assert.deepEqual(resumed, ['true/true'], 'the server saw a resumed connection in early data');
    } finally {
      await ep.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes an NSS key log with every secret and one qlog file per connection', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-logs-'));
    const keylogFile = path.join(dir, 'keys.log');
    const qlogDir = path.join(dir, 'qlog');
    fs.mkdirSync(qlogDir);
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile, keylogFile, qlogDir });
    try {
      const { report } = await aioquicEcho(ep.address!.port, '--streams', '1', '--size', '1000');
      assert.equal(report.ok, true, String(report.error));
      const labels = new Set(fs.readFileSync(keylogFile, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]));
      for (const l of ['CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0']) {
        assert.ok(labels.has(l), `key log has ${l}: ${[...labels].join(', ')}`);
      }
      const qlogs = fs.readdirSync(qlogDir);
      assert.equal(qlogs.length, 1, qlogs.join(', '));
      assert.match(fs.readFileSync(path.join(qlogDir, qlogs[0]), 'utf8'), /"quic:packet_received"/);
    } finally {
      await ep.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves on IPv6 and dual-stack sockets', async () => {
    const ep = await startEchoServer({ host: '::', cert: cert.certFile, key: cert.keyFile });
    try {
      for (const host of ['::1', '127.0.0.1']) {
        const { report } = await aioquicEcho(ep.address!.port, '--host', host, '--streams', '2', '--size', '1000');
        assert.equal(report.ok, true, `${host}: ${report.error}`);
      }
    } finally {
      await ep.close();
    }
  });

  it('closes every connection with its code and releases the socket on close()', async () => {
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile });
    const client = QuicEndpoint.client({ alpn: ['harrier-echo'] });
    const accepted = new Promise((resolve) => ep.once('connection', resolve));
    const conn = client.connect('127.0.0.1', ep.address!.port);
    await new Promise((resolve) => conn.once('connect', resolve));
    await accepted;
    const closed = conn.whenClosed;
    await ep.close({ code: 0x42, reason: 'maintenance' });
    const info = await closed;
    assert.deepEqual([info.byPeer, info.isApp, info.code, info.reason], [true, true, 0x42, 'maintenance']);
    // The port is free again.
    const again = await startEchoServer({ host: '127.0.0.1', port: ep.address!.port, cert: cert.certFile, key: cert.keyFile });
    await again.close();
    await client.close();
  });
});
