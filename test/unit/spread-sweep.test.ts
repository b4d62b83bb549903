import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sliceSchedule, SpreadSweep } from '../../broker/src/transport/spread-sweep.js';

/** A sweep over `count` numbered items that records which ones each tick visited. */
function sweepOf(slots: number, count: number): { sweep: SpreadSweep<number>; visited: number[][]; tick(): number[] } {
  const visited: number[][] = [];
  let current: number[] = [];
  const sweep = new SpreadSweep<number>(slots, (item) => current.push(item));
  for (let i = 0; i < count; i++) sweep.add(i);
  return {
    sweep,
    visited,
    tick() {
      current = [];
      sweep.tick();
      visited.push(current);
      return current;
    },
  };
}

describe('sliceSchedule', () => {
  test('the default 30 s ping period runs as 300 slices of 100 ms', () => {
    assert.deepEqual(sliceSchedule(30_000), { slots: 300, tickMs: 100 });
  });

  test('a long period keeps 300 slots and lengthens the tick', () => {
    assert.deepEqual(sliceSchedule(120_000), { slots: 300, tickMs: 400 });
  });

  test('short periods get fewer slots; under 150 ms one slot per period', () => {
    assert.deepEqual(sliceSchedule(500), { slots: 5, tickMs: 100 });
    assert.deepEqual(sliceSchedule(40), { slots: 1, tickMs: 40 });
  });

  test('slots × tick is the period even when it does not divide evenly', () => {
    for (const period of [1, 149, 151, 1234, 29_999, 45_678]) {
      const { slots, tickMs } = sliceSchedule(period);
      assert.ok(Math.abs(slots * tickMs - period) < 1e-6, `${period}: ${slots} × ${tickMs}`);
    }
  });

  test('a period of 0 or less is refused', () => {
    assert.throws(() => sliceSchedule(0), RangeError);
    assert.throws(() => sliceSchedule(-5), RangeError);
  });
});

describe('SpreadSweep', () => {
  test('every item is visited exactly once per period (slots ticks)', () => {
    const s = sweepOf(7, 100);
    for (let period = 0; period < 3; period++) {
      const seen = new Map<number, number>();
      for (let t = 0; t < 7; t++) for (const item of s.tick()) seen.set(item, (seen.get(item) ?? 0) + 1);
      assert.equal(seen.size, 100);
      assert.ok([...seen.values()].every((n) => n === 1));
    }
  });

  test('no tick visits more than its share: 10,000 items over 300 slots is at most 34 per tick', () => {
    const s = sweepOf(300, 10_000);
    for (let t = 0; t < 300; t++) assert.ok(s.tick().length <= Math.ceil(10_000 / 300));
    assert.equal(s.visited.flat().length, 10_000);
  });

  test('an item is visited one period after its previous visit, not sooner', () => {
    const s = sweepOf(5, 12);
    const lastTick = new Map<number, number>();
    for (let t = 0; t < 20; t++) {
      for (const item of s.tick()) {
        const before = lastTick.get(item);
        if (before !== undefined) assert.equal(t - before, 5, `item ${item}`);
        lastTick.set(item, t);
      }
    }
  });

  test('deleted items are no longer visited or counted; adding twice counts once', () => {
    const s = sweepOf(4, 10);
    s.sweep.add(3);
    assert.equal(s.sweep.size, 10);
    s.sweep.delete(3);
    s.sweep.delete(42);
    assert.equal(s.sweep.size, 9);
    for (let t = 0; t < 4; t++) s.tick();
    assert.deepEqual(s.visited.flat().sort((a, b) => a - b), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
  });

  test('a visit may delete items of its own slot, itself included, and the rest are still visited', () => {
    const visited: number[] = [];
    const sweep: SpreadSweep<number> = new SpreadSweep<number>(1, (item) => {
      visited.push(item);
      sweep.delete(item);
      if (item === 0) sweep.delete(2);
    });
    for (const i of [0, 1, 2, 3]) sweep.add(i);
    sweep.tick();
    assert.deepEqual(visited, [0, 1, 3]);
    assert.equal(sweep.size, 0);
  });

  test('items that come and go keep the slots balanced', () => {
    const s = sweepOf(10, 0);
    for (let i = 0; i < 1000; i++) {
      s.sweep.add(i);
      if (i % 3 === 0) s.sweep.delete(i - 1);
    }
    const sizes = Array.from({ length: 10 }, () => s.tick().length);
    assert.equal(sizes.reduce((a, b) => a + b, 0), s.sweep.size);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 35, `slot sizes ${sizes.join(', ')}`);
  });

  test('slot counts that are not positive integers are refused', () => {
    assert.throws(() => new SpreadSweep(0, () => {}), RangeError);
    assert.throws(() => new SpreadSweep(2.5, () => {}), RangeError);
  });
});
