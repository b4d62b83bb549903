// The drain spreads closes over the window (with an injected random source), closes each item
// exactly once, and flush() closes what is still waiting.

import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spreadCloses } from '../../broker/src/server/drain.js';

describe('spreadCloses', () => {
  it('schedules each close at random() × window and resolves after the last', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const closed: Array<[string, number]> = [];
      let now = 0;
      const randoms = [0.5, 0, 0.999];
      const drain = spreadCloses(['a', 'b', 'c'], (x) => closed.push([x, now]), 1000, () => randoms.shift() ?? 0);
      for (const step of [0, 499, 1, 498, 1]) {
        now += step;
        mock.timers.tick(step);
      }
      assert.deepEqual(closed, [['b', 0], ['a', 500], ['c', 999]]);
      await drain.done;
    } finally {
      mock.timers.reset();
    }
  });

  it('flush() closes the rest at once, each item exactly once', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const closed: string[] = [];
      const drain = spreadCloses(['a', 'b', 'c'], (x) => closed.push(x), 10_000, () => 0.9);
      drain.flush();
      mock.timers.tick(10_000);
      assert.deepEqual(closed.sort(), ['a', 'b', 'c']);
      await drain.done;
    } finally {
      mock.timers.reset();
    }
  });

  it('nothing to close, or a zero window: done at once', async () => {
    await spreadCloses([], () => assert.fail('nothing to close'), 1000).done;
    const closed: string[] = [];
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const drain = spreadCloses(['a'], (x) => closed.push(x), 0);
      mock.timers.tick(0);
      await drain.done;
      assert.deepEqual(closed, ['a']);
    } finally {
      mock.timers.reset();
    }
  });
});
