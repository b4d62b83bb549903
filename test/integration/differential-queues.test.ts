// Differential tests, part 4: the queues a subscription leaves on the broker — names (reference
// §1.4), durability/auto-delete/exclusive (§1.3), arguments (§1.7), durable subscriptions (§1.5) —
// compared through the management API after RabbitMQ's Web-STOMP and Thumper ran the same script.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { durableSubscriptionQueue, messages, queueShape, useDifferential } from '../helpers/differential.js';
import type { Differential, Side } from '../helpers/differential.js';
import { sleep } from '../helpers/stomp-script.js';
import type { QueueInfo } from '../harness/rabbitmq.js';

// The queues themselves are compared, so Thumper declares one per subscription as RabbitMQ does
// (shared subscription queues, the default, are checked in shared-fanout.test.ts and by every other
// differential file, which compares what clients see).
const differential = useDifferential({ THUMPER_AMQP_SHARED_SUBSCRIPTIONS: 'false' });


/** Polls (bounded) until the queue is gone; auto-delete happens asynchronously after a close. */
async function gone(side: Side, name: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if ((await side.queueInfo(name)) === undefined) return true;
    await sleep(100);
  }
  return false;
}

const SUBSCRIPTION_QUEUE = /^stomp-subscription-[A-Za-z0-9_-]{22}$/;

test('durable /topic subscription: deterministic queue name, survives reconnects, deleted by a durable UNSUBSCRIBE', async (t) => {
  const d = differential(t);
  if (!d) return;
  // Shared by both runs (one after the other) so both must derive the very same queue name.
  const shared = randomBytes(4).toString('hex');
  const topic = `dur.${shared}`;
  const id = `d-${shared}`;
  const expectedName = durableSubscriptionQueue(topic, id);
  const subscribe = { id, destination: `/topic/${topic}`, durable: 'true', 'auto-delete': 'false' };
  const { rabbitmq } = await d.compare(async (side) => {
    side.cleanupQueue(expectedName);
    const first = await side.session();
    await first.request('SUBSCRIBE', subscribe);
    const declared = queueShape(await side.queueInfo(expectedName));
    await first.close();
    const pub = await side.session();
    await pub.request('SEND', { destination: `/topic/${topic}` }, 'while away 1');
    await pub.request('SEND', { destination: `/topic/${topic}`, persistent: 'true' }, 'while away 2');
    const second = await side.session();
    await second.request('SUBSCRIBE', subscribe);
    const missed = side.norm(await messages(second, id, 2), { keepQueueNames: [expectedName] });
    await second.request('UNSUBSCRIBE', { id, durable: 'true' });
    return { declared, missed, deleted: await gone(side, expectedName) };
  });
  assert.deepEqual(rabbitmq.declared, { durable: true, auto_delete: false, exclusive: false, arguments: {} });
  assert.equal(rabbitmq.deleted, true);
});

test('durable:true without auto-delete:false gives a durable auto-delete queue (reference §1.3)', async (t) => {
  const d = differential(t);
  if (!d) return;
  const shared = randomBytes(4).toString('hex');
  const expectedName = durableSubscriptionQueue(`half.${shared}`, `h-${shared}`);
  const { rabbitmq } = await d.compare(async (side) => {
    side.cleanupQueue(expectedName);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: `h-${shared}`, destination: `/topic/half.${shared}`, persistent: 'true' });
    const declared = queueShape(await side.queueInfo(expectedName));
    await conn.close();
    return { declared, deletedOnClose: await gone(side, expectedName) };
  });
  assert.equal(rabbitmq.declared?.auto_delete, true);
});

test('a durable /exchange subscription is not deleted by UNSUBSCRIBE durable:true', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const name = durableSubscriptionQueue(`xk-${side.run}`, 'xd');
    side.cleanupQueue(name);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'xd', destination: `/exchange/amq.direct/xk-${side.run}`, durable: 'true', 'auto-delete': 'false' });
    await conn.request('UNSUBSCRIBE', { id: 'xd', durable: 'true' });
    return { after: queueShape(await side.queueInfo(name)) };
  });
});

