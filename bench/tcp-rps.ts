/**
 * Entry point of `npm run bench:tcp-rps` (node dist/bench/tcp-rps.js): see bench/tcp-rps/run.ts
 * and bench/README.md.
 */
import { main } from './tcp-rps/run';

main().catch((err) => {
  process.stderr.write(`tcp-rps: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
