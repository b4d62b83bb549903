// Shared subscription queues against a real RabbitMQ node: one queue per exchange and Thumper node,
// one binding per distinct key, and the node's routing delivers to each subscriber exactly what a
// queue of its own, bound with the same key, receives from RabbitMQ (checked side by side for
// topic, direct and fanout exchanges). Each run has its own vhost.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { useRabbit, type RabbitNode } from '../harness/rabbitmq.js';
import { ConnectionPool } from '../../broker/src/engine/amqp/connection-pool.js';
import { SharedFanout, type FanoutMessage, type FanoutSubscriber } from '../../broker/src/engine/amqp/shared-fanout.js';
import type { SharedExchangeType } from '../../broker/src/destination/shared-binding.js';
import { EngineError } from '../../broker/src/engine/engine.js';
import type { StompError } from '../../broker/src/errors.js';

/** Warnings and errors are kept: a test can check that the AMQP connection itself never broke. */
const logLines: string[] = [];
const log = pino(
  { level: process.env['TEST_LOG_LEVEL'] ?? 'warn' },
  {
    write: (line: string) => {
      logLines.push(line);
      if (process.env['TEST_LOG_LEVEL'] !== undefined) process.stderr.write(line);
    },
  },
);
const connectionLosses = (): string[] => logLines.filter((l) => /"msg":"(AMQP connection error|lost the AMQP connection)"/.test(l));
const SUITE = { timeout: 60_000 };

let rabbit: RabbitNode;
let vhost: string;
let vhostUrl: string;
let pool: ConnectionPool;
let fanout: SharedFanout;
let admin: ChannelModel;
let channel: Channel;

before(async () => {
  rabbit = await useRabbit();
  vhost = `thumper-fanout-${randomBytes(4).toString('hex')}`;
  await rabbit.rabbitmqctl('add_vhost', vhost);
  await rabbit.rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  vhostUrl = `${rabbit.amqpUrl}/${encodeURIComponent(vhost)}`;
  pool = new ConnectionPool(
    { urls: [rabbit.amqpUrl], channelsPerConnection: 50, heartbeatSeconds: 10, connectionName: 'thumper-fanout-test', reconnect: { initialMs: 20, maxMs: 200 } },
    log,
  );
  await pool.start();
  fanout = new SharedFanout(pool, { queueExpiresMs: 60_000, restoreTimeoutMs: 5000, onConnectionLoss: 'restore', reconnect: { initialMs: 20, maxMs: 200 } }, log);
  admin = await amqp.connect(vhostUrl);
  channel = await admin.createChannel();
});

after(async () => {
  await fanout?.stop();
  await pool?.stop();
  await admin?.close().catch(() => {});
  await rabbit.rabbitmqctl('delete_vhost', vhost).catch(() => {});
  await rabbit.stop();
});

interface Recording extends FanoutSubscriber {
  readonly got: string[];
  readonly lostWith: StompError[];
}

function recording(): Recording {
  const got: string[] = [];
  const lostWith: StompError[] = [];
  return { got, lostWith, deliver: (m: FanoutMessage) => got.push(`${m.routingKey}|${m.body.toString()}`), lost: (e) => lostWith.push(e) };
}

/** Publishes with a trailing marker per subscriber queue and waits until everyone saw it (bounded). */
async function settle(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(await check(), `not settled: ${what}`);
}

async function sharedQueues(): Promise<string[]> {
  return (await rabbit.listQueues(vhost)).map((q) => q.name).filter((n) => n.startsWith('stomp-subscription-thumper-'));
}

/** A SharedFanout of its own on the suite's pool, keeping idle keys bound for `unbindDelayMs`. */
function fanoutWithUnbindDelay(unbindDelayMs: number): SharedFanout {
  return new SharedFanout(pool, { queueExpiresMs: 60_000, restoreTimeoutMs: 10_000, onConnectionLoss: 'restore', reconnect: { initialMs: 20, maxMs: 200 }, unbindDelayMs }, log);
}

