/**
 * oha (the Rust HTTP load generator, quinn + h3, independent of quiche) as the HTTP/3 client:
 * where its binary is, which flags this version takes, and its JSON summary.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** `$OHA`, else ~/.cargo/bin/oha, else `oha` on PATH. */
export function ohaPath(): string {
  if (process.env.OHA) return process.env.OHA;
  const cargo = path.join(os.homedir(), '.cargo', 'bin', 'oha');
  if (fs.existsSync(cargo)) return cargo;
  return 'oha';
}

export interface OhaFlavour {
  bin: string;
  version: string;
  jsonFlags: string[];
  http3: boolean;
}

/** Reads `oha --help` once: JSON output is `--output-format json` (1.5+) or `-j` (older). */
export function ohaFlavour(): OhaFlavour {
  const bin = ohaPath();
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (v.status !== 0 || v.error) {
    throw new Error(`oha not found at ${bin}: install it with \`cargo install oha --features http3 --locked\` or set $OHA`);
  }
  const help = spawnSync(bin, ['--help'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const jsonFlags = help.includes('--output-format') ? ['--output-format', 'json'] : ['-j'];
  return { bin, version: v.stdout.trim(), jsonFlags, http3: /http-version/.test(help) };
}

export interface OhaArgs {
  url: string;
  durationSec: number;
  connections: number;
}

export function ohaArgv(f: OhaFlavour, a: OhaArgs): string[] {
  // oha sends `accept-encoding: gzip, compress, deflate, br` by default; Caddy (no `encode`)
  // never compresses, so ask every server for the identity coding: the same bytes everywhere.
  return ['--http-version', '3', '-z', `${a.durationSec}s`, '-c', String(a.connections), '--insecure', '--no-tui',
    '-H', 'accept-encoding: identity', ...f.jsonFlags, a.url];
}

export interface OhaSummary {
  /** Seconds oha ran (its "total"). */
  totalSec: number;
  /** Responses by status code. */
  status: Record<string, number>;
  ok: number;
  /** Errors other than requests cut off by the -z deadline. */
  errors: number;
  /** Requests in flight when the -z deadline struck (oha cancels them). */
  deadlineAborts: number;
  errorKinds: Record<string, number>;
  p50ms: number;
  p99ms: number;
}

/** Parses oha's JSON (the last JSON object on stdout). */
export function parseOha(stdout: string): OhaSummary {
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`no JSON from oha: ${stdout.slice(0, 300)}`);
  const j = JSON.parse(stdout.slice(start)) as {
    summary: { total: number };
    statusCodeDistribution?: Record<string, number>;
    errorDistribution?: Record<string, number>;
    latencyPercentiles?: Record<string, number | null>;
  };
  const status = j.statusCodeDistribution ?? {};
  const errorKinds = j.errorDistribution ?? {};
  let errors = 0;
  let deadlineAborts = 0;
  for (const [k, n] of Object.entries(errorKinds)) {
    if (/deadline/i.test(k)) deadlineAborts += n;
    else errors += n;
  }
  const pct = j.latencyPercentiles ?? {};
  return {
    totalSec: j.summary.total,
    status,
    ok: status['200'] ?? 0,
    errors: errors + Object.entries(status).filter(([c]) => c !== '200').reduce((s, [, n]) => s + n, 0),
    deadlineAborts,
    errorKinds,
    p50ms: (pct.p50 ?? NaN) * 1000,
    p99ms: (pct.p99 ?? NaN) * 1000,
  };
}
