'use strict';
/**
 * Reads packet captures with tshark (decrypting with the key log) and judges them as the
 * runner's testcases_quic.py does. tshark prints one line per UDP datagram; the QUIC packets
 * coalesced in it are rebuilt from the aggregated fields (header forms, long header types,
 * connection IDs, lengths).
 */
const { execFile } = require('node:child_process');
const fs = require('node:fs');

const FIELDS = [
  'frame.number', 'frame.time_relative', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'udp.srcport', 'udp.dstport', 'udp.length',
  'quic.header_form', 'quic.long.packet_type', 'quic.version', 'quic.scid', 'quic.dcid', 'quic.key_phase', 'quic.packet_length',
  'quic.token_length', 'quic.token', 'quic.retry_token', 'quic.frame_type', 'tls.handshake.type', 'tls.handshake.ciphersuite',
  'quic.crypto.offset', 'quic.crypto.length', 'quic.path_challenge.data', 'quic.path_response.data',
  'tls.quic.parameter.initial_max_streams_bidi', 'ip.dsfield.ecn', 'quic.ack.ect0_count', 'quic.ack.ect1_count',
  'frame.time_epoch',
];

/** tshark's long header packet types (QUIC v1). */
const INITIAL = 0;
const ZERO_RTT = 1;
const HANDSHAKE = 2;
const RETRY = 3;

const list = (s) => (s === '' || s === undefined ? [] : s.split('|'));
const num = (s) => (s.startsWith('0x') ? parseInt(s, 16) : Number(s));

/**
 * Reads a capture. `serverPort` tells the direction. Resolves to an array of datagrams:
 * { n, t (s since the capture's first frame), epoch (s), fromServer, src, dst, sport, dport, v6, udpLen, packets: [{ long, type, version, scid, dcid, length }],
 *   keyPhase, frameTypes, hsTypes, ciphers, tokenLengths, tokens, retryTokens, cryptoEnds,
 *   challenges, responses, maxStreamsBidi, ecn, ackEcn }
 */
function readTrace(pcap, keylog, serverPort = 443) {
  return new Promise((resolve, reject) => {
    if (!fs.existsSync(pcap)) return reject(new Error(`no capture ${pcap}`));
    // Decode port 443 as QUIC whatever the other port is (tshark otherwise lets some
    // registered ports, e.g. PROFINET's 34962-34964, claim the datagrams).
    const args = ['-r', pcap, '-n', '-d', `udp.port==${serverPort},quic`, '-Y', 'quic', '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=|'];
    if (keylog) args.push('-o', `tls.keylog_file:${keylog}`);
    for (const f of FIELDS) args.push('-e', f);
    execFile('tshark', args, { maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`tshark failed: ${stderr || err.message}`));
      const frames = [];
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        const c = line.split('\t');
        const get = (name) => c[FIELDS.indexOf(name)] ?? '';
        const forms = list(get('quic.header_form'));
        const types = list(get('quic.long.packet_type')).map(Number);
        const versions = list(get('quic.version'));
        const scids = list(get('quic.scid'));
        const dcids = list(get('quic.dcid'));
        const lengths = list(get('quic.packet_length')).map(Number);
        const packets = [];
        let li = 0;
        forms.forEach((f, i) => {
          const long = f === '1' || f === 'True';
          const p = { long, length: lengths[i] ?? 0, dcid: dcids[i] };
          if (long) {
            p.type = types[li];
            p.version = versions[li] !== undefined ? num(versions[li]) : undefined;
            p.scid = scids[li];
            li++;
          }
          packets.push(p);
        });
        const sport = Number(get('udp.srcport'));
        const v6 = get('ipv6.src') !== '';
        frames.push({
          n: Number(get('frame.number')),
          t: Number(get('frame.time_relative')),
          epoch: Number(get('frame.time_epoch')),
          fromServer: sport === serverPort,
          src: v6 ? get('ipv6.src') : get('ip.src'),
          dst: v6 ? get('ipv6.dst') : get('ip.dst'),
          sport,
          dport: Number(get('udp.dstport')),
          v6,
          udpLen: Number(get('udp.length')),
          packets,
          keyPhase: list(get('quic.key_phase')).map((k) => (k === '1' || k === 'True' ? 1 : 0)),
          frameTypes: list(get('quic.frame_type')).map(Number),
          hsTypes: list(get('tls.handshake.type')).map(Number),
          ciphers: list(get('tls.handshake.ciphersuite')).map(num),
          tokenLengths: list(get('quic.token_length')).map(Number),
          tokens: list(get('quic.token')),
          retryTokens: list(get('quic.retry_token')),
          cryptoEnds: (() => {
            const o = list(get('quic.crypto.offset')).map(Number);
            const l = list(get('quic.crypto.length')).map(Number);
            return o.map((x, i) => x + (l[i] ?? 0));
          })(),
          challenges: list(get('quic.path_challenge.data')),
          responses: list(get('quic.path_response.data')),
          maxStreamsBidi: list(get('tls.quic.parameter.initial_max_streams_bidi')).map(Number),
          ecn: Number(get('ip.dsfield.ecn') || 0),
          ackEcn: get('quic.ack.ect0_count') !== '' || get('quic.ack.ect1_count') !== '',
        });
      }
      resolve(frames);
    });
  });
}