/** The keys bound from `exchange`, by the management API: it answers well inside an idle delay, rabbitmqctl may not. */
async function boundKeys(exchange: string): Promise<string[]> {
  const url = new URL(`/api/exchanges/${encodeURIComponent(vhost)}/${encodeURIComponent(exchange)}/bindings/source`, rabbit.managementUrl);
  const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` }, signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as Array<{ routing_key: string }>).map((b) => b.routing_key).sort();
}

/** Routing keys and binding keys that exercise `*`, `#`, empty words and the empty key. */
const BINDING_KEYS = ['a.b', 'a.*', 'a.#', '#', '*', '', 'a', '*.b', '#.b', 'a.b.c', 'x.*.z', 'a.b'];
const ROUTING_KEYS = ['a.b', 'a.c', 'a', '', 'b', 'a.b.c', 'x.y.z', 'x..z', 'a.', '.b', 'q.b', 'a.b.c.d'];

describe('shared subscription queues', SUITE, () => {
  for (const type of ['topic', 'direct', 'fanout'] as const satisfies readonly SharedExchangeType[]) {
    test(`${type}: each subscriber gets exactly what its own bound queue gets, from one shared queue`, async () => {
      const exchange = `fx-${type}-${randomBytes(3).toString('hex')}`;
      await channel.assertExchange(exchange, type, { durable: false, autoDelete: false });
      // The reference: one real queue per subscription, as RabbitMQ's plugin would declare.
      const reference: Array<{ queue: string; got: string[] }> = [];
      const shared: Recording[] = [];
      const handles = [];
      for (const key of BINDING_KEYS) {
        const { queue } = await channel.assertQueue('', { exclusive: true });
        await channel.bindQueue(queue, exchange, key);
        const got: string[] = [];
        await channel.consume(queue, (m) => m && got.push(`${m.fields.routingKey}|${m.content.toString()}`), { noAck: true });
        reference.push({ queue, got });
        const sub = recording();
        shared.push(sub);
        handles.push(await fanout.subscribe(vhost, { exchange, type, bindingKey: key }, sub));
      }
      assert.equal((await sharedQueues()).length, 1, 'one shared queue for the exchange');

      ROUTING_KEYS.forEach((rk, i) => channel.publish(exchange, rk, Buffer.from(`m${i}`)));
      channel.publish(exchange, 'end', Buffer.from('end'));
      // `end` reaches the `#` binding on topic, everyone on fanout, no one on direct: wait on the
      // reference counts instead, then give the shared side the same chance.
      const total = (): number => reference.reduce((n, r) => n + r.got.length, 0);
      let last = -1;
      for (let i = 0; i < 40 && total() !== last; i++) {
        last = total();
        await new Promise((r) => setTimeout(r, 50));
      }
      await settle(() => shared.every((s, i) => s.got.length >= (reference[i]?.got.length ?? 0)), 'shared side behind');
      shared.forEach((s, i) => assert.deepEqual(s.got, reference[i]?.got, `binding key '${BINDING_KEYS[i]}'`));
      assert.ok(total() >= 5, 'the reference queues received messages at all');

      for (const h of handles) await h.release();
      assert.deepEqual(await sharedQueues(), [], 'the shared queue goes with its last subscriber');
      for (const r of reference) await channel.deleteQueue(r.queue);
      await channel.deleteExchange(exchange);
    });
  }

  test('bindings are counted: releasing one of two subscribers on a key keeps the other served', async () => {
    const exchange = `fx-count-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(exchange, 'topic', { durable: false });
    const first = recording();
    const second = recording();
    const h1 = await fanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'k' }, first);
    const h2 = await fanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'k' }, second);
    await h1.release();
    await h1.release();
    channel.publish(exchange, 'k', Buffer.from('after'));
    await settle(() => second.got.length === 1, 'second subscriber');
    assert.deepEqual(first.got, []);
    assert.equal(fanout.stats().subscribers, 1);
    await h2.release();
    await channel.deleteExchange(exchange);
  });

  test('binds and unbinds of many keys at once, pipelined: the broker ends with exactly the keys still subscribed', async () => {
    const exchange = `fx-storm-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(exchange, 'direct', { durable: false });
    const KEYS = 60;
    const subscribe = (key: string): Promise<{ key: string; sub: Recording; handle: { release(): Promise<void> } }> => {
      const sub = recording();
      return fanout.subscribe(vhost, { exchange, type: 'direct', bindingKey: key }, sub).then((handle) => ({ key, sub, handle }));
    };
    // Key i has 1 + i % 3 subscribers, all subscribing at once.
    const first = await Promise.all(Array.from({ length: KEYS }, (_, i) => Array.from({ length: 1 + (i % 3) }, () => subscribe(`k${i}`))).flat());
    // At once: keys 0-19 lose every subscriber; keys 20-29 lose theirs and get one new one; one
    // subscriber of every other key with two or more leaves.
    const byKey = new Map<string, typeof first>();
    for (const s of first) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s]);
    const leaving: typeof first = [];
    const kept: typeof first = [];
    for (let i = 0; i < KEYS; i++) {
      const subs = byKey.get(`k${i}`) ?? [];
      if (i < 30) leaving.push(...subs);
      else if (subs.length >= 2) leaving.push(subs[0]!), kept.push(...subs.slice(1));
      else kept.push(...subs);
    }
    const [, added] = await Promise.all([
      Promise.all(leaving.map((s) => s.handle.release())),
      Promise.all(Array.from({ length: 10 }, (_, i) => subscribe(`k${20 + i}`))),
    ]);
    const live = [...kept, ...added];
    const expectedKeys = [...new Set(live.map((s) => s.key))].sort();
    assert.deepEqual(await boundKeys(exchange), expectedKeys, 'bindings on the broker');
    assert.equal(fanout.stats().subscribers, live.length);

    for (let i = 0; i < KEYS; i++) channel.publish(exchange, `k${i}`, Buffer.from(`m${i}`));
    await settle(() => live.every((s) => s.sub.got.length === 1), 'every live subscriber got its key');
    for (const s of live) assert.deepEqual(s.sub.got, [`${s.key}|m${s.key.slice(1)}`]);
    for (const s of leaving) assert.deepEqual(s.sub.got, []);

    await Promise.all(live.map((s) => s.handle.release()));
    assert.deepEqual(await sharedQueues(), [], 'the shared queue goes with its last subscriber');
    // Binds and unbinds in one batch must not confuse amqplib (queue.unbind is always answered).
    assert.deepEqual(connectionLosses(), [], 'the AMQP connection stayed up');
    await channel.deleteExchange(exchange);
  });

  test('a key left without subscribers stays bound for unbindDelayMs: a subscriber back in time needs no bind', async () => {
    const DELAY_MS = 2000;
    const idleFanout = fanoutWithUnbindDelay(DELAY_MS);
    const exchange = `fx-idle-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(exchange, 'topic', { durable: false });
    const bound = (): Promise<string[]> => boundKeys(exchange);
    // Resolved before a setImmediate callback: no I/O, so no round trip to RabbitMQ, took place.
    const withoutIo = (p: Promise<unknown>): Promise<boolean> =>
      Promise.race([p.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
    try {
      const first = recording();
      const firstHandle = await idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'user_1' }, first);
      const other = await idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'user_2' }, recording());
      await firstHandle.release();
      assert.deepEqual(await bound(), ['user_1', 'user_2'], 'user_1 still bound, idle');
      assert.equal(idleFanout.stats().bindings, 2);
      channel.publish(exchange, 'user_1', Buffer.from('nobody'));

      const back = recording();
      const subscribing = idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'user_1' }, back);
      assert.equal(await withoutIo(subscribing), true, 'an idle key is subscribed again with no bind');
      const backHandle = await subscribing;
      const fresh = idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'user_3' }, recording());
      assert.equal(await withoutIo(fresh), false, 'a new key waits for its bind (the check can tell)');
      const freshHandle = await fresh;
      channel.publish(exchange, 'user_1', Buffer.from('again'));
      await settle(() => back.got.includes('user_1|again'), 'the returning subscriber served');
      assert.deepEqual(first.got, [], 'nothing for the subscriber that left');

      // Left for good: unbound once the delay has passed, and the queue goes with its last key.
      await backHandle.release();
      await freshHandle.release();
      await other.release();
      assert.equal((await sharedQueues()).length, 1, 'the queue stays while keys are idle');
      await settle(async () => (await bound()).length === 0, 'idle keys unbound after the delay');
      await settle(async () => (await sharedQueues()).length === 0, 'the shared queue deleted after its idle keys');
      assert.equal(idleFanout.stats().bindings, 0);
    } finally {
      await idleFanout.stop();
      await channel.deleteExchange(exchange);
    }
  });

  test('idle keys outlive a lost connection: the rebuild keeps them, their delay still unbinds them', async () => {
    const DELAY_MS = 3000;
    const idleFanout = fanoutWithUnbindDelay(DELAY_MS);
    const exchange = `fx-idle-lost-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(exchange, 'topic', { durable: false });
    try {
      const live = recording();
      const liveHandle = await idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'live' }, live);
      for (const key of ['idle', 'back']) await (await idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: key }, recording())).release();
      const rows = await rabbit.rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'pid', 'client_properties');
      const pids = rows.split('\n').filter((row) => row.includes('thumper-fanout-test')).map((row) => row.split('\t')[0]!);
      assert.ok(pids.length > 0, 'the pool has a connection to close');
      for (const pid of pids) await rabbit.rabbitmqctl('close_connection', pid, 'test: connection lost');
      await settle(() => {
        channel.publish(exchange, 'live', Buffer.from('after'));
        return live.got.length > 0;
      }, 'the live key served after the rebuild');
      const back = recording();
      const backHandle = await idleFanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'back' }, back);
      channel.publish(exchange, 'back', Buffer.from('back'));
      await settle(() => back.got.length === 1, 'an idle key subscribed again after the rebuild is served');
      // `idle` was never subscribed again: the queue outlived the connection with its binding, and
      // only its timer, kept through the rebuild, removes it.
      await settle(async () => (await boundKeys(exchange)).join() === 'back,live', 'the idle key unbound after its delay');
      await backHandle.release();
      await liveHandle.release();
    } finally {
      await idleFanout.stop();
      await channel.deleteExchange(exchange);
    }
  });

  test('a missing exchange is refused with NOT_FOUND and the others keep being served', async () => {
    const exchange = `fx-live-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(exchange, 'topic', { durable: false });
    const live = recording();
    const handle = await fanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: '#' }, live);
    await assert.rejects(
      fanout.subscribe(vhost, { exchange: 'fx-no-such-exchange', type: 'topic', bindingKey: '#' }, recording()),
      (err: unknown) => err instanceof EngineError && err.error.code === 'NOT_FOUND' && /no exchange 'fx-no-such-exchange'/.test(err.error.detail),
    );
    channel.publish(exchange, 'k', Buffer.from('still'));
    await settle(() => live.got.length === 1, 'live subscriber');
    await handle.release();
    await channel.deleteExchange(exchange);
  });

  test('a binding key past the AMQP limit is refused as INVALID_DESTINATION and binds after it still work', async () => {
    const exchange = `fx-long-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(exchange, 'topic', { durable: false });
    const live = recording();
    const [refused, handle] = await Promise.allSettled([
      fanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'k'.repeat(256) }, recording()),
      fanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'short' }, live),
    ]);
    assert.equal(refused.status, 'rejected');
    const reason = (refused as PromiseRejectedResult).reason as unknown;
    assert.ok(reason instanceof EngineError && reason.error.code === 'INVALID_DESTINATION', String(reason));
    assert.match((reason as EngineError).error.detail, /longer than 255 bytes/);
    assert.equal(handle.status, 'fulfilled');
    const later = recording();
    const laterHandle = await fanout.subscribe(vhost, { exchange, type: 'topic', bindingKey: 'later' }, later);
    channel.publish(exchange, 'short', Buffer.from('s'));
    channel.publish(exchange, 'later', Buffer.from('l'));
    await settle(() => live.got.length === 1 && later.got.length === 1, 'both subscribers served');
    await (handle as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    await laterHandle.release();
    await channel.deleteExchange(exchange);
  });

  test('one failing bind among many at once: only its subscriber is refused', async () => {
    const good = `fx-good-${randomBytes(3).toString('hex')}`;
    const gone = `fx-gone-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(good, 'direct', { durable: false });
    await channel.assertExchange(gone, 'direct', { durable: false });
    // Both exchanges get their shared queue; then one exchange goes and its next bind fails.
    const goodFirst = await fanout.subscribe(vhost, { exchange: good, type: 'direct', bindingKey: 'g' }, recording());
    const goneFirst = await fanout.subscribe(vhost, { exchange: gone, type: 'direct', bindingKey: 'x' }, recording());
    await channel.deleteExchange(gone);
    const subs = Array.from({ length: 20 }, (_, i) => ({ key: `g${i}`, sub: recording() }));
    const results = await Promise.allSettled([
      ...subs.slice(0, 10).map((s) => fanout.subscribe(vhost, { exchange: good, type: 'direct', bindingKey: s.key }, s.sub)),
      fanout.subscribe(vhost, { exchange: gone, type: 'direct', bindingKey: 'y' }, recording()),
      ...subs.slice(10).map((s) => fanout.subscribe(vhost, { exchange: good, type: 'direct', bindingKey: s.key }, s.sub)),
    ]);
    const refused = results.splice(10, 1)[0]!;
    assert.equal(refused.status, 'rejected');
    assert.equal(((refused as PromiseRejectedResult).reason as EngineError).error.code, 'NOT_FOUND');
    assert.deepEqual(results.map((r) => r.status), Array(20).fill('fulfilled'));
    for (const s of subs) channel.publish(good, s.key, Buffer.from(s.key));
    await settle(() => subs.every((s) => s.sub.got.length === 1), 'every subscriber of the good exchange');
    for (const r of results) await (r as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    await goodFirst.release();
    await goneFirst.release();
    await channel.deleteExchange(good);
  });

  test('an exchange deleted under its subscribers: they are told, the rest is rebuilt', async () => {
    const doomed = `fx-doomed-${randomBytes(3).toString('hex')}`;
    const kept = `fx-kept-${randomBytes(3).toString('hex')}`;
    await channel.assertExchange(doomed, 'topic', { durable: false });
    await channel.assertExchange(kept, 'topic', { durable: false });
    const onDoomed = recording();
    const onKept = recording();
    await fanout.subscribe(vhost, { exchange: doomed, type: 'topic', bindingKey: 'a' }, onDoomed);
    const keptHandle = await fanout.subscribe(vhost, { exchange: kept, type: 'topic', bindingKey: 'a' }, onKept);
    await channel.deleteExchange(doomed);
    // The next bind on the deleted exchange fails on the shared channel, which is then rebuilt.
    await assert.rejects(fanout.subscribe(vhost, { exchange: doomed, type: 'topic', bindingKey: 'b' }, recording()));
    await settle(() => onDoomed.lostWith.length === 1, 'doomed subscriber told');
    assert.equal(onDoomed.lostWith[0]?.code, 'NOT_FOUND');
    await settle(() => {
      channel.publish(kept, 'a', Buffer.from('x'));
      return onKept.got.length > 0;
    }, 'kept subscriber served after the rebuild');
    assert.deepEqual(onKept.lostWith, []);
    await keptHandle.release();
    await channel.deleteExchange(kept);
  });
});
