// BindLanes: calls on one key run in order, calls on keys of different lanes overlap, and a lane
// whose channel closed opens a new one. The channel here is a stand-in: only which channel a call
// got and when it ran matter (the broker side is in test/integration/shared-fanout.test.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Channel } from 'amqplib';
import { BindLanes, laneIndex } from '../../broker/src/engine/amqp/bind-lanes.js';

class FakeChannel extends EventEmitter {
  closed = false;
  constructor(readonly id: number) {
    super();
  }
  close(): Promise<void> {
    this.closed = true;
    this.emit('close');
    return Promise.resolve();
  }
}

function lanesWith(count: number) {
  const opened: FakeChannel[] = [];
  const errors: Error[] = [];
  const lanes = new BindLanes(count, {
    open: () => {
      const ch = new FakeChannel(opened.length);
      opened.push(ch);
      return Promise.resolve(ch as unknown as Channel);
    },
    onChannelError: (err) => errors.push(err),
  });
  return { lanes, opened, errors };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Two keys that land on different lanes of `count`. */
function keysOnTwoLanes(count: number): [string, string] {
  const first = 'user_0';
  for (let i = 1; i < 100; i++) if (laneIndex(`user_${i}`, count) !== laneIndex(first, count)) return [first, `user_${i}`];
  throw new Error('no second lane found');
}

test('laneIndex is stable, in range, and spreads feed keys over every lane', () => {
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) {
    const lane = laneIndex(`/exchange/feed\0user_${i}`, 4);
    assert.equal(lane, laneIndex(`/exchange/feed\0user_${i}`, 4));
    counts[lane]!++;
  }
  for (const c of counts) assert.ok(c > 800 && c < 1200, `uneven lanes: ${counts.join(', ')}`);
  assert.equal(laneIndex('anything', 1), 0);
});

test('calls on one key run one after the other, in call order, even when an earlier one fails', async () => {
  const { lanes } = lanesWith(4);
  const order: string[] = [];
  const gate = deferred();
  const first = lanes.run('k', async () => {
    order.push('bind start');
    await gate.promise;
    order.push('bind end');
    throw new Error('bind failed');
  });
  const second = lanes.run('k', async () => {
    order.push('unbind');
    return 'unbound';
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['bind start'], 'the unbind waits for the bind');
  gate.resolve();
  await assert.rejects(first, /bind failed/);
  assert.equal(await second, 'unbound');
  assert.deepEqual(order, ['bind start', 'bind end', 'unbind']);
});

test('calls on keys of different lanes overlap, each on its own channel', async () => {
  const { lanes, opened } = lanesWith(4);
  const [a, b] = keysOnTwoLanes(4);
  const gate = deferred();
  const seen: number[] = [];
  const slow = lanes.run(a, async (channel) => {
    seen.push(((await channel()) as unknown as FakeChannel).id);
    await gate.promise;
  });
  // Finishes while the first lane is still held.
  await lanes.run(b, async (channel) => {
    seen.push(((await channel()) as unknown as FakeChannel).id);
  });
  gate.resolve();
  await slow;
  assert.deepEqual(seen, [0, 1]);
  assert.equal(opened.length, 2);
});

test('a lane opens its channel only when a call asks for it, and keeps it', async () => {
  const { lanes, opened } = lanesWith(2);
  await lanes.run('k', async () => undefined);
  assert.equal(opened.length, 0);
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) await lanes.run('k', async (channel) => void ids.push(((await channel()) as unknown as FakeChannel).id));
  assert.deepEqual(ids, [0, 0, 0]);
});

test('a closed lane channel is replaced on the next call; errors reach the owner; reset closes all', async () => {
  const { lanes, opened, errors } = lanesWith(1);
  const channelOf = (): Promise<FakeChannel> => lanes.run('k', async (channel) => (await channel()) as unknown as FakeChannel);
  const first = await channelOf();
  first.emit('error', new Error('404 NOT_FOUND'));
  await first.close();
  assert.equal(errors.length, 1);
  const second = await channelOf();
  assert.notEqual(second, first);
  lanes.reset();
  assert.ok(second.closed);
  const third = await channelOf();
  assert.equal(third.id, 2);
  assert.equal(opened.length, 3);
});

test('idle() waits for every queued call', async () => {
  const { lanes } = lanesWith(4);
  const [a, b] = keysOnTwoLanes(4);
  let done = 0;
  for (const key of [a, b, a]) void lanes.run(key, async () => {
    await new Promise((r) => setTimeout(r, 5));
    done++;
  });
  await lanes.idle();
  assert.equal(done, 3);
});

test('a lane count that is not a positive integer is refused', () => {
  assert.throws(() => lanesWith(0), RangeError);
  assert.throws(() => lanesWith(1.5), RangeError);
});
