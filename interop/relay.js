#!/usr/bin/env node
'use strict';
/**
 * A user-space UDP relay that plays the interop runner's network simulator between the
 * client and server namespaces (the kernel here has no netem). It is a NAT: clients talk to
 * the relay's client-side address, and the relay talks to the server from its own
 * server-side address, one upstream socket per client 5-tuple.
 *
 * Per direction it models a point-to-point link as ns-3 does: a drop-tail queue of `queue`
 * packets in front of a `rateBps` serializer, then `delayMs` of propagation. Impairments,
 * applied as packets enter the link: random loss (`dropRate` %, never more than `burst`
 * consecutive drops), random corruption (one payload byte flipped, same rule), a drop list
 * (1-based packet numbers), periodic blackholes of both directions, and NAT rebinding
 * (a new upstream port, or address and port, every `rebind.everyMs`; as in the runner's
 * ns-3 model, packets the server sends to an earlier binding still reach the client).
 *
 * `tunnel` (crosstraffic): datagrams of a UDP tunnel (VXLAN, see lib/crosstraffic.js) between
 * fixed peers are forwarded through the same two links as QUIC, so a TCP flow carried in the
 * tunnel shares QUIC's queue, serializer and delay. Their serialization time counts the
 * inner IP packet only (payload less `tunnel.overhead`), and impairments apply to them too.
 *
 * Before listening it sends the runner's readiness probe to the server (1207-byte long header
 * packet, version 0x57414954, zero-length connection IDs, every 0.5 s) and waits for a
 * Version Negotiation answer; then it prints "ready" on stdout. On SIGTERM it prints one
 * JSON line of counters and exits.
 *
 * usage: node relay.js '<json config>'   (see DEFAULTS)
 */
const dgram = require('node:dgram');

const DEFAULTS = {
  /** Client-facing sockets. */
  listen: [{ host: '198.18.0.2', port: 443, type: 'udp4' }],
  /** The server, per address family. */
  server: { udp4: '198.18.1.100', udp6: 'fd00:cafe:cafe:100::100' },
  serverPort: 443,
  /** Relay addresses on the server side, per family; rebind-addr walks through them. */
  upstream: { udp4: ['198.18.1.2'], udp6: ['fd00:cafe:cafe:100::2'] },
  delayMs: 15,
  rateBps: 10_000_000,
  queue: 25,
  toServer: { dropRate: 0, corruptRate: 0, burst: 0, drops: [] },
  toClient: { dropRate: 0, corruptRate: 0, burst: 0, drops: [] },
  /** { onMs, offMs }: the link works onMs, then drops everything offMs, repeatedly. */
  blackhole: null,
  /** { firstMs, everyMs, addr }: NAT rebinding, timed from the first client packet. */
  rebind: null,
  /**
   * { port, overhead, clientSide, client, serverSide, server }: forward datagrams from
   * client:* to clientSide:port out of serverSide:port to server:port, and back.
   */
  tunnel: null,
  seed: 1,
  probe: true,
  probeTimeoutMs: 10_000,
  /** Long-header type bits of the probe's first byte (0 = Initial). */
  probeTypeBits: 0,
};

const cfg = { ...DEFAULTS, ...JSON.parse(process.argv[2] || '{}') };
cfg.toServer = { ...DEFAULTS.toServer, ...cfg.toServer };
cfg.toClient = { ...DEFAULTS.toClient, ...cfg.toClient };

