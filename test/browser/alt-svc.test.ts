import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createServer, type Server } from '../../src';
import { chromiumAvailable, forceQuicFlags, startEventLoopWatchdog, launchChromium, navigationProtocol, resourceProtocols, spkiHash, type BrowserSession } from '../helpers/browser';
import { makeTestCert, type TestCert } from '../helpers/certs';

/**
 * Headless Chromium, not forced onto QUIC, loads a page from the HTTPS (TCP) listener, gets
 * Alt-Svc and moves to HTTP/3 within five loads. The decoy recipe from the guide:
 * --origin-to-force-quic-on=localhost:9 (a port nothing requests) lets Chromium accept our
 * certificate for QUIC on localhost without forcing the real origin onto QUIC.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>loading</title><link rel="icon" href="data:,"></head>
<body><h1>Alt-Svc discovery</h1><pre id="out"></pre>
<script>
window.addEventListener('load', async () => {
  try {
    const r = await fetch(location.pathname + '?r=' + Math.random(), { cache: 'no-store' });
    await r.text();
    document.title = 'done: ' + r.status;
  } catch (e) {
    document.title = 'error: ' + e;
  }
});
</script></body></html>
`;

describe('browser: Alt-Svc discovery of HTTP/3 (headless Chromium)', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let server: Server;
  let port: number;
  let browser: BrowserSession;
  let stopWatchdog: (() => void) | undefined;
  const seen: Array<{ target: string; protocol: string }> = [];

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    stopWatchdog = startEventLoopWatchdog(90_000, 'alt-svc');
    cert = makeTestCert();
    server = createServer({ endpoints: [{ host: '::', port: 0, protocols: ['h3', 'h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
    server.use(async (ctx, next) => {
      seen.push({ target: ctx.request.target, protocol: ctx.protocol });
      ctx.set('cache-control', 'no-store');
      await next();
    });
    server.get('/', (ctx) => {
      ctx.set('content-type', 'text/html; charset=utf-8');
      ctx.body = PAGE;
    });
    await server.listen();
    port = server.tcpListeners[0]!.port;
    assert.equal(server.quicListeners[0]!.port, port, 'TCP and UDP share the port');
    // The decoy: same host, port 9, never requested.
    browser = await launchChromium(forceQuicFlags('localhost:9', spkiHash(cert.cert)));
  });

  after(async () => {
    stopWatchdog?.();
    await browser?.close();
    await server?.close({ timeoutMs: 1000 });
    if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
  });

  it('starts on TCP, receives Alt-Svc and moves to h3 within five loads', async () => {
    const { page } = browser;
    const loads: Array<{ load: number; nav: string; fetch: string; altSvc: string | undefined }> = [];
    for (let n = 1; n <= 5; n++) {
      const res = await page.goto(`https://localhost:${port}/?load=${n}`, { waitUntil: 'load' });
      assert.equal(res?.status(), 200, `load ${n}`);
      await page.waitForFunction("document.title.startsWith('done:') || document.title.startsWith('error:')", undefined, { timeout: 30_000 });
      assert.equal(await page.title(), 'done: 200', `load ${n}: the page's fetch`);
      const nav = await navigationProtocol(page);
      const fetched = (await resourceProtocols(page)).filter((r) => r.initiatorType === 'fetch');
      loads.push({ load: n, nav, fetch: fetched.map((r) => r.nextHopProtocol).join(',') || '(none)', altSvc: (await res!.allHeaders())['alt-svc'] });
    }
    const sequence = loads.map((l) => `load ${l.load}: nav=${l.nav} fetch=${l.fetch} alt-svc=${l.altSvc ?? '-'}`).join('\n  ');
    const first = loads[0]!;
    assert.ok(first.nav === 'h2' || first.nav === 'http/1.1', `load 1 comes over TCP:\n  ${sequence}`);
    assert.equal(first.altSvc, `h3=":${port}"; ma=86400`, `load 1 advertises HTTP/3:\n  ${sequence}`);
    const firstH3 = loads.findIndex((l) => l.nav === 'h3');
    assert.ok(firstH3 > 0, `a later load comes over h3:\n  ${sequence}`);
    // Once on h3 it stays there (the Alt-Svc entry and the QUIC session are reused).
    for (const l of loads.slice(firstH3)) assert.equal(l.nav, 'h3', `load ${l.load} after the move to h3:\n  ${sequence}`);

    const protocols = new Set(seen.map((s) => s.protocol));
    assert.ok(protocols.has('h3'), `server saw h3: ${JSON.stringify(seen)}`);
    assert.ok(protocols.has('h2') || protocols.has('http/1.1'), `server saw TCP: ${JSON.stringify(seen)}`);
    const navSeen = seen.filter((s) => s.target.startsWith('/?load='));
    assert.equal(navSeen.length, 5, `server saw every navigation: ${JSON.stringify(seen)}`);
    for (let i = 0; i < 5; i++) assert.equal(navSeen[i]!.protocol, loads[i]!.nav, `server and page agree on load ${i + 1}: ${JSON.stringify(seen)}`);
    console.log(`      protocols:\n  ${sequence}`);
  });
});