const hasType = (f, type) => f.packets.some((p) => p.long && p.type === type);
const fail = (reason) => ({ ok: false, reason });
const pass = (detail) => ({ ok: true, detail });

/** Distinct SCIDs of the server's Initial packets: one per handshake. */
function handshakeCids(server) {
  const cids = [];
  for (const f of server) {
    if (!f.fromServer) continue;
    for (const p of f.packets) if (p.long && p.type === INITIAL && p.scid && !cids.includes(p.scid)) cids.push(p.scid);
  }
  return cids;
}

function versions(server) {
  const v = new Set();
  for (const f of server) if (f.fromServer) for (const p of f.packets) if (p.long && p.type === INITIAL && p.version !== undefined) v.add(p.version);
  return [...v];
}

const handshakes = (want) => ({ server }) => {
  const n = handshakeCids(server).length;
  const vs = versions(server);
  if (vs.length !== 1 || vs[0] !== 1) return fail(`server Initial versions ${JSON.stringify(vs.map((x) => `0x${x.toString(16)}`))}, expected only 0x1`);
  return n === want ? pass(`${n} handshake${n === 1 ? '' : 's'}`) : fail(`expected ${want} handshake${want === 1 ? '' : 's'}, saw ${n}`);
};

const CHECKS = {
  handshakes1: handshakes(1),
  handshakes2: handshakes(2),
  handshakes50: handshakes(50),

  noRetry({ client }) {
    const n = client.filter((f) => f.fromServer && hasType(f, RETRY)).length;
    return n === 0 ? pass('no Retry') : fail(`${n} Retry packets, none expected`);
  },

  retryToken({ client }) {
    const tokens = new Set();
    for (const f of client) if (f.fromServer && hasType(f, RETRY)) for (const t of f.retryTokens) tokens.add(t.replace(/:/g, ''));
    if (tokens.size === 0) return fail('no Retry packet');
    for (const f of client) {
      if (f.fromServer) continue;
      for (const t of f.tokens) if (tokens.has(t.replace(/:/g, ''))) return pass(`Retry sent, its token (${t.length / 2} bytes) came back in an Initial`);
    }
    return fail('no client Initial carried the Retry token');
  },

  clientHellos2({ client }) {
    // A client property the runner checks too: the long RTT makes the client retransmit
    // its Initial before the server's first flight arrives.
    const firstServer = client.find((f) => f.fromServer);
    const before = client.filter((f) => !f.fromServer && hasType(f, INITIAL) && (!firstServer || f.n < firstServer.n)).length;
    return before >= 2 ? pass(`${before} client Initials before the server's first flight`) : fail(`expected at least 2 ClientHellos, saw ${before}`);
  },

  chachaOnly({ client }) {
    const offered = new Set();
    for (const f of client) if (!f.fromServer && f.hsTypes.includes(1)) for (const c of f.ciphers) offered.add(c);
    const list = [...offered].map((c) => `0x${c.toString(16)}`);
    return offered.size === 1 && offered.has(0x1303) ? pass('only TLS_CHACHA20_POLY1305_SHA256 offered') : fail(`client offered ${list.join(',') || 'nothing visible'}`);
  },

  streamLimit1000({ client }) {
    const limits = client.filter((f) => f.fromServer).flatMap((f) => f.maxStreamsBidi);
    if (limits.length === 0) return fail("couldn't read the server's initial_max_streams_bidi");
    const max = Math.max(...limits);
    return max <= 1000 ? pass(`initial_max_streams_bidi ${max}`) : fail(`initial_max_streams_bidi ${max} > 1000`);
  },

  resumedWithoutCertificate({ client }) {
    const cids = [];
    const cert = new Map();
    for (const f of client) {
      if (!f.fromServer) continue;
      for (const p of f.packets) {
        if (!(p.long && p.type === HANDSHAKE)) continue;
        if (!cids.includes(p.scid)) cids.push(p.scid);
        if (f.hsTypes.includes(11)) cert.set(p.scid, true);
      }
    }
    if (cids.length < 2) return fail(`saw Handshake packets of ${cids.length} connection(s)`);
    if (!cert.get(cids[0])) return fail('no Certificate in the first handshake (keys missing?)');
    if (cert.get(cids[cids.length - 1])) return fail('Certificate sent in the second handshake: not resumed');
    return pass('Certificate only in the first handshake');
  },

  zeroRtt({ client, server }) {
    const scidLen = (handshakeCids(server)[0] ?? '').length / 2 || 16;
    let zero = 0;
    let oneRtt = 0;
    for (const f of client) {
      if (f.fromServer) continue;
      for (const p of f.packets) {
        if (p.long && p.type === ZERO_RTT) zero += p.length;
        if (!p.long) oneRtt += Math.max(0, p.length - (1 + scidLen + 2 + 16));
      }
    }
    if (zero === 0) return fail('client sent no 0-RTT data');
    // The runner: 1-RTT payload from the client at most half the 40 x 250-byte file names.
    if (oneRtt > 0.5 * 250 * 40) return fail(`client sent ${oneRtt} bytes in 1-RTT packets (requests not in 0-RTT?)`);
    return pass(`${zero} bytes of 0-RTT, ${oneRtt} bytes of client 1-RTT payload`);
  },

  keyUpdate({ client, server }, ctx) {
    const c = [0, 0];
    const s = [0, 0];
    for (const f of client) if (!f.fromServer) for (const k of f.keyPhase) c[k]++;
    for (const f of server) if (f.fromServer) for (const k of f.keyPhase) s[k]++;
    let detail = `client key phases 0/1: ${c[0]}/${c[1]}, server: ${s[0]}/${s[1]}`;
    if (c[1] === 0 && ctx.clientQlogKeyPhase1 > 0) {
      // tshark 4.0 loses a client that uses zero-length connection IDs once it moves to a
      // connection ID from NEW_CONNECTION_ID: its packets stay encrypted in the captures.
      // The client's own qlog still records the key phase of every packet it sent.
      c[1] = ctx.clientQlogKeyPhase1;
      detail += ` (client phase 1 from its qlog: ${c[1]} packets)`;
    }
    return c[1] > 0 && s[1] > 0 ? pass(detail) : fail(`expected key phase 1 from both: ${detail}`);
  },

  ecn({ client, server }) {
    const marked = (frames, fromServer) => frames.filter((f) => f.fromServer === fromServer && (f.ecn === 1 || f.ecn === 2)).length;
    const acks = (frames, fromServer) => frames.some((f) => f.fromServer === fromServer && f.ackEcn);
    const ok = marked(client, false) > 0 && marked(server, true) > 0 && acks(server, true) && acks(client, false);
    return ok ? pass('ECT marks and ACK-ECN both ways') : fail('missing ECT marks or ACK-ECN counts');
  },

  amplification({ server }, ctx) {
    const cryptoMax = Math.max(0, ...server.filter((f) => f.fromServer && hasType(f, HANDSHAKE)).flatMap((f) => f.cryptoEnds));
    const want = Math.floor(ctx.chainDerBytes * 0.9);
    if (cryptoMax < want) return fail(`server sent ${cryptoMax} bytes of Handshake CRYPTO, the 9-certificate chain is ${ctx.chainDerBytes}`);
    const serverCids = new Set(handshakeCids(server));
    let allowed = 0;
    let tolerance = 0;
    let clientSent = 0;
    let serverSent = 0;
    for (const f of server) {
      const first = f.packets[0];
      if (first && first.long && first.version === 0) return fail('unexpected Version Negotiation packet');
      const size = f.udpLen - 8;
      if (!f.fromServer) {
        if (hasType(f, HANDSHAKE)) return pass(`before address validation: client ${clientSent} bytes, server ${serverSent} bytes, CRYPTO ${cryptoMax}`);
        if (first && first.long && first.type === INITIAL) {
          if (serverCids.has(first.dcid)) return pass(`address validated by the server's CID; client ${clientSent}, server ${serverSent} bytes`);
          clientSent += size;
          allowed += 3 * size;
          tolerance += 4 * size;
        }
      } else {
        serverSent += size;
        if (size >= tolerance) return fail(`server sent ${serverSent} bytes against ${clientSent} from the client before validation (over 4x)`);
        allowed -= size;
        tolerance -= size;
      }
    }
    return fail('the client never sent a Handshake packet');
  },

  ipv6Only({ server }) {
    const v4 = server.filter((f) => f.fromServer && !f.v6).length;
    return v4 === 0 ? pass('server sent IPv6 only') : fail(`server sent ${v4} IPv4 datagrams`);
  },

  version2({ server }) {
    const vs = versions(server);
    return vs.includes(0x6b3343cf) ? pass('QUIC v2') : fail(`versions ${vs.map((v) => v.toString(16))}`);
  },

  addressChanged({ server }) {
    const addrs = new Set(server.filter((f) => f.fromServer).map((f) => f.dst));
    return addrs.size > 1 ? pass(`server saw client addresses ${[...addrs].join(', ')}`) : fail('server saw a single client address');
  },

  pathValidation({ server }, ctx = {}) {
    const out = server.filter((f) => f.fromServer);
    const ports = new Set(out.map((f) => `${f.dst}:${f.dport}`));
    if (ports.size <= 1) return fail('server saw a single client address and port: no rebinding happened');
    let last;
    let migrations = 0;
    let undecrypted = 0;
    for (const f of out) {
      const cur = `${f.dst}:${f.dport}`;
      if (last === undefined) {
        last = cur;
        continue;
      }
      if (cur !== last) {
        last = cur;
        migrations++;
        if (f.frameTypes.length === 0) undecrypted++;
        else if (f.challenges.length === 0) return fail(`first server packet to ${cur} (frame ${f.n}) has no PATH_CHALLENGE`);
      }
    }
    if (undecrypted > 0) {
      // tshark lost the connection (zero-length client CIDs and a new DCID): the client's
      // qlog says whether it received the challenges and answered them.
      const q = ctx.clientQlogPath ?? { challenges: 0, responses: 0 };
      if (q.challenges >= migrations && q.responses >= migrations) {
        return pass(`${migrations} path changes; ${undecrypted} not decryptable in the captures, the client's qlog shows ${q.challenges} PATH_CHALLENGEs received and ${q.responses} PATH_RESPONSEs sent`);
      }
      return fail(`${undecrypted} of ${migrations} path changes not decryptable in the captures, and the client's qlog shows ${q.challenges} PATH_CHALLENGEs received, ${q.responses} responses sent`);
    }
    const challenges = new Set(out.flatMap((f) => f.challenges));
    if (challenges.size < migrations) return fail(`${migrations} migrations but ${challenges.size} distinct PATH_CHALLENGEs`);
    const responses = new Set(server.filter((f) => !f.fromServer).flatMap((f) => f.responses));
    const unanswered = [...challenges].filter((c) => !responses.has(c));
    if (unanswered.length > 0) return fail(`${unanswered.length} PATH_CHALLENGE(s) without PATH_RESPONSE`);
    return pass(`${migrations} path changes, each validated (${challenges.size} challenges answered)`);
  },
};

