#!/usr/bin/env node
'use strict';
/**
 * The docker-free interop harness: the QUIC interop runner's test cases against Harrier's
 * server endpoint (interop/run_endpoint.sh), with independent clients, in network
 * namespaces joined through an impairment relay (interop/relay.js). Needs root, iproute2,
 * tcpdump and tshark. See interop/README.md.
 *
 * usage: node interop/harness.js [--tests a,b|short|all] [--clients aioquic,quic-go]
 *          [--json] [--no-save] [--keep] [--out DIR] [--tcp-cc cubic|reno|bbr] [--list]
 *   --json     print the results as one JSON object on stdout (progress goes to stderr)
 *   --no-save  do not write interop/results/latest.{md,json}
 *   --keep     keep every case's directory (captures, key logs, qlogs, logs); failed
 *              cases are always kept
 *   --tcp-cc   congestion control of crosstraffic's TCP flow (default cubic, as the runner)
 */
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Topology, ADDR } = require('./lib/netns');
const { TESTS, SHORT, LINK } = require('./lib/testcases');
const { readTrace, CHECKS, goodputKbps, transferWindow, enrichFromClient, qlogKeyPhase1Sent, qlogPathFrames } = require('./lib/trace');
const cross = require('./lib/crosstraffic');

const ROOT = path.resolve(__dirname, '..');
const QUIC_GO_VERSION = 'v0.65.0';
const QUIC_GO_BIN = path.join(ROOT, 'build', 'interop', 'quic-go-client');

// ---------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const o = { tests: 'all', clients: 'aioquic,quic-go', json: false, save: true, keep: false, out: path.join(__dirname, 'results') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a.startsWith('--tests')) o.tests = val();
    else if (a.startsWith('--clients')) o.clients = val();
    else if (a.startsWith('--out')) o.out = val();
    else if (a.startsWith('--tcp-cc')) o.tcpCc = val();
    else if (a === '--json') o.json = true;
    else if (a === '--no-save') o.save = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '--list') o.list = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  const names = o.tests === 'all' ? TESTS.map((t) => t.name) : o.tests === 'short' ? SHORT : o.tests.split(',').filter(Boolean);
  for (const n of names) if (!TESTS.find((t) => t.name === n)) usage(`unknown test ${n} (known: ${TESTS.map((t) => t.name).join(', ')})`);
  o.testList = names.map((n) => TESTS.find((t) => t.name === n));
  o.clientList = o.clients.split(',').filter(Boolean);
  for (const c of o.clientList) if (!CLIENTS[c]) usage(`unknown client ${c} (known: ${Object.keys(CLIENTS).join(', ')})`);
  if (o.tcpCc !== undefined) {
    let avail = [];
    try {
      avail = fs.readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').trim().split(/\s+/);
    } catch { /* not Linux */ }
    if (!avail.includes(o.tcpCc)) usage(`--tcp-cc ${o.tcpCc}: the kernel offers ${avail.join(', ') || 'nothing'}`);
  }
  return o;
}

function usage(err) {
  const text = fs.readFileSync(__filename, 'utf8').split('\n').slice(8, 15).map((l) => l.replace(/^ \* ?/, '')).join('\n');
  process.stderr.write(`${err ? `error: ${err}\n` : ''}${text}\n`);
  process.exit(err ? 2 : 0);
}

// ---------------------------------------------------------------------------------------
// Clients: each follows the runner's client contract (TESTCASE, REQUESTS, /downloads, /logs).

