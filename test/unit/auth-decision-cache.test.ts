// DecisionCache with an injected clock: TTL per decision kind, `unavailable` never cached, the LRU
// bound, single-flight coalescing of concurrent misses, clear() and the stats counters.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allow, deny, unavailable } from '../../broker/src/auth/authorizer.js';
import type { AuthDecision } from '../../broker/src/auth/authorizer.js';
import { DecisionCache } from '../../broker/src/auth/decision-cache.js';
import type { DecisionCacheOptions } from '../../broker/src/auth/decision-cache.js';

/** Lets the cache's deferred compute start (every queued microtask runs before setImmediate). */
const flushMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A cache on a hand-driven clock, plus a compute that counts its calls and answers `next`. */
function rig(options: Partial<DecisionCacheOptions> = {}) {
  let time = 1_000_000;
  const cache = new DecisionCache({ allowTtlMs: 1000, denyTtlMs: 100, maxEntries: 100, now: () => time, ...options });
  const state = { calls: 0, next: allow as AuthDecision<true> };
  const compute = async (): Promise<AuthDecision<true>> => {
    state.calls++;
    return state.next;
  };
  return {
    cache,
    state,
    compute,
    advance(ms: number) {
      time += ms;
    },
  };
}

describe('DecisionCache TTLs', () => {
  test('an allow is reused until allowTtlMs has passed, then recomputed', async () => {
    const r = rig();
    assert.deepEqual(await r.cache.get('k', r.compute), allow);
    r.advance(999);
    assert.deepEqual(await r.cache.get('k', r.compute), allow);
    assert.equal(r.state.calls, 1);
    r.advance(1);
    await r.cache.get('k', r.compute);
    assert.equal(r.state.calls, 2);
  });

  test('a deny is reused only for denyTtlMs', async () => {
    const r = rig();
    r.state.next = deny('no');
    assert.deepEqual(await r.cache.get('k', r.compute), deny('no'));
    r.advance(99);
    assert.deepEqual(await r.cache.get('k', r.compute), deny('no'));
    assert.equal(r.state.calls, 1);
    r.advance(1);
    r.state.next = allow;
    assert.deepEqual(await r.cache.get('k', r.compute), allow, 'the expired deny is not served');
    assert.equal(r.state.calls, 2);
  });

  test('a TTL of 0 disables caching of that kind only', async () => {
    const r = rig({ denyTtlMs: 0 });
    r.state.next = deny('no');
    await r.cache.get('d', r.compute);
    await r.cache.get('d', r.compute);
    assert.equal(r.state.calls, 2);
    r.state.next = allow;
    await r.cache.get('a', r.compute);
    await r.cache.get('a', r.compute);
    assert.equal(r.state.calls, 3);

    const noAllow = rig({ allowTtlMs: 0 });
    await noAllow.cache.get('a', noAllow.compute);
    await noAllow.cache.get('a', noAllow.compute);
    assert.equal(noAllow.state.calls, 2);
  });

  test('expired entries are dropped when looked up', async () => {
    const r = rig();
    await r.cache.get('k', r.compute);
    assert.equal(r.cache.stats().size, 1);
    r.advance(1000);
    r.state.next = unavailable('down');
    await r.cache.get('k', r.compute);
    assert.equal(r.cache.stats().size, 0);
  });

  test('keys asked once do not pile up: expired entries go when newer decisions are stored', async () => {
    const r = rig({ maxEntries: 100_000 });
    // Steady churn: 50 fresh keys (random subscription queues) a second for 10 minutes.
    for (let second = 0; second < 600; second++) {
      for (let i = 0; i < 50; i++) await r.cache.get(`q-${second}-${i}`, r.compute);
      r.advance(1000);
    }
    // Only what the 1 s allow TTL can still hold remains, not 30,000 entries.
    assert.ok(r.cache.stats().size <= 100, `size ${r.cache.stats().size}`);
    assert.equal(r.state.calls, 30_000);
  });
});

describe('DecisionCache never caches unavailable', () => {
  test('unavailable is recomputed every time, even with long TTLs', async () => {
    const r = rig({ allowTtlMs: 60_000, denyTtlMs: 60_000 });
    r.state.next = unavailable('auth service unavailable');
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await r.cache.get('k', r.compute), unavailable('auth service unavailable'));
    }
    assert.equal(r.state.calls, 5);
    assert.equal(r.cache.stats().size, 0);
    r.state.next = allow;
    await r.cache.get('k', r.compute);
    await r.cache.get('k', r.compute);
    assert.equal(r.state.calls, 6, 'the first allow after an outage is cached');
  });

  test('a rejected compute reaches the caller and is not cached', async () => {
    const r = rig();
    let calls = 0;
    const failing = async (): Promise<AuthDecision<true>> => {
      calls++;
      throw new Error('boom');
    };
    await assert.rejects(r.cache.get('k', failing), /boom/);
    await assert.rejects(r.cache.get('k', failing), /boom/);
    assert.equal(calls, 2);
    assert.deepEqual(await r.cache.get('k', r.compute), allow);
  });

  test('a compute that throws synchronously does not wedge the key', async () => {
    const r = rig();
    const throwing = (): Promise<AuthDecision<true>> => {
      throw new Error('sync');
    };
    await assert.rejects(r.cache.get('k', throwing), /sync/);
    assert.deepEqual(await r.cache.get('k', r.compute), allow);
    assert.equal(r.state.calls, 1);
  });
});