/** Goodput as the runner measures it: file bits over first-to-last server 1-RTT packet. */
function goodputKbps(client, bytes) {
  const times = client.filter((f) => f.fromServer && f.packets.some((p) => !p.long)).map((f) => f.t);
  if (times.length < 2) return undefined;
  const ms = (times[times.length - 1] - times[0]) * 1000;
  return ms > 0 ? Math.round((8 * bytes) / ms) : undefined;
}

/** Wall-clock window (epoch ms) from the first to the last server 1-RTT packet, as goodput's. */
function transferWindow(client) {
  const times = client.filter((f) => f.fromServer && f.packets.some((p) => !p.long)).map((f) => f.epoch * 1000);
  if (times.length < 2) return undefined;
  return { firstMs: times[0], lastMs: times[times.length - 1] };
}

/** 1-RTT packets a client's qlog (JSON-SEQ or JSON) records as sent with the key phase bit set. */
function qlogKeyPhase1Sent(dir) {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const name of fs.readdirSync(dir)) {
    const text = fs.readFileSync(require('node:path').join(dir, name), 'utf8');
    for (const line of text.split(/\n|\x1e/)) {
      if (line.includes('packet_sent') && /"key_phase(_bit)?":\s*(true|1)\b/.test(line)) n++;
    }
  }
  return n;
}