const CLIENTS = {
  aioquic: {
    label: 'aioquic 1.7.2 (interop/clients/aioquic_client.py)',
    prepare() {
      try {
        execFileSync('python3', ['-c', 'import aioquic; assert aioquic.__version__.startswith("1.")'], { stdio: 'ignore' });
      } catch {
        return 'python3 with aioquic is not installed (pip install aioquic==1.7.2)';
      }
      return undefined;
    },
    command({ downloads, logs }) {
      return {
        argv: ['python3', path.join(__dirname, 'clients', 'aioquic_client.py')],
        env: { DOWNLOADS: downloads, SSLKEYLOGFILE: path.join(logs, 'keys.log'), QLOGDIR: path.join(logs, 'qlog') },
      };
    },
  },
  'quic-go': {
    label: `quic-go ${QUIC_GO_VERSION} interop client (github.com/quic-go/quic-go/interop/client)`,
    prepare() {
      if (fs.existsSync(QUIC_GO_BIN)) return undefined;
      const gobin = path.join(os.tmpdir(), `harrier-quic-go-${process.pid}`);
      try {
        log(`building the quic-go interop client ${QUIC_GO_VERSION} (Go module proxy)...`);
        execFileSync('go', ['install', `github.com/quic-go/quic-go/interop/client@${QUIC_GO_VERSION}`], {
          env: { ...process.env, GOBIN: gobin, GOFLAGS: '-mod=mod' }, stdio: ['ignore', 'ignore', 'pipe'], cwd: os.tmpdir(),
        });
        fs.mkdirSync(path.dirname(QUIC_GO_BIN), { recursive: true });
        fs.copyFileSync(path.join(gobin, 'client'), QUIC_GO_BIN);
        fs.chmodSync(QUIC_GO_BIN, 0o755);
        return undefined;
      } catch (e) {
        return `could not build the quic-go interop client: ${String(e.stderr || e.message).trim().split('\n').pop()}`;
      } finally {
        fs.rmSync(gobin, { recursive: true, force: true });
      }
    },
    command({ downloads, logs }) {
      // It writes to /downloads and /logs: bind-mount the case's directories there, in the
      // private mount namespace that `ip netns exec` gives every command.
      return {
        argv: ['sh', '-c', 'mount --bind "$H_DOWNLOADS" /downloads && mount --bind "$H_LOGS" /logs && exec "$0" "$@"', QUIC_GO_BIN],
        urlsAsArgs: true,
        env: { H_DOWNLOADS: downloads, H_LOGS: logs, SSLKEYLOGFILE: '/logs/keys.log', QLOGDIR: '/logs/qlog' },
        needsRootDirs: true,
      };
    },
  },
};

// ---------------------------------------------------------------------------------------
// Helpers

let jsonMode = false;
function log(msg) {
  process.stderr.write(`${msg}\n`);
}

const children = new Set();
function start(argv, { env, stdout, stderr, onLine } = {}) {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  const out = stdout ? fs.createWriteStream(stdout) : null;
  const err = stderr ? (stderr === stdout ? out : fs.createWriteStream(stderr)) : null;
  let buf = '';
  const tail = [];
  const feed = (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (onLine) onLine(line);
    }
  };
  child.stdout.on('data', (d) => { out?.write(d); feed(d); });
  child.stderr.on('data', (d) => { err?.write(d); feed(d); });
  child.exited = new Promise((resolve) => child.on('close', (code, signal) => {
    children.delete(child);
    out?.end();
    if (err && err !== out) err.end();
    resolve({ code, signal });
  }));
  child.on('error', (e) => tail.push(`spawn error: ${e.message}`));
  child.tail = tail;
  return child;
}

/** Signals the child's process group (only processes this harness started). */
function signal(child, sig) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try { child.kill(sig); } catch { /* gone */ }
  }
}

