/**
 * Entry point of `npm run bench:h3-rps` (node dist/bench/h3-rps.js): see bench/h3-rps/run.ts
 * and bench/README.md.
 */
import { main } from './h3-rps/run';

main().catch((err) => {
  process.stderr.write(`h3-rps: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
