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
exports.goPeer = exports.peerScript = exports.python = exports.repoRoot = void 0;
exports.runPeer = runPeer;
const node_child_process_1 = require("node:child_process");
const path = __importStar(require("node:path"));
exports.repoRoot = path.resolve(__dirname, '..', '..', '..');
/**
 * Runs an independent peer program (test/peers) and parses the one JSON object it prints.
 * Rejects if it prints no JSON; the peer's own checks are in the report.
 */
function runPeer(cmd, args, timeoutMs = 120_000) {
    return new Promise((resolve, reject) => {
        const child = (0, node_child_process_1.spawn)(cmd, args, { cwd: exports.repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', reject);
        child.on('close', (code) => {
            clearTimeout(timer);
            const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
            if (!line)
                return reject(new Error(`${cmd} printed no JSON (exit ${code}); stderr:\n${err.slice(-4000)}`));
            try {
                resolve({ code, report: JSON.parse(line), stderr: err });
            }
            catch (e) {
                reject(new Error(`${cmd} printed bad JSON: ${line.slice(0, 500)}`));
            }
        });
    });
}
exports.python = process.env.PYTHON ?? 'python3';
const peerScript = (name) => path.join(exports.repoRoot, 'test', 'peers', name);
exports.peerScript = peerScript;
const goPeer = (name) => path.join(exports.repoRoot, 'build', 'peers', name);
exports.goPeer = goPeer;
