/**
 * tcp-rps: Harrier's TCP fallback (HTTP/1.1 and HTTP/2 over TLS) beside Node's bare https and
 * http2 servers in one run: small GETs per second and server CPU per request.
 *
 * HTTP/1.1: autocannon (bench/node_modules), 50 connections, no pipelining.
 * HTTP/2: h2load (Debian nghttp2-client), 50 connections x 10 concurrent streams.
 * Per round: Harrier h1, node:https, Harrier h2, node:http2 (each pair reversed in even rounds). Servers are fresh processes pinned
 * to core 1, the client to core 0; each server gets an unmeasured warm-up load first.
 *
 * Usage (after `npm run build:ts` and `npm install --prefix bench`; needs h2load):
 *   node dist/bench/tcp-rps.js [--rounds 8] [--duration 8] [--warmup 3] [--connections 50]
 *        [--streams 10] [--protocols h1,h2] [--paired-rounds 6] [--cpu-prof DIR] [--out bench/results/tcp-rps.md]
 *
 * Paired rounds (after the sequential ones): Harrier and the bare server run at once, both
 * pinned to core 1, each loaded by its own client on core 0; after the warm-up, what each
 * served and the CPU it used are read over the same window. The machine's drift then hits
 * both alike; the scheduler shares the core between them, so requests/s are about half.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Child, REPO, BODY_SIZE, commandVersion, fmt, machineLine, makeFixture, median, procCpuSec, requireCommand, sampleUtil, sleep,
  type Fixture, type ServerArgs,
} from '../h3-rps/common';

type Proto = 'h1' | 'h2';
type Stack = 'harrier' | 'node';

interface Options {
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
  streams: number;
  protocols: Proto[];
  /** Rounds of the paired measurement (both servers loaded at once); 0 skips it. */
  pairedRounds: number;
  cpuProf?: string;
  out: string;
}

/** One server's share of a paired round: what it served within the common window. */
interface PairedRun {
  proto: Proto;
  round: number;
  ok: boolean;
  error?: string;
  harrier: WindowFigures;
  node: WindowFigures;
  clientUtil: number;
}

interface WindowFigures {
  requests: number;
  rps: number;
  cpuSec: number;
  cpuUsPerReq: number;
}

interface Run {
  proto: Proto;
  stack: Stack;
  round: number;
  ok: boolean;
  error?: string;
  rps: number;
  /** The measured load's run time (the client's). */
  sec: number;
  requests: number;
  errors: number;
  serverCpuSec: number;
  cpuUsPerReq: number;
  serverUtil: number;
  clientUtil: number;
  p50ms: number;
  p99ms: number;
}

interface ClientSummary {
  ok: number;
  errors: number;
  totalSec: number;
  p50ms: number;
  p99ms: number;
}

const AUTOCANNON = path.join(REPO, 'bench', 'node_modules', 'autocannon', 'autocannon.js');

