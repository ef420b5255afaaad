import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Headless Chromium (Debian's package) driven by playwright-core, set up as
 * /work/shared/guides/browser-h3.md describes: base flags, a fresh profile per launch, no
 * network but loopback. Playwright never downloads a browser here: we always pass
 * executablePath.
 */

/** The browser binary; HARRIER_CHROMIUM overrides it. */
export const CHROMIUM_PATH = process.env.HARRIER_CHROMIUM ?? '/usr/bin/chromium';

/** True when the browser is installed (browser tests skip otherwise). */
export function chromiumAvailable(): boolean {
  try {
    fs.accessSync(CHROMIUM_PATH, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The guide's base flags: root, headless, closed network (playwright adds `--headless` too). */
export const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Keeps Chromium off every network but loopback (no look-ups of Google's hosts at start). */
export const HOST_RESOLVER_RULES = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1';

/** base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (for --ignore-certificate-errors-spki-list). */
export function spkiHash(certPem: string | Buffer): string {
  const der = new crypto.X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64');
}

/** Flags for HTTP/3 from the first request to `host:port` (guide, recipe a). */
export function forceQuicFlags(origin: string, spki: string): string[] {
  return [`--origin-to-force-quic-on=${origin}`, `--ignore-certificate-errors-spki-list=${spki}`];
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  userDataDir: string;
  /** The net log file when one was asked for (HARRIER_NETLOG=1 or options.netLog). */
  netLog: string | undefined;
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Write a Chromium net log (--log-net-log) to this file; HARRIER_NETLOG=dir also turns it on. */
  netLog?: string;
  /** Forward the browser's stderr (HARRIER_BROWSER_DEBUG=1 does it too). */
  debug?: boolean;
}

/**
 * Launches Chromium with a fresh profile (a new mkdtemp --user-data-dir: Chromium caches
 * Alt-Svc in the profile), the base flags, the host-resolver rules and `extraArgs`.
 */
export async function launchChromium(extraArgs: string[], options: LaunchOptions = {}): Promise<BrowserSession> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-chromium-'));
  let netLog = options.netLog;
  if (!netLog && process.env.HARRIER_NETLOG) {
    fs.mkdirSync(process.env.HARRIER_NETLOG, { recursive: true });
    netLog = path.join(process.env.HARRIER_NETLOG, `netlog-${path.basename(userDataDir)}.json`);
  }
  const args = [...BASE_FLAGS, HOST_RESOLVER_RULES, ...extraArgs];
  if (netLog) args.push(`--log-net-log=${netLog}`, '--net-log-capture-mode=Everything');
  const debug = options.debug ?? process.env.HARRIER_BROWSER_DEBUG === '1';
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args,
    timeout: 60_000,
    ...(debug ? { logger: { isEnabled: () => true, log: (name: string, _sev: string, msg: string | Error) => console.error(`[${name}] ${String(msg)}`) } } : {}),
  });
  const page = context.pages()[0] ?? await context.newPage();
  if (debug) page.on('console', (m) => console.error(`[page] ${m.text()}`));
  return {
    context,
    page,
    userDataDir,
    netLog,
    async close() {
      try {
        await context.close();
      } finally {
        fs.rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
}

/** The bits of the page's Performance API we read (the tsconfig has no DOM lib). */
interface PageTiming { name: string; initiatorType?: string; nextHopProtocol: string }
interface PagePerformance { getEntriesByType(type: string): PageTiming[] }

/** `performance.getEntriesByType('navigation')[0].nextHopProtocol` of the page's current document. */
export async function navigationProtocol(page: Page): Promise<string> {
  return page.evaluate(() => {
    const perf = (globalThis as unknown as { performance: PagePerformance }).performance;
    const nav = perf.getEntriesByType('navigation')[0];
    return nav ? nav.nextHopProtocol : '(no navigation entry)';
  });
}

export interface ResourceProtocol { name: string; path: string; initiatorType: string; nextHopProtocol: string }

/** The resource timing entries of the current document with their nextHopProtocol. */
export async function resourceProtocols(page: Page): Promise<ResourceProtocol[]> {
  return page.evaluate(() => {
    const perf = (globalThis as unknown as { performance: PagePerformance }).performance;
    return perf.getEntriesByType('resource').map((e) => {
      const u = new URL(e.name);
      return { name: e.name, path: u.pathname + u.search, initiatorType: e.initiatorType ?? '', nextHopProtocol: e.nextHopProtocol };
    });
  });
}

/**
 * A watchdog on a worker thread for the browser tests: the server runs in the test process, so
 * if its event loop stops turning (a native busy loop), mocha's own timeouts never fire and the
 * run hangs for ever. When the main thread has not ticked for `stallMs`, the worker prints a
 * diagnostic and kills the process, so the run fails instead. Returns a stop function.
 */
export function startEventLoopWatchdog(stallMs = 90_000, label = 'browser test'): () => void {
  const beat = new Int32Array(new SharedArrayBuffer(4));
  const start = Date.now();
  const tick = (): void => { Atomics.store(beat, 0, Math.floor((Date.now() - start) / 1000)); };
  tick();
  const timer = setInterval(tick, 500);
  timer.unref();
  const worker = new Worker(`
    const { workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const { beat, start, stallMs, label } = workerData;
    setInterval(() => {
      const last = start + Atomics.load(beat, 0) * 1000;
      if (Date.now() - last > stallMs) {
        fs.writeSync(2, '\\n[watchdog] ' + label + ': the main event loop has not turned for ' + Math.round((Date.now() - last) / 1000)
          + ' s (a busy loop in native code?); killing pid ' + process.pid + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, 1000);
  `, { eval: true, workerData: { beat, start, stallMs, label } });
  worker.unref();
  return () => {
    clearInterval(timer);
    void worker.terminate();
  };
}
