import { strict as assert } from 'node:assert';
import { httpDate } from '../../../src/http/date';

describe('httpDate (the Date field, RFC 9110 §5.6.7)', () => {
  it('formats IMF-fixdate, the RFC example included', () => {
    assert.equal(httpDate(Date.UTC(1994, 10, 6, 8, 49, 37)), 'Sun, 06 Nov 1994 08:49:37 GMT');
    assert.equal(httpDate(Date.UTC(2026, 0, 1, 0, 0, 0, 999)), 'Thu, 01 Jan 2026 00:00:00 GMT');
  });

  it('changes with the second, not within it', () => {
    const t = Date.UTC(2026, 10, 26, 5, 0, 0);
    assert.equal(httpDate(t), httpDate(t + 999));
    assert.equal(httpDate(t + 1000), 'Thu, 26 Nov 2026 05:00:01 GMT');
    // Going back (another caller's clock, a test) still formats the time asked for.
    assert.equal(httpDate(t), 'Thu, 26 Nov 2026 05:00:00 GMT');
  });
});
