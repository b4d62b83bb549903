// reference §1.8: the MESSAGE `destination` header, and its (partial) round trip with §1.1 parsing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDestination, parseDestination } from '../../broker/src/destination/index.js';

describe('formatDestination', () => {
  it('default exchange → /queue/<rk>', () => assert.equal(formatDestination('', 'orders'), '/queue/orders'));
  it('amq.topic → /topic/<rk>, with escaping', () =>
    assert.equal(formatDestination('amq.topic', 'a/b%25c.é'), '/topic/a%2Fb%2525c.%C3%A9'));
  it('other exchange without key → /exchange/<x>', () => assert.equal(formatDestination('amq.direct', ''), '/exchange/amq.direct'));
  it('other exchange with key → /exchange/<x>/<rk>', () => assert.equal(formatDestination('feed', 'user_x'), '/exchange/feed/user_x'));
  it('a configured default topic exchange is not shown as /topic', () =>
    assert.equal(formatDestination('my.topic', 'k'), '/exchange/my.topic/k'));
  it('escapes the exchange name too', () => assert.equal(formatDestination('a/b%', 'c/d'), '/exchange/a%2Fb%25/c%2Fd'));
  it('escapes control bytes upper-case, keeps 0x7F and printable ASCII', () => {
    assert.equal(formatDestination('', 'a\nb\x1fc\x7fd e:f'), '/queue/a%0Ab%1Fc\x7fd e:f');
  });
  it('escapes multi-byte UTF-8 per byte', () => assert.equal(formatDestination('', '€'), '/queue/%E2%82%AC'));
  it('empty key on the default exchange and amq.topic', () => {
    assert.equal(formatDestination('', ''), '/queue/');
    assert.equal(formatDestination('amq.topic', ''), '/topic/');
  });
});

// Printable ASCII (0x20–0x7F) except '%': what formatting leaves intact apart from '/'.
const safeKey = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0x7f })
    .filter((c) => c !== 0x25)
    .map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 40,
});

describe('formatDestination → parseDestination round trip', () => {
  it('a queue routing key without % or non-printable bytes parses back to the same queue', () => {
    fc.assert(
      fc.property(safeKey, (rk) => {
        const r = parseDestination(formatDestination('', rk), '1.2');
        assert.ok(r.ok, `did not parse: ${rk}`);
        assert.deepEqual(r.value, { kind: 'queue', name: rk });
      }),
      { numRuns: 300 },
    );
  });
  it('the same holds for amq.topic keys and /topic', () => {
    fc.assert(
      fc.property(safeKey, (rk) => {
        const r = parseDestination(formatDestination('amq.topic', rk), '1.2');
        assert.ok(r.ok);
        assert.deepEqual(r.value, { kind: 'topic', name: rk });
      }),
      { numRuns: 200 },
    );
  });
  it('is not symmetric for %: %25 is not decoded on input', () => {
    const r = parseDestination(formatDestination('', 'a%b'), '1.2');
    assert.ok(r.ok);
    assert.deepEqual(r.value, { kind: 'queue', name: 'a%25b' });
  });
});
