import { strict as assert } from 'node:assert';
import { H3StreamError, H3_MESSAGE_ERROR, checkRequestHeaders, checkTrailers, prepareResponseFields } from '../../../src/h3';
import type { HeaderField } from '../../../src/qpack';
import { GET } from './helpers';

function malformedReason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof H3StreamError, String(e));
    assert.equal(e.code, H3_MESSAGE_ERROR);
    return e.reason;
  }
  assert.fail('expected a malformed message');
}

const CONNECT: HeaderField[] = [[':method', 'CONNECT'], [':authority', 'example.com:443']];
const EXT_CONNECT: HeaderField[] = [
  [':method', 'CONNECT'],
  [':protocol', 'webtransport'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/wt'],
];

describe('h3/fields: message validation (RFC 9114 §4.2-4.4)', () => {
  const valid: Array<[string, HeaderField[], boolean?]> = [
    ['a GET', GET],
    ['a POST with body fields', [[':method', 'POST'], [':scheme', 'https'], [':path', '/x?y'], [':authority', 'a'], ['content-length', '3'], ['te', 'trailers']]],
    ['host instead of :authority', [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], ['host', 'a']]],
    ['OPTIONS *', [[':method', 'OPTIONS'], [':scheme', 'https'], [':path', '*'], [':authority', 'a']]],
    ['CONNECT', CONNECT],
    ['extended CONNECT when enabled', EXT_CONNECT, true],
    ['obs-text and tabs inside values', [...GET, ['x', 'a\tb\xe9']]],
  ];
  for (const [name, headers, ext] of valid) {
    it(`accepts ${name}`, () => {
      checkRequestHeaders(headers, ext ?? false);
    });
  }

  it('returns the content-length (repeated identical values allowed, RFC 9110 §8.6)', () => {
    assert.equal(checkRequestHeaders([...GET, ['content-length', '42']], false).contentLength, 42);
    assert.equal(checkRequestHeaders([...GET, ['content-length', '7, 7']], false).contentLength, 7);
    assert.equal(checkRequestHeaders(GET, false).contentLength, undefined);
  });

  const malformed: Array<[string, HeaderField[], boolean?]> = [
    ['pseudo-header after a regular field', [[':method', 'GET'], [':scheme', 'https'], ['x', 'y'], [':path', '/'], [':authority', 'a']]],
    ['an unknown pseudo-header', [...GET, [':foo', 'bar']]],
    ['a response pseudo-header', [[':status', '200'], ...GET]],
    ['a duplicate :path', [...GET, [':path', '/again']]],
    ['missing :method', GET.filter(([n]) => n !== ':method')],
    ['missing :scheme', GET.filter(([n]) => n !== ':scheme')],
    ['missing :path', GET.filter(([n]) => n !== ':path')],
    ['an empty :path', GET.map(([n, v]) => [n, n === ':path' ? '' : v] as HeaderField)],
    ['no :authority and no host', GET.filter(([n]) => n !== ':authority')],
    [':authority differing from host', [...GET, ['host', 'other.example']]],
    ['an empty :authority', GET.map(([n, v]) => [n, n === ':authority' ? '' : v] as HeaderField)],
    ['CONNECT with :path', [...CONNECT, [':path', '/']]],
    ['CONNECT without :authority', [[':method', 'CONNECT']]],
    [':protocol when extended CONNECT is not enabled', EXT_CONNECT, false],
    [':protocol on GET', [...GET, [':protocol', 'websocket']], true],
    ['extended CONNECT without :path', EXT_CONNECT.filter(([n]) => n !== ':path'), true],
    ['an uppercase field name', [...GET, ['Content-Type', 'text/plain']]],
    ['an invalid field name', [...GET, ['x y', '1']]],
    ['an empty field name', [...GET, ['', '1']]],
    ['a value with CR LF', [...GET, ['x', 'a\r\nb']]],
    ['a value with NUL', [...GET, ['x', 'a\0b']]],
    ['a value with leading whitespace', [...GET, ['x', ' a']]],
    ['connection', [...GET, ['connection', 'close']]],
    ['keep-alive', [...GET, ['keep-alive', 'timeout=5']]],
    ['proxy-connection', [...GET, ['proxy-connection', 'keep-alive']]],
    ['transfer-encoding', [...GET, ['transfer-encoding', 'chunked']]],
    ['upgrade', [...GET, ['upgrade', 'websocket']]],
    ['te other than trailers', [...GET, ['te', 'gzip']]],
    ['a non-numeric content-length', [...GET, ['content-length', '1e3']]],
    ['conflicting content-length values', [...GET, ['content-length', '1'], ['content-length', '2']]],
  ];
  for (const [name, headers, ext] of malformed) {
    it(`rejects ${name} as H3_MESSAGE_ERROR`, () => {
      malformedReason(() => checkRequestHeaders(headers, ext ?? false));
    });
  }

  it('rejects pseudo-headers and connection fields in trailers', () => {
    checkTrailers([['x-checksum', 'abc']]);
    malformedReason(() => checkTrailers([[':path', '/']]));
    malformedReason(() => checkTrailers([['transfer-encoding', 'chunked']]));
    malformedReason(() => checkTrailers([['X-Upper', '1']]));
  });

  it('prepares response fields: lowercase, pseudo first, no connection-specific fields', () => {
    assert.deepEqual(
      prepareResponseFields([['Content-Type', 'text/plain'], ['Connection', 'keep-alive'], [':status', '200'], ['Transfer-Encoding', 'chunked']]),
      [[':status', '200'], ['content-type', 'text/plain']],
    );
  });
});
