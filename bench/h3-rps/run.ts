/**
 * h3-rps: small HTTP/3 GETs per second and server CPU per request, Harrier beside Caddy in
 * one run, with oha as the independent load generator.
 *
 * Per round, in this order: Harrier full pipeline (createServer + compress + static files),
 * Caddy (file_server), Harrier bare (QuicListener + trivial App), Harrier route
 * (createServer + compress + a route with the body in memory). Every server is a fresh
 * process pinned to core 1; oha is pinned to core 0. Each server first gets a short
 * unmeasured warm-up load (JIT, connection pools), then the measured load.
 *
 * Usage (after `npm run build:ts`; needs oha with http3 and caddy):
 *   node dist/bench/h3-rps.js [--rounds 3] [--duration 10] [--warmup 2] [--connections 50]
 *        [--modes full,caddy,bare,route] [--cpu-prof DIR] [--out bench/results/h3-rps.md]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Child, REPO, BODY_SIZE, commandVersion, fmt, freePort, machineLine, makeFixture, median, procCpuSec,
  requireCommand, sampleUtil, sleep, tcpOpen, waitFor, type Fixture, type ServerArgs,
} from './common';
import { ohaArgv, ohaFlavour, parseOha, type OhaFlavour, type OhaSummary } from './oha';

type Mode = 'full' | 'caddy' | 'bare' | 'route';
const MODES: Mode[] = ['full', 'caddy', 'bare', 'route'];

const LABEL: Record<Mode, string> = {
  full: 'Harrier full (createServer + compress + static)',
  caddy: 'Caddy (file_server)',
  bare: 'Harrier bare (QuicListener + trivial App)',
  route: 'Harrier route (createServer + compress + route)',
};

interface Options {
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
  modes: Mode[];
  cpuProf?: string;
  out: string;
}

export interface Run {
  mode: Mode;
  round: number;
  ok: boolean;
  error?: string;
  rps: number;
  requests: number;
  errors: number;
  deadlineAborts: number;
  errorKinds?: Record<string, number>;
  serverCpuSec: number;
  cpuUsPerReq: number;
  /** Server CPU seconds / wall seconds over the measured load (1.0 = one core busy). */
  serverUtil: number;
  /** oha's CPU over the middle of the load (1.0 = one core busy): near 1 means the client was the limit. */
  clientUtil: number;
  p50ms: number;
  p99ms: number;
  /** 1-minute load average of the machine at the end of the measured load (other work on it). */
  load1: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 3, duration: 10, warmup: 2, connections: 50, modes: [...MODES],
    out: path.join(REPO, 'bench', 'results', 'h3-rps.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--duration') o.duration = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--connections') o.connections = Number(next());
    else if (a === '--modes') o.modes = next().split(',') as Mode[];
    else if (a === '--cpu-prof') o.cpuProf = path.resolve(next());
    else if (a === '--out') o.out = path.resolve(next());
    else throw new Error(`unknown option ${a}`);
  }
  for (const m of o.modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (${MODES.join(', ')})`);
  return o;
}

/**
 * The Caddyfile. oha (rustls) sends no SNI to an IP address; CertMagic then picks the
 * certificate by the connection's local address, and for HTTP/3 that is the UDP socket's
 * bound address, `::` when Caddy listens on the wildcard, which matches no certificate: every
 * handshake failed with TLS alert 80 (internal_error). `bind 127.0.0.1` makes the local
 * address 127.0.0.1 (the certificate's IP SAN; also the address Harrier listens on), and
 * `default_sni 127.0.0.1` names the certificate for SNI-less handshakes in any case.
 */
function caddyfile(fx: Fixture, port: number): string {
  return `{
\tadmin off
\tauto_https disable_redirects
\tskip_install_trust
\tdefault_sni 127.0.0.1
\tlog {
\t\toutput discard
\t}
\tservers {
\t\tprotocols h1 h2 h3
\t}
}

https://127.0.0.1:${port} {
\tbind 127.0.0.1
\ttls ${fx.certFile} ${fx.keyFile}
\troot * ${fx.root}
\tfile_server
}
`;
}

/** Starts one server pinned to core 1; resolves to the process and the URL of hello.txt. */
async function startServer(mode: Mode, fx: Fixture, o: Options): Promise<{ child: Child; pid: number; url: string }> {
  if (mode === 'caddy') {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(fx.dir, 'caddy-'));
    const file = path.join(dir, 'Caddyfile');
    fs.writeFileSync(file, caddyfile(fx, port));
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
    const child = new Child(1, 'caddy', ['run', '--config', file, '--adapter', 'caddyfile'], { env, cwd: dir });
    await waitFor(async () => {
      if (!child.running) throw new Error(`caddy exited: ${child.stderr.slice(-800)}`);
      return tcpOpen(port);
    }, 20_000, 'caddy');
    await sleep(300); // the UDP listener comes up with the TCP one; a margin all the same
    return { child, pid: child.pid, url: `https://127.0.0.1:${port}/hello.txt` };
  }
  const sArgs: ServerArgs = { mode, certFile: fx.certFile, keyFile: fx.keyFile, root: fx.root, timeoutSec: o.warmup + o.duration + 120 };
  const nodeArgs = o.cpuProf && mode !== 'bare' ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf] : [];
  const child = new Child(1, process.execPath, [...nodeArgs, path.join(__dirname, 'harrier-server.js'), JSON.stringify(sArgs)]);
  const ready = JSON.parse(await child.line('READY ', 20_000)) as { port: number; pid: number };
  return { child, pid: ready.pid, url: `https://127.0.0.1:${ready.port}/hello.txt` };
}

