import { strict as assert } from 'node:assert';
import { H3_EXCESSIVE_LOAD } from '../../../src/h3/errors';
import { encodeVarint } from '../../../src/h3/varint';
import {
  CapsuleError, CapsuleReader, CapsuleType, H3_DATAGRAM_ERROR, WT_APPLICATION_ERROR_FIRST, WT_APPLICATION_ERROR_LAST,
  decodeCapsule, decodeCloseSession, encodeCapsule, encodeCloseSession, encodeDrainSession, http3CodeToWebTransport,
  webTransportCodeToHttp3, type Capsule,
} from '../../../src/webtransport';
import { concat } from '../h3/helpers';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Feeds `data` to a fresh reader in pieces ending at `cuts`, FIN at the end. */
function readAll(data: Uint8Array, cuts: number[]): Capsule[] {
  const r = new CapsuleReader();
  const out: Capsule[] = [];
  let prev = 0;
  for (const cut of [...cuts, data.length]) {
    r.push(data.subarray(prev, cut));
    if (cut === data.length) r.end();
    for (let c = r.next(); c; c = r.next()) out.push({ type: c.type, value: c.value.slice() });
    prev = cut;
  }
  return out;
}

function assertCapsuleError(fn: () => unknown, code: number, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CapsuleError && e.code === code && pattern.test(e.reason));
}

describe('webtransport capsules (RFC 9297 §3, draft-ietf-webtrans-http3 §4.6, §5)', () => {
  it('encodes CLOSE_WEBTRANSPORT_SESSION as type 0x2843, length, u32 code, UTF-8 reason', () => {
    // 0x2843 is a 2-byte varint 0x6843; length 4 + 3.
    assert.equal(hex(encodeCloseSession(0x01020304, 'bye')), '6843' + '07' + '01020304' + '627965');
    assert.equal(hex(encodeCloseSession(0)), '6843' + '04' + '00000000');
  });

  it('encodes DRAIN_WEBTRANSPORT_SESSION as type 0x78ae with no value', () => {
    // 0x78ae needs a 4-byte varint (it is over 2^14-1).
    assert.equal(hex(encodeDrainSession()), '800078ae' + '00');
  });

  it('cuts a reason over 1024 bytes at a UTF-8 character boundary', () => {
    const reason = 'é'.repeat(600); // 1200 bytes
    const c = decodeCapsule(encodeCloseSession(1, reason))!.capsule;
    const { reason: back } = decodeCloseSession(c.value);
    assert.equal(back, 'é'.repeat(512));
  });

  it('decodes CLOSE_WEBTRANSPORT_SESSION and rejects malformed values with H3_DATAGRAM_ERROR', () => {
    assert.deepEqual(decodeCloseSession(Uint8Array.of(0, 0, 0x10, 0x92, 0x68, 0x69)), { closeCode: 4242, reason: 'hi' });
    // RFC 9297 §3.3: a value that ends before its fields is malformed.
    assertCapsuleError(() => decodeCloseSession(Uint8Array.of(0, 0, 1)), H3_DATAGRAM_ERROR, /shorter/);
    // draft §5: the message MUST NOT exceed 1024 bytes.
    assertCapsuleError(() => decodeCloseSession(new Uint8Array(4 + 1025).fill(0x61)), H3_DATAGRAM_ERROR, /1024/);
    assertCapsuleError(() => decodeCloseSession(Uint8Array.of(0, 0, 0, 0, 0xff, 0xfe)), H3_DATAGRAM_ERROR, /UTF-8/);
  });

  const stream = concat([
    encodeCapsule(CapsuleType.DATAGRAM, Uint8Array.of(1, 2, 3)),
    encodeCapsule(0x1f * 7 + 0x21, new Uint8Array(300).fill(9)), // a reserved (unknown) type: skipped
    encodeDrainSession(),
    encodeCapsule(0x3fff, new Uint8Array(0)), // unknown, empty
    encodeCloseSession(7, 'done'),
  ]);
  const expected = [
    { type: CapsuleType.DATAGRAM, value: Uint8Array.of(1, 2, 3) },
    { type: CapsuleType.DRAIN_WEBTRANSPORT_SESSION, value: new Uint8Array(0) },
    { type: CapsuleType.CLOSE_WEBTRANSPORT_SESSION, value: concat([Uint8Array.of(0, 0, 0, 7), Buffer.from('done')]) },
  ];

  it('reads the same capsules with the input split at every byte', () => {
    for (let i = 0; i <= stream.length; i++) assert.deepEqual(readAll(stream, i === 0 || i === stream.length ? [] : [i]), expected, `split at ${i}`);
  });

  it('reads the same capsules fed one byte at a time', () => {
    assert.deepEqual(readAll(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1)), expected);
  });

  it('reports a stream that ends inside a capsule, wherever it ends (RFC 9297 §3.3)', () => {
    const one = encodeCloseSession(1, 'x');
    for (let n = 1; n < one.length; n++) {
      assertCapsuleError(() => readAll(one.subarray(0, n), []), H3_DATAGRAM_ERROR, /inside a capsule/);
    }
  });

  it('refuses a known capsule longer than the buffering limit without waiting for it', () => {
    const r = new CapsuleReader({ maxCapsuleSize: 100 });
    r.push(concat([encodeVarint(CapsuleType.DATAGRAM), encodeVarint(101)]));
    assertCapsuleError(() => r.next(), H3_EXCESSIVE_LOAD, /101 bytes/);
  });

  it('maps WebTransport application error codes into the HTTP/3 range and back (draft §4.3, Figure 3)', () => {
    assert.equal(webTransportCodeToHttp3(0), WT_APPLICATION_ERROR_FIRST);
    assert.equal(webTransportCodeToHttp3(0xffffffff), WT_APPLICATION_ERROR_LAST);
    assert.equal(webTransportCodeToHttp3(0x1d), 0x52e4a40fa8db + 0x1d);
    assert.equal(webTransportCodeToHttp3(0x1e), 0x52e4a40fa8db + 0x1e + 1); // skips 0x52e4a40fa8f9 (GREASE)
    for (const code of [0, 1, 0x1d, 0x1e, 0x1f, 1000, 4242, 0x7fffffff, 0xffffffff]) {
      const h3 = webTransportCodeToHttp3(code);
      assert.notEqual((h3 - 0x21) % 0x1f, 0, `${code} maps onto a reserved codepoint`);
      assert.equal(http3CodeToWebTransport(h3), code);
    }
    assert.equal(http3CodeToWebTransport(0x52e4a40fa8f9), null, 'reserved codepoint');
    assert.equal(http3CodeToWebTransport(0x0100), null, 'H3_NO_ERROR is no application code');
    assert.throws(() => webTransportCodeToHttp3(2 ** 32), RangeError);
  });
});
