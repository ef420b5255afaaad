import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createServer, type Server } from '../../src';
import { webTransport, webTransportEcho, type EchoStats, type WebTransportCloseInfo, type WebTransportSession } from '../../src/webtransport';
import { chromiumAvailable, forceQuicFlags, launchChromium, navigationProtocol, spkiHash, type BrowserSession } from '../helpers/browser';
import { makeTestCert, type TestCert } from '../helpers/certs';

/** Streams the server opens to the page at once (Chromium allows 100 of each kind at a time). */
const PUSH_UNI = 300;
const PUSH_BIDI = 150;

/**
 * Headless Chromium opens a WebTransport session to our echo endpoint with
 * serverCertificateHashes (an ECDSA P-256 certificate valid for 14 days), from a page served
 * by the same server over HTTP/3: 100 bidirectional streams of 64 KiB, 20 unidirectional
 * streams (echoed on server-opened unidirectional streams) and 1,000 datagrams come back;
 * then the page closes with a code and reason that the server must see.
 */
describe('browser: WebTransport (headless Chromium)', function () {
  this.timeout(180_000);
  let cert: TestCert;
  let server: Server;
  let port: number;
  let browser: BrowserSession;
  let refuseOrigin = false;
  const sessions: Array<{ session: WebTransportSession; stats: EchoStats; origin: string | undefined }> = [];
  const pushes: Array<{ uni: number; bidi: number; errors: string[] }> = [];

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    cert = makeTestCert();
    server = createServer({
      endpoints: [{ host: '::', port: 0, protocols: ['h3', 'h2', 'http/1.1'] }],
      tls: { cert: cert.cert, key: cert.key },
      quic: { webtransport: { maxSessions: 4 } },
    });
    server.use(webTransport('/echo', webTransportEcho({
      onSession: (session, stats) => sessions.push({ session, stats, origin: session.request.origin }),
    }), { accept: (ctx) => (!refuseOrigin && ctx.get('origin') === `https://localhost:${port}`) || 403 }));
    // Opens PUSH_UNI + PUSH_BIDI streams to the page at once, more than Chromium lets a
    // server open (100 of each): the rest must wait for its MAX_STREAMS, not fail.
    server.use(webTransport('/push', async (session) => {
      const pushed = { uni: 0, bidi: 0, errors: [] as string[] };
      pushes.push(pushed);
      const uni = Array.from({ length: PUSH_UNI }, async (_, i) => {
        const w = (await session.createUnidirectionalStream()).getWriter();
        await w.write(pushData(i, 3000));
        await w.close();
        pushed.uni++;
      });
      const bidi = Array.from({ length: PUSH_BIDI }, async (_, i) => {
        const s = await session.createBidirectionalStream();
        const w = s.writable.getWriter();
        await w.write(pushData(i, 5000));
        await w.close();
        // The page closes its side when it has read ours: read it to the end.
        const r = s.readable.getReader();
        while (!(await r.read()).done);
        pushed.bidi++;
      });
      for (const r of await Promise.allSettled([...uni, ...bidi])) if (r.status === 'rejected') pushed.errors.push(String(r.reason));
      // Every stream is done both ways: the server ends the session. (Closing in the same instant
      // as the last stream's end crashes Chromium 156's renderer, "Target crashed": a short
      // pause lets the page take its streams first.)
      await new Promise((r) => setTimeout(r, 250));
      session.close({ closeCode: 7, reason: 'all pushed' });
    }));
    server.get('/', (ctx) => {
      ctx.set('content-type', 'text/html; charset=utf-8');
      ctx.set('cache-control', 'no-store');
      ctx.body = '<!doctype html><title>webtransport</title><p>WebTransport test page</p>';
    });
    await server.listen();
    port = server.quicListeners[0]!.port;
    browser = await launchChromium(forceQuicFlags(`localhost:${port}`, spkiHash(cert.cert)));
  });

  after(async () => {
    await browser?.close();
    await server?.close({ timeoutMs: 1000 });
    if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
  });

  it('echoes 100 bidirectional streams of 64 KiB, 20 unidirectional streams and 1,000 datagrams, then closes with a code', async () => {
    const { page } = browser;
    page.on('console', (m) => console.log(`      [page] ${m.text()}`));
    const res = await page.goto(`https://localhost:${port}/`, { waitUntil: 'load' });
    assert.equal(res?.status(), 200);
    assert.equal(await navigationProtocol(page), 'h3', 'the page itself came over HTTP/3');
    const der = new crypto.X509Certificate(cert.cert).raw;
    const hash = crypto.createHash('sha256').update(der).digest('hex');

    const result = (await page.evaluate(`(${pageScript.toString()})(${port}, ${JSON.stringify(hash)})`)) as PageResult;
    console.log(`      page: ${JSON.stringify({ ...result, closed: result.closed })}`);
    assert.equal(result.error, undefined, `page error: ${result.error}`);
    assert.equal(result.bidiOk, 100, 'every bidirectional stream echoed intact');
    assert.equal(result.uniOk, 20, 'every unidirectional stream echoed intact on a server stream');
    const lost = 1000 - result.datagramsEchoed;
    console.log(`      datagrams: 1000 sent, ${result.datagramsEchoed} echoed, ${lost} lost (${(lost / 10).toFixed(1)}%)`);
    assert.ok(result.datagramsEchoed >= 900, `at most 10% datagram loss on loopback (lost ${lost})`);

    // Server side: one session, from the page's origin, closed with the page's code and reason.
    assert.equal(sessions.length, 1);
    const { session, stats, origin } = sessions[0];
    assert.equal(origin, `https://localhost:${port}`);
    const info: WebTransportCloseInfo = await Promise.race([
      session.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('server did not see the close')), 10_000)),
    ]);
    assert.deepEqual(info, { closeCode: 4242, reason: 'bye from chromium' });
    assert.equal(stats.bidirectionalStreams, 100);
    assert.equal(stats.unidirectionalStreams, 20);
    console.log(`      server: ${JSON.stringify(stats)}, dropped ${JSON.stringify(session.datagrams.dropped)}`);
  });

  it(`receives ${PUSH_UNI} unidirectional and ${PUSH_BIDI} bidirectional streams the server opens at once, past Chromium's stream limit`, async () => {
    const der = new crypto.X509Certificate(cert.cert).raw;
    const hash = crypto.createHash('sha256').update(der).digest('hex');
    if (!browser.page.url().startsWith(`https://localhost:${port}/`)) await browser.page.goto(`https://localhost:${port}/`, { waitUntil: 'load' });
    const result = (await browser.page.evaluate(`(${pushPageScript.toString()})(${port}, ${JSON.stringify(hash)}, ${PUSH_UNI}, ${PUSH_BIDI}, ${pushData.toString()})`)) as { error?: string; uni: number; bidi: number; closed?: unknown };
    console.log(`      page: ${JSON.stringify(result)}; server: ${JSON.stringify(pushes.at(-1))}`);
    assert.equal(result.error, undefined, `page error: ${result.error}`);
    assert.deepEqual([result.uni, result.bidi], [PUSH_UNI, PUSH_BIDI], 'every stream arrived intact');
    assert.deepEqual(result.closed, { closeCode: 7, reason: 'all pushed' }, 'the server closed the session once done');
    assert.deepEqual(pushes.at(-1), { uni: PUSH_UNI, bidi: PUSH_BIDI, errors: [] }, 'every server stream was opened and finished');
  });

  it('rejects sessions the pipeline does not accept: unknown path (404) and a refused origin check', async () => {
    const der = new crypto.X509Certificate(cert.cert).raw;
    const hash = crypto.createHash('sha256').update(der).digest('hex');
    const attempt = async (path: string): Promise<string> => browser.page.evaluate(`(async () => {
      const value = new Uint8Array(${JSON.stringify(hash)}.match(/../g).map((h) => parseInt(h, 16)));
      const wt = new WebTransport('https://localhost:${port}${path}', { serverCertificateHashes: [{ algorithm: 'sha-256', value }] });
      try { await wt.ready; wt.close(); return 'opened'; } catch (e) { return 'rejected: ' + e.name; }
    })()`);
    assert.match(await attempt('/nowhere'), /^rejected/);
    const before = sessions.length;
    refuseOrigin = true;
    try {
      assert.match(await attempt('/echo'), /^rejected/);
    } finally {
      refuseOrigin = false;
    }
    assert.equal(sessions.length, before, 'the handler never saw a rejected session');
    assert.match(await attempt('/echo'), /^opened/);
  });
});

