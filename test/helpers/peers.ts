import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export interface PeerRun<T> { code: number | null; report: T; stderr: string }

/**
 * Runs an independent peer program (test/peers) and parses the one JSON object it prints.
 * Rejects if it prints no JSON; the peer's own checks are in the report.
 */
export function runPeer<T = Record<string, unknown>>(cmd: string, args: string[], timeoutMs = 120_000): Promise<PeerRun<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (!line) return reject(new Error(`${cmd} printed no JSON (exit ${code}); stderr:\n${err.slice(-4000)}`));
      try {
        resolve({ code, report: JSON.parse(line) as T, stderr: err });
      } catch (e) {
        reject(new Error(`${cmd} printed bad JSON: ${line.slice(0, 500)}`));
      }
    });
  });
}

export const python = process.env.PYTHON ?? 'python3';
export const peerScript = (name: string): string => path.join(repoRoot, 'test', 'peers', name);
export const goPeer = (name: string): string => path.join(repoRoot, 'build', 'peers', name);
