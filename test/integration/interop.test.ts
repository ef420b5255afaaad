import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from '../helpers/peers';

/**
 * The interop runner's short subset through the docker-free harness (interop/harness.js):
 * our interop endpoint in a network namespace, the runner's network scenario played by
 * interop/relay.js, and independent clients (aioquic; quic-go's own interop client when it
 * builds), judged from packet captures as the runner judges them. Needs root, iproute2,
 * tcpdump and tshark (CI has them); skipped when not root.
 */

interface CaseResult { test: string; client: string; status: 'pass' | 'fail' | 'unsupported'; reason: string; details: string[]; durationS: number; kept?: string }
interface Report { summary: { pass: number; fail: number; unsupported: number }; results: CaseResult[] }

const CLIENTS = ['aioquic', 'quic-go'];
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { SHORT } = require(path.join(repoRoot, 'interop', 'lib', 'testcases.js')) as { SHORT: string[] };
const HARNESS_TIMEOUT_MS = 8 * 60_000;

function runHarness(): Promise<{ report?: Report; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      path.join(repoRoot, 'interop', 'harness.js'), '--tests', SHORT.join(','), '--clients', CLIENTS.join(','), '--json', '--no-save',
    ], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // SIGTERM lets the harness remove its namespaces; SIGKILL if it does not stop.
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
    }, HARNESS_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      resolve({ report: line ? (JSON.parse(line) as Report) : undefined, code, stderr: err });
    });
  });
}

describe('interop runner short subset (docker-free harness)', function () {
  this.timeout(HARNESS_TIMEOUT_MS + 60_000);
  let run: { report?: Report; code: number | null; stderr: string } | undefined;

  before(async function () {
    if (process.getuid && process.getuid() !== 0) this.skip();
    run = await runHarness();
    if (!run.report) assert.fail(`the harness printed no report (exit ${run.code}):\n${run.stderr.slice(-3000)}`);
  });

  for (const client of CLIENTS) {
    for (const test of SHORT) {
      it(`${test} with ${client}`, function () {
        const r = run?.report?.results.find((x) => x.test === test && x.client === client);
        assert.ok(r, `no result for ${test}/${client}`);
        // A client that could not be built (no Go toolchain or module proxy) is not our failure.
        if (r.status === 'unsupported' && r.reason.startsWith('client unavailable')) this.skip();
        assert.equal(r.status, 'pass', `${test}/${client}: ${r.reason}${r.kept ? ` (captures and logs in ${r.kept})` : ''}`);
      });
    }
  }
});