/** PATH_CHALLENGE frames a client's qlog records as received, PATH_RESPONSE as sent. */
function qlogPathFrames(dir) {
  const r = { challenges: 0, responses: 0 };
  if (!fs.existsSync(dir)) return r;
  for (const name of fs.readdirSync(dir)) {
    const text = fs.readFileSync(require('node:path').join(dir, name), 'utf8');
    for (const line of text.split(/\n|\x1e/)) {
      if (line.includes('packet_received')) r.challenges += (line.match(/"frame_type":\s*"path_challenge"/g) ?? []).length;
      if (line.includes('packet_sent')) r.responses += (line.match(/"frame_type":\s*"path_response"/g) ?? []).length;
    }
  }
  return r;
}

module.exports = { readTrace, CHECKS, goodputKbps, transferWindow, handshakeCids, qlogKeyPhase1Sent, qlogPathFrames };

/**
 * UDP payload digests of a classic pcap file (as tcpdump -w writes it), by frame number.
 * The relay forwards payloads unchanged, so a datagram can be found in both captures.
 */
function payloadDigests(pcap) {
  const crypto = require('node:crypto');
  const b = fs.readFileSync(pcap);
  const out = new Map();
  if (b.length < 24) return out;
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const linkType = u32(20);
  let off = 24;
  let n = 0;
  while (off + 16 <= b.length) {
    const incl = u32(off + 8);
    const start = off + 16;
    off = start + incl;
    n++;
    if (off > b.length) break;
    let p = start;
    let ethType;
    if (linkType === 1) {
      ethType = b.readUInt16BE(p + 12);
      p += 14;
    } else if (linkType === 113) { // Linux cooked capture
      ethType = b.readUInt16BE(p + 14);
      p += 16;
    } else continue;
    let proto;
    if (ethType === 0x0800) {
      proto = b[p + 9];
      p += (b[p] & 0x0f) * 4;
    } else if (ethType === 0x86dd) {
      proto = b[p + 6];
      p += 40;
    } else continue;
    if (proto !== 17) continue;
    const udpLen = b.readUInt16BE(p + 4);
    const payload = b.subarray(p + 8, Math.min(p + udpLen, off));
    out.set(n, crypto.createHash('sha1').update(payload).digest('base64'));
  }
  return out;
}

