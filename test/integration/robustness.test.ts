import { strict as assert } from 'node:assert';
import { QuicEndpoint } from '../../src/quic';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { startEchoServer } from '../helpers/echo';
import { peerScript, python, runPeer } from '../helpers/peers';
import {
  QUIC_V1, RawUdp, Rng, garbageInitial, parseVersionNegotiation, randomDatagram, shortHeader, sleep,
  smallInitial, truncatedLongHeader, unknownVersion, vnKey, type Hostile,
} from '../helpers/raw-udp';

interface EchoReport {
  ok: boolean; streams_ok: number; bytes_echoed: number; datagrams_sent: number; datagrams_echoed: number;
  error: string | null;
}

const aioquicEcho = (port: number, ...args: string[]) =>
  runPeer<EchoReport>(python, [peerScript('aioquic_echo.py'), '--port', String(port), '--server-name', 'localhost', ...args], 240_000);

/** Polls `stats()` until `ok` holds (or `ms` pass) and returns the last snapshot. */
async function statsWhen(ep: QuicEndpoint, ok: (s: ReturnType<QuicEndpoint['stats']>) => boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  let s = ep.stats();
  while (!ok(s) && Date.now() < deadline) {
    await sleep(20);
    s = ep.stats();
  }
  return s;
}

/** The 10,000 hostile datagrams, in a shuffled order; counts per kind in the comments. */
function hostileMix(rng: Rng): Hostile[] {
  const out: Hostile[] = [];
  const add = (n: number, make: () => Hostile) => {
    for (let i = 0; i < n; i++) out.push(make());
  };
  add(3000, () => randomDatagram(rng));
  add(1500, () => truncatedLongHeader(rng));
  add(1500, () => garbageInitial(rng));
  add(2000, () => shortHeader(rng));
  add(700, () => unknownVersion(rng));
  add(100, () => unknownVersion(rng, { zeroCids: true }));
  add(200, () => unknownVersion(rng, { size: rng.int(8, 1199) }));
  add(1000, () => smallInitial(rng));
  return rng.shuffle(out);
}

/**
 * Whether `d` may be answered with Version Negotiation (RFC 8999 §5.1, RFC 9000 §6.1): a long
 * header of another version (not 0, which is a VN itself), in a datagram of at least 1200 bytes,
 * with both connection IDs (up to 255 bytes each) inside the datagram. Random bytes sometimes
 * qualify.
 */
function mayGetVersionNegotiation(d: Buffer): boolean {
  if (d.length < 1200 || (d[0] & 0x80) === 0) return false;
  const version = d.readUInt32BE(1);
  if (version === 0 || version === QUIC_V1) return false;
  return d.length >= 7 + d[5] && d.length >= 7 + d[5] + d[6 + d[5]];
}