/**
 * How long after oha's start the measured window ends: its -z duration plus this grace (oha's
 * start-up, the requests cut off at the deadline). oha then waits for the server to close the
 * idle connections (Harrier: 2 s; Caddy: quic-go's default 30 s idle timeout, which the
 * Caddyfile cannot change); that wait is outside the window for every server alike.
 */
const WINDOW_GRACE_MS = 1500;
/** Bound on one oha run beyond its -z duration: Caddy's 30 s idle timeout and a margin. */
const OHA_BOUND_EXTRA_SEC = 60;

async function load(f: OhaFlavour, url: string, durationSec: number, connections: number, sample?: { pid: number }):
Promise<{ summary: OhaSummary; clientUtil: number; wallSec: number; serverCpuSec: number }> {
  const t0 = process.hrtime.bigint();
  const cpu0 = sample ? procCpuSec(sample.pid) : 0;
  const windowMs = durationSec * 1000 + WINDOW_GRACE_MS;
  let serverCpuSec = NaN;
  const readServer = (): void => {
    if (!sample || Number.isFinite(serverCpuSec)) return;
    try {
      serverCpuSec = procCpuSec(sample.pid) - cpu0;
    } catch {
      /* the server is gone: reported by the caller */
    }
  };
  const oha = new Child(0, f.bin, ohaArgv(f, { url, durationSec, connections }));
  const sampler = sampleUtil(oha, windowMs);
  // Server CPU over the window: read at its end, or when oha exits if that comes first.
  const windowEnd = setTimeout(readServer, windowMs);
  const code = await oha.finish((durationSec + OHA_BOUND_EXTRA_SEC) * 1000);
  clearTimeout(windowEnd);
  readServer();
  const wallSec = Math.min(Number(process.hrtime.bigint() - t0) / 1e9, windowMs / 1000);
  const clientUtil = await sampler;
  if (code !== 0) throw new Error(`oha exited ${code}: ${oha.stderr.trim().slice(-600)}`);
  return { summary: parseOha(oha.stdout), clientUtil, wallSec, serverCpuSec };
}