/**
 * Fills in what tshark could not decrypt in the server capture (after a NAT rebinding, a
 * connection whose client uses zero-length connection IDs is known to tshark only by its
 * old address) from the same datagrams in the client capture, where the addresses never
 * change.
 */
function enrichFromClient(server, client, serverPcap, clientPcap) {
  const sd = payloadDigests(serverPcap);
  const cd = payloadDigests(clientPcap);
  const byDigest = new Map();
  const clientFrames = new Map(client.map((f) => [f.n, f]));
  for (const [n, h] of cd) {
    if (!byDigest.has(h)) byDigest.set(h, []);
    byDigest.get(h).push(n);
  }
  let filled = 0;
  for (const f of server) {
    if (f.frameTypes.length > 0) continue;
    const h = sd.get(f.n);
    const candidates = h && byDigest.get(h);
    if (!candidates || candidates.length === 0) continue;
    const c = clientFrames.get(candidates.shift());
    if (!c) continue;
    f.frameTypes = c.frameTypes;
    f.challenges = c.challenges;
    f.responses = c.responses;
    if (f.keyPhase.length === 0) f.keyPhase = c.keyPhase;
    f.enriched = true;
    filled++;
  }
  return filled;
}

module.exports.payloadDigests = payloadDigests;
module.exports.enrichFromClient = enrichFromClient;