describe('DecisionCache bound', () => {
  test('past maxEntries the least recently used entry goes', async () => {
    const r = rig({ maxEntries: 3 });
    for (const key of ['a', 'b', 'c']) await r.cache.get(key, r.compute);
    await r.cache.get('a', r.compute); // a is now the most recently used; b the least
    await r.cache.get('d', r.compute);
    assert.equal(r.cache.stats().size, 3);
    assert.equal(r.state.calls, 4);
    await r.cache.get('a', r.compute);
    await r.cache.get('c', r.compute);
    await r.cache.get('d', r.compute);
    assert.equal(r.state.calls, 4, 'a, c, d still cached');
    await r.cache.get('b', r.compute);
    assert.equal(r.state.calls, 5, 'b was evicted');
  });

  test('size never exceeds maxEntries', async () => {
    const r = rig({ maxEntries: 10 });
    for (let i = 0; i < 500; i++) {
      await r.cache.get(`k${i}`, r.compute);
      assert.ok(r.cache.stats().size <= 10);
    }
    assert.equal(r.cache.stats().size, 10);
  });

  test('maxEntries 0 caches nothing', async () => {
    const r = rig({ maxEntries: 0 });
    await r.cache.get('k', r.compute);
    await r.cache.get('k', r.compute);
    assert.equal(r.state.calls, 2);
  });

  test('rejects negative or non-finite limits', () => {
    assert.throws(() => new DecisionCache({ allowTtlMs: -1, denyTtlMs: 0, maxEntries: 1 }), RangeError);
    assert.throws(() => new DecisionCache({ allowTtlMs: 0, denyTtlMs: Number.NaN, maxEntries: 1 }), RangeError);
    assert.throws(() => new DecisionCache({ allowTtlMs: 0, denyTtlMs: 0, maxEntries: Infinity }), RangeError);
  });
});

describe('DecisionCache single-flight', () => {
  test('1,000 concurrent identical misses make one compute and all get its answer', async () => {
    const r = rig();
    let release!: (d: AuthDecision<true>) => void;
    let calls = 0;
    const slow = (): Promise<AuthDecision<true>> => {
      calls++;
      return new Promise((resolve) => {
        release = resolve;
      });
    };
    const waiting = Array.from({ length: 1000 }, () => r.cache.get('k', slow));
    await flushMicrotasks();
    assert.equal(calls, 1);
    release(deny('nope'));
    const answers = await Promise.all(waiting);
    assert.equal(answers.length, 1000);
    for (const answer of answers) assert.deepEqual(answer, deny('nope'));
    assert.deepEqual(r.cache.stats(), { hits: 0, misses: 1, coalesced: 999, size: 1 });
  });

  test('concurrent misses share an unavailable answer, and the next call computes again', async () => {
    const r = rig();
    r.state.next = unavailable('down');
    const answers = await Promise.all(Array.from({ length: 50 }, () => r.cache.get('k', r.compute)));
    assert.equal(r.state.calls, 1);
    for (const answer of answers) assert.deepEqual(answer, unavailable('down'));
    await r.cache.get('k', r.compute);
    assert.equal(r.state.calls, 2);
  });

  test('different keys are not coalesced', async () => {
    const r = rig();
    await Promise.all([r.cache.get('a', r.compute), r.cache.get('b', r.compute), r.cache.get('a', r.compute)]);
    assert.equal(r.state.calls, 2);
  });
});

describe('DecisionCache stats and clear', () => {
  test('counts hits, misses, coalesced and size', async () => {
    const r = rig();
    await r.cache.get('a', r.compute);
    await r.cache.get('a', r.compute);
    await r.cache.get('a', r.compute);
    await Promise.all([r.cache.get('b', r.compute), r.cache.get('b', r.compute)]);
    assert.deepEqual(r.cache.stats(), { hits: 2, misses: 2, coalesced: 1, size: 2 });
  });

  test('clear drops entries, and an answer computed across a clear is not stored', async () => {
    const r = rig();
    await r.cache.get('a', r.compute);
    r.cache.clear();
    assert.equal(r.cache.stats().size, 0);
    await r.cache.get('a', r.compute);
    assert.equal(r.state.calls, 2);

    let release!: (d: AuthDecision<true>) => void;
    const pending = r.cache.get('late', () => new Promise<AuthDecision<true>>((resolve) => (release = resolve)));
    await flushMicrotasks();
    r.cache.clear();
    release(allow);
    assert.deepEqual(await pending, allow);
    await r.cache.get('late', r.compute);
    assert.equal(r.state.calls, 3, 'the pre-clear answer was not cached');
  });
});
