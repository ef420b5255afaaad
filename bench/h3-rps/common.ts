/**
 * Shared by the request-rate benchmarks (bench/h3-rps and bench/tcp-rps): certificates, the
 * 1 KiB body, child processes pinned with taskset, server CPU from /proc/PID/stat, medians,
 * and the machine line.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..', '..');

/** The response body every server sends: 1024 bytes of text, the same bytes everywhere. */
export const BODY_SIZE = 1024;
export function makeBody(): Buffer {
  const line = 'Hello from the request-rate benchmark. ';
  return Buffer.from(line.repeat(Math.ceil(BODY_SIZE / line.length)).slice(0, BODY_SIZE - 1) + '\n');
}

/** Server process arguments (JSON in argv[2]) shared by the Harrier and Node server scripts. */
export interface ServerArgs {
  mode: string;
  certFile: string;
  keyFile: string;
  /** Directory holding hello.txt (the 1 KiB body). */
  root: string;
  timeoutSec: number;
}

export interface Fixture {
  dir: string;
  certFile: string;
  keyFile: string;
  root: string;
  file: string;
}

/** ECDSA P-256 certificate for 127.0.0.1/localhost (openssl, as test/helpers/certs.ts) and hello.txt. */
export function makeFixture(prefix: string): Fixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `harrier-${prefix}-`));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const root = path.join(dir, 'www');
  fs.mkdirSync(root);
  const file = path.join(root, 'hello.txt');
  fs.writeFileSync(file, makeBody());
  return { dir, certFile, keyFile, root, file };
}

/** A port free on 127.0.0.1 for both TCP and UDP at the time of asking. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port');
}

/** user+sys CPU seconds of a process (all its threads), from /proc/PID/stat. */
export function procCpuSec(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may contain spaces).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLK_TCK;
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const v = Number(r.stdout?.trim());
  return Number.isFinite(v) && v > 0 ? v : 100;
})();

/** A child process (optionally pinned to a core) whose stdout lines and stderr are kept. */
export class Child {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(core: number | undefined, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    const [file, argv] = core === undefined ? [cmd, args] : ['taskset', ['-c', String(core), cmd, ...args]];
    this.proc = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd ?? REPO, env: opts.env ?? process.env });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stdout.length < 4_000_000) this.stdout += d;
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < 20_000) this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (err) => {
        this.stderr += String(err);
        resolve(null);
      });
      this.proc.once('exit', (code) => {
        for (const w of this.waiters.splice(0)) w();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async line(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find((x) => x.startsWith(prefix));
      if (l) return l.slice(prefix.length);
      if (!this.running) throw new Error(`process exited (${this.proc.exitCode ?? this.proc.signalCode}) without ${prefix.trim()}: ${this.stderr.trim().slice(-800)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${prefix.trim()} within ${timeoutMs} ms: ${this.stderr.trim().slice(-800)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for exit; kills this child (by its PID) if it outlives `timeoutMs`. Resolves to the exit code. */
  async finish(timeoutMs: number): Promise<number | null> {
    const t = setTimeout(() => this.kill(), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; this child's PID only. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    const t = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  kill(): void {
    this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.running && this.proc.pid) {
      try {
        process.kill(this.proc.pid, sig);
      } catch {
        /* already gone */
      }
    }
  }
}

/** Polls until `probe` resolves true or the time is up. */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms`);
}

/** Resolves true once a TCP connection to 127.0.0.1:port is accepted. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

export const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');

export function commandVersion(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || r.error) return 'not found';
  return (r.stdout || r.stderr).trim().split('\n')[0].trim();
}

export function machineLine(extra: string[]): string {
  const cpus = os.cpus();
  return [
    `${cpus.length} cores (${cpus[0]?.model.trim() ?? '?'})`,
    `Linux ${os.release()}`,
    `node ${process.version}`,
    ...extra,
    `load average ${os.loadavg()[0].toFixed(2)} at start`,
    new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  ].join(', ');
}

export function requireCommand(cmd: string, hint: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} not found: ${hint}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * CPU utilisation of a running process (1.0 = one core busy), sampled from 1 s after the
 * start to its last reading while alive (every 250 ms), or until `untilMs` after the start
 * if given (a client that idles after its load, e.g. oha waiting for the server to close
 * its connections): was the load generator the limit? NaN when it ran for less than about 1.5 s.
 */
export function sampleUtil(child: Child, untilMs?: number): Promise<number> {
  const end = untilMs === undefined ? Infinity : Date.now() + untilMs;
  return (async () => {
    await sleep(1000);
    if (!child.running) return NaN;
    const a = procCpuSec(child.pid);
    const ta = Date.now();
    let last = NaN;
    while (child.running && Date.now() < end) {
      await sleep(250);
      try {
        if (child.running) last = (procCpuSec(child.pid) - a) / ((Date.now() - ta) / 1000);
      } catch {
        break; // exited between the check and the read
      }
    }
    return last;
  })().catch(() => NaN);
}
