/**
 * quic-bulk: one-way bulk transfer over one QUIC connection, Harrier against @matrixai/quic,
 * side by side in one run (ours cubic, theirs, ours bbr2; repeated `rounds` times).
 *
 * Each transfer is a server process pinned to core 0 and a client process pinned to core 1
 * (`taskset`), both capped at 1452-byte UDP payloads. See bench/README.md for the method.
 *
 * Usage (after `npm run build:ts` and `npm install --prefix bench`):
 *   node dist/bench/quic-bulk.js [--rounds 3] [--bytes 1073741824] [--peer-bytes 67108864]
 *        [--peer-deadline 60] [--no-peer] [--out bench/results/quic-bulk.md]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../src/native';
import { MAX_UDP_PAYLOAD, MiB, type ClientArgs, type ClientResult, type ServerArgs } from './protocol';

const REPO = path.resolve(__dirname, '..', '..', '..');
const GiB = 1024 * MiB;

type Stack = 'harrier' | 'matrixai';

interface Options {
  rounds: number;
  bytes: number;
  peerBytes: number;
  peerDeadline: number;
  peer: boolean;
  ccs: string[];
  out: string;
}

interface Run {
  stack: Stack;
  cc: string;
  round: number;
  ok: boolean;
  error?: string;
  bytes: number;
  complete: boolean;
  transferSec: number;
  totalSec: number;
  gbps: number;
  totalGbps: number;
  serverCpu: number;
  clientCpu: number;
  /** CPU seconds per GiB moved, server and client: comparable across transfer sizes. */
  serverCpuPerGiB: number;
  clientCpuPerGiB: number;
  avgDatagram: number;
  largestDatagram: number;
  lost: number;
  rttMs: number;
  sendCalls?: number;
  datagrams?: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 3, bytes: GiB, peerBytes: 64 * MiB, peerDeadline: 60, peer: true, ccs: ['cubic', 'bbr2'],
    out: path.join(REPO, 'bench', 'results', 'quic-bulk.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--bytes') o.bytes = Number(next());
    else if (a === '--peer-bytes') o.peerBytes = Number(next());
    else if (a === '--peer-deadline') o.peerDeadline = Number(next());
    else if (a === '--no-peer') o.peer = false;
    else if (a === '--cc') o.ccs = next().split(',');
    else if (a === '--out') o.out = path.resolve(next());
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function makeCert(): { dir: string; certFile: string; keyFile: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-bench-cert-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { dir, certFile, keyFile };
}

function peerVersion(): { version: string; quiche: string } | undefined {
  const dir = path.join(REPO, 'bench', 'node_modules', '@matrixai', 'quic');
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
    let quiche = '?';
    try {
      const m = /^quiche\s*=\s*\{\s*version\s*=\s*"([^"]+)"/m.exec(fs.readFileSync(path.join(dir, 'Cargo.toml'), 'utf8'));
      if (m) quiche = m[1];
    } catch {
      /* not shipped */
    }
    return { version: pkg.version, quiche };
  } catch {
    return undefined;
  }
}

function machineLine(peer: { version: string; quiche: string } | undefined): string {
  const cpus = os.cpus();
  return [
    `${cpus.length} cores (${cpus[0]?.model.trim() ?? '?'})`,
    `Linux ${os.release()}`,
    `node ${process.version}`,
    `Harrier quiche ${native().quicheVersion}`,
    peer ? `@matrixai/quic ${peer.version} (quiche ${peer.quiche})` : '@matrixai/quic not installed',
    new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  ].join(', ');
}