async function stop(child, sig, graceMs) {
  signal(child, sig);
  const r = await Promise.race([child.exited, sleep(graceMs).then(() => null)]);
  if (r) return { ...r, forced: false };
  signal(child, 'SIGKILL');
  return { ...(await child.exited), forced: true };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitLine(child, re, ms) {
  return new Promise((resolve) => {
    if (child.tail.some((l) => re.test(l))) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    const check = (d) => {
      if (re.test(child.tail.join('\n'))) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child.stdout.on('data', () => setImmediate(check));
    child.stderr.on('data', () => setImmediate(check));
    child.exited.then(() => { clearTimeout(timer); resolve(re.test(child.tail.join('\n'))); });
  });
}

function randomName(len) {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const b = crypto.randomBytes(len);
  let s = '';
  for (let i = 0; i < len; i++) s += letters[b[i] % 26];
  return s;
}

function makeFiles(dir, specs) {
  const names = new Set();
  return specs.map((f) => {
    let name;
    do name = randomName(f.nameLength ?? 10); while (names.has(name));
    names.add(name);
    fs.writeFileSync(path.join(dir, name), crypto.randomBytes(f.size));
    return { name, size: f.size };
  });
}

const certCache = new Map();
function certs(workDir, chain) {
  if (!certCache.has(chain)) {
    const dir = path.join(workDir, `certs-${chain}`);
    execFileSync('bash', [path.join(__dirname, 'certs.sh'), dir, String(chain)], { stdio: 'ignore' });
    // DER size of the chain, for the amplification check's "used the whole chain" test.
    const pem = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const der = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)]
      .reduce((n, m) => n + Buffer.from(m[1].replace(/\s+/g, ''), 'base64').length, 0);
    certCache.set(chain, { dir, der });
  }
  return certCache.get(chain);
}

function compareFiles(www, downloads, files) {
  const got = fs.existsSync(downloads) ? fs.readdirSync(downloads).filter((n) => fs.statSync(path.join(downloads, n)).isFile()) : [];
  const want = new Set(files.map((f) => f.name));
  const extra = got.filter((n) => !want.has(n));
  const missing = files.filter((f) => !got.includes(f.name));
  if (missing.length > 0) return `${missing.length} of ${files.length} files missing`;
  if (extra.length > 0) return `unexpected downloaded files: ${extra.slice(0, 3).join(', ')}`;
  for (const f of files) {
    const a = fs.readFileSync(path.join(www, f.name));
    const b = fs.readFileSync(path.join(downloads, f.name));
    if (a.length !== b.length) return `${f.name}: ${b.length} bytes downloaded, ${a.length} expected`;
    if (!a.equals(b)) return `${f.name}: contents differ`;
  }
  return undefined;
}

/**
 * Mount points the quic-go client needs, made when missing. They stay (empty directories):
 * removing them at the end broke the quic-go cases of another harness run going on at the
 * same time ("open /downloads/...: no such file or directory").
 */
function ensureRootDirs() {
  for (const dname of ['/downloads', '/logs']) if (!fs.existsSync(dname)) fs.mkdirSync(dname);
}