/** The clients' environment: the servers' certificate is self-signed. */
const CLIENT_ENV = { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0', NO_COLOR: '1' };

function label(proto: Proto, stack: Stack): string {
  if (stack === 'harrier') return `Harrier ${proto === 'h1' ? 'HTTP/1.1' : 'HTTP/2'}`;
  return proto === 'h1' ? 'node:https (HTTP/1.1)' : 'node:http2 (HTTP/2)';
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 8, duration: 8, warmup: 3, connections: 50, streams: 10, protocols: ['h1', 'h2'], pairedRounds: 6,
    out: path.join(REPO, 'bench', 'results', 'tcp-rps.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--paired-rounds') o.pairedRounds = Number(next());
    else if (a === '--duration') o.duration = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--connections') o.connections = Number(next());
    else if (a === '--streams') o.streams = Number(next());
    else if (a === '--protocols') o.protocols = next().split(',') as Proto[];
    else if (a === '--cpu-prof') o.cpuProf = path.resolve(next());
    else if (a === '--out') o.out = path.resolve(next());
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/**
 * `sec` for autocannon; for h2load a request count (`-n`): Debian's h2load 1.52 completes no
 * request at all with `-D` (duration), so the count is sized from the warm-up's rate.
 */
function clientArgv(proto: Proto, url: string, sec: number, o: Options, h2Requests: number): [string, string[]] {
  if (proto === 'h1') {
    return [process.execPath, [AUTOCANNON, '-c', String(o.connections), '-d', String(sec), '-j', url]];
  }
  return ['h2load', ['-n', String(h2Requests), '-c', String(o.connections), '-m', String(o.streams), '-t', '1', url]];
}

/** h2load -n for a run of about `sec` seconds at `rate` requests/s; a multiple of the connection count. */
function h2Count(rate: number, sec: number, o: Options): number {
  const n = Math.min(5_000_000, Math.max(5_000, Math.round((Number.isFinite(rate) ? rate : 1000) * sec)));
  return Math.ceil(n / o.connections) * o.connections;
}

function parseClient(proto: Proto, stdout: string): ClientSummary {
  if (proto === 'h1') {
    const j = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
      '2xx': number; non2xx: number; errors: number; timeouts: number; duration: number;
      latency: { p50: number; p99: number };
    };
    return { ok: j['2xx'], errors: j.non2xx + j.errors + j.timeouts, totalSec: j.duration, p50ms: j.latency.p50, p99ms: j.latency.p99 };
  }
  // h2load's text summary.
  const fin = /finished in ([\d.]+)(m?s)/.exec(stdout);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (!fin || !req || !codes) throw new Error(`unexpected h2load output: ${stdout.slice(0, 400)}`);
  const totalSec = Number(fin[1]) / (fin[2] === 'ms' ? 1000 : 1);
  // "time for request:  min  max  mean  sd  +/- sd" (no percentiles in h2load): report the mean as p50's stand-in? No: leave NaN.
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(stdout);
  const meanMs = mean ? Number(mean[1]) * (mean[2] === 'us' ? 1e-3 : mean[2] === 's' ? 1e3 : 1) : NaN;
  const ok = Number(codes[1]);
  const errors = Number(req[5]) + Number(req[6]) + Number(req[7]) + Number(codes[2]) + Number(codes[3]) + Number(codes[4]);
  return { ok, errors, totalSec, p50ms: meanMs, p99ms: NaN };
}

async function load(proto: Proto, url: string, sec: number, o: Options, h2Requests: number, pid?: number):
Promise<{ s: ClientSummary; clientUtil: number; wallSec: number; serverCpuSec: number }> {
  const [cmd, argv] = clientArgv(proto, url, sec, o, h2Requests);
  const t0 = process.hrtime.bigint();
  const cpu0 = pid ? procCpuSec(pid) : 0;
  const client = new Child(0, cmd, argv, { env: CLIENT_ENV });
  const sampler = sampleUtil(client);
  const code = await client.finish((sec + 30) * 1000);
  const serverCpuSec = pid ? procCpuSec(pid) - cpu0 : NaN;
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  const clientUtil = await sampler;
  if (code !== 0) throw new Error(`${path.basename(cmd)} exited ${code}: ${client.stderr.trim().slice(-600)}`);
  return { s: parseClient(proto, client.stdout), clientUtil, wallSec, serverCpuSec };
}

/** One server process (server.ts) pinned to core 1: Harrier, or the bare server for `proto`. */
function startServer(stack: Stack, proto: Proto, fx: Fixture, o: Options, nodeArgs: string[] = []): Child {
  const mode = stack === 'harrier' ? 'harrier' : proto === 'h1' ? 'https' : 'http2';
  const sArgs: ServerArgs = { mode, certFile: fx.certFile, keyFile: fx.keyFile, root: fx.root, timeoutSec: o.warmup + o.duration + 120 };
  return new Child(1, process.execPath, [...nodeArgs, path.join(__dirname, 'server.js'), JSON.stringify(sArgs)]);
}

async function runOnce(proto: Proto, stack: Stack, round: number, fx: Fixture, o: Options): Promise<Run> {
  const run: Run = {
    proto, stack, round, ok: false, rps: NaN, sec: NaN, requests: NaN, errors: NaN, serverCpuSec: NaN, cpuUsPerReq: NaN,
    serverUtil: NaN, clientUtil: NaN, p50ms: NaN, p99ms: NaN,
  };
  const nodeArgs = o.cpuProf && stack === 'harrier' ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf] : [];
  const server = startServer(stack, proto, fx, o, nodeArgs);
  try {
    const ready = JSON.parse(await server.line('READY ', 20_000)) as { port: number; pid: number };
    const url = `https://127.0.0.1:${ready.port}/hello.txt`;
    // Warm-up (unmeasured). h2load takes a request count, not a time: a short calibration load
    // (cold: JIT, TLS) sizes the warm-up, and the warm-up's rate sizes the measured run, so both
    // last about their seconds and the measured one starts on a warm process.
    const warmSec = Math.max(1, o.warmup);
    let w = await load(proto, url, warmSec, o, h2Count(2500, 2, o));
    if (proto === 'h2') w = await load(proto, url, warmSec, o, h2Count(w.s.ok / w.s.totalSec, warmSec, o));
    await sleep(200);
    const r = await load(proto, url, o.duration, o, h2Count(w.s.ok / w.s.totalSec, o.duration, o), ready.pid);
    run.sec = r.s.totalSec;
    if (!server.running) throw new Error(`server died: ${server.stderr.slice(-600)}`);
    run.requests = r.s.ok;
    run.rps = r.s.ok / r.s.totalSec;
    run.errors = r.s.errors;
    run.serverCpuSec = r.serverCpuSec;
    run.cpuUsPerReq = (r.serverCpuSec * 1e6) / r.s.ok;
    run.serverUtil = r.serverCpuSec / r.wallSec;
    run.clientUtil = r.clientUtil;
    run.p50ms = r.s.p50ms;
    run.p99ms = r.s.p99ms;
    run.ok = r.s.ok > 0;
    if (!run.ok) run.error = `no 2xx responses (errors ${r.s.errors})`;
  } catch (err) {
    const died = !server.running ? ` (server exited ${server.proc.exitCode ?? server.proc.signalCode}: ${server.stderr.trim().slice(-300)})` : '';
    run.error = ((err as Error).message + died).slice(0, 700);
  } finally {
    await server.stop(5000);
  }
  return run;
}

