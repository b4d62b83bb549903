// internList: equal lists come back as one shared, frozen array; different lists stay apart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { internList } from '../../broker/src/auth/interned-list.js';

test('equal lists are one array, frozen; order and content tell lists apart', () => {
  const a = internList(['read:*/*', 'write:*/*']);
  const b = internList(['read:*/*', 'write:*/*']);
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a));
  assert.notEqual(internList(['write:*/*', 'read:*/*']), a);
  assert.notEqual(internList(['read:*/*']), a);
  // A separator inside an element cannot make two different lists collide.
  assert.notEqual(internList(['a","b']), internList(['a', 'b']));
  assert.deepEqual(internList([]), []);
});

test('the caller keeps its own array: changing it later does not change the interned one', () => {
  const mine = ['read:/x/y'];
  const shared = internList(mine);
  mine.push('write:/x/y');
  assert.deepEqual(shared, ['read:/x/y']);
});
