'use strict';
/**
 * Three network namespaces, as the runner's three containers: client, sim (the relay) and
 * server, joined by two veth pairs. Nothing is routed: the client talks to the relay's
 * addresses, the relay to the server. Addresses are from the benchmarking range
 * (198.18.0.0/15, RFC 2544) and unique-local IPv6, and exist only inside these namespaces.
 *
 *   client  hc0 198.18.0.100 fd00:cafe:cafe:0::100 --- hm0 198.18.0.2 fd00:cafe:cafe:0::2  sim
 *   sim     hm1 198.18.1.2-.6 fd00:cafe:cafe:100::2-6 --- hs0 198.18.1.100 fd00:cafe:cafe:100::100  server
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ADDR = {
  client4: '198.18.0.100', client6: 'fd00:cafe:cafe:0::100',
  simClient4: '198.18.0.2', simClient6: 'fd00:cafe:cafe:0::2',
  simServer4: ['198.18.1.2', '198.18.1.3', '198.18.1.4', '198.18.1.5', '198.18.1.6'],
  simServer6: ['fd00:cafe:cafe:100::2', 'fd00:cafe:cafe:100::3', 'fd00:cafe:cafe:100::4', 'fd00:cafe:cafe:100::5', 'fd00:cafe:cafe:100::6'],
  server4: '198.18.1.100', server6: 'fd00:cafe:cafe:100::100',
};

function ip(args, opts = {}) {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }).toString();
}

class Topology {
  constructor(tag) {
    this.tag = tag;
    this.client = `${tag}-c`;
    this.sim = `${tag}-m`;
    this.server = `${tag}-s`;
    this.created = [];
    this.hostsDir = `/etc/netns/${this.client}`;
    this.etcNetnsExisted = fs.existsSync('/etc/netns');
  }

  /** Creates the namespaces and links; throws (after cleaning up) if anything fails. */
  up() {
    try {
      for (const ns of [this.client, this.sim, this.server]) {
        ip(['netns', 'add', ns]);
        this.created.push(ns);
        this.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
        // No DAD delay, no router solicitations: addresses are usable at once.
        this.exec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
        // Ephemeral ports from the dynamic range only (no registered service a capture
        // dissector could mistake them for).
        this.exec(ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=49152 65000']);
      }
      ip(['link', 'add', 'hc0', 'netns', this.client, 'type', 'veth', 'peer', 'name', 'hm0', 'netns', this.sim]);
      ip(['link', 'add', 'hs0', 'netns', this.server, 'type', 'veth', 'peer', 'name', 'hm1', 'netns', this.sim]);
      const addr = (ns, dev, a) => this.exec(ns, ['ip', 'addr', 'add', a, 'dev', dev, 'nodad']);
      addr(this.client, 'hc0', `${ADDR.client4}/24`);
      addr(this.client, 'hc0', `${ADDR.client6}/64`);
      addr(this.sim, 'hm0', `${ADDR.simClient4}/24`);
      addr(this.sim, 'hm0', `${ADDR.simClient6}/64`);
      for (const a of ADDR.simServer4) addr(this.sim, 'hm1', `${a}/24`);
      for (const a of ADDR.simServer6) addr(this.sim, 'hm1', `${a}/64`);
      addr(this.server, 'hs0', `${ADDR.server4}/24`);
      addr(this.server, 'hs0', `${ADDR.server6}/64`);
      for (const [ns, dev] of [[this.client, 'hc0'], [this.sim, 'hm0'], [this.sim, 'hm1'], [this.server, 'hs0']]) {
        // gso_max_segs 1: UDP GSO batches are split before the capture point, so captures
        // show the datagrams as they would travel on a real link.
        this.exec(ns, ['ip', 'link', 'set', dev, 'gso_max_segs', '1']);
        this.exec(ns, ['ip', 'link', 'set', dev, 'up']);
      }
      // The client resolves the runner's host names (ip netns exec bind-mounts this file).
      fs.mkdirSync(this.hostsDir, { recursive: true });
      fs.writeFileSync(path.join(this.hostsDir, 'hosts'),
        `127.0.0.1 localhost\n::1 localhost\n${ADDR.simClient4} server4 server46 server\n${ADDR.simClient6} server6\n`);
    } catch (e) {
      this.down();
      throw e;
    }
    return this;
  }

  exec(ns, argv, opts = {}) {
    return execFileSync('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...opts }).toString();
  }

  /** argv prefix that runs a command inside a namespace. */
  prefix(ns) {
    return ['ip', 'netns', 'exec', ns];
  }

  down() {
    for (const ns of this.created.splice(0)) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    fs.rmSync(this.hostsDir, { recursive: true, force: true });
    if (!this.etcNetnsExisted) {
      try {
        fs.rmdirSync('/etc/netns'); // only when empty
      } catch {
        // not empty or not there
      }
    }
  }
}

module.exports = { Topology, ADDR };