async function runOnce(mode: Mode, round: number, fx: Fixture, f: OhaFlavour, o: Options): Promise<Run> {
  const run: Run = {
    mode, round, ok: false, rps: NaN, requests: NaN, errors: NaN, deadlineAborts: NaN, serverCpuSec: NaN,
    cpuUsPerReq: NaN, serverUtil: NaN, clientUtil: NaN, p50ms: NaN, p99ms: NaN, load1: NaN,
  };
  let server: Child | undefined;
  try {
    const s = await startServer(mode, fx, o);
    server = s.child;
    if (o.warmup > 0) await load(f, s.url, o.warmup, o.connections);
    await sleep(200);
    const r = await load(f, s.url, o.duration, o.connections, { pid: s.pid });
    if (!server.running) throw new Error(`server died: ${server.stderr.slice(-600)}`);
    run.requests = r.summary.ok;
    // oha's total includes waiting for the server to close the connections after the
    // deadline (see harrier-server.ts): the load itself lasted the -z duration.
    const loadSec = Math.min(r.summary.totalSec, o.duration);
    run.rps = r.summary.ok / loadSec;
    run.errors = r.summary.errors;
    run.deadlineAborts = r.summary.deadlineAborts;
    if (Object.keys(r.summary.errorKinds).length) run.errorKinds = r.summary.errorKinds;
    run.serverCpuSec = r.serverCpuSec;
    run.cpuUsPerReq = (r.serverCpuSec * 1e6) / r.summary.ok;
    run.serverUtil = r.serverCpuSec / Math.min(r.wallSec, o.duration);
    run.clientUtil = r.clientUtil;
    run.p50ms = r.summary.p50ms;
    run.p99ms = r.summary.p99ms;
    run.load1 = os.loadavg()[0];
    run.ok = r.summary.ok > 0;
    if (!run.ok) run.error = `no 200 responses: ${JSON.stringify(r.summary.status)} ${JSON.stringify(r.summary.errorKinds)}`.slice(0, 300);
  } catch (err) {
    const died = server && !server.running ? ` (server exited ${server.proc.exitCode ?? server.proc.signalCode}: ${server.stderr.trim().slice(-300)})` : '';
    run.error = ((err as Error).message + died).slice(0, 700);
  } finally {
    await server?.stop(5000);
  }
  return run;
}