/** mulberry32: a small seeded PRNG, so that a scenario drops the same packet numbers each run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e6;
let t0 = 0; // first client packet: blackhole and rebind clocks start here

class Link {
  constructor(name, imp, random) {
    this.name = name;
    this.imp = imp;
    this.random = random;
    this.drops = new Set(imp.drops || []);
    this.count = 0;
    this.consecutive = 0;
    this.busyUntil = 0;
    this.fifo = [];
    this.timer = null;
    this.stats = { packets: 0, bytes: 0, dropped: 0, corrupted: 0, queueDrops: 0, blackholed: 0, delivered: 0 };
    /** The tunnel's share of the counters (already included in the totals above). */
    if (cfg.tunnel) this.stats.tunnel = { packets: 0, bytes: 0, dropped: 0, queueDrops: 0, delivered: 0 };
  }

  /** A random event at `ratePct`, but never more than `burst` in a row (when burst > 0). */
  hit(ratePct) {
    if (ratePct <= 0) return false;
    if (this.imp.burst > 0 && this.consecutive >= this.imp.burst) return false;
    return this.random() * 100 < ratePct;
  }

  push(data, headerBytes, deliver, tunnel = false) {
    const t = now();
    const ts = tunnel ? this.stats.tunnel : null;
    this.count++;
    this.stats.packets++;
    this.stats.bytes += data.length;
    if (ts) {
      ts.packets++;
      ts.bytes += data.length;
    }
    if (this.drops.has(this.count)) {
      this.stats.dropped++;
      if (ts) ts.dropped++;
      return;
    }
    if (cfg.blackhole && t0 > 0) {
      const period = cfg.blackhole.onMs + cfg.blackhole.offMs;
      if ((t - t0) % period >= cfg.blackhole.onMs) {
        this.stats.blackholed++;
        return;
      }
    }
    if (this.hit(this.imp.dropRate)) {
      this.consecutive++;
      this.stats.dropped++;
      if (ts) ts.dropped++;
      return;
    }
    if (this.hit(this.imp.corruptRate)) {
      this.consecutive++;
      this.stats.corrupted++;
      data = Buffer.from(data);
      const i = Math.floor(this.random() * data.length);
      data[i] ^= 1 + Math.floor(this.random() * 255);
    } else {
      this.consecutive = 0;
    }
    // Drop-tail queue: packets waiting for the serializer (transmission not yet started).
    let waiting = 0;
    for (let i = this.fifo.length - 1; i >= 0 && this.fifo[i].txStart > t; i--) waiting++;
    if (waiting >= cfg.queue) {
      this.stats.queueDrops++;
      if (ts) ts.queueDrops++;
      return;
    }
    const txStart = Math.max(t, this.busyUntil);
    const txEnd = txStart + ((data.length + headerBytes) * 8 * 1000) / cfg.rateBps;
    this.busyUntil = txEnd;
    this.fifo.push({ at: txEnd + cfg.delayMs, txStart, data, deliver, ts });
    this.arm();
  }

  arm() {
    if (this.timer || this.fifo.length === 0) return;
    const wait = Math.max(0, this.fifo[0].at - now());
    this.timer = setTimeout(() => {
      this.timer = null;
      const t = now();
      while (this.fifo.length > 0 && this.fifo[0].at <= t + 0.5) {
        const p = this.fifo.shift();
        this.stats.delivered++;
        if (p.ts) p.ts.delivered++;
        p.deliver(p.data);
      }
      this.arm();
    }, wait);
  }
}

const rnd = prng(cfg.seed);
const toServer = new Link('to-server', cfg.toServer, rnd);
const toClient = new Link('to-client', cfg.toClient, rnd);
/** client "addr|port|type" -> { socket, type, client } */
const flows = new Map();
let rebinds = 0;
let addrIndex = 0;

