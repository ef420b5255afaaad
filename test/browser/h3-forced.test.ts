import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createServer, type Server } from '../../src';
import { chromiumAvailable, forceQuicFlags, startEventLoopWatchdog, launchChromium, navigationProtocol, resourceProtocols, spkiHash, type BrowserSession } from '../helpers/browser';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { makeSite } from './site';

/**
 * Headless Chromium loads a page with 20 sub-resources over HTTP/3, forced onto QUIC with
 * --origin-to-force-quic-on; every navigation and resource entry must report h3, and the
 * server must have seen every request arrive as HTTP/3.
 */
describe('browser: HTTP/3 forced (headless Chromium)', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let server: Server;
  let port: number;
  let browser: BrowserSession;
  let stopWatchdog: (() => void) | undefined;
  const site = makeSite();
  const seen: Array<{ path: string; protocol: string }> = [];

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    stopWatchdog = startEventLoopWatchdog(90_000, 'h3-forced');
    cert = makeTestCert();
    server = createServer({ endpoints: [{ host: '::', port: 0, protocols: ['h3', 'h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
    server.use(async (ctx, next) => {
      seen.push({ path: ctx.path, protocol: ctx.protocol });
      ctx.set('cache-control', 'no-store');
      await next();
    });
    server.get('/', (ctx) => {
      ctx.set('content-type', 'text/html; charset=utf-8');
      ctx.body = site.page;
    });
    for (const a of site.assets) {
      server.get(a.path, (ctx) => {
        ctx.set('content-type', a.type);
        ctx.body = a.body;
      });
    }
    await server.listen();
    port = server.quicListeners[0]!.port;
    assert.equal(server.tcpListeners[0]!.port, port, 'TCP and UDP share the port');
    browser = await launchChromium(forceQuicFlags(`localhost:${port}`, spkiHash(cert.cert)));
  });

  after(async () => {
    stopWatchdog?.();
    await browser?.close();
    await server?.close({ timeoutMs: 1000 });
    if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
  });

  it('loads the page and its 20 sub-resources over h3', async () => {
    assert.equal(site.subresources.length, 20);
    const { page } = browser;
    const res = await page.goto(`https://localhost:${port}/`, { waitUntil: 'load' });
    assert.equal(res?.status(), 200);
    await page.waitForFunction("document.title.startsWith('done:') || document.title.startsWith('error:')", undefined, { timeout: 30_000 });
    const title = await page.title();
    assert.equal(title, 'done: a,b,app items=1,2,3 text=hello from harrier bytes=4096 sum=' + sumOfBytes(), 'the page script ran and fetched everything');
    await page.waitForFunction('performance.getEntriesByType("resource").length >= 20', undefined, { timeout: 10_000 });

    const nav = await navigationProtocol(page);
    const resources = await resourceProtocols(page);
    const summary = resources.map((r) => `${r.path} [${r.initiatorType}] ${r.nextHopProtocol}`).join('\n  ');
    assert.equal(nav, 'h3', `navigation nextHopProtocol: ${nav}`);
    assert.deepEqual(resources.map((r) => r.path).sort(), [...site.subresources].sort(), `resource entries:\n  ${summary}`);
    for (const r of resources) assert.equal(r.nextHopProtocol, 'h3', `${r.path} came over ${r.nextHopProtocol}:\n  ${summary}`);
    const types = new Set(resources.map((r) => r.initiatorType));
    for (const t of ['img', 'link', 'script', 'fetch', 'css']) assert.ok(types.has(t), `a ${t} resource among ${[...types].join(',')}`);

    // Server side: the page plus the 20 sub-resources, each exactly once, all over HTTP/3.
    const paths = seen.map((s) => s.path).sort();
    assert.deepEqual(paths, ['/', ...site.subresources].sort(), `server saw: ${JSON.stringify(seen)}`);
    const notH3 = seen.filter((s) => s.protocol !== 'h3');
    assert.deepEqual(notH3, [], 'every request reached the server over HTTP/3');
    assert.equal(seen.filter((s) => s.protocol === 'h3').length, 21);

    await page.screenshot({ path: '/tmp/harrier-h3.png', fullPage: true });
  });
});

function sumOfBytes(): number {
  let sum = 0;
  for (let i = 0; i < 4096; i++) sum = (sum + ((i * 7) & 0xff)) % 65536;
  return sum;
}
