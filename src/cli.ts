/**
 * The `harrier` command.
 *
 *   harrier serve [dir]            a static site over HTTP/3 + HTTPS (HTTP/2, HTTP/1.1) with Alt-Svc
 *   harrier proxy <upstream-url>   HTTP/3 in front of an existing HTTP/1.1 app
 *   harrier qif decode|encode ...  QPACK offline interop format (see --help)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { qifDecode, qifEncode } from './cli/qif';
import { loadConfig } from './config';
import { compress } from './http/middleware/compress';
import { accessLog } from './http/middleware/log';
import { proxy } from './http/middleware/proxy';
import { staticFiles } from './http/middleware/static';
import { createServer, type ServerOptions } from './server';
import { loadOrCreateDevCertificate, trustInstructions } from './tls/devcert';
import { webTransport, webTransportEcho } from './webtransport';
import { webSocket } from './websocket';

const USAGE = `Usage:
  harrier serve [dir] [options]          serve a folder (default: .) over HTTP/3 and HTTPS
  harrier proxy <upstream-url> [options] reverse-proxy to an HTTP/1.1 app, adding HTTP/3
  harrier qif decode FILE --table-capacity N --blocked-streams N
  harrier qif encode FILE.qif --table-capacity N --blocked-streams N --ack-mode 0|1

Options for serve and proxy:
  --port N          TCP and UDP port (default 4433)
  --host ADDR       address to bind (default :: — all IPv4 and IPv6 addresses)
  --cert FILE       PEM certificate chain (default: a development certificate)
  --key FILE        PEM private key
  --config FILE     JSON configuration (the same options as the library's createServer)
  --log FORMAT      access log: common (default), json or off
  --qlog-dir DIR    write one qlog file per QUIC connection
  --webtransport-echo PATH
                    mount a WebTransport echo endpoint (streams and datagrams) at PATH
  --websocket-echo PATH
                    mount a WebSocket echo endpoint at PATH (HTTP/1.1, HTTP/2, HTTP/3)
  --no-h3           TCP only (no HTTP/3, no Alt-Svc)
  -h, --help        this text
  -v, --version     the version`;

class UsageError extends Error {}

const serveOptions: ParseArgsConfig['options'] = {
  port: { type: 'string' },
  host: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  config: { type: 'string' },
  log: { type: 'string' },
  'qlog-dir': { type: 'string' },
  'no-h3': { type: 'boolean' },
  'webtransport-echo': { type: 'string' },
  'websocket-echo': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

function parse(args: string[], options: ParseArgsConfig['options']): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}

function intOption(v: string | boolean | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${String(v)})`);
  return n;
}

/** Server options from the command line (and --config, which the flags override). */
function serverOptions(values: Record<string, string | boolean | undefined>): { options: ServerOptions; devCert: boolean } {
  const options: ServerOptions = values.config ? loadConfig(String(values.config)) : {};
  const port = intOption(values.port, 'port', 0, 65535);
  const host = values.host as string | undefined;
  const h3 = !values['no-h3'];
  if (port !== undefined || host !== undefined || !options.endpoints || !h3) {
    const base = options.endpoints?.[0] ?? {};
    options.endpoints = [{ ...base, host: host ?? base.host, port: port ?? base.port ?? 4433, protocols: h3 ? ['h3', 'h2', 'http/1.1'] : ['h2', 'http/1.1'] }];
  }
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('--cert and --key go together');
  if (values.cert) {
    for (const f of [values.cert, values.key] as string[]) if (!fs.existsSync(f)) throw new UsageError(`no such file: ${f}`);
    options.tls = { cert: String(values.cert), key: String(values.key) };
  }
  if (values['qlog-dir']) {
    const dir = path.resolve(String(values['qlog-dir']));
    fs.mkdirSync(dir, { recursive: true });
    options.quic = { ...options.quic, qlogDir: dir };
  }
  return { options, devCert: !options.tls };
}

