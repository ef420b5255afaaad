'use strict';
/**
 * The crosstraffic test's TCP flow through the simulator.
 *
 * The runner puts an iperf pair beside the QUIC endpoints, and ns-3 carries both flows over
 * the same 10 Mbit/s link (25-packet drop-tail queue, 15 ms each way). Our simulator is a
 * user-space UDP relay, and this kernel has no netem to delay a routed TCP flow. So the TCP
 * flow is carried to the relay inside UDP: a VXLAN device in the client namespace and one in
 * the server namespace (the only UDP tunnel this kernel has), each pointed at the relay.
 * The relay forwards the tunnel's datagrams through the very Link objects QUIC uses (same
 * queue, same serializer, same delay, counting only the inner IP packet's bytes), so the
 * TCP flow and the QUIC connection compete for one bottleneck, as in ns-3.
 *
 *   client ns  hv0 198.19.0.100 (vxlan 42, remote relay 198.18.0.2:4789)
 *   sim ns     relay: 198.18.0.2:4789 <-> 198.18.1.2:4789 through its links
 *   server ns  hv0 198.19.0.200 (vxlan 42, remote relay 198.18.1.2:4789)
 *
 * Nothing is routed and no sysctl changes: the devices are removed after the case (and go
 * with the namespaces on SIGINT/SIGTERM). The sender and sink are interop/lib/tcpflow.py.
 */
const fs = require('node:fs');
const path = require('node:path');
const { ADDR } = require('./netns');

const TUNNEL = {
  port: 4789,
  vni: 42,
  dev: 'hv0',
  client4: '198.19.0.100',
  server4: '198.19.0.200',
  clientMac: '02:00:c6:13:00:64',
  serverMac: '02:00:c6:13:00:c8',
  /** VXLAN header (8) + inner Ethernet header (14) in each datagram's payload. */
  overhead: 22,
  tcpPort: 5001,
};

/** Creates the two VXLAN ends (throws after removing what it made). */
function tunnelUp(topo) {
  const ends = [
    [topo.client, ADDR.client4, ADDR.simClient4, TUNNEL.client4, TUNNEL.clientMac, TUNNEL.server4, TUNNEL.serverMac, 'hc0'],
    [topo.server, ADDR.server4, ADDR.simServer4[0], TUNNEL.server4, TUNNEL.serverMac, TUNNEL.client4, TUNNEL.clientMac, 'hs0'],
  ];
  try {
    for (const [ns, local, remote, addr, mac, peer, peerMac, lower] of ends) {
      topo.exec(ns, ['ip', 'link', 'add', TUNNEL.dev, 'address', mac, 'type', 'vxlan', 'id', String(TUNNEL.vni),
        'local', local, 'remote', remote, 'dstport', String(TUNNEL.port), 'dev', lower, 'nolearning']);
      // IPv4 only: no IPv6 link-local address, router or MLD chatter through the tunnel.
      topo.exec(ns, ['ip', 'link', 'set', TUNNEL.dev, 'addrgenmode', 'none']);
      topo.exec(ns, ['ip', 'addr', 'add', `${addr}/24`, 'dev', TUNNEL.dev]);
      // Static neighbour: no ARP through the tunnel.
      topo.exec(ns, ['ip', 'neigh', 'replace', peer, 'lladdr', peerMac, 'dev', TUNNEL.dev, 'nud', 'permanent']);
      // Inner checksums computed by the stack, not left to an offload nothing performs once
      // the datagram has crossed the user-space relay (see tcpflow.py txcsum-off).
      topo.exec(ns, ['python3', path.join(__dirname, 'tcpflow.py'), 'txcsum-off', TUNNEL.dev]);
      topo.exec(ns, ['ip', 'link', 'set', TUNNEL.dev, 'up']);
    }
  } catch (e) {
    tunnelDown(topo);
    throw e;
  }
}

function tunnelDown(topo) {
  for (const ns of [topo.client, topo.server]) {
    try {
      topo.exec(ns, ['ip', 'link', 'del', TUNNEL.dev]);
    } catch {
      // not there
    }
  }
}

/** The relay's config for the tunnel: fixed peers on both sides, no NAT. */
function relayTunnel() {
  return {
    port: TUNNEL.port,
    overhead: TUNNEL.overhead,
    clientSide: ADDR.simClient4, client: ADDR.client4,
    serverSide: ADDR.simServer4[0], server: ADDR.server4,
  };
}

/** argv of the sink (client namespace) and the sender (server namespace). */
function sinkArgv() {
  return ['python3', path.join(__dirname, 'tcpflow.py'), 'sink', TUNNEL.client4, String(TUNNEL.tcpPort), '0.1'];
}
function senderArgv(cc) {
  return ['python3', path.join(__dirname, 'tcpflow.py'), 'send', TUNNEL.client4, String(TUNNEL.tcpPort), cc];
}

/** The sink's samples: [[epoch ms, bytes so far], ...]. */
function readSamples(file) {
  const out = [];
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+(?:\.\d+)?) (\d+)$/.exec(line);
    if (m) out.push([Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** Bytes received by `ms` (epoch), interpolated between samples. */
function bytesAt(samples, ms) {
  if (samples.length === 0) return 0;
  if (ms <= samples[0][0]) return samples[0][1];
  for (let i = 1; i < samples.length; i++) {
    const [t1, b1] = samples[i];
    if (ms <= t1) {
      const [t0, b0] = samples[i - 1];
      return b0 + ((b1 - b0) * (ms - t0)) / (t1 - t0 || 1);
    }
  }
  return samples[samples.length - 1][1];
}

/** TCP throughput in kbit/s between two epoch times (ms). */
function tcpKbps(samples, fromMs, toMs) {
  if (!(toMs > fromMs)) return undefined;
  return Math.round((8 * (bytesAt(samples, toMs) - bytesAt(samples, fromMs))) / (toMs - fromMs));
}

module.exports = { TUNNEL, tunnelUp, tunnelDown, relayTunnel, sinkArgv, senderArgv, readSamples, tcpKbps };