/**
 * A load on one server that runs until stopped: autocannon for longer than the window,
 * h2load for more requests than it can finish in it (it has no duration that works here).
 */
function openLoad(proto: Proto, url: string, o: Options): Child {
  const sec = o.warmup + o.duration + 30;
  const [cmd, argv] = clientArgv(proto, url, sec, o, h2Count(40_000, sec, o));
  return new Child(0, cmd, argv, { env: CLIENT_ENV });
}

/** Asks both servers for their count (SIGUSR2) and reads their CPU, at one moment. */
async function snapshot(servers: Array<{ child: Child; pid: number }>, k: number): Promise<Array<{ served: number; cpuSec: number }>> {
  const cpu = servers.map((s) => procCpuSec(s.pid));
  for (const s of servers) process.kill(s.pid, 'SIGUSR2');
  const served = await Promise.all(servers.map((s) => s.child.line(`COUNT ${k} `, 5000)));
  return servers.map((_, i) => ({ served: Number(served[i]), cpuSec: cpu[i] }));
}

async function runPaired(proto: Proto, round: number, fx: Fixture, o: Options): Promise<PairedRun> {
  const none: WindowFigures = { requests: NaN, rps: NaN, cpuSec: NaN, cpuUsPerReq: NaN };
  const run: PairedRun = { proto, round, ok: false, harrier: none, node: none, clientUtil: NaN };
  // Alternate which server starts (and is loaded) first.
  const stacks: Stack[] = round % 2 === 1 ? ['harrier', 'node'] : ['node', 'harrier'];
  const servers: Array<{ stack: Stack; child: Child; pid: number; port: number }> = [];
  const clients: Child[] = [];
  try {
    for (const stack of stacks) {
      const child = startServer(stack, proto, fx, o);
      servers.push({ stack, child, pid: NaN, port: NaN });
      const ready = JSON.parse(await child.line('READY ', 20_000)) as { port: number; pid: number };
      Object.assign(servers[servers.length - 1], { pid: ready.pid, port: ready.port });
    }
    for (const s of servers) clients.push(openLoad(proto, `https://127.0.0.1:${s.port}/hello.txt`, o));
    await sleep(o.warmup * 1000);
    const c0 = clients.map((c) => procCpuSec(c.pid));
    const t0 = process.hrtime.bigint();
    const a = await snapshot(servers, 1);
    await sleep(o.duration * 1000);
    const b = await snapshot(servers, 2);
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    run.clientUtil = Math.max(...clients.map((c, i) => (procCpuSec(c.pid) - c0[i]) / sec));
    const gone = clients.findIndex((c) => !c.running);
    if (gone >= 0) throw new Error(`the ${servers[gone].stack} client ended inside the window: ${clients[gone].stderr.trim().slice(-300)}`);
    servers.forEach((s, i) => {
      const requests = b[i].served - a[i].served;
      const cpuSec = b[i].cpuSec - a[i].cpuSec;
      run[s.stack] = { requests, rps: requests / sec, cpuSec, cpuUsPerReq: (cpuSec * 1e6) / requests };
    });
    run.ok = run.harrier.requests > 0 && run.node.requests > 0;
    if (!run.ok) run.error = 'no requests served in the window';
  } catch (err) {
    run.error = (err as Error).message.slice(0, 700);
  } finally {
    for (const c of clients) c.kill();
    await Promise.all(clients.map((c) => c.exited));
    await Promise.all(servers.map((s) => s.child.stop(5000)));
  }
  return run;
}

