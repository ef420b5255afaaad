import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import { createServer, type Server } from '../../../src';
import { Context, Request, type ResponseSink } from '../../../src/http/context';
import { Fields } from '../../../src/http/fields';
import { addressMatcher, forwarded, parseForwarded, parseNode, type ForwardedOptions } from '../../../src/http/middleware/forwarded';
import { makeTestCert, type TestCert } from '../../helpers/certs';

const nullSink: ResponseSink = { supportsTrailers: false, sendInterim() {}, sendHead() {}, async write() {}, end() {}, abort() {} };

function makeCtx(remoteAddress: string, headers: Array<[string, string]>): Context {
  return new Context(new Request({
    method: 'GET', target: '/', headers: new Fields(headers), protocol: 'h3', scheme: 'https',
    authority: 'proxy.internal:8443', remoteAddress, remotePort: 50000, body: Readable.from([]),
  }), nullSink);
}

/** Runs forwarded() on a request and returns what the application sees. */
async function run(options: ForwardedOptions, remoteAddress: string, headers: Array<[string, string]>) {
  const ctx = makeCtx(remoteAddress, headers);
  let reached = false;
  await forwarded(options)(ctx, async () => {
    reached = true;
  });
  assert.ok(reached, 'next() runs');
  const r = ctx.request;
  return { remoteAddress: r.remoteAddress, remotePort: r.remotePort, scheme: r.scheme, authority: r.authority, state: ctx.state.forwarded };
}

const unchanged = { remoteAddress: '127.0.0.1', remotePort: 50000, scheme: 'https', authority: 'proxy.internal:8443' };