async function start(kind: 'serve' | 'proxy', args: string[]): Promise<void> {
  const { values, positionals } = parse(args, serveOptions);
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length > 1) throw new UsageError(`${kind} takes one ${kind === 'serve' ? 'folder' : 'upstream URL'} (got ${positionals.length})`);
  const log = (values.log as string | undefined) ?? 'common';
  if (!['common', 'json', 'off'].includes(log)) throw new UsageError(`--log must be common, json or off (got ${log})`);
  const { options, devCert } = serverOptions(values);
  const echoPath = values['webtransport-echo'] as string | undefined;
  if (echoPath !== undefined && !echoPath.startsWith('/')) throw new UsageError(`--webtransport-echo takes a path starting with / (got ${echoPath})`);
  if (echoPath && values['no-h3']) throw new UsageError('--webtransport-echo needs HTTP/3 (drop --no-h3)');
  if (echoPath) options.quic = { ...options.quic, webtransport: options.quic?.webtransport ?? true };
  const wsEchoPath = values['websocket-echo'] as string | undefined;
  if (wsEchoPath !== undefined && !wsEchoPath.startsWith('/')) throw new UsageError(`--websocket-echo takes a path starting with / (got ${wsEchoPath})`);
  const server = createServer(options);
  if (log !== 'off') server.use(accessLog({ format: log as 'common' | 'json' }));
  if (echoPath) {
    server.use(webTransport(echoPath, webTransportEcho()));
    console.log(`harrier: WebTransport echo at ${echoPath}`);
  }
  if (wsEchoPath) {
    server.use(webSocket(wsEchoPath, (ws) => ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }))));
    console.log(`harrier: WebSocket echo at ${wsEchoPath}`);
  }
  if (kind === 'serve') {
    const dir = path.resolve(positionals[0] ?? '.');
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`not a folder: ${dir}`);
    server.use(compress());
    server.use(staticFiles(dir));
    console.log(`harrier: serving ${dir}`);
  } else {
    const upstream = positionals[0];
    if (!upstream) throw new UsageError('proxy needs the upstream URL, e.g. harrier proxy http://127.0.0.1:3000');
    let url: URL;
    try {
      url = new URL(upstream);
    } catch {
      throw new UsageError(`not a URL: ${upstream}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`the upstream must be http:// or https:// (got ${url.protocol})`);
    server.use(proxy(url));
    console.log(`harrier: proxying to ${url.href}`);
  }
  const addresses = await server.listen();
  for (const a of addresses) console.log(`  ${a.url.padEnd(28)} ${a.transport.toUpperCase()}  ${a.protocols.join(', ')}`);
  if (devCert) {
    const port = options.endpoints?.[0]?.port ?? 4433;
    const cert = loadOrCreateDevCertificate();
    console.log('');
    console.log(trustInstructions(cert, server.quicListeners[0]?.port ?? port));
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    console.log(`\nharrier: ${signal}: finishing in-flight requests (again to force)...`);
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function qif(args: string[]): void {
  const [mode, ...rest] = args;
  if (mode !== 'decode' && mode !== 'encode') throw new UsageError('qif needs decode or encode');
  const { values, positionals } = parse(rest, {
    'table-capacity': { type: 'string' },
    'blocked-streams': { type: 'string' },
    'ack-mode': { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError(`qif ${mode} takes one input file`);
  const file = positionals[0];
  if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const capacity = intOption(values['table-capacity'], 'table-capacity', 0, 2 ** 30) ?? 0;
  const blocked = intOption(values['blocked-streams'], 'blocked-streams', 0, 2 ** 16) ?? 0;
  if (mode === 'decode') {
    process.stdout.write(qifDecode(file, capacity, blocked));
  } else {
    const ack = intOption(values['ack-mode'], 'ack-mode', 0, 1) ?? 0;
    process.stdout.write(qifEncode(file, capacity, blocked, ack as 0 | 1));
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'serve':
      case 'proxy':
        await start(command, args);
        return 0;
      case 'qif':
        qif(args);
        return 0;
      case '-v':
      case '--version':
        console.log((JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command: ${command} (try harrier --help)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`harrier: ${e.message}`);
      return 2;
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
      console.error(`harrier: ${err.message}`);
      return 1;
    }
    if (err.code?.startsWith('HARRIER_ERR') || err.code?.startsWith('ERR_')) {
      console.error(`harrier: ${err.message}`);
      return 1;
    }
    throw e;
  }
}