/** Harrier / peer within each round where both runs succeeded. */
function pairedRatios(runs: Run[], p: Proto): Array<{ round: number; rps: number; us: number }> {
  const out: Array<{ round: number; rps: number; us: number }> = [];
  for (const h of runs) {
    if (!h.ok || h.proto !== p || h.stack !== 'harrier') continue;
    const n = runs.find((r) => r.ok && r.proto === p && r.stack === 'node' && r.round === h.round);
    if (n) out.push({ round: h.round, rps: h.rps / n.rps, us: h.cpuUsPerReq / n.cpuUsPerReq });
  }
  return out;
}

function report(o: Options, runs: Run[], paired: PairedRun[], machine: string): string {
  const L: string[] = [];
  L.push('# tcp-rps: HTTP/1.1 and HTTP/2 (TLS) requests per second, Harrier beside Node\'s bare servers', '');
  L.push(`Machine: ${machine}`, '');
  L.push(`Command: \`npm run bench:tcp-rps${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\``, '');
  L.push('Method: every server is a fresh Node process pinned to core 1 (`taskset -c 1`), the client pinned to core 0.',
    `HTTP/1.1: \`autocannon -c ${o.connections} -d ${o.duration} -j https://127.0.0.1:PORT/hello.txt\` (keep-alive, no pipelining).`,
    `HTTP/2: \`h2load -n N -c ${o.connections} -m ${o.streams} -t 1 https://127.0.0.1:PORT/hello.txt\`, N = the warm-up's rate x ${o.duration} s`,
    '(Debian\'s h2load 1.52 completes no request with -D), so each HTTP/2 run also lasts about that long (column "s");',
    'its warm-up is sized the same way from a short calibration load.',
    `Each after a ${o.warmup} s unmeasured warm-up on the same server. GET /hello.txt returns the same ${BODY_SIZE} bytes of`,
    'text from memory everywhere. TLS: ECDSA P-256 (openssl). Harrier = `createServer({ endpoints: [{ host:',
    '\'127.0.0.1\', port: 0, protocols: [\'h2\', \'http/1.1\'] }], tls })` + a `get(\'/hello.txt\')` route (one port,',
    'ALPN picks the protocol; its request-limits middleware included). Peers: `node:https.createServer` and',
    '`node:http2.createSecureServer` with a handler that writes the body. rps = 2xx responses / the client\'s',
    'run time; server CPU = user+sys from /proc/PID/stat around the measured load; µs/request = that / 2xx.',
    '"client util" = the client\'s CPU over the middle of the run (near 1.00: the client was the limit, and the',
    'rps ratio understates the server difference; CPU/request is then the figure to read). h2load reports',
    'no percentiles: its column shows the mean request time.',
    `Order per round: ${o.protocols.flatMap((p) => [label(p, 'harrier'), label(p, 'node')]).join(', ')} in odd rounds, each pair`,
    `reversed in even rounds (ABBA); ${o.rounds} rounds; medians, and the median of the per-round Harrier/peer ratios`,
    '(the figure the target is judged on: the machine\'s speed drifts over minutes, a pair run back to back shares it).', '');
  L.push('## Summary (medians)', '');
  L.push('| protocol | server | runs ok | requests/s | server CPU µs/request | server util | client util | p50 (h2: mean) ms | p99 ms | errors (sum) |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  const ratios: string[] = [];
  for (const p of o.protocols) {
    const m: Partial<Record<Stack, { rps: number; us: number }>> = {};
    for (const s of ['harrier', 'node'] as Stack[]) {
      const rs = runs.filter((r) => r.ok && r.proto === p && r.stack === s);
      const x = {
        rps: median(rs.map((r) => r.rps)), us: median(rs.map((r) => r.cpuUsPerReq)), su: median(rs.map((r) => r.serverUtil)),
        cu: median(rs.map((r) => r.clientUtil)), p50: median(rs.map((r) => r.p50ms)), p99: median(rs.map((r) => r.p99ms)),
      };
      m[s] = x;
      L.push(`| ${p === 'h1' ? 'HTTP/1.1' : 'HTTP/2'} | ${label(p, s)} | ${rs.length}/${runs.filter((r) => r.proto === p && r.stack === s).length} | ${fmt(x.rps)} | ${fmt(x.us, 1)} | ${fmt(x.su, 2)} | ${fmt(x.cu, 2)} | ${fmt(x.p50, 2)} | ${fmt(x.p99, 2)} | ${rs.reduce((a, r) => a + r.errors, 0)} |`);
    }
    if (m.harrier && m.node && pairedRatios(runs, p).length > 0) {
      // The ratio within each round (the two runs minutes apart at most), then the median of
      // those: on a machine whose speed drifts, steadier than the ratio of the two medians.
      const pairs = pairedRatios(runs, p);
      const rr = median(pairs.map((x) => x.rps));
      const cr = median(pairs.map((x) => x.us));
      ratios.push(`- ${p === 'h1' ? 'HTTP/1.1' : 'HTTP/2'}: Harrier / ${label(p, 'node')}, median of ${pairs.length} per-round ratios: ` +
        `requests/s ${fmt(rr, 2)}x, CPU per request ${fmt(cr, 2)}x (target: within 15% — ${rr >= 0.85 && cr <= 1 / 0.85 ? 'met' : 'missed'}); ` +
        `per round: ${pairs.map((x) => `${fmt(x.rps, 2)}/${fmt(x.us, 2)}`).join(', ')} (rps/CPU). ` +
        `Ratio of the medians: ${fmt(m.harrier.rps / m.node.rps, 2)}x, ${fmt(m.harrier.us / m.node.us, 2)}x.`);
    }
  }
  L.push('', ...ratios, '', '## Every run (in the order run)', '');
  L.push('| # | round | server | s | requests/s | 2xx | CPU s | µs/request | server util | client util | p50 (h2: mean) ms | p99 ms | errors |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  runs.forEach((r, i) => {
    if (!r.ok) {
      L.push(`| ${i + 1} | ${r.round} | ${label(r.proto, r.stack)} | | FAILED: ${(r.error ?? '').replace(/\|/g, '/').replace(/\n/g, ' ')} | | | | | | | | |`);
      return;
    }
    L.push(`| ${i + 1} | ${r.round} | ${label(r.proto, r.stack)} | ${fmt(r.sec, 1)} | ${fmt(r.rps)} | ${r.requests} | ${fmt(r.serverCpuSec, 2)} | ${fmt(r.cpuUsPerReq, 1)} | ${fmt(r.serverUtil, 2)} | ${fmt(r.clientUtil, 2)} | ${fmt(r.p50ms, 2)} | ${fmt(r.p99ms, 2)} | ${r.errors} |`);
  });
  L.push('');
  if (paired.length > 0) L.push(...reportPaired(o, paired));
  return L.join('\n');
}