/** Spawns `node script json` pinned to `core`; collects its READY and RESULT lines. */
class Child {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(core: number, script: string, args: object) {
    this.proc = spawn('taskset', ['-c', String(core), process.execPath, script, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: REPO,
    });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < 4000) this.stderr += d;
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => {
      for (const w of this.waiters.splice(0)) w();
      resolve(code);
    }));
  }

  async line(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find((x) => x.startsWith(prefix));
      if (l) return l.slice(prefix.length);
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`process exited (${this.proc.exitCode ?? this.proc.signalCode}) without ${prefix.trim()}: ${this.stderr.trim()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${prefix.trim()} within ${timeoutMs} ms: ${this.stderr.trim()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for exit; kills this child (by its PID) if it outlives `timeoutMs`. */
  async finish(timeoutMs: number): Promise<void> {
    const t = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

function scripts(stack: Stack): { server: string; client: string } {
  if (stack === 'harrier') {
    return { server: path.join(__dirname, 'harrier-server.js'), client: path.join(__dirname, 'harrier-client.js') };
  }
  const dir = path.join(REPO, 'bench', 'quic-bulk');
  return { server: path.join(dir, 'matrixai-server.mjs'), client: path.join(dir, 'matrixai-client.mjs') };
}

async function runOnce(stack: Stack, cc: string, round: number, bytes: number, deadlineSec: number,
  cert: { certFile: string; keyFile: string }): Promise<Run> {
  const run: Run = {
    stack, cc, round, ok: false, bytes: 0, complete: false, transferSec: NaN, totalSec: NaN, gbps: NaN,
    totalGbps: NaN, serverCpu: NaN, clientCpu: NaN, serverCpuPerGiB: NaN, clientCpuPerGiB: NaN, avgDatagram: NaN,
    largestDatagram: NaN, lost: NaN, rttMs: NaN,
  };
  const { server: serverScript, client: clientScript } = scripts(stack);
  const timeoutSec = deadlineSec + 60;
  const sArgs: ServerArgs = { certFile: cert.certFile, keyFile: cert.keyFile, cc, timeoutSec: timeoutSec + 10 };
  const server = new Child(0, serverScript, sArgs);
  let client: Child | undefined;
  try {
    const ready = JSON.parse(await server.line('READY ', 20_000)) as { port: number };
    const cArgs: ClientArgs = { port: ready.port, bytes, deadlineSec, timeoutSec };
    client = new Child(1, clientScript, cArgs);
    const c = JSON.parse(await client.line('RESULT ', (timeoutSec + 5) * 1000)) as ClientResult;
    const s = c.server!;
    run.bytes = c.bytesReceived;
    run.complete = c.complete;
    run.transferSec = Number(BigInt(c.lastByteNs) - BigInt(s.firstWriteNs)) / 1e9;
    run.totalSec = Number(BigInt(c.lastByteNs) - BigInt(c.connectStartNs)) / 1e9;
    run.gbps = (c.bytesReceived * 8) / run.transferSec / 1e9;
    run.totalGbps = (c.bytesReceived * 8) / run.totalSec / 1e9;
    run.serverCpu = s.cpuUser + s.cpuSystem;
    run.clientCpu = c.cpuUser + c.cpuSystem;
    run.serverCpuPerGiB = run.serverCpu / (c.bytesReceived / GiB);
    run.clientCpuPerGiB = run.clientCpu / (c.bytesReceived / GiB);
    const sc = (s.conn ?? {}) as Record<string, number>;
    run.avgDatagram = sc.bytesSent / sc.packetsSent;
    run.lost = sc.packetsLost;
    run.rttMs = sc.rtt;
    const ep = (s.endpoint ?? {}) as Record<string, number>;
    if (stack === 'harrier') {
      run.largestDatagram = sc.pmtu;
      run.sendCalls = ep.sendCalls;
      run.datagrams = ep.datagramsSent;
    } else {
      run.largestDatagram = ep.largest;
      run.datagrams = ep.datagrams;
      run.sendCalls = ep.datagrams;
    }
    run.ok = true;
    await client.finish(10_000);
    await server.finish(10_000);
  } catch (err) {
    run.error = (err as Error).message.slice(0, 300);
  } finally {
    client?.kill();
    server.kill();
  }
  return run;
}

const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');

function label(r: Pick<Run, 'stack' | 'cc'>): string {
  return r.stack === 'harrier' ? `Harrier (${r.cc})` : '@matrixai/quic (cubic)';
}

function report(o: Options, runs: Run[], machine: string, peer: { version: string } | undefined): string {
  const L: string[] = [];
  L.push('# quic-bulk: one-way bulk transfer over one QUIC connection', '');
  L.push(`Machine: ${machine}`, '');
  L.push(`Command: \`npm run bench:quic-bulk${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\``, '');
  L.push('Method: the server sends, the client receives, over one bidirectional stream of one connection.',
    `Server process pinned to core 0, client to core 1 (taskset). UDP payload capped at ${MAX_UDP_PAYLOAD} bytes on both`,
    'sides (maxUdpPayloadSize / maxSendUdpPayloadSize and the receive limit), i.e. 1500-byte-MTU-class packets on',
    'loopback; no jumbo datagrams. Flow-control windows on both sides: initialMaxData 64 MiB, stream 16 MiB,',
    'maxStreamWindow / maxConnectionWindow 64 MiB. Rate = payload bits / (client\'s last byte - server\'s first',
    'write) on the shared monotonic clock; "total" also counts process-side connect + handshake. CPU = each',
    'process\'s process.cpuUsage() user+sys from ready/connect to the end of the transfer, also per GiB moved.',
    `Order: ${o.rounds} rounds of [Harrier ${o.ccs[0]}, @matrixai/quic${o.ccs.slice(1).map((c) => `, Harrier ${c}`).join('')}], alternating.`,
    `Harrier moves ${(o.bytes / MiB).toFixed(0)} MiB per run; @matrixai/quic moves ${(o.peerBytes / MiB).toFixed(0)} MiB or what`,
    `arrives within ${o.peerDeadline} s, whichever comes first (at its ~5-10 Mbit/s a full GiB would take 15-30 minutes);`,
    'its rate is what it achieved in that window.', '');

  L.push('## Summary (medians)', '');
  L.push('| stack | runs | MiB moved | Gbit/s (transfer) | Mbit/s (transfer) | Gbit/s (total) | server CPU s | client CPU s | server CPU s/GiB | client CPU s/GiB | avg datagram B |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  const groups: Array<Pick<Run, 'stack' | 'cc'>> = [{ stack: 'harrier', cc: o.ccs[0] }];
  if (o.peer && peer) groups.push({ stack: 'matrixai', cc: 'cubic' });
  for (const cc of o.ccs.slice(1)) groups.push({ stack: 'harrier', cc });
  const med: Record<string, Record<string, number>> = {};
  for (const g of groups) {
    const rs = runs.filter((r) => r.ok && r.stack === g.stack && r.cc === g.cc);
    const m = {
      gbps: median(rs.map((r) => r.gbps)), total: median(rs.map((r) => r.totalGbps)),
      scpu: median(rs.map((r) => r.serverCpu)), ccpu: median(rs.map((r) => r.clientCpu)),
      sPer: median(rs.map((r) => r.serverCpuPerGiB)), cPer: median(rs.map((r) => r.clientCpuPerGiB)),
      mib: median(rs.map((r) => r.bytes / MiB)), dg: median(rs.map((r) => r.avgDatagram)),
    };
    med[label(g)] = m;
    L.push(`| ${label(g)} | ${rs.length} | ${f(m.mib, 0)} | ${f(m.gbps, 3)} | ${f(m.gbps * 1000, 1)} | ${f(m.total, 3)} | ${f(m.scpu)} | ${f(m.ccpu)} | ${f(m.sPer)} | ${f(m.cPer)} | ${f(m.dg, 0)} |`);
  }
  L.push('');
  const ours = med[label({ stack: 'harrier', cc: o.ccs[0] })];
  const theirs = med[label({ stack: 'matrixai', cc: 'cubic' })];
  if (ours && theirs) {
    L.push(`Ratio ours/theirs (Harrier ${o.ccs[0]} / @matrixai/quic): throughput ${f(ours.gbps / theirs.gbps, 1)}x; ` +
      `server CPU per GiB ${f(theirs.sPer / ours.sPer, 1)}x less; client CPU per GiB ${f(theirs.cPer / ours.cPer, 1)}x less.`);
  }
  for (const cc of o.ccs.slice(1)) {
    const other = med[label({ stack: 'harrier', cc })];
    if (ours && other) {
      L.push(`Congestion control, Harrier: ${o.ccs[0]} ${f(ours.gbps, 3)} Gbit/s vs ${cc} ${f(other.gbps, 3)} Gbit/s ` +
        `(${cc}/${o.ccs[0]} = ${f(other.gbps / ours.gbps, 2)}); server CPU s/GiB ${f(ours.sPer)} vs ${f(other.sPer)}.`);
    }
  }
  L.push('', '## Every run (in the order run)', '');
  L.push('| # | stack | MiB | complete | transfer s | Gbit/s | total Gbit/s | server CPU s | client CPU s | avg/max datagram B | lost | srtt ms | server send calls |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  runs.forEach((r, i) => {
    if (!r.ok) {
      L.push(`| ${i + 1} | ${label(r)} | FAILED: ${r.error?.replace(/\|/g, '/').replace(/\n/g, ' ')} | | | | | | | | | | |`);
      return;
    }
    L.push(`| ${i + 1} | ${label(r)} | ${f(r.bytes / MiB, 1)} | ${r.complete ? 'yes' : 'no (deadline)'} | ${f(r.transferSec)} | ${f(r.gbps, 3)} | ${f(r.totalGbps, 3)} | ${f(r.serverCpu)} | ${f(r.clientCpu)} | ${f(r.avgDatagram, 0)}/${f(r.largestDatagram, 0)} | ${r.lost} | ${f(r.rttMs, 1)} | ${r.sendCalls ?? '–'} |`);
  });
  L.push('', 'For @matrixai/quic "server send calls" is the number of node:dgram send() calls (one per datagram).', '');
  return L.join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const o = parseArgs(argv);
  const peer = peerVersion();
  if (o.peer && !peer) {
    process.stderr.write('quic-bulk: @matrixai/quic is not installed; run `npm install --prefix bench` (or pass --no-peer)\n');
    process.exitCode = 1;
    return;
  }
  const machine = machineLine(peer);
  process.stderr.write(`quic-bulk: ${machine}\n`);
  const cert = makeCert();
  const runs: Run[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const plan: Array<[Stack, string]> = [['harrier', o.ccs[0]]];
      if (o.peer) plan.push(['matrixai', 'cubic']);
      for (const cc of o.ccs.slice(1)) plan.push(['harrier', cc]);
      for (const [stack, cc] of plan) {
        const bytes = stack === 'harrier' ? o.bytes : o.peerBytes;
        const deadline = stack === 'harrier' ? 120 : o.peerDeadline;
        const r = await runOnce(stack, cc, round, bytes, deadline, cert);
        runs.push(r);
        process.stderr.write(r.ok
          ? `  round ${round} ${label(r)}: ${(r.bytes / MiB).toFixed(1)} MiB in ${r.transferSec.toFixed(2)} s = ${r.gbps.toFixed(3)} Gbit/s; CPU server ${r.serverCpu.toFixed(2)} s, client ${r.clientCpu.toFixed(2)} s\n`
          : `  round ${round} ${label(r)}: FAILED ${r.error}\n`);
      }
    }
  } finally {
    fs.rmSync(cert.dir, { recursive: true, force: true });
  }
  const md = report(o, runs, machine, peer);
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, md);
  fs.writeFileSync(o.out.replace(/\.md$/, '') + '.json', JSON.stringify({ machine, options: o, runs }, null, 1) + '\n');
  process.stdout.write(md + '\n');
  process.stderr.write(`quic-bulk: results written to ${path.relative(process.cwd(), o.out) || o.out}\n`);
  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}
