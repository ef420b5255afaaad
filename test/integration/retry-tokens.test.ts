import { strict as assert } from 'node:assert';
import type { QuicEndpoint } from '../../src/quic';
import { makeTestCert, type TestCert } from '../helpers/certs';
import { startEchoServer } from '../helpers/echo';
import { peerScript, python, runPeer } from '../helpers/peers';
import {
  PING_FRAME, QUIC_V1, RawUdp, Rng, initialKeys, parseRetry, protectInitial, retryIntegrityTag, sleep,
  type RetryPacket,
} from '../helpers/raw-udp';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 9001 Appendix A.2, as transcribed in aioquic's tests/test_crypto.py: the client Initial
// for DCID 8394c8f03e515708, packet number 2, its CRYPTO frame padded to 1162 bytes.
const A2_DCID = hex('8394c8f03e515708');
const A2_PAYLOAD = Buffer.concat([hex(`
  060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
  04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
  616d706c652e636f6dff01000100000a00080006001d00170018001000070005
  04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
  baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
  0d0010000e0403050306030203080408050806002d00020101001c0002400100
  3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
  75300901100f088394c8f03e51570806048000ffff`), Buffer.alloc(917)]);
const A2_PROTECTED = hex(`
  c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
  d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
  1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
  8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
  30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
  457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
  4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
  4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
  485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
  059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
  7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
  9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
  be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
  68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
  c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
  f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
  291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
  25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
  14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
  ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
  e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
  c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
  203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
  cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
  fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
  a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
  90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
  162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
  40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
  6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
  8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
  be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
  54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
  760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
  f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
  056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
  7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
  e221af44860018ab0856972e194cd934`);

/** A client Initial that carries no TLS (PING + PADDING), protected for real, 1200 bytes. */
const pingInitial = (dcid: Buffer, scid: Buffer, token?: Buffer): Buffer =>
  protectInitial({ dcid, scid, token, payload: PING_FRAME, minDatagram: 1200 });

const isRetry = (d: Buffer): boolean => (d[0] & 0xf0) === 0xf0 && d.readUInt32BE(1) === QUIC_V1;

/** Sends a token-less Initial and returns the server's Retry (integrity tag checked). */
async function fetchRetry(raw: RawUdp, port: number, rng: Rng): Promise<{ retry: RetryPacket; odcid: Buffer; scid: Buffer }> {
  const odcid = rng.bytes(rng.int(8, 20));
  const scid = rng.bytes(8);
  const from = raw.replies.length;
  await raw.send(pingInitial(odcid, scid), port);
  const reply = await raw.waitFor((r) => isRetry(r.data), 2000, from);
  assert.ok(reply, 'the server answered a token-less Initial with a Retry');
  const retry = parseRetry(reply.data)!;
  assert.ok(retry.dcid.equals(scid), 'the Retry is addressed to our SCID');
  assert.equal(retry.scid.length, 16, 'the server chose a 16-byte CID');
  assert.ok(retry.token.length > 0);
  const withoutTag = reply.data.subarray(0, reply.data.length - 16);
  assert.ok(retryIntegrityTag(odcid, withoutTag).equals(retry.tag), 'RFC 9001 §5.8 Retry Integrity Tag');
  return { retry, odcid, scid };
}