function reportPaired(o: Options, paired: PairedRun[]): string[] {
  const L: string[] = ['## Paired: both servers at once', ''];
  L.push(`Per round: Harrier and the bare server started together, both pinned to core 1, each with its own client`,
    `on core 0 (the commands above, running past the window), ${o.warmup} s of load, then a ${o.duration} s window in which each server's`,
    'answered requests (its own count: Harrier\'s metrics, a counter in the bare handler, read by SIGUSR2) and CPU',
    '(/proc) are taken at the same two moments. Which server starts first alternates. Both see the same machine at',
    'the same time, so the drift that spreads the sequential rounds cancels; the two share core 1, so each serves',
    'about half its sequential rate. Ratio Harrier / bare per round; its median is the figure.', '');
  for (const p of o.protocols) {
    const rs = paired.filter((r) => r.proto === p);
    const ok = rs.filter((r) => r.ok);
    if (rs.length === 0) continue;
    const rr = median(ok.map((r) => r.harrier.rps / r.node.rps));
    const cr = median(ok.map((r) => r.harrier.cpuUsPerReq / r.node.cpuUsPerReq));
    L.push(`- ${p === 'h1' ? 'HTTP/1.1' : 'HTTP/2'}: Harrier / ${label(p, 'node')}, median of ${ok.length} paired rounds: requests/s ${fmt(rr, 2)}x, ` +
      `CPU per request ${fmt(cr, 2)}x (within 15%: ${rr >= 0.85 && cr <= 1 / 0.85 ? 'yes' : 'no'}).`);
  }
  L.push('', '| protocol | round | Harrier requests/s | bare requests/s | Harrier µs/request | bare µs/request | rps ratio | CPU ratio | client util (max) |',
    '|---|---|---|---|---|---|---|---|---|');
  for (const r of paired) {
    const proto = r.proto === 'h1' ? 'HTTP/1.1' : 'HTTP/2';
    if (!r.ok) {
      L.push(`| ${proto} | ${r.round} | FAILED: ${(r.error ?? '').replace(/\|/g, '/').replace(/\n/g, ' ')} | | | | | | |`);
      continue;
    }
    L.push(`| ${proto} | ${r.round} | ${fmt(r.harrier.rps)} | ${fmt(r.node.rps)} | ${fmt(r.harrier.cpuUsPerReq, 1)} | ${fmt(r.node.cpuUsPerReq, 1)} | ` +
      `${fmt(r.harrier.rps / r.node.rps, 2)} | ${fmt(r.harrier.cpuUsPerReq / r.node.cpuUsPerReq, 2)} | ${fmt(r.clientUtil, 2)} |`);
  }
  L.push('');
  return L;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const o = parseArgs(argv);
  requireCommand('taskset', 'install util-linux');
  requireCommand('openssl', 'install openssl');
  if (o.protocols.includes('h2')) requireCommand('h2load', 'apt-get install -y nghttp2-client (or --protocols h1)');
  if (o.protocols.includes('h1') && !fs.existsSync(AUTOCANNON)) throw new Error('autocannon missing: npm install --prefix bench');
  let acVersion = '?';
  try {
    acVersion = (JSON.parse(fs.readFileSync(path.join(path.dirname(AUTOCANNON), 'package.json'), 'utf8')) as { version: string }).version;
  } catch { /* reported as ? */ }
  const machine = machineLine([`autocannon ${acVersion}`, commandVersion('h2load', ['--version']), `OpenSSL ${process.versions.openssl}`]);
  process.stderr.write(`tcp-rps: ${machine}\n`);
  if (o.cpuProf) fs.mkdirSync(o.cpuProf, { recursive: true });
  const fx = makeFixture('tcp-rps');
  const runs: Run[] = [];
  const paired: PairedRun[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const p of o.protocols) {
        // ABBA: odd rounds Harrier first, even rounds the peer first, so a machine whose speed
        // drifts during the run favours neither.
        const order: Stack[] = round % 2 === 1 ? ['harrier', 'node'] : ['node', 'harrier'];
        for (const s of order) {
          const r = await runOnce(p, s, round, fx, o);
          runs.push(r);
          process.stderr.write(r.ok
            ? `  round ${round} ${label(p, s)}: ${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(1)} µs CPU/request (server util ${r.serverUtil.toFixed(2)}, client util ${r.clientUtil.toFixed(2)}), errors ${r.errors}\n`
            : `  round ${round} ${label(p, s)}: FAILED ${r.error}\n`);
        }
      }
    }
    for (let round = 1; round <= o.pairedRounds; round++) {
      for (const p of o.protocols) {
        const r = await runPaired(p, round, fx, o);
        paired.push(r);
        process.stderr.write(r.ok
          ? `  paired round ${round} ${p}: Harrier ${r.harrier.rps.toFixed(0)} req/s ${r.harrier.cpuUsPerReq.toFixed(1)} µs, bare ${r.node.rps.toFixed(0)} req/s ${r.node.cpuUsPerReq.toFixed(1)} µs (client util ${r.clientUtil.toFixed(2)})\n`
          : `  paired round ${round} ${p}: FAILED ${r.error}\n`);
      }
    }
  } finally {
    fs.rmSync(fx.dir, { recursive: true, force: true });
  }
  const md = report(o, runs, paired, machine);
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, md);
  process.stdout.write(md + '\n');
  process.stderr.write(`tcp-rps: results written to ${path.relative(process.cwd(), o.out) || o.out}\n`);
  if (runs.some((r) => !r.ok) || paired.some((r) => !r.ok)) process.exitCode = 1;
}
