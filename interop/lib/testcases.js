'use strict';
/**
 * The runner's test cases (quic-interop-runner testcases_quic.py), as data: what each
 * endpoint is told (TESTCASE), the files, the network scenario and the checks. Checks are
 * names of functions in trace.js.
 */
const KB = 1024;
const MB = 1024 * 1024;

/** The runner's default link: 15 ms one way, 10 Mbit/s, 25-packet queue. */
const LINK = { delayMs: 15, rateBps: 10_000_000, queue: 25 };

const files = (...sizes) => sizes.map((size) => ({ size }));

const TESTS = [
  {
    name: 'handshake', server: 'handshake', client: 'handshake', files: files(1 * KB),
    checks: ['handshakes1', 'noRetry'],
  },
  {
    name: 'transfer', server: 'transfer', client: 'transfer', files: files(2 * MB, 3 * MB, 5 * MB),
    checks: ['handshakes1'],
  },
  {
    name: 'longrtt', server: 'handshake', client: 'handshake', files: files(1 * KB),
    link: { delayMs: 750 }, checks: ['handshakes1', 'noRetry', 'clientHellos2'],
  },
  {
    name: 'chacha20', server: 'chacha20', client: 'chacha20', files: files(3 * MB),
    checks: ['handshakes1', 'chachaOnly'],
  },
  {
    name: 'multiplexing', server: 'transfer', client: 'transfer', files: Array.from({ length: 1999 }, () => ({ size: 32 })),
    checks: ['handshakes1', 'streamLimit1000'],
  },
  {
    name: 'retry', server: 'retry', client: 'retry', files: files(10 * KB),
    checks: ['handshakes1', 'retryToken'],
  },
  {
    name: 'resumption', server: 'resumption', client: 'resumption', files: files(5 * KB, 10 * KB),
    checks: ['handshakes2', 'resumedWithoutCertificate'],
  },
  {
    name: 'zerortt', server: 'zerortt', client: 'zerortt', files: Array.from({ length: 40 }, () => ({ size: 32, nameLength: 250 })),
    checks: ['handshakes2', 'zeroRtt'],
  },
  {
    name: 'http3', server: 'http3', client: 'http3', files: files(5 * KB, 10 * KB, 500 * KB),
    checks: ['handshakes1'],
  },
  {
    name: 'blackhole', server: 'transfer', client: 'transfer', files: files(10 * MB),
    relay: { blackhole: { onMs: 5000, offMs: 2000 } }, checks: ['handshakes1'],
  },
  {
    name: 'keyupdate', server: 'transfer', client: 'keyupdate', files: files(3 * MB),
    checks: ['handshakes1', 'keyUpdate'],
  },
  {
    name: 'ecn', server: 'ecn', client: 'ecn', files: files(100 * KB),
    checks: ['handshakes1', 'ecn'],
  },
  {
    name: 'amplificationlimit', server: 'transfer', client: 'transfer', files: files(5 * KB), chain: 9,
    relay: { toServer: { drops: [2, 3, 4, 5, 6, 7] } }, checks: ['handshakes1', 'amplification'],
  },
  {
    name: 'handshakeloss', server: 'multiconnect', client: 'multiconnect', files: Array.from({ length: 50 }, () => ({ size: 1 * KB })),
    timeoutS: 300, relay: { toServer: { dropRate: 30, burst: 3 }, toClient: { dropRate: 30, burst: 3 } },
    checks: ['handshakes50'],
  },
  {
    name: 'transferloss', server: 'transfer', client: 'transfer', files: files(2 * MB),
    relay: { toServer: { dropRate: 2, burst: 3 }, toClient: { dropRate: 2, burst: 3 } }, checks: ['handshakes1'],
  },
  {
    name: 'handshakecorruption', server: 'multiconnect', client: 'multiconnect', files: Array.from({ length: 50 }, () => ({ size: 1 * KB })),
    timeoutS: 300, relay: { toServer: { corruptRate: 30, burst: 3 }, toClient: { corruptRate: 30, burst: 3 } },
    checks: ['handshakes50'],
  },
  {
    name: 'transfercorruption', server: 'transfer', client: 'transfer', files: files(2 * MB),
    relay: { toServer: { corruptRate: 2, burst: 3 }, toClient: { corruptRate: 2, burst: 3 } }, checks: ['handshakes1'],
  },
  {
    name: 'ipv6', server: 'transfer', client: 'transfer', files: files(5 * KB, 10 * KB), ipv6: true,
    checks: ['handshakes1', 'ipv6Only'],
  },
  {
    name: 'v2', server: 'v2', client: 'v2', files: files(1 * KB),
    checks: ['handshakes1', 'version2'],
  },
  {
    name: 'rebind-port', server: 'transfer', client: 'transfer', files: files(10 * MB),
    relay: { rebind: { firstMs: 1000, everyMs: 5000, addr: false } }, checks: ['handshakes1', 'pathValidation'],
  },
  {
    name: 'rebind-addr', server: 'transfer', client: 'transfer', files: files(10 * MB),
    relay: { rebind: { firstMs: 1000, everyMs: 5000, addr: true } }, checks: ['handshakes1', 'addressChanged', 'pathValidation'],
  },
  {
    name: 'connectionmigration', server: 'connectionmigration', client: 'connectionmigration', files: files(2 * MB),
    checks: ['handshakes1', 'pathValidation'],
  },
  {
    name: 'goodput', server: 'transfer', client: 'transfer', files: files(10 * MB),
    checks: ['handshakes1'], measure: 'goodput',
  },
  {
    // The runner's MeasurementCrossTraffic: goodput of a 25 MiB transfer while a bulk TCP
    // flow (iperf -Z cubic, server side to client side) shares the same link; timeout 180 s.
    // The TCP flow runs through the relay's links (lib/crosstraffic.js) and starts
    // warmupMs before the client.
    name: 'crosstraffic', server: 'transfer', client: 'transfer', files: files(25 * MB),
    timeoutS: 180, crossTraffic: { cc: 'cubic', warmupMs: 2000 }, checks: ['handshakes1'], measure: 'goodput',
  },
];

/** The short subset run by test/integration/interop.test.ts. */
const SHORT = ['handshake', 'transfer', 'retry', 'http3', 'resumption', 'zerortt', 'transferloss'];

module.exports = { TESTS, SHORT, LINK, KB, MB };