function report(o: Options, runs: Run[], machine: string, ohaVersion: string): string {
  const L: string[] = [];
  L.push('# h3-rps: small HTTP/3 GETs per second and server CPU per request', '');
  const loads = runs.map((r) => r.load1).filter((x) => Number.isFinite(x));
  L.push(`Machine: ${machine}; 1-minute load average at the end of each measured load: ` +
    `${loads.length ? `${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)} (median ${fmt(median(loads), 2)})` : '–'}, ` +
    `${fmt(os.loadavg()[0], 2)} at the end (2 cores: above about 2, other work shared the cores)`, '');
  L.push(`Command: \`npm run bench:h3-rps${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\``, '');
  L.push(`Method: every server is a fresh process pinned to core 1 (\`taskset -c 1\`); the client, ${ohaVersion}`,
    `(quinn + h3), is pinned to core 0: \`oha --http-version 3 -z ${o.duration}s -c ${o.connections} --insecure --no-tui`,
    `-H 'accept-encoding: identity' --output-format json https://127.0.0.1:PORT/hello.txt\` (${o.connections} QUIC connections, one request at a time`,
    `each), after a ${o.warmup} s unmeasured warm-up on the same server. GET /hello.txt returns ${BODY_SIZE} bytes of text`,
    '(Accept-Encoding: identity, so compress() passes it through and nothing is compressed). Harrier\'s servers',
    'use maxIdleTimeout 2 s; Caddy keeps quic-go\'s 30 s (oha waits for the server to close the connections at the',
    'end; see bench/README.md). TLS: ECDSA P-256 certificate (openssl).',
    'rps = 200 responses / the -z duration (oha\'s own total also counts its wait for the server to close the',
    `connections afterwards). Server CPU = user+sys of the server process (all threads) from /proc/PID/stat, from`,
    `just before oha starts to ${WINDOW_GRACE_MS / 1000} s after its -z duration (or oha\'s exit, if sooner), so that the idle wait`,
    'that follows is outside the window for every server; µs/request = that / 200 responses.',
    '"server util" = server CPU s / the -z duration (1.00 = core 1 saturated); "client util" = oha\'s CPU over the',
    'same window from its 1st second (near 1.00 would mean the client, not the server, was the limit).',
    'Requests cut off by the -z deadline are listed apart from errors. "load" = the 1-minute load average at the end',
    'of the measured load (a run with a server util well below 1.00 and a high load shared core 1 with other work).',
    `Order per round: ${o.modes.map((m) => LABEL[m]).join(', ')}; ${o.rounds} rounds; medians.`, '');
  L.push('Peers: Caddy with `admin off`, logs discarded, `default_sni 127.0.0.1`, `servers { protocols h1 h2 h3 }`,',
    '`bind 127.0.0.1`, `tls cert key`, `file_server` on the same directory (`bind` and `default_sni`: oha sends no SNI',
    'to an IP address, and without them Caddy 2.6.2 found no certificate for its HTTP/3 socket; see bench/README.md). Harrier full = `createServer` (with its request-limits middleware) +',
    '`compress()` + `staticFiles(root)`, no access log; Harrier route = `createServer` + `compress()` + a',
    '`get(\'/hello.txt\')` route returning the body from memory; Harrier bare = `QuicListener.listen(app)` with an',
    'App whose only middleware sets the body.', '');

  L.push('## Summary (medians)', '');
  L.push('| server | runs ok | requests/s | server CPU µs/request | server util | client util | p50 ms | p99 ms | errors (sum) | deadline-cut (sum) |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  const med: Partial<Record<Mode, { rps: number; us: number }>> = {};
  for (const m of o.modes) {
    const rs = runs.filter((r) => r.ok && r.mode === m);
    const x = {
      rps: median(rs.map((r) => r.rps)), us: median(rs.map((r) => r.cpuUsPerReq)),
      su: median(rs.map((r) => r.serverUtil)), cu: median(rs.map((r) => r.clientUtil)),
      p50: median(rs.map((r) => r.p50ms)), p99: median(rs.map((r) => r.p99ms)),
    };
    med[m] = x;
    const errs = rs.reduce((s, r) => s + r.errors, 0);
    const cut = rs.reduce((s, r) => s + r.deadlineAborts, 0);
    L.push(`| ${LABEL[m]} | ${rs.length}/${runs.filter((r) => r.mode === m).length} | ${fmt(x.rps)} | ${fmt(x.us, 1)} | ${fmt(x.su, 2)} | ${fmt(x.cu, 2)} | ${fmt(x.p50, 2)} | ${fmt(x.p99, 2)} | ${errs} | ${cut} |`);
  }
  L.push('');
  const c = med.caddy;
  if (c && Number.isFinite(c.rps)) {
    L.push('### Harrier / Caddy', '');
    L.push('Ratio of the medians; in brackets the lowest and highest ratio of the same round\'s pair (Harrier run beside',
      'the Caddy run of its round). requests/s above 1 and CPU per request below 1 favour Harrier.', '');
    L.push('| Harrier mode | requests/s Harrier / Caddy | CPU µs/request Harrier / Caddy |');
    L.push('|---|---|---|');
    for (const m of ['full', 'route', 'bare'] as Mode[]) {
      const h = med[m];
      if (!h || !Number.isFinite(h.rps)) continue;
      const pairs: Array<{ rps: number; us: number }> = [];
      for (let round = 1; round <= o.rounds; round++) {
        const a = runs.find((r) => r.ok && r.mode === m && r.round === round);
        const b = runs.find((r) => r.ok && r.mode === 'caddy' && r.round === round);
        if (a && b) pairs.push({ rps: a.rps / b.rps, us: a.cpuUsPerReq / b.cpuUsPerReq });
      }
      const range = (xs: number[]): string => (xs.length > 1 ? ` [${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)}]` : '');
      L.push(`| ${LABEL[m]} | ${fmt(h.rps / c.rps, 2)}x${range(pairs.map((p) => p.rps))} | ` +
        `${fmt(h.us / c.us, 2)}x${range(pairs.map((p) => p.us))} (${fmt(h.us, 1)} vs ${fmt(c.us, 1)} µs) |`);
    }
    L.push('');
  } else if (o.modes.includes('caddy')) {
    L.push('- No Harrier/Caddy ratio: no Caddy run succeeded.', '');
  }
  if (med.full && med.bare) {
    L.push(`- Full pipeline / bare: requests/s ${fmt(med.full.rps / med.bare.rps, 2)}x; CPU per request ` +
      `${fmt(med.full.us, 1)} vs ${fmt(med.bare.us, 1)} µs (+${fmt(med.full.us - med.bare.us, 1)} µs for the pipeline and static files).`);
  }
  if (med.route && med.bare) {
    L.push(`- Route pipeline / bare: requests/s ${fmt(med.route.rps / med.bare.rps, 2)}x; CPU per request ` +
      `${fmt(med.route.us, 1)} vs ${fmt(med.bare.us, 1)} µs.`);
  }
  L.push('', '## Every run (in the order run)', '');
  L.push('| # | round | server | requests/s | 200s | CPU s | µs/request | server util | client util | p50 ms | p99 ms | errors | deadline-cut | load |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  runs.forEach((r, i) => {
    if (!r.ok) {
      L.push(`| ${i + 1} | ${r.round} | ${LABEL[r.mode]} | FAILED: ${(r.error ?? '').replace(/\|/g, '/').replace(/\n/g, ' ')} | | | | | | | | | | |`);
      return;
    }
    L.push(`| ${i + 1} | ${r.round} | ${LABEL[r.mode]} | ${fmt(r.rps)} | ${r.requests} | ${fmt(r.serverCpuSec, 2)} | ${fmt(r.cpuUsPerReq, 1)} | ${fmt(r.serverUtil, 2)} | ${fmt(r.clientUtil, 2)} | ${fmt(r.p50ms, 2)} | ${fmt(r.p99ms, 2)} | ${r.errors} | ${r.deadlineAborts} | ${fmt(r.load1, 2)} |`);
  });
  const kinds = runs.filter((r) => r.errorKinds);
  if (kinds.length) {
    L.push('', 'Error kinds reported by oha:', '');
    for (const r of kinds) L.push(`- run ${runs.indexOf(r) + 1} (${r.mode}): ${JSON.stringify(r.errorKinds)}`);
  }
  L.push('');
  return L.join('\n');
}

