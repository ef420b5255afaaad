import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createServer, webSocket, type Server, type WebSocketTransports } from '../../src';
import { chromiumAvailable, launchChromium, spkiHash, startEventLoopWatchdog, type BrowserSession } from '../helpers/browser';
import { makeTestCert, type TestCert } from '../helpers/certs';

/**
 * Headless Chromium opens `wss://` to Harrier and echoes 1,000 messages (text and binary,
 * 0 bytes to 1 MiB), then closes with a code and reason the server must see. Over HTTP/1.1
 * (the server does not advertise RFC 8441, so Chromium upgrades a connection of its own) and
 * over HTTP/2 (Chromium reuses the page's HTTP/2 connection with an extended CONNECT,
 * RFC 8441). The server records which protocol carried each WebSocket.
 */
const PAGE = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>ws</title></head><body>ws</body></html>';

interface EchoResult { ok: number; mismatches: string[]; bytes: number; ms: number; closeCode: number; closeReason: string; wasClean: boolean; error?: string }

/** Runs in the page: the echo, checked message by message, then the close. */
async function pageEcho(url: string): Promise<EchoResult> {
  const SIZES = [0, 1, 125, 126, 127, 1000, 4096, 65535, 65536, 100_000];
  const MIB = 1 << 20;
  const N = 1000;
  const size = (i: number): number => (i % 50 === 49 ? MIB : SIZES[i % SIZES.length]!);
  const text = (n: number, i: number): string => {
    const unit = `m${i}:abcé✓ß—`;
    let s = unit.repeat(Math.ceil(n / unit.length) + 1);
    return s.slice(0, n);
  };
  const binary = (n: number, i: number): Uint8Array => {
    const b = new Uint8Array(n);
    for (let k = 0; k < n; k++) b[k] = (k * 31 + i) & 0xff;
    return b;
  };
  const W = globalThis as unknown as { WebSocket: new (url: string) => {
    binaryType: string; readyState: number; onopen: (() => void) | null; onerror: ((e: unknown) => void) | null;
    onmessage: ((e: { data: string | ArrayBuffer }) => void) | null; onclose: ((e: { code: number; reason: string; wasClean: boolean }) => void) | null;
    send(d: string | Uint8Array): void; close(code: number, reason: string): void; } };
  const ws = new W.WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const start = Date.now();
  const mismatches: string[] = [];
  let ok = 0;
  let bytes = 0;
  return await new Promise<EchoResult>((resolve) => {
    let received = 0;
    ws.onerror = () => undefined;
    ws.onclose = (e) => resolve({ ok, mismatches, bytes, ms: Date.now() - start, closeCode: e.code, closeReason: e.reason, wasClean: e.wasClean, ...(received < N ? { error: `closed after ${received} echoes` } : {}) });
    ws.onopen = () => {
      for (let i = 0; i < N; i++) {
        const n = size(i);
        ws.send(i % 2 === 0 ? text(n, i) : binary(n, i));
      }
    };
    ws.onmessage = (e) => {
      const i = received++;
      const n = size(i);
      if (i % 2 === 0) {
        const want = text(n, i);
        if (typeof e.data !== 'string' || e.data !== want) mismatches.push(`message ${i}: text of ${n} expected`);
        else { ok++; bytes += n; }
      } else {
        const got = e.data instanceof ArrayBuffer ? new Uint8Array(e.data) : undefined;
        const want = binary(n, i);
        let same = got !== undefined && got.length === want.length;
        for (let k = 0; same && k < want.length; k++) same = got![k] === want[k];
        if (!same) mismatches.push(`message ${i}: binary of ${n} expected`);
        else { ok++; bytes += n; }
      }
      if (received === N) ws.close(4321, 'bye from chromium');
    };
  });
}

for (const variant of [
  { name: 'HTTP/1.1 Upgrade', transports: { http2: false } as WebSocketTransports, expect: 'http/1.1' },
  { name: 'HTTP/2 extended CONNECT (RFC 8441)', transports: {} as WebSocketTransports, expect: 'h2' },
]) {
  describe(`browser: WebSocket over ${variant.name} (headless Chromium)`, function () {
    this.timeout(240_000);
    let cert: TestCert;
    let server: Server;
    let browser: BrowserSession;
    let stopWatchdog: (() => void) | undefined;
    const sockets: Array<{ protocol: string; origin: string | undefined; messages: number; close?: { code: number; reason: string } }> = [];
    let closed: Promise<void>;

    before(async function () {
      if (!chromiumAvailable()) this.skip();
      stopWatchdog = startEventLoopWatchdog(150_000, 'websocket');
      cert = makeTestCert();
      // TCP only: with HTTP/3 advertised Chromium could move the page to QUIC, and it does not
      // carry WebSockets there.
      server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key }, webSockets: variant.transports });
      server.get('/', (ctx) => {
        ctx.set('content-type', 'text/html; charset=utf-8');
        ctx.body = PAGE;
      });
      let done!: () => void;
      closed = new Promise((resolve) => (done = resolve));
      server.use(webSocket('/echo', (ws, ctx) => {
        const record: (typeof sockets)[number] = { protocol: ctx.protocol, origin: ctx.get('origin'), messages: 0 };
        sockets.push(record);
        ws.on('message', (data, isBinary) => {
          record.messages++;
          ws.send(data, { binary: isBinary });
        });
        ws.on('close', (code, reason) => {
          record.close = { code, reason: reason.toString() };
          done();
        });
      }));
      await server.listen();
      browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(cert.cert)}`]);
    });

    after(async () => {
      stopWatchdog?.();
      await browser?.close();
      await server?.close({ timeoutMs: 1000 });
      if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
    });

    it(`echoes 1,000 messages up to 1 MiB over ${variant.expect} and the server sees the close`, async () => {
      const port = server.tcpListeners[0]!.port;
      const origin = `https://localhost:${port}`;
      const res = await browser.page.goto(`${origin}/`);
      assert.equal(res?.status(), 200);
      const result = await browser.page.evaluate(pageEcho, `wss://localhost:${port}/echo`);
      await closed;
      console.log(`      ${variant.expect}: ${result.ok} echoes, ${(result.bytes / 1e6).toFixed(1)} MB each way in ${result.ms} ms; close ${result.closeCode} "${result.closeReason}"`);
      assert.deepEqual(result.mismatches, []);
      assert.equal(result.error, undefined);
      assert.equal(result.ok, 1000);
      assert.equal(sockets.length, 1, JSON.stringify(sockets));
      const s = sockets[0]!;
      assert.equal(s.protocol, variant.expect, 'the protocol that carried the WebSocket');
      assert.equal(s.origin, origin);
      assert.equal(s.messages, 1000);
      assert.deepEqual(s.close, { code: 4321, reason: 'bye from chromium' });
      assert.equal(result.closeCode, 4321, 'the server echoed the close code');
      assert.ok(result.wasClean);
    });
  });
}