function validKeylog(file) {
  try {
    return /^SERVER_HANDSHAKE_TRAFFIC_SECRET /m.test(fs.readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// One test x client

async function runCase(topo, workDir, test, clientName, opts) {
  const client = CLIENTS[clientName];
  const dir = path.join(workDir, `${test.name}-${clientName}`);
  const d = {
    www: path.join(dir, 'www'), downloads: path.join(dir, 'downloads'), serverLogs: path.join(dir, 'server'),
    clientLogs: path.join(dir, 'client'), sim: path.join(dir, 'sim'),
  };
  for (const p of Object.values(d)) fs.mkdirSync(p, { recursive: true });
  const started = Date.now();
  const result = { test: test.name, client: clientName, status: 'fail', reason: '', details: [], dir };
  const procs = [];
  const ct = test.crossTraffic ? { ...test.crossTraffic, cc: opts.tcpCc ?? test.crossTraffic.cc } : null;
  try {
    const files = makeFiles(d.www, test.files);
    if (ct) cross.tunnelUp(topo);
    const cert = certs(workDir, test.chain ?? 1);

    // Server (exit 127 at once = unsupported).
    const server = start([...topo.prefix(topo.server), 'bash', path.join(__dirname, 'run_endpoint.sh')], {
      env: {
        ROLE: 'server', TESTCASE: test.server, SERVER_PARAMS: '', SSLKEYLOGFILE: path.join(d.serverLogs, 'keys.log'),
        QLOGDIR: path.join(d.serverLogs, 'qlog'), LOGS: d.serverLogs, WWW: d.www, CERTS: cert.dir, PORT: '443',
      },
      stdout: path.join(d.serverLogs, 'log.txt'), stderr: path.join(d.serverLogs, 'log.txt'),
    });
    procs.push(server);

    // The simulator: relay with the scenario; it probes the server before it listens.
    const relayCfg = {
      ...LINK, ...(test.link ?? {}), ...(test.relay ?? {}),
      listen: [
        { host: ADDR.simClient4, port: 443, type: 'udp4' },
        { host: ADDR.simClient6, port: 443, type: 'udp6' },
      ],
      server: { udp4: ADDR.server4, udp6: ADDR.server6 },
      upstream: { udp4: ADDR.simServer4, udp6: ADDR.simServer6 },
      seed: [...`${test.name}/${clientName}`].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7),
      ...(ct ? { tunnel: cross.relayTunnel() } : {}),
    };
    const relay = start([...topo.prefix(topo.sim), process.execPath, path.join(__dirname, 'relay.js'), JSON.stringify(relayCfg)], {
      stdout: path.join(d.sim, 'relay.log'), stderr: path.join(d.sim, 'relay.log'),
    });
    procs.push(relay);
    const ready = await Promise.race([
      waitLine(relay, /^(ready|probe-failed)/m, 12_000).then(() => (relay.tail.includes('ready') ? 'ready' : 'probe-failed')),
      server.exited.then((r) => ({ server: r })),
    ]);
    if (typeof ready === 'object' || server.exitCode !== null) {
      const r = typeof ready === 'object' ? ready.server : { code: server.exitCode };
      if (r.code === 127) {
        result.status = 'unsupported';
        result.reason = `server exits 127: ${server.tail.filter((l) => /unsupported/.test(l)).pop() ?? ''}`.replace(/harrier interop: /, '');
      } else {
        result.reason = `server exited ${r.code} before the test: ${server.tail.slice(-3).join(' | ')}`;
      }
      return result;
    }
    if (ready !== 'ready') {
      result.reason = `readiness probe: ${relay.tail.join(' ').slice(0, 200)}`;
      return result;
    }

    // Captures on the server's and the client's links (QUIC only: not the TCP flow's tunnel).
    const dumps = [];
    const filter = ct ? `udp and not port ${cross.TUNNEL.port}` : 'udp';
    for (const [ns, dev, file] of [[topo.server, 'hs0', 'trace_server.pcap'], [topo.client, 'hc0', 'trace_client.pcap']]) {
      const t = start([...topo.prefix(ns), 'tcpdump', '-i', dev, '-n', '-U', '--immediate-mode', '-Z', 'root', '-s', '0', '-w', path.join(d.sim, file), filter], {
        stderr: path.join(d.sim, `${file}.log`),
      });
      procs.push(t);
      dumps.push(t);
    }
    for (const t of dumps) if (!(await waitLine(t, /listening on/, 5000))) throw new Error(`tcpdump did not start: ${t.tail.join(' ')}`);

    // crosstraffic: the competing TCP flow (server side -> client side, like the runner's
    // iperf pair), started before the client and given time to fill the bottleneck.
    let tcp;
    if (ct) {
      const sink = start([...topo.prefix(topo.client), ...cross.sinkArgv()], { stdout: path.join(d.sim, 'tcp-sink.txt'), stderr: path.join(d.sim, 'tcp-sink.txt') });
      procs.push(sink);
      if (!(await waitLine(sink, /^listening/, 5000))) throw new Error(`TCP sink did not start: ${sink.tail.join(' ')}`);
      const sender = start([...topo.prefix(topo.server), ...cross.senderArgv(ct.cc)], { stdout: path.join(d.sim, 'tcp-sender.txt'), stderr: path.join(d.sim, 'tcp-sender.txt') });
      procs.push(sender);
      if (!(await waitLine(sender, /^connected/, 12_000))) throw new Error(`TCP flow did not connect: ${sender.tail.join(' ')}`);
      tcp = { sink, sender };
      await sleep(ct.warmupMs ?? 0);
    }

    // Client.
    const host = test.ipv6 ? 'server6' : 'server4';
    const urls = files.map((f) => `https://${host}:443/${f.name}`);
    const cmd = client.command({ downloads: d.downloads, logs: d.clientLogs });
    // The quic-go client's mount points, made when first needed.
    if (cmd.needsRootDirs) ensureRootDirs();
    const argv = [...topo.prefix(topo.client), ...cmd.argv, ...(cmd.urlsAsArgs ? urls : [])];
    const timeoutS = test.timeoutS ?? 60;
    const clientStart = Date.now();
    const cproc = start(argv, {
      env: { ROLE: 'client', TESTCASE: test.client, REQUESTS: urls.join(' '), ...cmd.env },
      stdout: path.join(d.clientLogs, 'output.txt'), stderr: path.join(d.clientLogs, 'output.txt'),
    });
    procs.push(cproc);
    const cres = await Promise.race([cproc.exited, sleep(timeoutS * 1000).then(() => null)]);
    const clientS = (Date.now() - clientStart) / 1000;
    let clientFailure;
    if (!cres) {
      await stop(cproc, 'SIGKILL', 2000);
      clientFailure = `timeout: the client did not finish within ${timeoutS} s`;
    } else if (cres.code === 127) {
      result.status = 'unsupported';
      result.reason = `client exits 127 (${client.label.split(' (')[0]} does not implement "${test.client}")`;
    } else if (cres.code !== 0) {
      clientFailure = `client exited ${cres.code ?? cres.signal}: ${cproc.tail.slice(-2).join(' | ').slice(0, 300)}`;
    }

    // The TCP flow stops with the client (the runner's iperf runs until the test ends).
    let tcpFinal;
    if (tcp) {
      await stop(tcp.sender, 'SIGTERM', 3000);
      await stop(tcp.sink, 'SIGTERM', 3000);
      const last = (p) => p.tail.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).pop();
      tcpFinal = { sender: last(tcp.sender), sink: last(tcp.sink) };
    }

    // Shut down like the runner: SIGTERM with 10 s of grace; then the simulator.
    const sres = await stop(server, 'SIGTERM', 10_000);
    if (sres.forced) result.details.push('server ignored SIGTERM for 10 s and was killed');
    else if (sres.code !== 0) result.details.push(`server exit status ${sres.code ?? sres.signal} after SIGTERM`);
    await sleep(200);
    for (const t of dumps) await stop(t, 'SIGINT', 3000);
    await stop(relay, 'SIGTERM', 3000);
    const stats = relay.tail.filter((l) => l.startsWith('{')).pop();
    if (stats) fs.writeFileSync(path.join(d.sim, 'relay-stats.json'), stats);
    if (result.status === 'unsupported') return result;
    if (clientFailure) {
      result.reason = clientFailure;
      return result;
    }

    const filesErr = compareFiles(d.www, d.downloads, files);
    if (filesErr) {
      result.reason = filesErr;
      return result;
    }
    result.details.push(`${files.length} file${files.length === 1 ? '' : 's'} identical`);

    const ck = path.join(d.clientLogs, 'keys.log');
    const sk = path.join(d.serverLogs, 'keys.log');
    const keylog = validKeylog(ck) ? ck : validKeylog(sk) ? sk : undefined;
    if (!keylog) result.details.push('no usable key log: checks see only unencrypted headers');
    const [serverTrace, clientTrace] = await Promise.all([
      readTrace(path.join(d.sim, 'trace_server.pcap'), keylog),
      readTrace(path.join(d.sim, 'trace_client.pcap'), keylog),
    ]);
    if (test.checks.includes('pathValidation')) {
      const n = enrichFromClient(serverTrace, clientTrace, path.join(d.sim, 'trace_server.pcap'), path.join(d.sim, 'trace_client.pcap'));
      if (n > 0) result.details.push(`${n} server-capture datagrams read through the client capture`);
    }
    const ctx = {
      chainDerBytes: cert.der,
      clientQlogKeyPhase1: test.checks.includes('keyUpdate') ? qlogKeyPhase1Sent(path.join(d.clientLogs, 'qlog')) : 0,
      clientQlogPath: test.checks.includes('pathValidation') ? qlogPathFrames(path.join(d.clientLogs, 'qlog')) : undefined,
    };
    for (const name of test.checks) {
      const r = CHECKS[name]({ server: serverTrace, client: clientTrace }, ctx);
      if (!r.ok) {
        result.reason = `${name}: ${r.reason}`;
        return result;
      }
      result.details.push(r.detail);
    }
    if (test.measure === 'goodput') {
      const kbps = goodputKbps(clientTrace, files.reduce((n, f) => n + f.size, 0));
      if (kbps) {
        result.goodputKbps = kbps;
        result.details.push(`goodput ${kbps} kbit/s`);
      }
    }
    if (tcp) {
      // The TCP flow's throughput over the same window as QUIC's goodput (first to last
      // server 1-RTT packet in the client capture), from the sink's 100 ms samples.
      const w = transferWindow(clientTrace);
      const samples = cross.readSamples(path.join(d.sim, 'tcp-sink.txt'));
      const kbps = w ? cross.tcpKbps(samples, w.firstMs, w.lastMs) : undefined;
      if (!kbps) {
        result.reason = `crosstraffic: the TCP flow carried nothing during the QUIC transfer (${JSON.stringify(tcpFinal)})`;
        return result;
      }
      const s = tcpFinal?.sender ?? {};
      const wholeKbps = tcpFinal?.sink?.ms ? Math.round((8 * tcpFinal.sink.bytes) / tcpFinal.sink.ms) : undefined;
      const rstats = stats ? JSON.parse(stats).toClient : undefined;
      result.tcpKbps = kbps;
      result.tcp = {
        cc: s.cc, kbpsDuringTransfer: kbps, kbpsWhole: wholeKbps, bytes: tcpFinal?.sink?.bytes, srttMs: s.srttMs,
        totalRetrans: s.totalRetrans, relayQueueDrops: rstats && { tcp: rstats.tunnel?.queueDrops, all: rstats.queueDrops },
      };
      result.details.push(`TCP (${s.cc}) beside it ${kbps} kbit/s (${wholeKbps} kbit/s over its ${((tcpFinal?.sink?.ms ?? 0) / 1000).toFixed(1)} s; `
        + `last srtt ${s.srttMs} ms, ${s.totalRetrans} retransmissions; queue drops toward the client: ${rstats?.tunnel?.queueDrops} TCP, `
        + `${rstats ? rstats.queueDrops - (rstats.tunnel?.queueDrops ?? 0) : '?'} QUIC)`);
    }
    result.status = 'pass';
    result.reason = '';
    result.details.push(`client ran ${clientS.toFixed(1)} s`);
    return result;
  } catch (e) {
    result.reason = `harness error: ${e.message}`;
    return result;
  } finally {
    for (const p of procs) await stop(p, 'SIGKILL', 2000);
    if (ct) cross.tunnelDown(topo);
    result.durationS = Math.round((Date.now() - started) / 100) / 10;
    if (result.status !== 'fail' && !opts.keep) fs.rmSync(dir, { recursive: true, force: true });
    else result.kept = dir;
  }
}

// ---------------------------------------------------------------------------------------
// Reports

function markdown(report) {
  const tests = [...new Set(report.results.map((r) => r.test))];
  const clients = [...new Set(report.results.map((r) => r.client))];
  const cell = (r) => (r.status === 'pass' ? 'pass' : r.status === 'unsupported' ? 'unsupported' : '**FAIL**');
  const lines = [
    '# Interop matrix (docker-free harness)', '',
    `Run ${report.date}, commit ${report.commit}, ${report.durationS} s. Server: Harrier (interop/run_endpoint.sh, build ${report.server}).`,
    'Network: interop/relay.js between network namespaces (15 ms one way, 10 Mbit/s, 25-packet queue unless the test says otherwise).',
    `Clients: ${clients.map((c) => CLIENTS[c].label).join('; ')}.`, '',
    `| test | ${clients.join(' | ')} |`,
    `| --- | ${clients.map(() => '---').join(' | ')} |`,
  ];
  for (const t of tests) {
    lines.push(`| ${t} | ${clients.map((c) => {
      const r = report.results.find((x) => x.test === t && x.client === c);
      return r ? cell(r) : '';
    }).join(' | ')} |`);
  }
  lines.push('', '## Details', '');
  for (const r of report.results) {
    const why = r.status === 'pass' ? r.details.join('; ') : r.reason;
    lines.push(`- **${r.test} / ${r.client}**: ${r.status} (${r.durationS} s)${why ? `: ${why}` : ''}`);
  }
  lines.push('', `Totals: ${report.summary.pass} pass, ${report.summary.fail} fail, ${report.summary.unsupported} unsupported.`, '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  jsonMode = opts.json;
  if (opts.list) {
    for (const t of TESTS) {
      process.stdout.write(`${t.name}\tserver=${t.server} client=${t.client}${t.crossTraffic ? `\t+ TCP flow (${opts.tcpCc ?? t.crossTraffic.cc}) through the same link` : ''}\n`);
    }
    return 0;
  }
  if (process.getuid && process.getuid() !== 0) {
    log('the harness needs root (network namespaces, tcpdump)');
    return 2;
  }
  for (const tool of ['ip', 'tcpdump', 'tshark']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      log(`missing ${tool}: apt-get install -y iproute2 tcpdump tshark`);
      return 2;
    }
  }
  const dist = process.env.HARRIER_DIST ?? path.join(ROOT, 'dist', 'src');
  if (!fs.existsSync(path.join(dist, 'index.js'))) {
    log(`Harrier is not built (${dist}): run npm run build`);
    return 2;
  }

  const began = Date.now();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-interop-'));
  const topo = new Topology(`hi${process.pid}`);
  let aborted = false;
  const abort = (sig) => {
    if (aborted) return;
    aborted = true;
    log(`${sig}: cleaning up`);
    for (const c of children) signal(c, 'SIGKILL');
    topo.down();
    process.exit(130);
  };
  process.on('SIGINT', () => abort('SIGINT'));
  process.on('SIGTERM', () => abort('SIGTERM'));

  const unavailable = {};
  for (const c of opts.clientList) {
    const why = CLIENTS[c].prepare();
    if (why) unavailable[c] = why;
  }

  const results = [];
  try {
    topo.up();
    log(`harness: ${opts.testList.length} tests x ${opts.clientList.length} clients, work dir ${workDir}`);
    for (const c of opts.clientList) {
      for (const t of opts.testList) {
        let r;
        if (unavailable[c]) {
          r = { test: t.name, client: c, status: 'unsupported', reason: `client unavailable: ${unavailable[c]}`, details: [], durationS: 0 };
        } else {
          r = await runCase(topo, workDir, t, c, opts);
        }
        results.push(r);
        log(`${r.status.padEnd(11)} ${t.name} / ${c} (${r.durationS} s)${r.reason ? `: ${r.reason}` : ''}${r.status === 'fail' && r.kept ? ` [${r.kept}]` : ''}`);
      }
    }
  } finally {
    topo.down();
    if (!results.some((r) => r.kept)) fs.rmSync(workDir, { recursive: true, force: true });
  }

  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch { /* not a checkout */ }
  const summary = { pass: 0, fail: 0, unsupported: 0 };
  for (const r of results) summary[r.status]++;
  const report = { date: new Date().toISOString(), commit, server: dist, durationS: Math.round((Date.now() - began) / 1000), summary, results };
  if (opts.save) {
    fs.mkdirSync(opts.out, { recursive: true });
    const forFile = { ...report, results: results.map(({ dir, kept, ...r }) => r) };
    fs.writeFileSync(path.join(opts.out, 'latest.json'), `${JSON.stringify(forFile, null, 2)}\n`);
    fs.writeFileSync(path.join(opts.out, 'latest.md'), markdown(report));
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  log(`${summary.pass} passed, ${summary.fail} failed, ${summary.unsupported} unsupported (${report.durationS} s)`);
  return summary.fail > 0 ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => {
  log(`harness crashed: ${e.stack || e}`);
  process.exit(1);
});