/** ` (quic-go X)` from the Debian package's Built-Using field, when Caddy came from there. */
function caddyQuicGo(): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Built-Using}', 'caddy'], { encoding: 'utf8', timeout: 10_000 });
  const m = /quic-go \(= ([^)\s]+)\)/.exec(r.stdout ?? '');
  return m ? ` (quic-go ${m[1]})` : '';
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const o = parseArgs(argv);
  requireCommand('taskset', 'install util-linux');
  requireCommand('openssl', 'install openssl');
  if (o.modes.includes('caddy')) requireCommand('caddy', 'apt-get install -y caddy (or drop it from --modes)');
  const f = ohaFlavour();
  const machine = machineLine([`caddy ${commandVersion('caddy', ['version'])}${caddyQuicGo()}`, f.version]);
  process.stderr.write(`h3-rps: ${machine}\n`);
  if (o.cpuProf) fs.mkdirSync(o.cpuProf, { recursive: true });
  const fx = makeFixture('h3-rps');
  const runs: Run[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const m of o.modes) {
        const r = await runOnce(m, round, fx, f, o);
        runs.push(r);
        process.stderr.write(r.ok
          ? `  round ${round} ${m}: ${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(1)} µs CPU/request (server util ${r.serverUtil.toFixed(2)}, client util ${r.clientUtil.toFixed(2)}), errors ${r.errors}, deadline-cut ${r.deadlineAborts}\n`
          : `  round ${round} ${m}: FAILED ${r.error}\n`);
      }
    }
  } finally {
    fs.rmSync(fx.dir, { recursive: true, force: true });
  }
  const md = report(o, runs, machine, f.version);
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, md);
  process.stdout.write(md + '\n');
  process.stderr.write(`h3-rps: results written to ${path.relative(process.cwd(), o.out) || o.out}\n`);
  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}