function openUpstream(flow) {
  const type = flow.type;
  const pool = cfg.upstream[type];
  const address = pool[addrIndex % pool.length];
  const s = dgram.createSocket({ type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  s.on('error', (e) => process.stderr.write(`relay upstream ${address}: ${e.message}\n`));
  s.on('message', (msg) => {
    // As the runner's simulator: whatever the server sends reaches the client, also when
    // addressed to an earlier binding (ns-3's rebind model rewrites every server packet).
    toClient.push(msg, type === 'udp6' ? 48 : 28, (d) => flow.listener.send(d, flow.client.port, flow.client.address));
  });
  s.bind({ address, port: 0 });
  return s;
}

function rebind() {
  rebinds++;
  if (cfg.rebind.addr) addrIndex++;
  for (const flow of flows.values()) {
    flow.old.push(flow.socket); // still delivers to the client; closed at exit
    flow.socket = openUpstream(flow);
  }
  process.stderr.write(`relay: rebinding #${rebinds}${cfg.rebind.addr ? ' (address and port)' : ' (port)'}\n`);
}

function startClock() {
  if (t0 > 0) return;
  t0 = now();
  if (cfg.rebind) {
    setTimeout(() => {
      rebind();
      setInterval(rebind, cfg.rebind.everyMs).unref();
    }, cfg.rebind.firstMs).unref();
  }
}

/** The crosstraffic tunnel: two fixed-peer sockets joined through the links. */
function listenTunnel(done) {
  const tn = cfg.tunnel;
  const open = (address) => {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    s.on('error', (e) => {
      process.stderr.write(`relay tunnel ${address}:${tn.port}: ${e.message}\n`);
      process.exit(2);
    });
    return s;
  };
  const clientSide = open(tn.clientSide);
  const serverSide = open(tn.serverSide);
  // Headers counted on the wire: the inner IP packet only (outer IP/UDP and the tunnel's
  // own header are an artefact of carrying it here).
  const hdr = -tn.overhead;
  clientSide.on('message', (msg, rinfo) => {
    if (rinfo.address !== tn.client) return;
    toServer.push(msg, hdr, (d) => serverSide.send(d, tn.port, tn.server), true);
  });
  serverSide.on('message', (msg, rinfo) => {
    if (rinfo.address !== tn.server) return;
    toClient.push(msg, hdr, (d) => clientSide.send(d, tn.port, tn.client), true);
  });
  let n = 2;
  clientSide.bind({ address: tn.clientSide, port: tn.port }, () => --n === 0 && done());
  serverSide.bind({ address: tn.serverSide, port: tn.port }, () => --n === 0 && done());
}

function listen() {
  let pending = cfg.listen.length + (cfg.tunnel ? 1 : 0);
  if (cfg.tunnel) {
    listenTunnel(() => {
      if (--pending === 0) process.stdout.write('ready\n');
    });
  }
  for (const l of cfg.listen) {
    const sock = dgram.createSocket({ type: l.type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    sock.on('error', (e) => {
      process.stderr.write(`relay listen ${l.host}: ${e.message}\n`);
      process.exit(2);
    });
    sock.on('message', (msg, rinfo) => {
      startClock();
      const key = `${rinfo.address}|${rinfo.port}|${l.type}`;
      let flow = flows.get(key);
      if (!flow) {
        flow = { type: l.type, listener: sock, client: { address: rinfo.address, port: rinfo.port }, socket: null, old: [] };
        flow.socket = openUpstream(flow);
        flows.set(key, flow);
      }
      toServer.push(msg, l.type === 'udp6' ? 48 : 28, (d) => flow.socket.send(d, cfg.serverPort, cfg.server[l.type]));
    });
    sock.bind({ address: l.host, port: l.port }, () => {
      if (--pending === 0) process.stdout.write('ready\n');
    });
  }
}

/** The simulator's readiness probe (quic-network-simulator's wait-for-it-quic). */
function probe() {
  return new Promise((resolve, reject) => {
    const type = cfg.listen[0].type;
    const s = dgram.createSocket(type);
    const pkt = Buffer.alloc(1207);
    // Long header, Initial type bits (0xc0 like an Initial; an unknown version's other
    // bits mean nothing, RFC 8999, but some servers parse them: see interop/README.md).
    pkt[0] = 0xc0 | (cfg.probeTypeBits << 4);
    pkt.writeUInt32BE(0x57414954, 1);
    pkt[5] = 0; // DCID length
    pkt[6] = 0; // SCID length
    let timer;
    const deadline = setTimeout(() => {
      clearInterval(timer);
      s.close();
      reject(new Error(`no Version Negotiation answer within ${cfg.probeTimeoutMs} ms`));
    }, cfg.probeTimeoutMs);
    s.on('message', (msg) => {
      if (msg.length >= 5 && (msg[0] & 0x80) && msg.readUInt32BE(1) === 0) {
        clearTimeout(deadline);
        clearInterval(timer);
        s.close();
        resolve();
      }
    });
    s.bind({ address: cfg.upstream[type][0], port: 0 }, () => {
      const send = () => s.send(pkt, cfg.serverPort, cfg.server[type]);
      send();
      timer = setInterval(send, 500);
    });
  });
}

function report() {
  process.stdout.write(`${JSON.stringify({ toServer: toServer.stats, toClient: toClient.stats, flows: flows.size, rebinds })}\n`);
}
process.on('SIGTERM', () => {
  report();
  process.exit(0);
});
process.on('SIGINT', () => {
  report();
  process.exit(0);
});

(async () => {
  if (cfg.probe) {
    try {
      await probe();
    } catch (e) {
      process.stdout.write(`probe-failed ${e.message}\n`);
      process.exit(3);
    }
  }
  listen();
})();
