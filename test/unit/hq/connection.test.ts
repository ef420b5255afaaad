import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { RequestConnection } from '../../../src/h3';
import { HQ_ERROR_CODE, HqServerConnection } from '../../../src/hq';
import { FakeTransport, bytes, feedSplit, normalize, randomCuts, text } from '../h3/helpers';

function setup(): { t: FakeTransport; conn: HqServerConnection } {
  const t = new FakeTransport();
  const conn = new HqServerConnection(t);
  conn.start();
  return { t, conn };
}

const request = (path: string): unknown => ({
  type: 'headers',
  streamId: 0,
  headers: [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', '']],
});

describe('hq/connection (HTTP/0.9 over QUIC, hq-interop)', () => {
  for (const [name, line] of [
    ['CRLF', 'GET /index.html\r\n'],
    ['LF', 'GET /index.html\n'],
    ['FIN only', 'GET /index.html'],
  ]) {
    it(`parses a request line ended by ${name}, split at every byte`, () => {
      const input = bytes(line);
      for (let cut = 0; cut <= input.length; cut++) {
        const { t, conn } = setup();
        const events = normalize(feedSplit((d, fin) => conn.receiveStreamData(0, d, fin), input, [cut], true));
        assert.deepEqual(events, [request('/index.html'), { type: 'data', streamId: 0, data: '', fin: true }]);
        assert.deepEqual([t.resets, t.stops], [[], []]);
      }
    });
  }

  it('parses the same with random splits', () => {
    const input = bytes('GET /a/b/c.bin\r\n');
    for (let seed = 1; seed < 30; seed++) {
      const { conn } = setup();
      const events = normalize(feedSplit((d, fin) => conn.receiveStreamData(0, d, fin), input, randomCuts(input.length, seed), true));
      assert.deepEqual(events[0], request('/a/b/c.bin'));
    }
  });

  it('emits the request as soon as the line ends, with fin true', () => {
    const { conn } = setup();
    const events = conn.receiveStreamData(0, bytes('GET /x\r\n'), false);
    assert.equal(events.length, 1);
    assert.ok(events[0].type === 'headers' && events[0].fin);
    assert.deepEqual(conn.receiveStreamData(0, bytes('trailing junk'), true), []);
  });

  it('writes the raw body: no status line, no framing', () => {
    const { t, conn } = setup();
    conn.receiveStreamData(0, bytes('GET /x\r\n'), true);
    conn.sendHeaders(0, [[':status', '200'], ['content-type', 'text/plain']]);
    conn.sendData(0, bytes('hello '));
    conn.sendData(0, bytes('world'));
    conn.end(0);
    assert.equal(text(t.written(0)), 'hello world');
    assert.ok(t.fins.has(0));
    conn.sendData(0, bytes('late'));
    assert.equal(text(t.written(0)), 'hello world');
  });

  it('ends the stream on sendTrailers (HTTP/0.9 has none)', () => {
    const { t, conn } = setup();
    conn.receiveStreamData(0, bytes('GET /x\r\n'), true);
    conn.sendData(0, bytes('a'));
    conn.sendTrailers(0, [['x', 'y']]);
    assert.equal(text(t.written(0)), 'a');
    assert.ok(t.fins.has(0));
  });

  for (const [name, line] of [
    ['a POST', 'POST /x\r\n'],
    ['an HTTP/1.1 request line', 'GET /x HTTP/1.1\r\n'],
    ['a relative path', 'GET x\r\n'],
    ['an empty line', '\r\n'],
    ['a control character', 'GET /a\x01b\r\n'],
  ]) {
    it(`resets the stream (code ${HQ_ERROR_CODE}) on ${name}`, () => {
      const { t, conn } = setup();
      const events = conn.receiveStreamData(0, bytes(line), false);
      assert.deepEqual(events, [{ type: 'request-cancelled', streamId: 0, code: HQ_ERROR_CODE }]);
      assert.deepEqual(t.resets, [[0, HQ_ERROR_CODE]]);
      assert.deepEqual(t.stops, [[0, HQ_ERROR_CODE]]);
    });
  }

  it('resets a request line longer than the limit without waiting for its end', () => {
    const t = new FakeTransport();
    const conn = new HqServerConnection(t, { maxRequestLineLength: 16 });
    const events = conn.receiveStreamData(0, bytes('GET /' + 'a'.repeat(20)), false);
    assert.deepEqual(events, [{ type: 'request-cancelled', streamId: 0, code: HQ_ERROR_CODE }]);
  });

  it('reports a peer reset and STOP_SENDING as request-cancelled', () => {
    const { t, conn } = setup();
    conn.receiveStreamData(0, bytes('GET /x\r\n'), true);
    assert.deepEqual(conn.receiveStopSending(0, 7), [{ type: 'request-cancelled', streamId: 0, code: 7 }]);
    assert.deepEqual(t.resets, [[0, 7]]);
    conn.receiveStreamData(4, bytes('GET /y'), false);
    assert.deepEqual(conn.receiveStreamReset(4, 9), [{ type: 'request-cancelled', streamId: 4, code: 9 }]);
  });

  it('refuses requests on streams opened after goaway()', () => {
    const { t, conn } = setup();
    conn.receiveStreamData(0, bytes('GET /x\r\n'), true);
    conn.goaway();
    assert.deepEqual(conn.receiveStreamData(4, bytes('GET /y\r\n'), true), [{ type: 'request-cancelled', streamId: 4, code: HQ_ERROR_CODE }]);
    assert.deepEqual(t.resets, [[4, HQ_ERROR_CODE]]);
  });

  it('ignores unidirectional streams', () => {
    const { t, conn } = setup();
    assert.deepEqual(conn.receiveStreamData(2, bytes('GET /x\r\n'), true), []);
    assert.deepEqual([t.resets, t.stops, t.closes], [[], [], []]);
  });

  it('serves through the RequestConnection interface shared with HTTP/3', () => {
    const { t, conn } = setup();
    const c: RequestConnection = conn;
    for (const e of c.receiveStreamData(0, bytes('GET /hi\n'), true)) {
      if (e.type !== 'headers') continue;
      c.sendHeaders(e.streamId, [[':status', '200']]);
      c.sendData(e.streamId, bytes(e.headers.find(([n]) => n === ':path')![1]), true);
    }
    assert.equal(text(t.written(0)), '/hi');
  });

  it('never throws on random input (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.boolean(), (data, fin) => {
        const { conn } = setup();
        for (const e of conn.receiveStreamData(0, data, fin)) {
          assert.ok(e.type === 'headers' || e.type === 'request-cancelled');
        }
      }),
    );
  });
});
