import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createServer, type Server } from '../../src';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { goPeer, peerScript, python, runPeer } from '../helpers/peers';

interface H3Response { path: string; status: number; headers: Record<string, string>; bytes: number; sha256: string; error?: string }
interface H3Report {
  ok: boolean; responses: H3Response[]; alpn: string; error: string | null;
  post: (H3Response & { sent_bytes: number; sent_sha256: string }) | null;
  cancelled: { path: string; cancel_sent: boolean; server_reset_code?: number } | null;
}

const sha256 = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

/** 100 files from 1 KB to 5 MB, deterministic. */
function makeSite(): { dir: string; files: Map<string, string> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-site-'));
  const files = new Map<string, string>();
  for (let i = 0; i < 100; i++) {
    const size = Math.round(1000 * Math.pow(5000, i / 99)); // 1 KB .. 5 MB, geometric
    const data = crypto.createHash('shake128', { outputLength: size }).update(`file-${i}`).digest();
    const name = `f${i}.bin`;
    fs.writeFileSync(path.join(dir, name), data);
    files.set(`/${name}`, sha256(data));
  }
  return { dir, files };
}

describe('HTTP/3 with independent clients (aioquic, quic-go)', function () {
  this.timeout(300_000);
  let cert: TestCert;
  let site: { dir: string; files: Map<string, string> };
  let server: Server;
  let base: string;
  let paths: string;
  const uploads: Array<{ bytes: number; sha256: string; trailers: Record<string, string>; protocol: string }> = [];

  before(async () => {
    cert = makeTestCert();
    site = makeSite();
    paths = path.join(site.dir, 'paths.txt');
    fs.writeFileSync(paths, [...site.files.keys()].join('\n'));
    server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3'] }], tls: { cert: cert.certFile, key: cert.keyFile } });
    server.post('/upload', async (ctx) => {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      for await (const chunk of ctx.request.body) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).byteLength;
      }
      const trailers = Object.fromEntries(await ctx.request.trailers());
      const summary = { bytes, sha256: hash.digest('hex'), trailers, protocol: ctx.protocol };
      uploads.push(summary);
      ctx.body = summary;
    });
    server.use(async (ctx, next) => {
      const file = path.join(site.dir, path.basename(ctx.path));
      if (ctx.method !== 'GET' || !site.files.has(ctx.path)) return next();
      ctx.set('content-length', fs.statSync(file).size);
      ctx.body = fs.createReadStream(file);
    });
    await server.listen();
    base = `https://127.0.0.1:${server.quicListeners[0].port}`;
  });

  after(async () => {
    await server.close({ timeoutMs: 2000 });
    fs.rmSync(site.dir, { recursive: true, force: true });
  });

  function checkFiles(report: H3Report): void {
    assert.equal(report.error, null);
    assert.equal(report.responses.length, 100);
    for (const r of report.responses) {
      assert.equal(r.status ?? 200, 200, r.path);
      assert.equal(r.sha256, site.files.get(r.path), `${r.path} byte-exact`);
    }
  }

  it('aioquic GETs 100 files (1 KB to 5 MB) in parallel on one connection, with its QPACK dynamic table on', async () => {
    const { report } = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', base,
      '--server-name', 'localhost', '--paths-file', paths, '--qpack-capacity', '4096', '--timeout', '240'], 260_000);
    assert.equal(report.alpn, 'h3');
    checkFiles(report);
    assert.equal(report.ok, true);
  });

  it('quic-go GETs the same 100 files in parallel on one connection', async () => {
    const { report } = await runPeer<H3Report>(goPeer('h3get'), ['-base', base, '-paths-file', paths, '-parallel', '-timeout', '120']);
    checkFiles(report);
    assert.equal(report.ok, true);
  });

  for (const client of ['aioquic', 'quic-go'] as const) {
    it(`${client}: a 10 MB POST with trailers arrives whole, trailers included`, async () => {
      const size = 10 * 1000 * 1000;
      const expected = sha256(crypto.createHash('shake128', { outputLength: size }).update('harrier-post').digest());
      const { report } = client === 'aioquic'
        ? await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', base, '--server-name', 'localhost',
          '--post', '/upload', '--post-size', String(size), '--trailers', 'x-checksum: abc123', '--timeout', '120'])
        : await runPeer<H3Report>(goPeer('h3get'), ['-base', base, '-post', '/upload', '-post-size', String(size),
          '-trailer', 'x-checksum: abc123', '-timeout', '120']);
      assert.equal(report.error, null);
      assert.equal(report.post?.status, 200);
      const got = uploads.pop();
      assert.deepEqual(got, { bytes: size, sha256: expected, trailers: { 'x-checksum': 'abc123' }, protocol: 'h3' });
    });
  }

  it('one cancelled request does not disturb the others', async () => {
    const some = [...site.files.keys()].slice(0, 30);
    const { report } = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', base,
      '--server-name', 'localhost', '--paths', some.join(','), '--cancel', '/f99.bin', '--timeout', '120']);
    assert.equal(report.error, null);
    assert.equal(report.cancelled?.cancel_sent, true);
    assert.equal(report.responses.length, 30);
    for (const r of report.responses) assert.equal(r.sha256, site.files.get(r.path), r.path);
    assert.equal(report.ok, true);
  });

  it('aioquic in hq-interop mode downloads the same files', async () => {
    const { report } = await runPeer<H3Report>(python, [peerScript('aioquic_h3.py'), '--url-base', base,
      '--server-name', 'localhost', '--hq', '--paths-file', paths, '--timeout', '240'], 260_000);
    assert.equal(report.alpn, 'hq-interop');
    assert.equal(report.error, null);
    for (const r of report.responses) assert.equal(r.sha256, site.files.get(r.path), r.path);
    assert.equal(report.ok, true);
  });
});
