#!/usr/bin/env node
'use strict';
/**
 * The interop runner's server endpoint: Harrier serving /www over HTTP/0.9 (hq-interop) and
 * HTTP/3 on UDP [::]:443. See interop/README.md for the contract as implemented.
 *
 * Environment (the runner's, plus overrides for the docker-free harness):
 *   TESTCASE       test name as the runner gives it to servers (required)
 *   SSLKEYLOGFILE  NSS key log (read by the QUIC endpoint itself)
 *   QLOGDIR        one qlog file per connection
 *   WWW, CERTS     default /www and /certs (cert.pem, priv.key)
 *   PORT, HOST     default 443 and '::' (dual-stack)
 *   HARRIER_DIST   compiled Harrier (default ../dist/src next to this file)
 *   INTEROP_STATIC 'own' serves files with the small handler below instead of staticFiles()
 */
const fs = require('node:fs');
const path = require('node:path');

/** Exit status the runner reads as "test not supported". */
const UNSUPPORTED = 127;

/**
 * Server-side TESTCASE values and the QUIC options each needs. Tests the runner renames for
 * servers (longrtt -> handshake, multiplexing/blackhole/keyupdate/... -> transfer,
 * handshakeloss/handshakecorruption -> multiconnect) arrive under these names.
 */
const TESTS = {
  handshake: {},
  transfer: {},
  multiconnect: {},
  chacha20: {},
  versionnegotiation: {},
  http3: {},
  retry: { retry: true },
  resumption: {},
  zerortt: { earlyData: true },
  // Old runners sent these names to servers as well.
  keyupdate: {},
  goodput: {},
  crosstraffic: {},
};

/** Why a test is refused: quiche 0.30 (the QUIC library Harrier wraps) lacks the feature. */
const REFUSED = {
  ecn: 'quiche does not report ECN counts in ACK frames nor mark packets ECT',
  v2: 'quiche implements QUIC version 1 only (no RFC 9369 version 2, no compatible version negotiation)',
  connectionmigration: 'quiche servers cannot offer a preferred_address transport parameter',
};

const testcase = process.env.TESTCASE ?? '';
if (!(testcase in TESTS)) {
  process.stderr.write(`harrier interop: unsupported test case "${testcase}"${REFUSED[testcase] ? `: ${REFUSED[testcase]}` : ''}\n`);
  process.exit(UNSUPPORTED);
}

const dist = process.env.HARRIER_DIST ?? path.join(__dirname, '..', 'dist', 'src');
const { createServer } = require(dist);
const www = process.env.WWW ?? '/www';
const certs = process.env.CERTS ?? '/certs';
const port = Number(process.env.PORT ?? 443);
const host = process.env.HOST ?? '::';
const qlogDir = process.env.QLOGDIR || undefined;
if (qlogDir) fs.mkdirSync(qlogDir, { recursive: true });

const log = (msg) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);

/** Each URL path is a file name in www; nothing else is served. */
function ownStaticFiles(root) {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    let name;
    try {
      name = decodeURIComponent(ctx.path).replace(/^\/+/, '');
    } catch {
      return next();
    }
    if (name === '' || name.includes('/') || name === '.' || name === '..') return next();
    const file = path.join(root, name);
    let st;
    try {
      st = await fs.promises.stat(file);
    } catch {
      return next();
    }
    if (!st.isFile()) return next();
    ctx.response.headers.set('content-length', String(st.size));
    ctx.response.headers.set('content-type', 'application/octet-stream');
    ctx.body = fs.createReadStream(file, { highWaterMark: 256 * 1024 });
  };
}

function staticMiddleware(root) {
  if (process.env.INTEROP_STATIC !== 'own') {
    try {
      const { staticFiles } = require(path.join(dist, 'http', 'middleware', 'static'));
      if (typeof staticFiles === 'function') return { fn: staticFiles(root), name: 'staticFiles' };
    } catch {
      // not built yet: fall back to the small handler
    }
  }
  return { fn: ownStaticFiles(root), name: 'own' };
}

async function main() {
  const server = createServer({
    endpoints: [{ host, port, protocols: ['h3'] }],
    tls: { cert: path.join(certs, 'cert.pem'), key: path.join(certs, 'priv.key') },
    limits: { maxConcurrentStreams: 100 },
    quic: {
      hq: true,
      qlogDir,
      // A 1500-byte MTU path (the simulator's) carries 1452-byte UDP payloads over IPv6.
      maxUdpPayloadSize: 1452,
      ...TESTS[testcase],
    },
    shutdownTimeoutMs: 2000,
  });
  server.on('error', (err, ctx) => log(`error ${ctx ? `${ctx.method} ${ctx.path}` : ''}: ${err && err.stack || err}`));
  const mw = staticMiddleware(www);
  server.use(async (ctx, next) => {
    const started = Date.now();
    await next();
    log(`${ctx.protocol} ${ctx.method} ${ctx.path.length > 60 ? `${ctx.path.slice(0, 57)}...` : ctx.path} ${ctx.status} ${Date.now() - started}ms`);
  });
  server.use(mw.fn);
  const addrs = await server.listen();
  log(`harrier interop server: TESTCASE=${testcase} www=${www} static=${mw.name} listening ${addrs.map((a) => a.url).join(' ')}`);

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: closing`);
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    server.close({ timeoutMs: 2000 }).then(() => process.exit(0), (err) => {
      log(`close failed: ${err && err.stack || err}`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  log(`fatal: ${err && err.stack || err}`);
  process.exit(1);
});
