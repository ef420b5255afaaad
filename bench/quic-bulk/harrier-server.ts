/**
 * quic-bulk server on Harrier's QUIC stack (src/quic): answers `GET <n>` with n bytes.
 * Usage: node dist/bench/quic-bulk/harrier-server.js '<ServerArgs JSON>'
 * Prints `READY {"port":N}` once bound, then one `RESULT <json>` line, and exits.
 */
import { QuicEndpoint, type QuicConnection, type QuicStream } from '../../src/quic';
import {
  ALPN, MAX_UDP_PAYLOAD, MiB, cpuSeconds, printResult, watchdog, type ServerArgs, type ServerResult,
} from './protocol';

const CHUNK = 256 * 1024;

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
  watchdog(args.timeoutSec ?? 300, 'harrier-server');
  const ep = await QuicEndpoint.listen({
    host: '127.0.0.1',
    port: 0,
    alpn: [ALPN],
    cert: args.certFile,
    key: args.keyFile,
    keylogFile: false,
    maxUdpPayloadSize: MAX_UDP_PAYLOAD,
    maxRecvUdpPayloadSize: MAX_UDP_PAYLOAD,
    initialMaxData: 64 * MiB,
    initialMaxStreamData: 16 * MiB,
    maxStreamWindow: 64 * MiB,
    maxConnectionWindow: 64 * MiB,
    congestionControl: args.cc,
    maxIdleTimeout: 30_000,
  });
  const cpu0 = process.cpuUsage();
  const chunk = Buffer.alloc(CHUNK, 0x61);
  let firstWriteNs = 0n;
  let bytesWritten = 0;

  const send = (s: QuicStream, total: number): void => {
    firstWriteNs = process.hrtime.bigint();
    const pump = (): void => {
      while (bytesWritten < total) {
        const n = Math.min(CHUNK, total - bytesWritten);
        bytesWritten += n;
        if (!s.write(n === CHUNK ? chunk : chunk.subarray(0, n), bytesWritten === total)) {
          if (bytesWritten < total) s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };

  const finish = (conn: QuicConnection, s: QuicStream): void => {
    const { cpuUser, cpuSystem } = cpuSeconds(cpu0);
    const result: ServerResult = {
      role: 'server', firstWriteNs: firstWriteNs.toString(), bytesWritten, cpuUser, cpuSystem,
      conn: conn.stats() as unknown as Record<string, unknown>,
      endpoint: ep.stats() as unknown as Record<string, unknown>,
    };
    printResult(result);
    s.end(Buffer.from(JSON.stringify(result)));
    conn.once('close', () => void ep.close({ timeoutMs: 500 }).then(() => process.exit(0)));
  };

  ep.on('connection', (conn: QuicConnection) => {
    conn.on('stream', (s: QuicStream) => {
      let req = '';
      s.on('data', (d: Buffer) => (req += d.toString('latin1')));
      s.on('end', () => {
        const m = /^GET (\d+)/.exec(req);
        if (m) send(s, Number(m[1]));
        else if (req.startsWith('DONE')) finish(conn, s);
        else s.end();
      });
    });
  });
  process.stdout.write(`READY ${JSON.stringify({ port: ep.address!.port, gso: ep.address!.gso })}\n`);
}

main().catch((err) => {
  process.stderr.write(`harrier-server: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
