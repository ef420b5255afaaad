import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { goPeer, peerScript, python, repoRoot, runPeer } from '../helpers/peers';

const bin = path.join(repoRoot, 'bin', 'harrier.js');
const qifs = path.resolve(repoRoot, '..', 'shared', 'conformance', 'qifs');

function harrier(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
}

function get(url: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    }).on('error', reject);
  });
}

describe('the harrier command', function () {
  this.timeout(120_000);

  it('rejects bad arguments with one clear line and exit code 2', () => {
    for (const [args, message] of [
      [['frobnicate'], /unknown command: frobnicate/],
      [['serve', '--port', 'abc'], /--port must be an integer from 0 to 65535/],
      [['serve', '/definitely/not/here'], /not a folder: \/definitely\/not\/here/],
      [['serve', '--cert', 'x.pem'], /--cert and --key go together/],
      [['serve', '--wat'], /Unknown option '--wat'/],
      [['proxy', 'ftp://x'], /must be http:\/\/ or https:\/\//],
      [['qif', 'decode'], /qif decode takes one input file/],
    ] as Array<[string[], RegExp]>) {
      const r = harrier(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it('qif decode reproduces a corpus file, and qif encode output decodes back to its source', () => {
    const source = path.join(qifs, 'qifs', 'netbsd.qif');
    const encoded = path.join(qifs, 'encoded', 'nghttp3', 'netbsd.out.4096.100.0');
    assert.ok(fs.existsSync(encoded), `corpus file missing: ${encoded}`);
    const normalize = (t: string): string => t.replace(/\r/g, '').split('\n').filter((l) => !l.startsWith('#')).join('\n').trim();
    const decoded = harrier(['qif', 'decode', encoded, '--table-capacity', '4096', '--blocked-streams', '100']);
    assert.equal(decoded.status, 0, decoded.stderr);
    assert.equal(normalize(decoded.stdout), normalize(fs.readFileSync(source, 'utf8')));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-qif-'));
    try {
      const out = path.join(dir, 'netbsd.out.4096.100.1');
      const enc = spawnSync(process.execPath, [bin, 'qif', 'encode', source, '--table-capacity', '4096', '--blocked-streams', '100', '--ack-mode', '1'], { timeout: 30_000 });
      assert.equal(enc.status, 0, String(enc.stderr));
      fs.writeFileSync(out, enc.stdout);
      const back = harrier(['qif', 'decode', out, '--table-capacity', '4096', '--blocked-streams', '100']);
      assert.equal(normalize(back.stdout), normalize(fs.readFileSync(source, 'utf8')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('harrier serve <dir> on a development certificate', () => {
    let child: ChildProcess;
    let out = '';
    let port = 0;
    let site: string;
    let certDir: string;
    const file = crypto.randomBytes(100_000);

    before(async () => {
      site = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-cli-site-'));
      certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-cli-cert-'));
      fs.writeFileSync(path.join(site, 'index.html'), '<!doctype html><title>hi</title><p>hello</p>\n');
      fs.writeFileSync(path.join(site, 'data.bin'), file);
      child = spawn(process.execPath, [bin, 'serve', site, '--port', '0', '--host', '127.0.0.1', '--websocket-echo', '/ws'], {
        env: { ...process.env, HARRIER_DEV_CERT_DIR: certDir }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const deadline = Date.now() + 20_000;
      while (!/TCP\s+h2, http\/1\.1/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const m = /https:\/\/127\.0\.0\.1:(\d+)\/\s+UDP\s+h3/.exec(out);
      assert.ok(m, `the CLI printed its URLs:\n${out}`);
      port = Number(m[1]);
    });

    after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(certDir, { recursive: true, force: true });
    });

    it('prints each URL and protocol, and how to trust the certificate', () => {
      assert.match(out, /https:\/\/127\.0\.0\.1:\d+\/\s+UDP\s+h3, hq-interop/);
      assert.match(out, /https:\/\/127\.0\.0\.1:\d+\/\s+TCP\s+h2, http\/1\.1/);
      assert.match(out, /--ignore-certificate-errors-spki-list=/);
      assert.match(out, /--origin-to-force-quic-on=localhost:\d+/);
      assert.ok(fs.existsSync(path.join(certDir, 'cert.pem')), 'the development certificate is kept in the per-user folder');
    });

    it('serves the folder over HTTPS with Alt-Svc pointing at HTTP/3 on the same port', async () => {
      const r = await get(`https://127.0.0.1:${port}/data.bin`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['alt-svc'], `h3=":${port}"; ma=86400`);
      assert.ok(r.body.equals(file));
      const index = await get(`https://127.0.0.1:${port}/`);
      assert.match(index.body.toString(), /hello/);
      assert.match(String(index.headers['content-type']), /text\/html/);
    });

    it('serves the same files over HTTP/3 to aioquic', async () => {
      const { report } = await runPeer<{ ok: boolean; error: string | null; alpn: string; responses: Array<{ status: number; sha256: string }> }>(
        python, [peerScript('aioquic_h3.py'), '--url-base', `https://127.0.0.1:${port}`, '--server-name', 'localhost', '--paths', '/data.bin,/', '--timeout', '30']);
      assert.equal(report.error, null);
      assert.equal(report.alpn, 'h3');
      assert.equal(report.responses[0].status, 200);
      assert.equal(report.responses[0].sha256, crypto.createHash('sha256').update(file).digest('hex'));
      assert.equal(report.responses[1].status, 200);
    });

    it('--websocket-echo: a WebSocket echo over HTTP/1.1 (ws client) and HTTP/3 (quic-go client)', async () => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { rejectUnauthorized: false });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
      ws.send(file.subarray(0, 70_000));
      assert.ok((await echoed).equals(file.subarray(0, 70_000)));
      ws.close(1000);
      const run = await runPeer<Record<string, unknown>>(goPeer('wsh3'), ['-addr', `127.0.0.1:${port}`, '-path', '/ws', '-insecure', '-n', '6']);
      assert.equal(run.code, 0, `${JSON.stringify(run.report)}\n${run.stderr}`);
      assert.equal(run.report.echoed, 6);
      assert.match(out, /WebSocket echo at \/ws/);
      // The access log shows each WebSocket with its handshake status, once it has closed.
      await new Promise((r) => setTimeout(r, 200));
      assert.match(out, /"GET \/ws HTTP\/1\.1" 101/);
      assert.match(out, /"CONNECT \/ws HTTP\/3" 200/);
    });

    it('logs each request and shuts down gracefully on SIGTERM', async () => {
      assert.match(out, /"GET \/data\.bin HTTP\/3" 200/);
      assert.match(out, /"GET \/data\.bin HTTP\/(2|1\.1)" 200/);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    });
  });
});
