"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
const node_assert_1 = require("node:assert");
const node_child_process_1 = require("node:child_process");
const path = __importStar(require("node:path"));
const peers_1 = require("../helpers/peers");
const CLIENTS = ['aioquic', 'quic-go'];
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { SHORT } = require(path.join(peers_1.repoRoot, 'interop', 'lib', 'testcases.js'));
const HARNESS_TIMEOUT_MS = 8 * 60_000;
function runHarness() {
    return new Promise((resolve, reject) => {
        const child = (0, node_child_process_1.spawn)(process.execPath, [
            path.join(peers_1.repoRoot, 'interop', 'harness.js'), '--tests', SHORT.join(','), '--clients', CLIENTS.join(','), '--json', '--no-save',
        ], { cwd: peers_1.repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        // SIGTERM lets the harness remove its namespaces; SIGKILL if it does not stop.
        const timer = setTimeout(() => {
            try {
                process.kill(-child.pid, 'SIGTERM');
            }
            catch { /* gone */ }
            setTimeout(() => { try {
                process.kill(-child.pid, 'SIGKILL');
            }
            catch { /* gone */ } }, 5000).unref();
        }, HARNESS_TIMEOUT_MS);
        child.on('error', reject);
        child.on('close', (code) => {
            clearTimeout(timer);
            const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
            resolve({ report: line ? JSON.parse(line) : undefined, code, stderr: err });
        });
    });
}
describe('interop runner short subset (docker-free harness)', function () {
    this.timeout(HARNESS_TIMEOUT_MS + 60_000);
    let run;
    before(async function () {
        if (process.getuid && process.getuid() !== 0)
            this.skip();
        run = await runHarness();
        if (!run.report)
            node_assert_1.strict.fail(`the harness printed no report (exit ${run.code}):\n${run.stderr.slice(-3000)}`);
    });
    for (const client of CLIENTS) {
        for (const test of SHORT) {
            it(`${test} with ${client}`, function () {
                const r = run?.report?.results.find((x) => x.test === test && x.client === client);
                node_assert_1.strict.ok(r, `no result for ${test}/${client}`);
                // A client that could not be built (no Go toolchain or module proxy) is not our failure.
                if (r.status === 'unsupported' && r.reason.startsWith('client unavailable'))
                    this.skip();
                node_assert_1.strict.equal(r.status, 'pass', `${test}/${client}: ${r.reason}${r.kept ? ` (captures and logs in ${r.kept})` : ''}`);
            });
        }
    }
});
