/**
 * Harrier HTTP/3 server process for bench/h3-rps, one mode per process:
 *
 * - `full`:  createServer (its limits middleware) + compress() + staticFiles(root): GET
 *            /hello.txt is the 1 KiB file, opened, stat'ed and streamed per request, as Caddy's
 *            file_server does. No access log (the CLI's `--log off`).
 * - `route`: createServer + compress() + a route returning the 1 KiB body from memory.
 * - `bare`:  QuicListener on a trivial App: one middleware that sets the body, nothing else.
 *
 * Prints `READY {"port":N,"pid":P}` once listening; exits on SIGTERM/SIGINT (so that
 * `node --cpu-prof` writes its profile) or after `timeoutSec`.
 * Usage: node dist/bench/h3-rps/harrier-server.js '{"mode":"full","certFile":...,"keyFile":...,"root":...,"timeoutSec":60}'
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from '../../src/http/app';
import type { Context } from '../../src/http/context';
import { QuicListener } from '../../src/listeners/quic';
import { createServer } from '../../src/server';
import { makeBody, type ServerArgs } from './common';

/**
 * QUIC idle timeout. oha 1.16's HTTP/3 client, once done, waits for the server to close the
 * connection; Harrier closes an idle connection only at its idle timeout (default 30 s), so
 * a short one lets oha exit. It does not matter under load (no connection is ever idle).
 */
const IDLE_MS = 2000;

type Mw = (ctx: Context, next: () => Promise<void>) => Promise<void>;

/** The pipeline's middleware, loaded at run time so that a missing one is a clear error. */
function middleware<T>(name: string, exportName: string): T {
  const file = path.join(__dirname, '..', '..', 'src', 'http', 'middleware', `${name}.js`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as Record<string, T>;
  if (!mod[exportName]) throw new Error(`${file} has no ${exportName}`);
  return mod[exportName];
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
  const watchdog = setTimeout(() => {
    process.stderr.write('harrier-server: watchdog\n');
    process.exit(2);
  }, args.timeoutSec * 1000);
  watchdog.unref();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));

  const body = makeBody();
  const cert = fs.readFileSync(args.certFile);
  const key = fs.readFileSync(args.keyFile);
  let port: number;
  if (args.mode === 'bare') {
    const app = new App();
    app.use(async (ctx) => {
      ctx.status = 200;
      ctx.response.headers.set('content-type', 'text/plain; charset=utf-8');
      ctx.response.body = body;
    });
    const listener = await QuicListener.listen(app, { host: '127.0.0.1', port: 0, cert, key, maxIdleTimeout: IDLE_MS });
    port = listener.port;
  } else {
    const server = createServer({
      endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h3'] }], tls: { cert, key }, quic: { maxIdleTimeout: IDLE_MS },
    });
    server.use(middleware<(o?: object) => Mw>('compress', 'compress')());
    if (args.mode === 'full') {
      server.use(middleware<(root: string, o?: object) => Mw>('static', 'staticFiles')(args.root));
    } else if (args.mode === 'route') {
      server.get('/hello.txt', async (ctx) => {
        ctx.status = 200;
        ctx.response.headers.set('content-type', 'text/plain; charset=utf-8');
        ctx.response.body = body;
      });
    } else {
      throw new Error(`unknown mode ${args.mode}`);
    }
    server.on('error', (err: unknown) => process.stderr.write(`harrier-server: ${(err as Error)?.stack ?? err}\n`));
    await server.listen();
    port = server.quicListeners[0].port;
  }
  process.stdout.write(`READY ${JSON.stringify({ port, pid: process.pid })}\n`);
}

main().catch((err) => {
  process.stderr.write(`harrier-server: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
