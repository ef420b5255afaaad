/**
 * Entry point of `npm run bench:quic-bulk` (node dist/bench/quic-bulk.js): see
 * bench/quic-bulk/run.ts and bench/README.md.
 */
import { main } from './quic-bulk/run';

main().catch((err) => {
  process.stderr.write(`quic-bulk: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