describe('Retry and address-validation tokens', function () {
  this.timeout(120_000);
  let cert: TestCert;
  let ep: QuicEndpoint | undefined;
  const raws: RawUdp[] = [];
  before(() => {
    cert = makeTestCert();
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) await r.close();
    await ep?.close({ timeoutMs: 1000 });
    ep = undefined;
  });

  const listen = async (retryTokenLifetime?: number): Promise<number> => {
    ep = await startEchoServer({ host: '127.0.0.1', cert: cert.certFile, key: cert.keyFile, retry: true, retryTokenLifetime, maxIdleTimeout: 3000 });
    return ep.address!.port;
  };
  const socket = async (): Promise<RawUdp> => {
    const r = await RawUdp.open();
    raws.push(r);
    return r;
  };

  describe('the test helper, against RFC 9001 Appendix A', () => {
    it('derives the A.1 client Initial keys', () => {
      const k = initialKeys(A2_DCID, 'client');
      assert.equal(k.key.toString('hex'), '1f369613dd76d5467730efcbe3b1a22d');
      assert.equal(k.iv.toString('hex'), 'fa044b2f42a3fd3b46fb255c');
      assert.equal(k.hp.toString('hex'), '9f50449e04a0e810283a1e9933adedd2');
      const s = initialKeys(A2_DCID, 'server');
      assert.equal(s.key.toString('hex'), 'cf3a5331653c364c88f0f379b6067e37');
      assert.equal(s.iv.toString('hex'), '0ac1493ca1905853b0bba03e');
      assert.equal(s.hp.toString('hex'), 'c206b8d9b9f0f37644430b490eeaa314');
    });

    it('protects the A.2 client Initial byte-exact', () => {
      const packet = protectInitial({ dcid: A2_DCID, scid: Buffer.alloc(0), pn: 2, pnLength: 4, payload: A2_PAYLOAD });
      assert.equal(packet.length, 1200);
      assert.equal(packet.toString('hex'), A2_PROTECTED.toString('hex'));
    });

    it('computes the A.4 Retry Integrity Tag', () => {
      const retry = hex('ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba');
      assert.equal(retryIntegrityTag(A2_DCID, retry.subarray(0, retry.length - 16)).toString('hex'), '04a265ba2eff4d829058fb3f0f2496ba');
      const parsed = parseRetry(retry)!;
      assert.equal(parsed.scid.toString('hex'), 'f067a5502a4262b5');
      assert.equal(parsed.token.toString(), 'token');
    });
  });

  it('lets aioquic complete through a Retry', async () => {
    const port = await listen();
    const { report } = await runPeer<{ ok: boolean; retry_seen: boolean; error: string | null }>(python,
      [peerScript('aioquic_echo.py'), '--port', String(port), '--server-name', 'localhost', '--streams', '4', '--size', '10000']);
    assert.equal(report.ok, true, String(report.error));
    assert.equal(report.retry_seen, true);
    const s = ep!.stats();
    assert.equal(s.retriesSent, 1);
    assert.equal(s.tokensRejected, 0);
    assert.equal(s.connectionsAccepted, 1);
  });

  it('refuses forged tokens silently, before creating any state', async () => {
    const port = await listen();
    const rng = new Rng(9);
    const raw = await socket();
    const real = (await fetchRetry(raw, port, rng)).retry;
    const tampered = Buffer.from(real.token);
    tampered[tampered.length - 1] ^= 0x01; // one bit of the MAC
    const aged = Buffer.from(real.token);
    aged[8] ^= 0x01; // one bit of the issue time
    const forged: Array<[string, Buffer, Buffer]> = [
      ['random bytes', rng.bytes(42), rng.bytes(16)],
      ['our token layout, random MAC', Buffer.concat([Buffer.from([0xa7]), rng.bytes(8), Buffer.from([16]), rng.bytes(32)]), rng.bytes(16)],
      ['a real token with one MAC bit flipped', tampered, real.scid],
      ['a real token with its issue time altered', aged, real.scid],
      ['a real token, with an 8-byte DCID', real.token, rng.bytes(8)],
    ];
    const before = ep!.stats();
    const from = raw.replies.length;
    for (const [, token, dcid] of forged) await raw.send(pingInitial(dcid, rng.bytes(8), token), port);
    await sleep(1000);
    const after = ep!.stats();
    assert.deepEqual(raw.replies.slice(from).map((r) => r.data.subarray(0, 8).toString('hex')), [], 'no reply to a forged token');
    assert.equal(after.tokensRejected - before.tokensRejected, forged.length, 'every forged token is counted as rejected');
    assert.equal(after.acceptFailed, before.acceptFailed, 'refused before quiche_accept');
    assert.equal(after.connections, 0);
    assert.equal(after.connectionsAccepted, 0);
    assert.equal(after.retriesSent, before.retriesSent, 'a token never earns a second Retry');
  });

  it('accepts a fresh token from the same address, refuses it from another port and once expired', async () => {
    const port = await listen(1);
    const rng = new Rng(10);
    const a = await socket();
    const b = await socket();

    // Within the lifetime, from another source port: refused (tokens are bound to the address).
    const { retry } = await fetchRetry(a, port, rng);
    let before = ep!.stats();
    await b.send(pingInitial(retry.scid, rng.bytes(8), retry.token), port);
    await sleep(300);
    let after = ep!.stats();
    assert.equal(after.tokensRejected - before.tokensRejected, 1, 'replayed from another port: refused');
    assert.equal(b.replies.length, 0, 'and not answered');
    assert.equal(after.connectionsAccepted + after.acceptFailed, before.connectionsAccepted + before.acceptFailed);

    // The same token, from the address it was issued to: it passes validation and reaches
    // quiche (which may open a connection that then never completes its handshake).
    before = after;
    await a.send(pingInitial(retry.scid, rng.bytes(8), retry.token), port);
    after = await (async () => {
      const deadline = Date.now() + 2000;
      let s = ep!.stats();
      while (s.connectionsAccepted + s.acceptFailed === before.connectionsAccepted + before.acceptFailed && Date.now() < deadline) {
        await sleep(20);
        s = ep!.stats();
      }
      return s;
    })();
    assert.equal(after.tokensRejected, before.tokensRejected, 'a fresh token from its own address is not rejected');
    assert.equal(after.connectionsAccepted + after.acceptFailed, before.connectionsAccepted + before.acceptFailed + 1, 'it reached quiche_accept');

    // Expired: a token older than retryTokenLifetime (1 s) is refused without a reply.
    const c = await socket();
    const fresh = (await fetchRetry(c, port, rng)).retry;
    await sleep(2500);
    before = ep!.stats();
    const from = c.replies.length;
    await c.send(pingInitial(fresh.scid, rng.bytes(8), fresh.token), port);
    await sleep(1000);
    after = ep!.stats();
    assert.equal(after.tokensRejected - before.tokensRejected, 1, 'expired token: refused');
    assert.equal(c.replies.length, from, 'and not answered');
    assert.equal(after.connectionsAccepted + after.acceptFailed, before.connectionsAccepted + before.acceptFailed);
  });
});