/** Stream i's bytes: its index (u32), then a pattern (also runs in the page). */
function pushData(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, i);
  for (let j = 4; j < size; j++) b[j] = (i * 13 + j) & 255;
  return b;
}

/* eslint-disable */
// Runs in the page: reads every stream the server opens and checks its bytes.
async function pushPageScript(port: number, hashHex: string, nUni: number, nBidi: number, data: (i: number, size: number) => Uint8Array): Promise<{ error?: string; uni: number; bidi: number; closed?: unknown }> {
  try {
    const value = new Uint8Array(hashHex.match(/../g)!.map((h) => parseInt(h, 16)));
    const wt = new (globalThis as any).WebTransport(`https://localhost:${port}/push`, { serverCertificateHashes: [{ algorithm: 'sha-256', value }] });
    await wt.ready;
    const readAll = async (rs: ReadableStream<Uint8Array>): Promise<Uint8Array> => {
      const parts: Uint8Array[] = [];
      const r = rs.getReader();
      for (;;) {
        const { value: v, done } = await r.read();
        if (done) break;
        parts.push(v);
      }
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) { out.set(p, o); o += p.length; }
      return out;
    };
    const intact = (b: Uint8Array, size: number): boolean => {
      if (b.length !== size) return false;
      const want = data(new DataView(b.buffer).getUint32(0), size);
      return b.every((x, k) => x === want[k]);
    };
    const uniSeen = new Set<number>();
    const bidiSeen = new Set<number>();
    const uniReader = wt.incomingUnidirectionalStreams.getReader();
    const bidiReader = wt.incomingBidirectionalStreams.getReader();
    const tasks: Promise<void>[] = [];
    const uniLoop = (async () => {
      for (let k = 0; k < nUni; k++) {
        const { value: rs } = await uniReader.read();
        tasks.push(readAll(rs).then((b) => { if (intact(b, 3000)) uniSeen.add(new DataView(b.buffer).getUint32(0)); }));
      }
    })();
    const bidiLoop = (async () => {
      for (let k = 0; k < nBidi; k++) {
        const { value: s } = await bidiReader.read();
        tasks.push(readAll(s.readable).then(async (b) => {
          if (intact(b, 5000)) bidiSeen.add(new DataView(b.buffer).getUint32(0));
          // Our FIN: the server closes the session once it has every one, possibly before
          // this promise settles.
          s.writable.getWriter().close().catch(() => {});
        }));
      }
    })();
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out with ${uniSeen.size} uni, ${bidiSeen.size} bidi`)), 60_000));
    await Promise.race([Promise.all([uniLoop, bidiLoop]).then(() => Promise.all(tasks)), timeout]);
    // The server closes the session once it has every stream's end from us.
    const closed = await Promise.race([wt.closed, timeout]);
    return { uni: uniSeen.size, bidi: bidiSeen.size, closed };
  } catch (e: any) {
    return { error: `${e?.name}: ${e?.message}`, uni: 0, bidi: 0 };
  }
}
/* eslint-enable */

interface PageResult {
  error?: string;
  bidiOk: number;
  uniOk: number;
  datagramsEchoed: number;
  datagramsReceivedByServer?: number;
  maxDatagramSize: number;
  closed: unknown;
}

/* eslint-disable */
// Runs in the page (serialised with toString): plain JavaScript, no closures over test code.
async function pageScript(port: number, hashHex: string): Promise<PageResult> {
  const g = globalThis as any;
  try {
    const value = new Uint8Array(hashHex.match(/../g)!.map((h) => parseInt(h, 16)));
    const wt = new g.WebTransport(`https://localhost:${port}/echo`, { serverCertificateHashes: [{ algorithm: 'sha-256', value }] });
    await wt.ready;
    const readAll = async (readable: any): Promise<Uint8Array> => {
      const r = readable.getReader();
      const parts: Uint8Array[] = [];
      let n = 0;
      for (;;) {
        const { value: v, done } = await r.read();
        if (done) break;
        parts.push(v);
        n += v.length;
      }
      const out = new Uint8Array(n);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    };
    const eq = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
    const bidiData = (i: number): Uint8Array => {
      const b = new Uint8Array(65536);
      for (let j = 0; j < b.length; j++) b[j] = (i * 31 + j * 7) & 255;
      return b;
    };
    // 25 streams in flight at a time: Chromium fails createBidirectionalStream() outright
    // (it does not wait) once the server's QUIC stream limit (100, the CONNECT stream included) is used up.
    const bidi: boolean[] = [];
    let nextStream = 0;
    await Promise.all(Array.from({ length: 25 }, async () => {
      for (let i = nextStream++; i < 100; i = nextStream++) {
        const s = await wt.createBidirectionalStream();
        const back = readAll(s.readable);
        const w = s.writable.getWriter();
        await w.write(bidiData(i));
        await w.close();
        bidi[i] = eq(await back, bidiData(i));
      }
    }));

    console.log(`bidirectional streams done: ${bidi.filter(Boolean).length}`);
    const uniData = (i: number): Uint8Array => {
      const b = new Uint8Array(4096 + i);
      new DataView(b.buffer).setUint32(0, i);
      for (let j = 4; j < b.length; j++) b[j] = (i + j) & 255;
      return b;
    };
    const incoming = wt.incomingUnidirectionalStreams.getReader();
    for (let i = 0; i < 20; i++) {
      const s = await wt.createUnidirectionalStream();
      const w = s.getWriter();
      await w.write(uniData(i));
      await w.close();
    }
    const uniSeen = new Set<number>();
    for (let k = 0; k < 20; k++) {
      const { value: rs } = await incoming.read();
      const b = await readAll(rs);
      const i = new DataView(b.buffer).getUint32(0);
      if (eq(b, uniData(i))) uniSeen.add(i);
    }

    console.log(`unidirectional streams done: ${uniSeen.size}`);
    const dw = wt.datagrams.writable.getWriter();
    const dr = wt.datagrams.readable.getReader();
    const got = new Set<number>();
    void (async () => {
      for (;;) {
        const { value: v, done } = await dr.read();
        if (done) break;
        got.add(new DataView(v.buffer, v.byteOffset).getUint32(0));
      }
    })().catch(() => {});
    for (let i = 0; i < 1000; i++) {
      const d = new Uint8Array(100);
      new DataView(d.buffer).setUint32(0, i);
      await dw.write(d);
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
    }
    for (let t = 0; t < 30 && got.size < 1000; t++) await new Promise((r) => setTimeout(r, 100));

    console.log(`datagrams echoed: ${got.size}`);
    wt.close({ closeCode: 4242, reason: 'bye from chromium' });
    const closed = await wt.closed;
    return { bidiOk: bidi.filter(Boolean).length, uniOk: uniSeen.size, datagramsEchoed: got.size, maxDatagramSize: wt.datagrams.maxDatagramSize, closed };
  } catch (e: any) {
    return { error: `${e?.name}: ${e?.message} ${e?.stack ?? ''}`, bidiOk: 0, uniOk: 0, datagramsEchoed: 0, maxDatagramSize: 0, closed: null };
  }
}
