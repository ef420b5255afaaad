/**
 * quic-bulk client on Harrier's QUIC stack: fetches `bytes` bytes over one stream.
 * Usage: node dist/bench/quic-bulk/harrier-client.js '<ClientArgs JSON>'
 * Prints one `RESULT <json>` line (with the server's figures under `server`) and exits.
 */
import { QuicEndpoint, type QuicConnection, type QuicStream } from '../../src/quic';
import {
  ALPN, MAX_UDP_PAYLOAD, MiB, cpuSeconds, printResult, watchdog, type ClientArgs, type ClientResult,
  type ServerResult,
} from './protocol';

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ClientArgs;
  watchdog(args.timeoutSec ?? 300, 'harrier-client');
  const ep = QuicEndpoint.client({
    alpn: [ALPN],
    keylogFile: false,
    maxUdpPayloadSize: MAX_UDP_PAYLOAD,
    maxRecvUdpPayloadSize: MAX_UDP_PAYLOAD,
    // The client receives the payload: its windows are the ones that bound the sender.
    initialMaxData: 64 * MiB,
    initialMaxStreamData: 16 * MiB,
    maxStreamWindow: 64 * MiB,
    maxConnectionWindow: 64 * MiB,
    maxIdleTimeout: 30_000,
  });
  const cpu0 = process.cpuUsage();
  const connectStartNs = process.hrtime.bigint();
  let done = false;
  const conn: QuicConnection = ep.connect('127.0.0.1', args.port, { serverName: 'localhost' });
  conn.on('close', (info) => {
    if (!done) {
      process.stderr.write(`harrier-client: connection closed early: ${JSON.stringify(info, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
      process.exit(1);
    }
  });
  await new Promise<void>((resolve) => conn.once('connect', () => resolve()));
  const connectedNs = process.hrtime.bigint();

  let received = 0;
  let lastByteNs = 0n;
  const complete = await new Promise<boolean>((resolve) => {
    const s: QuicStream = conn.openStream();
    const deadline = setTimeout(() => {
      lastByteNs = process.hrtime.bigint();
      s.removeAllListeners('data');
      s.stopSending(0);
      resolve(false);
    }, args.deadlineSec * 1000);
    s.on('data', (d: Buffer) => {
      received += d.byteLength;
    });
    s.on('end', () => {
      lastByteNs = process.hrtime.bigint();
      clearTimeout(deadline);
      resolve(received === args.bytes);
    });
    s.on('reset', () => {
      lastByteNs = process.hrtime.bigint();
      clearTimeout(deadline);
      resolve(false);
    });
    s.end(Buffer.from(`GET ${args.bytes}\n`));
  });
  const { cpuUser, cpuSystem } = cpuSeconds(cpu0);
  const connStats = conn.stats() as unknown as Record<string, unknown>;

  // Ask the server for its figures on a second stream.
  const server = await new Promise<ServerResult>((resolve, reject) => {
    const s = conn.openStream();
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString('utf8')) as ServerResult);
      } catch (e) {
        reject(e);
      }
    });
    s.end(Buffer.from('DONE\n'));
  });
  done = true;
  const result: ClientResult = {
    role: 'client',
    connectStartNs: connectStartNs.toString(),
    connectedNs: connectedNs.toString(),
    lastByteNs: lastByteNs.toString(),
    bytesReceived: received,
    complete,
    cpuUser,
    cpuSystem,
    conn: connStats,
    server,
  };
  printResult(result);
  await ep.close({ timeoutMs: 500 });
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`harrier-client: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
