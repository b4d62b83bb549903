// settleWithin: true as soon as the work settles either way, false once the time is up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settleWithin } from '../../broker/src/settle-within.js';

test('settleWithin: true for work that resolves or rejects in time, false for work that does not', async () => {
  assert.equal(await settleWithin(Promise.resolve('done'), 1000), true);
  assert.equal(await settleWithin(Promise.reject(new Error('failed')), 1000), true);
  const started = performance.now();
  assert.equal(await settleWithin(new Promise(() => {}), 30), false);
  assert.ok(performance.now() - started >= 25, 'waited for the time given');
});
