#!/usr/bin/env node
// Builds quiche (cargo, from the pinned `quiche` crate) into a static library, then the
// N-API addon (node-gyp). Runs as the package's `install` script. Everything comes from the
// package registries; a missing toolchain stops the install with one sentence.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const crateDir = path.join(root, 'native', 'quiche-sys');
const outDir = path.join(root, 'build', 'quiche');

function fail(sentence) {
  process.stderr.write(`\nharrier: ${sentence}\n\n`);
  process.exit(1);
}

function has(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}.`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed with exit code ${r.status}; see the output above.`);
}

if (!has('cargo')) fail('cargo (the Rust toolchain) is required to build quiche: install Rust with rustup or your package manager, then run npm install again.');
if (!has('cmake')) fail('cmake is required to build BoringSSL for quiche: install cmake (e.g. apt-get install cmake), then run npm install again.');
if (!has(process.env.CXX || 'c++')) fail('a C++ compiler is required to build the addon: install g++ or clang (e.g. apt-get install g++), then run npm install again.');
if (process.platform === 'linux' && !hasLibclang()) fail('libclang is required to generate BoringSSL\'s bindings for quiche: install it (e.g. apt-get install libclang-dev) or set LIBCLANG_PATH, then run npm install again.');

/** bindgen (used by the boring-sys crate) loads libclang at build time. */
function hasLibclang() {
  if (process.env.LIBCLANG_PATH) return true;
  const r = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  if (r.status === 0 && /libclang(-[\d.]+)?\.so/.test(r.stdout)) return true;
  for (const dir of ['/usr/lib', '/usr/lib64', '/usr/local/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu']) {
    let entries = [];
    try { entries = fs.readdirSync(dir); } catch { continue; }
    if (entries.some((e) => /^libclang(-[\d.]+)?\.so/.test(e))) return true;
    for (const e of entries.filter((e) => e.startsWith('llvm-'))) {
      try { if (fs.readdirSync(path.join(dir, e, 'lib')).some((f) => /^libclang(-[\d.]+)?\.so/.test(f))) return true; } catch { /* none */ }
    }
  }
  return false;
}

// 1. quiche → static library. cargo is incremental: an unchanged crate is not rebuilt.
run('cargo', ['build', '--release', '--locked', '--manifest-path', path.join(crateDir, 'Cargo.toml')]);
const meta = JSON.parse(spawnSync('cargo', ['metadata', '--format-version', '1', '--locked',
  '--manifest-path', path.join(crateDir, 'Cargo.toml')], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout);
const quiche = meta.packages.find((p) => p.name === 'quiche');
if (!quiche) fail('cargo metadata did not list the quiche crate; the native/quiche-sys lock file may be damaged.');
fs.mkdirSync(path.join(outDir, 'include'), { recursive: true });
copyIfChanged(path.join(path.dirname(quiche.manifest_path), 'include', 'quiche.h'), path.join(outDir, 'include', 'quiche.h'));
copyIfChanged(path.join(meta.target_directory, 'release', 'libharrier_quiche.a'), path.join(outDir, 'libharrier_quiche.a'));

// 2. The addon. Node's headers come from the local installation when it ships them, so
// node-gyp downloads nothing.
const gyp = process.env.npm_config_node_gyp
  || path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
if (!fs.existsSync(gyp)) fail('node-gyp was not found (it ships with npm); reinstall npm or set npm_config_node_gyp.');
const nodeDir = path.resolve(path.dirname(process.execPath), '..');
const gypArgs = fs.existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodeDir}`] : [];
if (!fs.existsSync(path.join(root, 'build', 'Makefile')) || process.env.HARRIER_RECONFIGURE) {
  run(process.execPath, [gyp, 'configure', ...gypArgs]);
}
run(process.execPath, [gyp, 'build', '--jobs', 'max', ...gypArgs]);

function copyIfChanged(from, to) {
  if (!fs.existsSync(from)) fail(`expected build output is missing: ${from}.`);
  const a = fs.statSync(from);
  const b = fs.existsSync(to) ? fs.statSync(to) : undefined;
  if (!b || b.size !== a.size || b.mtimeMs < a.mtimeMs) fs.copyFileSync(from, to);
}
