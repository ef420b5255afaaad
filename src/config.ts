/**
 * The JSON configuration file: the same shape as `ServerOptions`, checked key by key.
 *
 * ```json
 * {
 *   "endpoints": [{ "port": 443 }, { "port": 80, "tls": false }, { "path": "/run/harrier.sock" }],
 *   "tls": { "certificates": [{ "cert": "a.pem", "key": "a.key", "hosts": ["a.example"] }] },
 *   "limits": { "maxRequestBodySize": 1000000 },
 *   "quic": { "retry": true },
 *   "shutdownTimeoutMs": 10000,
 *   "metrics": { "path": "/metrics" }
 * }
 * ```
 *
 * File paths (certificates, keys, Unix socket paths, qlogDir, keylogFile) are relative to
 * the config file. Every problem is one line naming the file and the key:
 * `config.json: limits.maxRequestBodySize must be a positive integer`. Binary QUIC options
 * (`ticketKey`) and the client-side ones have no JSON form.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ServerOptions } from './server';

/** A config file that cannot be used; `message` is one line, `code` is HARRIER_ERR_CONFIG. */
export class ConfigError extends Error {
  readonly code = 'HARRIER_ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Check = (v: unknown, at: string, ctx: Ctx) => unknown;
interface Ctx { file: string; dir: string }

const fail = (ctx: Ctx, at: string, what: string): never => {
  throw new ConfigError(`${ctx.file}: ${at} ${what}`);
};

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v, at, ctx) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const what = max !== Number.MAX_SAFE_INTEGER ? `an integer from ${min} to ${max}`
      : min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer of at least ${min}`;
    fail(ctx, at, `must be ${what} (got ${JSON.stringify(v)})`);
  }
  return v;
};
const positive = integer(1);
const nonNegative = integer(0);
const bool: Check = (v, at, ctx) => (typeof v === 'boolean' ? v : fail(ctx, at, `must be true or false (got ${JSON.stringify(v)})`));
const str: Check = (v, at, ctx) => (typeof v === 'string' && v.length > 0 ? v : fail(ctx, at, `must be a non-empty string (got ${JSON.stringify(v)})`));
const oneOf = (...values: string[]): Check => (v, at, ctx) =>
  (typeof v === 'string' && values.includes(v) ? v : fail(ctx, at, `must be one of ${values.map((x) => `"${x}"`).join(', ')} (got ${JSON.stringify(v)})`));
/** A path relative to the config file. */
const file: Check = (v, at, ctx) => path.resolve(ctx.dir, str(v, at, ctx) as string);
/** PEM text stays as it is; anything else is a path relative to the config file. */
const pem: Check = (v, at, ctx) => {
  const s = str(v, at, ctx) as string;
  if (s.includes('-----BEGIN')) return s;
  const p = path.resolve(ctx.dir, s);
  if (!fs.existsSync(p)) fail(ctx, at, `file not found: ${p}`);
  return p;
};
const list = (item: Check, nonEmpty = false): Check => (v, at, ctx) => {
  if (!Array.isArray(v)) return fail(ctx, at, 'must be a list');
  if (nonEmpty && v.length === 0) fail(ctx, at, 'must not be empty');
  return v.map((x, i) => item(x, `${at}[${i}]`, ctx));
};
const object = (shape: Record<string, Check>, required: string[] = []): Check => (v, at, ctx) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(ctx, at || 'the top level', 'must be an object');
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const key = at ? `${at}.${k}` : k;
    const check = shape[k];
    if (!check) fail(ctx, key, `is not a known option (known here: ${Object.keys(shape).join(', ')})`);
    if (x !== undefined) out[k] = check(x, key, ctx);
  }
  for (const k of required) if (!(k in out)) fail(ctx, at ? `${at}.${k}` : k, 'is required');
  return out;
};

const endpoint = object({
  host: str,
  port: integer(0, 65535),
  protocols: list(oneOf('h3', 'h2', 'http/1.1'), true),
  tls: bool,
  path: file,
  altSvc: bool,
});

const certificate = object({ cert: pem, key: pem, hosts: list(str) }, ['cert', 'key']);

const tls: Check = (v, at, ctx) => {
  if (typeof v === 'object' && v !== null && 'certificates' in v) {
    return object({ certificates: list(certificate, true) }, ['certificates'])(v, at, ctx);
  }
  return object({ cert: pem, key: pem }, ['cert', 'key'])(v, at, ctx);
};

const limits = object({
  maxRequestBodySize: positive,
  maxRequestHeaderCount: positive,
  maxRequestHeadersTotalSize: positive,
  maxRequestLineSize: positive,
  maxConcurrentStreams: positive,
  maxConnections: positive,
  keepAliveTimeoutMs: positive,
  requestHeadersTimeoutMs: positive,
  minRequestBodyDataRate: nonNegative,
  minRequestBodyDataRateGraceMs: nonNegative,
});

const h3 = object({
  maxFieldSectionSize: positive,
  qpackMaxTableCapacity: nonNegative,
  qpackBlockedStreams: nonNegative,
  enableConnectProtocol: bool,
  grease: bool,
});

const quic = object({
  h3,
  hq: bool,
  ipv6Only: bool,
  retry: bool,
  retryTokenLifetime: positive,
  qlogDir: file,
  keylogFile: file,
  socketBufferBytes: positive,
  maxIdleTimeout: positive,
  maxUdpPayloadSize: integer(1200, 65527),
  maxRecvUdpPayloadSize: integer(1200, 65527),
  initialMaxData: nonNegative,
  initialMaxStreamData: nonNegative,
  initialMaxStreamDataBidiLocal: nonNegative,
  initialMaxStreamDataBidiRemote: nonNegative,
  initialMaxStreamDataUni: nonNegative,
  initialMaxStreamsUni: nonNegative,
  maxStreamWindow: positive,
  maxConnectionWindow: positive,
  disableActiveMigration: bool,
  datagrams: bool,
  datagramQueueLength: positive,
  earlyData: bool,
  congestionControl: oneOf('cubic', 'reno', 'bbr2'),
  grease: bool,
});

const metrics: Check = (v, at, ctx) => (typeof v === 'boolean' ? v : object({
  path: (p, a, c) => {
    const s = str(p, a, c) as string;
    return s.startsWith('/') ? s : fail(c, a, `must start with "/" (got ${JSON.stringify(s)})`);
  },
})(v, at, ctx));

const serverOptions = object({
  endpoints: list(endpoint, true),
  tls,
  limits,
  quic,
  shutdownTimeoutMs: nonNegative,
  metrics,
});

/**
 * Checks a parsed config object (as `loadConfig` does after reading the file). `file` names
 * the source in error messages; relative paths are resolved against `baseDir`.
 * Throws ConfigError.
 */
export function parseConfig(value: unknown, file = 'config', baseDir = process.cwd()): ServerOptions {
  const ctx: Ctx = { file, dir: baseDir };
  const options = serverOptions(value, '', ctx) as ServerOptions;
  for (const [i, ep] of (options.endpoints ?? []).entries()) {
    if (ep.path !== undefined && (ep.host !== undefined || ep.port !== undefined)) {
      fail(ctx, `endpoints[${i}]`, 'takes either path (a Unix socket) or host/port, not both');
    }
  }
  return options;
}

/**
 * Reads a JSON config file into ServerOptions, the same options `createServer()` takes.
 * Throws ConfigError with a one-line message (unreadable file, bad JSON, unknown key, wrong type).
 */
export function loadConfig(file: string): ServerOptions {
  const name = path.basename(file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${path.resolve(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${name}: not valid JSON (${(err as Error).message})`);
  }
  return parseConfig(value, name, path.dirname(path.resolve(file)));
}
