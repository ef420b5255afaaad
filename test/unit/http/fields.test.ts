import { strict as assert } from 'node:assert';
import { Fields, toHeaderObject } from '../../../src/http/fields';

describe('http Fields', () => {
  it('lowercases names and joins repeated values (cookies with "; ")', () => {
    const f = new Fields().append('Accept', 'a').append('X-Y', '1').append('accept', 'b').append('Cookie', 'c=1').append('cookie', 'd=2');
    assert.equal(f.get('ACCEPT'), 'a, b');
    assert.equal(f.get('cookie'), 'c=1; d=2');
    assert.deepEqual(f.getAll('accept'), ['a', 'b']);
    assert.equal(f.get('missing'), undefined);
    assert.deepEqual(f.getAll('missing'), []);
    assert.equal(f.size, 3);
    assert.deepEqual(f.toList(), [['accept', 'a'], ['x-y', '1'], ['accept', 'b'], ['cookie', 'c=1'], ['cookie', 'd=2']]);
  });

  it('set() replaces every value at the place of the first; delete() removes them all', () => {
    const f = new Fields([['a', '1'], ['b', '2'], ['a', '3'], ['c', '4']]);
    f.set('A', 'x');
    assert.deepEqual(f.toList(), [['a', 'x'], ['b', '2'], ['c', '4']]);
    f.set('b', ['p', 'q', 'r']);
    assert.deepEqual(f.toList(), [['a', 'x'], ['b', 'p'], ['b', 'q'], ['b', 'r'], ['c', '4']]);
    f.set('content-length', 12);
    assert.equal(f.get('content-length'), '12');
    assert.equal(f.delete('B'), true);
    assert.equal(f.delete('b'), false);
    assert.deepEqual([...f], [['a', 'x'], ['c', '4'], ['content-length', '12']]);
    f.set('a', []);
    assert.equal(f.has('a'), false);
    assert.equal(f.size, 2);
  });

  it('getAll() returns a copy; count and byteLength measure the lines; toObject() makes arrays of repeats', () => {
    const f = new Fields({ 'Set-Cookie': ['a=1', 'b=2'], Host: 'h', skipped: undefined });
    f.getAll('set-cookie').push('c=3');
    assert.deepEqual(f.getAll('set-cookie'), ['a=1', 'b=2']);
    assert.equal(f.count, 3);
    assert.equal(f.byteLength, 'set-cookie'.length * 2 + 6 + 'host'.length + 1);
    assert.deepEqual(f.toObject(), { 'set-cookie': ['a=1', 'b=2'], host: 'h' });
  });

  it('fromLowercasePairs() leaves out pseudo-header fields', () => {
    const f = Fields.fromLowercasePairs([':method', 'GET', ':path', '/', 'accept', '*/*', 'accept', 'x']);
    assert.deepEqual(f.toList(), [['accept', '*/*'], ['accept', 'x']]);
    f.append('a', 'b');
    // Out of order (not what HTTP/2 allows, but not ours to check here).
    const g = Fields.fromLowercasePairs([':method', 'GET', 'accept', '*/*', ':path', '/', 'accept', 'x']);
    assert.deepEqual(g.toList(), [['accept', '*/*'], ['accept', 'x']]);
    assert.equal(Fields.fromLowercasePairs([]).size, 0);
  });

  it('toHeaderObject() adds pairs to an object, repeats as arrays, skipping names', () => {
    const o = toHeaderObject([['a', '1'], ['a', '2'], ['a', '3'], ['connection', 'close'], ['b', '4']], { ':status': 200 } as Record<string, unknown> as Record<string, string | number | string[]>, new Set(['connection']));
    assert.deepEqual(o, { ':status': 200, a: ['1', '2', '3'], b: '4' });
  });
});
