/**
 * Server process for bench/tcp-rps, one per run, all answering GET /hello.txt with the same
 * 1 KiB text body over TLS (ECDSA P-256):
 *
 * - `harrier`: createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls })
 *              with a route returning the body (HTTP/2 and HTTP/1.1 by ALPN on one port).
 * - `https`:   node:https.createServer (HTTP/1.1), the bare baseline for HTTP/1.1.
 * - `http2`:   node:http2.createSecureServer (HTTP/2 only), the bare baseline for HTTP/2.
 *
 * Prints `READY {"port":N,"pid":P}`; exits on SIGTERM/SIGINT or after `timeoutSec`. On each
 * SIGUSR2 prints `COUNT <k> <requests answered so far>` (k = 1, 2, ...): the paired runs read
 * two of these to count what one server served within a window. Harrier's count is its own
 * metrics; the bare servers count in their handler.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer } from '../../src/server';
import { makeBody, type ServerArgs } from '../h3-rps/common';

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
  const watchdog = setTimeout(() => {
    process.stderr.write('tcp-rps server: watchdog\n');
    process.exit(2);
  }, args.timeoutSec * 1000);
  watchdog.unref();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));

  const body = makeBody();
  const cert = fs.readFileSync(args.certFile);
  const key = fs.readFileSync(args.keyFile);
  const length = String(body.byteLength);
  let port: number;
  let served = (): number => 0;
  if (args.mode === 'harrier') {
    const server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert, key } });
    server.get('/hello.txt', async (ctx) => {
      ctx.status = 200;
      ctx.response.headers.set('content-type', 'text/plain; charset=utf-8');
      ctx.response.body = body;
    });
    server.on('error', (err: unknown) => process.stderr.write(`tcp-rps server: ${(err as Error)?.stack ?? err}\n`));
    await server.listen();
    port = server.tcpListeners[0].port;
    served = () => {
      const total = server.metrics().requests.total;
      return Object.values(total).reduce((sum, byStatus) => sum + Object.values(byStatus).reduce((a, b) => a + b, 0), 0);
    };
  } else if (args.mode === 'https') {
    let n = 0;
    served = () => n;
    const server = https.createServer({ cert, key }, (req, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': length });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  } else if (args.mode === 'http2') {
    let n = 0;
    served = () => n;
    const server = http2.createSecureServer({ cert, key });
    server.on('stream', (stream) => {
      n++;
      stream.respond({ ':status': 200, 'content-type': 'text/plain; charset=utf-8', 'content-length': length });
      stream.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  } else {
    throw new Error(`unknown mode ${args.mode}`);
  }
  let counts = 0;
  process.on('SIGUSR2', () => process.stdout.write(`COUNT ${++counts} ${served()}\n`));
  process.stdout.write(`READY ${JSON.stringify({ port, pid: process.pid })}\n`);
}

main().catch((err) => {
  process.stderr.write(`tcp-rps server: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
