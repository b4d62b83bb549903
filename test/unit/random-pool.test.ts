// pooledRandomBytes: fresh bytes of the asked length, never the same bytes twice.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pooledRandomBytes, randomToken } from '../../broker/src/random-pool.js';

test('ids drawn across several pool refills are all distinct and of the asked length', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const b = pooledRandomBytes(16);
    assert.equal(b.length, 16);
    seen.add(b.toString('hex'));
  }
  assert.equal(seen.size, 2000);
  assert.match(randomToken(16), /^[A-Za-z0-9_-]{22}$/);
});

test('requests larger than a slice of the pool come straight from the OS', () => {
  const big = pooledRandomBytes(4096);
  assert.equal(big.length, 4096);
  assert.notEqual(big.toString('hex'), Buffer.alloc(4096).toString('hex'));
});