describe('forwarded', () => {
  describe('trusted proxies', () => {
    it('matches addresses and CIDR ranges, IPv4 and IPv6', () => {
      const m = addressMatcher(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', '2001:db8:1::/48']);
      for (const yes of ['127.0.0.1', '10.0.0.1', '10.255.255.255', '::1', 'fd12:3456::1', '2001:db8:1:ffff::9', '[::1]']) assert.ok(m(yes), yes);
      for (const no of ['127.0.0.2', '11.0.0.1', '::2', 'fe80::1', '2001:db8:2::1', 'unknown', '', '_hidden']) assert.ok(!m(no), no);
    });

    it('matches IPv4-mapped IPv6 peers (::ffff:a.b.c.d) against IPv4 rules', () => {
      const m = addressMatcher(['127.0.0.1', '10.0.0.0/8']);
      assert.ok(m('::ffff:127.0.0.1'));
      assert.ok(m('::ffff:10.9.8.7'));
      assert.ok(!m('::ffff:192.168.0.1'));
    });

    it('knows loopback, linklocal and uniquelocal by name', () => {
      const m = addressMatcher(['loopback', 'uniquelocal']);
      for (const yes of ['127.0.0.1', '127.1.2.3', '::1', '10.1.1.1', '172.16.0.1', '192.168.1.1', 'fd00::1']) assert.ok(m(yes), yes);
      for (const no of ['8.8.8.8', '172.32.0.1', 'fe80::1', '2001:db8::1']) assert.ok(!m(no), no);
    });

    it('rejects configurations that are not addresses', () => {
      assert.throws(() => addressMatcher(['localhost']), TypeError);
      assert.throws(() => addressMatcher(['10.0.0.0/33']), TypeError);
      assert.throws(() => addressMatcher(['::/129']), TypeError);
      assert.throws(() => forwarded({ trustedProxies: ['127.0.0.1'], hops: 0 }), RangeError);
    });
  });

  describe('parsing', () => {
    it('parses nodes: IPv4, quoted IPv6 with port, unknown, obfuscated (RFC 7239 §6)', () => {
      assert.deepEqual(parseNode('192.0.2.43'), { kind: 'ip', address: '192.0.2.43' });
      assert.deepEqual(parseNode('192.0.2.43:47011'), { kind: 'ip', address: '192.0.2.43', port: 47011 });
      assert.deepEqual(parseNode('[2001:db8:cafe::17]:4711'), { kind: 'ip', address: '2001:db8:cafe::17', port: 4711 });
      assert.deepEqual(parseNode('[2001:db8:cafe::17]'), { kind: 'ip', address: '2001:db8:cafe::17' });
      assert.deepEqual(parseNode('2001:db8::1'), { kind: 'ip', address: '2001:db8::1' }, 'bare IPv6, as X-Forwarded-For has it');
      assert.deepEqual(parseNode('unknown'), { kind: 'unknown' });
      assert.deepEqual(parseNode('_hidden'), { kind: 'obfuscated', id: '_hidden' });
      assert.deepEqual(parseNode('_SEVKISEK:_port'), { kind: 'obfuscated', id: '_SEVKISEK' });
      assert.deepEqual(parseNode('192.0.2.43:_x'), { kind: 'ip', address: '192.0.2.43' }, 'obfuscated port');
      for (const bad of ['', 'example.com', '[2001:db8::1', '[1.2.3.4]', '1.2.3', '1.2.3.4:5:6', '[::1]x']) assert.equal(parseNode(bad), undefined, bad);
    });

    it('parses Forwarded elements with quoted strings, escapes and case-insensitive names (RFC 7239 §4)', () => {
      assert.deepEqual(parseForwarded(['for="_gazonk"']), [{ for: '_gazonk' }]);
      assert.deepEqual(parseForwarded(['For="[2001:db8:cafe::17]:4711"']), [{ for: '[2001:db8:cafe::17]:4711' }]);
      assert.deepEqual(parseForwarded(['for=192.0.2.60;proto=http;by=203.0.113.43']), [{ for: '192.0.2.60', proto: 'http', by: '203.0.113.43' }]);
      assert.deepEqual(parseForwarded(['for=192.0.2.43, for=198.51.100.17']), [{ for: '192.0.2.43' }, { for: '198.51.100.17' }]);
      assert.deepEqual(parseForwarded(['for=a.b', 'for=c']), [{ for: 'a.b' }, { for: 'c' }], 'several field lines are one list');
      assert.deepEqual(parseForwarded(['host="a,b;c\\"d" ; proto=https']), [{ host: 'a,b;c"d', proto: 'https' }]);
      for (const bad of ['for', 'for=', 'for="x', 'for=a b', 'for=a;for=b', '=x']) assert.equal(parseForwarded([bad]), undefined, bad);
    });
  });

  describe('X-Forwarded-*', () => {
    const opts = { trustedProxies: ['127.0.0.1', '10.0.0.0/8'] };

    it('ignores every header from an untrusted peer', async () => {
      const r = await run(opts, '203.0.113.9', [['x-forwarded-for', '1.2.3.4'], ['x-forwarded-proto', 'http'], ['forwarded', 'for=5.6.7.8']]);
      assert.deepEqual({ ...r, state: undefined }, { ...unchanged, remoteAddress: '203.0.113.9', state: undefined });
      assert.equal(r.state, undefined);
    });

    it('takes the client, scheme and host from a trusted peer', async () => {
      const r = await run(opts, '127.0.0.1', [['x-forwarded-for', '198.51.100.7'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'www.example.com']]);
      assert.deepEqual({ ...r, state: undefined }, { remoteAddress: '198.51.100.7', remotePort: 0, scheme: 'http', authority: 'www.example.com', state: undefined });
      assert.deepEqual(r.state, unchanged, 'the values seen before stay in ctx.state.forwarded');
    });

    it('walks the chain from the right and stops at the first untrusted address', async () => {
      assert.equal((await run(opts, '127.0.0.1', [['x-forwarded-for', '1.1.1.1, 2.2.2.2, 10.0.0.5, 10.0.0.6']])).remoteAddress, '2.2.2.2');
      assert.equal((await run(opts, '127.0.0.1', [['x-forwarded-for', '1.1.1.1'], ['x-forwarded-for', '10.0.0.5']])).remoteAddress, '1.1.1.1', 'repeated fields are one list');
      // The client itself may claim anything on the left: only what trusted proxies appended counts.
      assert.equal((await run(opts, '127.0.0.1', [['x-forwarded-for', '10.0.0.1, 6.6.6.6, 10.0.0.5']])).remoteAddress, '6.6.6.6');
      // Everything trusted: the leftmost entry is the client.
      assert.equal((await run(opts, '127.0.0.1', [['x-forwarded-for', '10.0.0.1, 10.0.0.5']])).remoteAddress, '10.0.0.1');
    });

    it('consumes at most `hops` entries', async () => {
      const h = [['x-forwarded-for', '1.1.1.1, 10.0.0.5, 10.0.0.6']] as Array<[string, string]>;
      assert.equal((await run({ ...opts, hops: 1 }, '127.0.0.1', h)).remoteAddress, '10.0.0.6');
      assert.equal((await run({ ...opts, hops: 2 }, '127.0.0.1', h)).remoteAddress, '10.0.0.5');
      assert.equal((await run({ ...opts, hops: 3 }, '127.0.0.1', h)).remoteAddress, '1.1.1.1');
    });

    it('lines X-Forwarded-Proto and -Host up with X-Forwarded-For from the right', async () => {
      const r = await run(opts, '127.0.0.1', [
        ['x-forwarded-for', '1.1.1.1, 10.0.0.5'], ['x-forwarded-proto', 'https, http'], ['x-forwarded-host', 'public.example, internal.example'],
      ]);
      assert.deepEqual([r.remoteAddress, r.scheme, r.authority], ['1.1.1.1', 'https', 'public.example']);
      const one = await run(opts, '127.0.0.1', [['x-forwarded-for', '1.1.1.1, 10.0.0.5'], ['x-forwarded-proto', 'http']]);
      assert.deepEqual([one.remoteAddress, one.scheme], ['1.1.1.1', 'http'], 'a single proto belongs to the nearest hop');
      const protoOnly = await run(opts, '127.0.0.1', [['x-forwarded-proto', 'http']]);
      assert.deepEqual([protoOnly.remoteAddress, protoOnly.scheme], ['127.0.0.1', 'http']);
    });

    it('keeps addresses with ports and ignores junk values', async () => {
      assert.deepEqual(Object.values(await run(opts, '127.0.0.1', [['x-forwarded-for', '203.0.113.1:5555']])).slice(0, 2), ['203.0.113.1', 5555]);
      assert.equal((await run(opts, '127.0.0.1', [['x-forwarded-for', '[2001:db8::7]:443']])).remoteAddress, '2001:db8::7');
      const junk = await run(opts, '127.0.0.1', [['x-forwarded-for', 'not-an-ip'], ['x-forwarded-proto', 'gopher'], ['x-forwarded-host', 'evil.com/path']]);
      assert.deepEqual({ ...junk, state: undefined }, { ...unchanged, state: undefined });
    });

    it('trusts IPv6 proxies by CIDR and IPv4-mapped peers by their IPv4 rule', async () => {
      assert.equal((await run({ trustedProxies: ['fd00::/8'] }, 'fd00::1', [['x-forwarded-for', '2001:db8::1']])).remoteAddress, '2001:db8::1');
      assert.equal((await run({ trustedProxies: ['fd00::/8'] }, 'fe00::1', [['x-forwarded-for', '2001:db8::1']])).remoteAddress, 'fe00::1');
      assert.equal((await run({ trustedProxies: ['::1'] }, '::1', [['x-forwarded-for', '192.0.2.1']])).remoteAddress, '192.0.2.1');
      assert.equal((await run(opts, '::ffff:127.0.0.1', [['x-forwarded-for', '192.0.2.1']])).remoteAddress, '192.0.2.1');
      assert.equal((await run(opts, '::ffff:10.2.3.4', [['x-forwarded-for', '192.0.2.1, ::ffff:10.0.0.9']])).remoteAddress, '192.0.2.1');
    });
  });

  describe('Forwarded (RFC 7239)', () => {
    const opts = { trustedProxies: ['127.0.0.1', '10.0.0.0/8', 'fd00::/8'] };

    it('reads for, proto and host, with a quoted IPv6 node and port', async () => {
      const r = await run(opts, '127.0.0.1', [['forwarded', 'for="[2001:db8:cafe::17]:4711";proto=http;host="example.com:8080"']]);
      assert.deepEqual({ ...r, state: undefined }, { remoteAddress: '2001:db8:cafe::17', remotePort: 4711, scheme: 'http', authority: 'example.com:8080', state: undefined });
    });

    it('walks elements from the right, across field lines, stopping at the first untrusted node', async () => {
      const r = await run(opts, '127.0.0.1', [['forwarded', 'for=192.0.2.43;proto=https;host=a.example, for=198.51.100.17;proto=http'], ['Forwarded', 'for="[fd00::5]";proto=http;host=b.internal']]);
      assert.deepEqual([r.remoteAddress, r.scheme, r.authority], ['198.51.100.17', 'http', 'b.internal']);
      const all = await run(opts, '127.0.0.1', [['forwarded', 'for=192.0.2.43;proto=https;host=a.example, for=10.1.1.1;proto=http;host=b.internal']]);
      assert.deepEqual([all.remoteAddress, all.scheme, all.authority], ['192.0.2.43', 'https', 'a.example']);
    });

    it('stops at an obfuscated or unknown node, keeping the last known address', async () => {
      const hidden = await run(opts, '127.0.0.1', [['forwarded', 'for=192.0.2.1, for=_hidden;proto=http']]);
      assert.deepEqual([hidden.remoteAddress, hidden.scheme], ['127.0.0.1', 'http']);
      const unknown = await run(opts, '127.0.0.1', [['forwarded', 'for=192.0.2.1, for=10.0.0.2, for=unknown, for=10.0.0.3']]);
      assert.equal(unknown.remoteAddress, '10.0.0.3');
    });

    it('prefers Forwarded over X-Forwarded-*', async () => {
      const r = await run(opts, '127.0.0.1', [['x-forwarded-for', '6.6.6.6'], ['forwarded', 'for=192.0.2.9']]);
      assert.equal(r.remoteAddress, '192.0.2.9');
    });

    it('ignores a malformed Forwarded field altogether', async () => {
      const r = await run(opts, '127.0.0.1', [['forwarded', 'for=192.0.2.9;for=192.0.2.10'], ['x-forwarded-for', '6.6.6.6']]);
      assert.deepEqual({ ...r, state: undefined }, { ...unchanged, state: undefined });
    });

    it('ignores Forwarded from an untrusted peer', async () => {
      const r = await run(opts, '192.0.2.200', [['forwarded', 'for=192.0.2.9;proto=http']]);
      assert.deepEqual([r.remoteAddress, r.scheme], ['192.0.2.200', 'https']);
    });
  });

  describe('on a server', () => {
    let cert: TestCert;
    let server: Server;
    let port: number;

    before(async () => {
      cert = makeTestCert();
      server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
      server.use(forwarded({ trustedProxies: ['loopback'] }));
      server.use((ctx) => {
        const r = ctx.request;
        ctx.body = { remoteAddress: r.remoteAddress, scheme: r.scheme, authority: r.authority, protocol: r.protocol };
      });
      await server.listen();
      port = server.tcpListeners[0].port;
    });
    after(async () => server.close({ timeoutMs: 1000 }));

    it('rewrites the request seen by the application, over HTTP/1.1 and HTTP/2', async () => {
      const h1 = await new Promise<Record<string, string>>((resolve, reject) => {
        https.get({
          host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false,
          headers: { 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'shop.example' },
        }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve(JSON.parse(s)));
        }).on('error', reject);
      });
      assert.deepEqual(h1, { remoteAddress: '198.51.100.1', scheme: 'http', authority: 'shop.example', protocol: 'http/1.1' });
      const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      const h2 = await new Promise<Record<string, string>>((resolve, reject) => {
        const s = session.request({ ':path': '/', forwarded: 'for="[2001:db8::5]:1234";proto=https;host=api.example' });
        let body = '';
        s.on('data', (d) => (body += d));
        s.on('end', () => resolve(JSON.parse(body)));
        s.on('error', reject);
      });
      session.close();
      assert.deepEqual(h2, { remoteAddress: '2001:db8::5', scheme: 'https', authority: 'api.example', protocol: 'h2' });
    });
  });
});
