// quic-bulk client on @matrixai/quic (the peer): fetches `bytes` bytes over one stream, or
// what arrives before `deadlineSec`.
// Usage: node bench/quic-bulk/matrixai-client.mjs '<ClientArgs JSON>'
// Prints one `RESULT <json>` line (with the server's figures under `server`) and exits.
import {
  clientCryptoOps, countDatagrams, cpuSeconds, printResult, quietLogger, transportConfig, watchdog,
} from './matrixai-common.mjs';

async function main() {
  const args = JSON.parse(process.argv[2] ?? '{}');
  watchdog(args.timeoutSec ?? 300, 'matrixai-client');
  const sent = await countDatagrams();
  const { QUICClient } = await import('@matrixai/quic');
  const cpu0 = process.cpuUsage();
  const connectStartNs = process.hrtime.bigint();
  const client = await QUICClient.createQUICClient({
    host: '127.0.0.1',
    port: args.port,
    localHost: '127.0.0.1',
    serverName: 'localhost',
    crypto: { ops: clientCryptoOps },
    logger: await quietLogger(),
    config: { ...transportConfig },
  });
  const connectedNs = process.hrtime.bigint();
  const conn = client.connection;

  const stream = conn.newStream();
  const w = stream.writable.getWriter();
  await w.write(Buffer.from(`GET ${args.bytes}\n`));
  await w.close();
  const reader = stream.readable.getReader();
  let received = 0;
  let lastByteNs = 0n;
  let complete = false;
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    lastByteNs = process.hrtime.bigint();
    void reader.cancel().catch(() => {});
  }, args.deadlineSec * 1000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.byteLength;
    }
  } catch {
    // cancelled at the deadline
  }
  clearTimeout(deadline);
  if (!timedOut) {
    lastByteNs = process.hrtime.bigint();
    complete = received === args.bytes;
  }
  const { cpuUser, cpuSystem } = cpuSeconds(cpu0);
  let connStats;
  try {
    const s = conn.conn.stats();
    const p = conn.conn.pathStats()[0];
    connStats = { packetsSent: s.sent, packetsReceived: s.recv, bytesReceived: s.recvBytes, rtt: p?.rtt, pmtu: p?.pmtu };
  } catch {
    connStats = undefined;
  }

  // Ask the server for its figures on a second stream.
  const done = conn.newStream();
  const dw = done.writable.getWriter();
  await dw.write(Buffer.from('DONE\n'));
  await dw.close();
  const dr = done.readable.getReader();
  const parts = [];
  for (;;) {
    const { value, done: end } = await dr.read();
    if (end) break;
    parts.push(Buffer.from(value));
  }
  const server = JSON.parse(Buffer.concat(parts).toString('utf8'));
  printResult({
    role: 'client',
    connectStartNs: connectStartNs.toString(),
    connectedNs: connectedNs.toString(),
    lastByteNs: lastByteNs.toString(),
    bytesReceived: received,
    complete,
    cpuUser,
    cpuSystem,
    conn: { ...connStats, datagramsSentByJs: sent.datagrams, largestDatagramSent: sent.largest },
    server,
  });
  await client.destroy({ force: true }).catch(() => {});
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`matrixai-client: ${err?.stack ?? err}\n`);
  process.exit(1);
});