test('x-queue-name names the subscription queue', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const name = `xq-${side.run}`;
    side.cleanupQueue(name);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'xq', destination: `/topic/xq.${side.run}`, 'x-queue-name': name });
    const declared = queueShape(await side.queueInfo(name));
    await conn.request('SEND', { destination: `/topic/xq.${side.run}` }, 'via named queue');
    const got = side.norm(await messages(conn, 'xq', 1));
    return { declared, got };
  });
  assert.deepEqual(rabbitmq.declared, { durable: false, auto_delete: true, exclusive: false, arguments: {} });
});

// Every supported argument header, plus two RabbitMQ 3.10.8 ignores (x-overflow, x-queue-mode).
const ARGUMENT_HEADERS: Record<string, string> = {
  'x-message-ttl': '60000',
  'x-max-length': '10',
  'x-max-length-bytes': '100000',
  'x-max-priority': '5',
  'x-expires': '600000',
  'x-dead-letter-exchange': 'amq.fanout',
  'x-dead-letter-routing-key': 'dead',
  'x-overflow': 'reject-publish',
  'x-queue-mode': 'lazy',
};

test('queue-argument headers on a /queue SUBSCRIBE become the same queue arguments', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const name = `args-${side.run}`;
    side.cleanupQueue(name);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'args', destination: `/queue/${name}`, ...ARGUMENT_HEADERS });
    return queueShape(await side.queueInfo(name));
  });
  assert.equal(rabbitmq?.arguments['x-max-priority'], 5);
});

test('queue-argument headers on a SEND that declares a /queue', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const name = `sendargs-${side.run}`;
    side.cleanupQueue(name);
    const conn = await side.session();
    await conn.request('SEND', { destination: `/queue/${name}`, 'x-max-length': '3', 'x-message-ttl': '5000' }, 'declares');
    return queueShape(await side.queueInfo(name));
  });
});

interface DefaultCase {
  readonly label: string;
  readonly destination: (side: Side) => string;
  readonly exchange: string;
  readonly key: (side: Side) => string;
  readonly headers?: Record<string, string>;
}

const DEFAULTS: readonly DefaultCase[] = [
  { label: '/topic', destination: (s) => `/topic/def.${s.run}`, exchange: 'amq.topic', key: (s) => `def.${s.run}` },
  { label: '/exchange/amq.direct/<key>', destination: (s) => `/exchange/amq.direct/def-${s.run}`, exchange: 'amq.direct', key: (s) => `def-${s.run}` },
  {
    label: '/exchange/amq.topic/<pattern> with exclusive:true',
    destination: (s) => `/exchange/amq.topic/${s.run}.#`,
    exchange: 'amq.topic',
    key: (s) => `${s.run}.#`,
    headers: { exclusive: 'true' },
  },
];

for (const c of DEFAULTS) {
  test(`non-durable ${c.label} subscription queue: random name, same properties, gone after disconnect`, async (t) => {
    const d = differential(t);
    if (!d) return;
    const { rabbitmq } = await d.compare(async (side) => {
      const conn = await side.session();
      await conn.request('SUBSCRIBE', { id: 'def', destination: c.destination(side), ...c.headers });
      const names = await side.queuesBoundTo(c.exchange, c.key(side));
      assert.equal(names.length, 1, `one queue bound with ${c.key(side)}: ${names.join(', ')}`);
      const name = names[0]!;
      const info: QueueInfo | undefined = await side.queueInfo(name);
      await conn.close();
      return { nameShape: SUBSCRIPTION_QUEUE.test(name), declared: queueShape(info), deletedOnClose: await gone(side, name) };
    });
    assert.equal(rabbitmq.nameShape, true);
  });
}

test('/queue subscription with durable:false, exclusive:true, auto-delete:true', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const name = `excl-${side.run}`;
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'e', destination: `/queue/${name}`, durable: 'false', exclusive: 'true', 'auto-delete': 'true' });
    const declared = queueShape(await side.queueInfo(name));
    await conn.close();
    return { declared, deletedOnClose: await gone(side, name) };
  });
});
