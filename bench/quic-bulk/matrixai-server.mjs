// quic-bulk server on @matrixai/quic (the peer): answers `GET <n>` with n bytes.
// Usage: node bench/quic-bulk/matrixai-server.mjs '<ServerArgs JSON>'
// Prints `READY {"port":N}` once bound, then one `RESULT <json>` line, and exits.
import * as fs from 'node:fs';
import {
  countDatagrams, cpuSeconds, printResult, quietLogger, serverCryptoOps, transportConfig, watchdog,
} from './matrixai-common.mjs';

const CHUNK = 64 * 1024;

async function readAll(readable) {
  const reader = readable.getReader();
  const parts = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(Buffer.from(value));
  }
  reader.releaseLock();
  return Buffer.concat(parts).toString('latin1');
}

async function main() {
  const args = JSON.parse(process.argv[2] ?? '{}');
  watchdog(args.timeoutSec ?? 300, 'matrixai-server');
  const sent = await countDatagrams();
  const { QUICServer, events } = await import('@matrixai/quic');
  const server = new QUICServer({
    logger: await quietLogger(),
    crypto: { key: nodeRandomKey(), ops: serverCryptoOps },
    config: {
      ...transportConfig,
      key: fs.readFileSync(args.keyFile, 'utf8'),
      cert: fs.readFileSync(args.certFile, 'utf8'),
    },
  });
  await server.start({ host: '127.0.0.1', port: 0 });
  const cpu0 = process.cpuUsage();
  const chunk = Buffer.alloc(CHUNK, 0x61);
  let firstWriteNs = 0n;
  let bytesWritten = 0;
  let payloadStream;

  const send = async (stream, total) => {
    payloadStream = stream;
    const writer = stream.writable.getWriter();
    firstWriteNs = process.hrtime.bigint();
    try {
      while (bytesWritten < total) {
        const n = Math.min(CHUNK, total - bytesWritten);
        await writer.write(n === CHUNK ? chunk : chunk.subarray(0, n));
        bytesWritten += n;
      }
      await writer.close();
    } catch {
      // The client stopped reading at its deadline (STOP_SENDING).
    }
  };

  const finish = async (conn, stream) => {
    const { cpuUser, cpuSystem } = cpuSeconds(cpu0);
    let connStats;
    try {
      const s = conn.conn.stats();
      const p = conn.conn.pathStats()[0];
      connStats = {
        packetsSent: s.sent, packetsReceived: s.recv, packetsLost: s.lost, bytesSent: s.sentBytes,
        rtt: p?.rtt, cwnd: p?.cwnd, pmtu: p?.pmtu,
      };
    } catch {
      connStats = undefined;
    }
    const result = {
      role: 'server', firstWriteNs: firstWriteNs.toString(), bytesWritten, cpuUser, cpuSystem,
      conn: connStats, endpoint: { ...sent },
    };
    printResult(result);
    const writer = stream.writable.getWriter();
    await writer.write(Buffer.from(JSON.stringify(result)));
    await writer.close();
    if (payloadStream && !payloadStream.closed) payloadStream.cancel();
  };

  server.addEventListener(events.EventQUICServerConnection.name, (evt) => {
    const conn = evt.detail;
    conn.addEventListener(events.EventQUICConnectionStream.name, (e) => {
      const stream = e.detail;
      void (async () => {
        const req = await readAll(stream.readable);
        const m = /^GET (\d+)/.exec(req);
        if (m) await send(stream, Number(m[1]));
        else if (req.startsWith('DONE')) await finish(conn, stream);
      })().catch((err) => process.stderr.write(`matrixai-server stream: ${err?.stack ?? err}\n`));
    });
    conn.addEventListener(events.EventQUICConnectionStopped.name, () => {
      void server.stop({ force: true }).finally(() => process.exit(0));
    }, { once: true });
  });
  process.stdout.write(`READY ${JSON.stringify({ port: server.port })}\n`);
}

function nodeRandomKey() {
  const k = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) k[i] = (Math.random() * 256) | 0;
  return k.buffer.slice(k.byteOffset, k.byteOffset + 32);
}

main().catch((err) => {
  process.stderr.write(`matrixai-server: ${err?.stack ?? err}\n`);
  process.exit(1);
});