describe('robustness: hostile UDP datagrams during a transfer', function () {
  this.timeout(300_000);
  let cert: TestCert;
  before(() => {
    cert = makeTestCert();
  });

  it('survives 10,000 hostile datagrams while aioquic echoes 20 x 1 MiB, answering only unknown versions', async () => {
    const seed = Number(process.env.HARRIER_FUZZ_SEED ?? Date.now() % 0x7fffffff);
    const rng = new Rng(seed);
    const why = `(seed ${seed}; rerun with HARRIER_FUZZ_SEED=${seed})`;
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile });
    const raw = await RawUdp.open();
    try {
      const port = ep.address!.port;
      const accepted = new Promise((resolve) => ep.once('connection', resolve));
      const transfer = aioquicEcho(port, '--streams', '20', '--size', String(1 << 20), '--datagrams', '100', '--timeout', '200');
      await accepted;

      const mix = hostileMix(rng);
      const before = ep.stats();
      await raw.sendPaced(mix.map((h) => h.data), port);
      // While the transfer runs, garbage created no connection and no connection ID.
      const during = ep.stats();
      assert.equal(during.connections, 1, `only aioquic's connection exists ${why}`);

      const { report } = await transfer;
      assert.equal(report.error, null, why);
      assert.equal(report.streams_ok, 20, why);
      assert.equal(report.bytes_echoed, 20 * (1 << 20), why);
      assert.ok(report.datagrams_echoed >= 90, `datagrams echoed ${report.datagrams_echoed}/100 ${why}`);
      assert.equal(report.ok, true, why);

      // Late replies still count: listen ~1 s after the last datagram and the transfer.
      await sleep(1000);
      const after = await statsWhen(ep, (s) => s.connections === 0 && s.connectionIds === 0);
      assert.equal(after.connections, 0, `no connection left over ${why}`);
      assert.equal(after.connectionIds, 0, `no connection ID left over ${why}`);
      assert.equal(after.connectionsAccepted, 1, `only aioquic was accepted ${why}`);
      assert.ok(after.packetsReceived - before.packetsReceived >= mix.length, `the server read every datagram ${why}`);
      const garbageInitials = mix.filter((h) => h.kind === 'garbage-initial').length;
      assert.equal(after.acceptFailed - before.acceptFailed, garbageInitials, `each garbage Initial failed to open a connection ${why}`);

      // Every reply is a Version Negotiation echoing a packet that may have one. Each CID pair of
      // an unknown-version packet is answered once per packet that may be answered with that
      // pair (a random datagram may qualify with the same pair, e.g. both CIDs empty).
      const unknownVersionKeys = new Set<string>();
      const allowed = new Map<string, number>(); // CID pair of the reply -> packets that may get one
      for (const h of mix) {
        if (h.kind === 'unknown-version') unknownVersionKeys.add(vnKey(h.scid!, h.dcid!));
        if (mayGetVersionNegotiation(h.data)) {
          const d = h.data;
          const dcid = d.subarray(6, 6 + d[5]);
          const scid = d.subarray(7 + d[5], 7 + d[5] + d[6 + d[5]]);
          const key = vnKey(scid, dcid);
          allowed.set(key, (allowed.get(key) ?? 0) + 1);
        }
      }
      const answered = new Map<string, number>();
      for (const r of raw.replies) {
        const vn = parseVersionNegotiation(r.data);
        assert.ok(vn, `a reply that is not Version Negotiation: ${r.data.subarray(0, 32).toString('hex')} ${why}`);
        assert.equal(r.port, port);
        assert.ok(vn.firstByte & 0x80);
        assert.ok(vn.versions.includes(QUIC_V1), `VN lists version 1: ${vn.versions.map((v) => v.toString(16))}`);
        const key = vnKey(vn.dcid, vn.scid);
        assert.ok(allowed.has(key), `VN for a packet that should get none (DCID/SCID ${key}) ${why}`);
        answered.set(key, (answered.get(key) ?? 0) + 1);
      }
      for (const [key, n] of answered) {
        assert.ok(n <= allowed.get(key)!, `no more VNs than packets that may get one, DCID/SCID ${key} ${why}`);
      }
      for (const key of unknownVersionKeys) {
        assert.equal(answered.get(key), allowed.get(key), `one VN per unknown-version packet with DCID/SCID ${key} ${why}`);
      }
      const empty = vnKey(Buffer.alloc(0), Buffer.alloc(0));
      assert.ok((allowed.get(empty) ?? 0) >= 100 && unknownVersionKeys.has(empty), 'zero-length CIDs were sent, and each was echoed (above)');
      const vnSent = after.versionNegotiationsSent - before.versionNegotiationsSent;
      assert.equal(vnSent, raw.replies.length, 'the VN counter matches the replies');

      // The endpoint still serves.
      const again = await aioquicEcho(port, '--streams', '2', '--size', '10000');
      assert.equal(again.report.ok, true, String(again.report.error));
    } finally {
      await raw.close();
      await ep.close();
    }
  });

  it('drops, without reply, every Initial and unknown-version packet under 1200 bytes', async () => {
    const rng = new Rng(1200);
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile });
    const raw = await RawUdp.open();
    try {
      const small: Hostile[] = [];
      for (let size = 1100; size < 1200; size++) {
        small.push(garbageInitial(rng, size), unknownVersion(rng, { size }), unknownVersion(rng, { size, zeroCids: true }));
      }
      const before = ep.stats();
      await raw.sendPaced(small.map((h) => h.data), ep.address!.port);
      await sleep(1000);
      const after = ep.stats();
      assert.equal(raw.replies.length, 0);
      assert.equal(after.packetsDropped - before.packetsDropped, small.length);
      assert.equal(after.acceptFailed, before.acceptFailed);
      assert.equal(after.versionNegotiationsSent, before.versionNegotiationsSent);
      assert.equal(after.connections, 0);
    } finally {
      await raw.close();
      await ep.close();
    }
  });

  // RFC 9000 §6.1: "An endpoint MUST NOT send a Version Negotiation packet in response to
  // receiving a Version Negotiation packet."
  it('does not answer a Version Negotiation packet with one', async () => {
    const rng = new Rng(6);
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile });
    const raw = await RawUdp.open();
    try {
      const dcid = rng.bytes(8);
      const scid = rng.bytes(8);
      // 1203 bytes: a whole number of 4-byte versions after the CIDs, so that it parses.
      const vn = Buffer.concat([Buffer.from([0x80, 0, 0, 0, 0, 8]), dcid, Buffer.from([8]), scid]);
      await raw.send(Buffer.concat([vn, Buffer.alloc(1203 - vn.length, 0x0a)]), ep.address!.port);
      await sleep(500);
      assert.equal(raw.replies.length, 0, `replied: ${raw.replies[0]?.data.subarray(0, 32).toString('hex')}`);
    } finally {
      await raw.close();
      await ep.close();
    }
  });

  // RFC 9000 §5.2.2 / §6.1: Version Negotiation depends only on the invariant header
  // (RFC 8999 §5.4); what follows the SCID of an unknown version is opaque. §17.2: "servers
  // SHOULD be able to read longer connection IDs from other QUIC versions".
  it('answers an unknown version whatever follows its connection IDs', async () => {
    const rng = new Rng(7);
    const ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile });
    const raw = await RawUdp.open();
    try {
      const port = ep.address!.port;
      const cases: Array<{ name: string; data: Buffer; dcid: Buffer; scid: Buffer }> = [];
      for (const [name, after] of [
        ['Initial type bits, token length 0x3f...', Buffer.from([0x7f, 0xff])],
        ['Initial type bits, 8-byte token length', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
      ] as const) {
        const dcid = rng.bytes(8);
        const scid = rng.bytes(8);
        const head = Buffer.concat([Buffer.from([0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8]), dcid, Buffer.from([8]), scid, after]);
        cases.push({ name, data: Buffer.concat([head, Buffer.alloc(1200 - head.length)]), dcid, scid });
      }
      {
        // quiche reads the rest of a Retry-typed long header as a token, which overflows the
        // 1024-byte token buffer of endpoint.cc's HandlePacket.
        const dcid = rng.bytes(8);
        const scid = rng.bytes(8);
        const head = Buffer.concat([Buffer.from([0xf0, 0x1a, 0x2a, 0x3a, 0x4a, 8]), dcid, Buffer.from([8]), scid]);
        cases.push({ name: 'Retry type bits, 1200 bytes', data: Buffer.concat([head, Buffer.alloc(1200 - head.length)]), dcid, scid });
      }
      {
        const dcid = rng.bytes(40);
        const scid = rng.bytes(30);
        const head = Buffer.concat([Buffer.from([0xd0, 0x1a, 0x2a, 0x3a, 0x4a, 40]), dcid, Buffer.from([30]), scid]);
        cases.push({ name: '40-byte DCID, 30-byte SCID', data: Buffer.concat([head, Buffer.alloc(1200 - head.length)]), dcid, scid });
      }
      const failures: string[] = [];
      for (const c of cases) {
        const from = raw.replies.length;
        await raw.send(c.data, port);
        const reply = await raw.waitFor(() => true, 500, from);
        const vn = reply && parseVersionNegotiation(reply.data);
        if (!vn || !vn.dcid.equals(c.scid) || !vn.scid.equals(c.dcid)) failures.push(c.name);
      }
      assert.deepEqual(failures, [], 'no Version Negotiation for these unknown-version packets');
    } finally {
      await raw.close();
      await ep.close();
    }
  });
});
