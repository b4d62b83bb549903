// Scale-out: two Thumper processes over one RabbitMQ node, as two Thumper nodes behind a load
// balancer run (DESIGN.md "Scale-out"): RabbitMQ is the only shared state, so a
// client on node A reaches a client on node B, /queue consumers on both nodes compete for one
// queue, and a durable subscription made through A is picked up again through B. Then a gateway
// with two AMQP URLs loses the node in use (a second throwaway node, stopped with stop_app).
// Every name is unique per run so parallel files on the shared node never meet.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import { subscriptionQueueName } from '../../broker/src/destination/queue-name.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { startRabbitNode, useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { connectWs, isMessage, isMessageFor, login, sleep } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { startThumperProcess } from '../helpers/thumper-process.js';
import type { ThumperNode } from '../helpers/thumper-process.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const SUITE = { timeout: 120_000 };
const BURST = 20;

const run = randomBytes(4).toString('hex');
let rabbit: RabbitNode;
let nodeA: ThumperNode;
let nodeB: ThumperNode;
const conns: StompConn[] = [];
/** Queues this run created, deleted at the end (the shared node outlives the file). */
const queues: string[] = [];

async function client(node: { readonly wsUrl: string }, clientId?: string): Promise<StompConn> {
  const conn = await connectWs(node.wsUrl);
  conns.push(conn);
  await login(conn, clientId === undefined ? {} : { headers: { 'client-id': clientId } });
  return conn;
}

/** Takes MESSAGE frames until `count` arrived or `quietMs` passed without one (bounded by count). */
async function collect(conn: StompConn, count: number, quietMs = 1500): Promise<Frame[]> {
  const got: Frame[] = [];
  while (got.length < count) {
    try {
      got.push(await conn.next(isMessage, quietMs));
    } catch {
      break;
    }
  }
  return got;
}

before(async () => {
  rabbit = await useRabbit();
  const env = { THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl };
  [nodeA, nodeB] = await Promise.all([startThumperProcess(env), startThumperProcess(env)]);
  assert.notEqual(nodeA.pid, nodeB.pid);
});

after(async () => {
  await Promise.all(conns.map((c) => c.close().catch(() => {})));
  await nodeA?.stop();
  await nodeB?.stop();
  if (queues.length > 0) {
    const model = await amqp.connect(rabbit.amqpUrl);
    const channel = await model.createChannel();
    for (const q of queues) await channel.deleteQueue(q).catch(() => {});
    await model.close().catch(() => {});
  }
  await rabbit.stop();
});

describe('two Thumper nodes over one RabbitMQ', SUITE, () => {
  test('a client on A sends, a client on B receives (/exchange/amq.topic and /topic)', async () => {
    const receiver = await client(nodeB);
    const sender = await client(nodeA);
    const key = `mn.${run}.x`;
    await receiver.request('SUBSCRIBE', { id: 'ex', destination: `/exchange/amq.topic/${key}` });
    await receiver.request('SUBSCRIBE', { id: 'tp', destination: `/topic/mn-${run}` });

    await sender.request('SEND', { destination: `/exchange/amq.topic/${key}` }, 'via-exchange');
    await sender.request('SEND', { destination: `/topic/mn-${run}` }, 'via-topic');

    const viaExchange = await receiver.waitFor(isMessageFor('ex'));
    assert.equal(viaExchange.body.toString(), 'via-exchange');
    const viaTopic = await receiver.waitFor(isMessageFor('tp'));
    assert.equal(viaTopic.body.toString(), 'via-topic');
    // And nothing reaches the sender, who never subscribed.
    assert.deepEqual(sender.untaken().filter(isMessage), []);
  });

  test(`/queue consumers on A and B compete: a burst of ${BURST} is split, each message once`, async () => {
    const queue = `mn-work-${run}`;
    queues.push(queue);
    const onA = await client(nodeA);
    const onB = await client(nodeB);
    await onA.request('SUBSCRIBE', { id: 'w', destination: `/queue/${queue}` });
    await onB.request('SUBSCRIBE', { id: 'w', destination: `/queue/${queue}` });

    const producer = await client(nodeA);
    for (let i = 0; i < BURST; i++) producer.send('SEND', { destination: `/queue/${queue}` }, `job-${i}`);
    await producer.request('DISCONNECT');

    const [gotA, gotB] = await Promise.all([collect(onA, BURST), collect(onB, BURST)]);
    assert.ok(gotA.length > 0, 'the consumer on node A received none');
    assert.ok(gotB.length > 0, 'the consumer on node B received none');
    const bodies = [...gotA, ...gotB].map((f) => f.body.toString());
    assert.equal(bodies.length, BURST, `received ${bodies.length}: ${bodies.join(',')}`);
    const expected = Array.from({ length: BURST }, (_, i) => `job-${i}`);
    assert.deepEqual([...new Set(bodies)].sort(), expected.sort());
  });

  test('a durable /topic subscription made on A is taken up on B with what was sent meanwhile', async () => {
    const clientId = `mn-client-${run}`;
    const topic = `mn-news-${run}`;
    const subId = 'durable-1';
    const durable = { id: subId, destination: `/topic/${topic}`, durable: 'true', 'auto-delete': 'false' };
    queues.push(subscriptionQueueName(topic, subId));

    const first = await client(nodeA, clientId);
    await first.request('SUBSCRIBE', durable);
    const publisher = await client(nodeA);
    await publisher.request('SEND', { destination: `/topic/${topic}` }, 'while-here');
    assert.equal((await first.waitFor(isMessageFor(subId))).body.toString(), 'while-here');
    await first.request('DISCONNECT');

    for (const body of ['away-1', 'away-2', 'away-3']) {
      await publisher.request('SEND', { destination: `/topic/${topic}` }, body);
    }

    const again = await client(nodeB, clientId);
    await again.request('SUBSCRIBE', durable);
    const backlog = await collect(again, 3);
    assert.deepEqual(
      backlog.map((f) => f.body.toString()),
      ['away-1', 'away-2', 'away-3'],
    );
    assert.ok(backlog.every((f) => getHeader(f, 'subscription') === subId));

    // Still live on B afterwards.
    await publisher.request('SEND', { destination: `/topic/${topic}` }, 'after-move');
    assert.equal((await again.waitFor(isMessageFor(subId))).body.toString(), 'after-move');
  });
});

/** CONNECT until the gateway is back on RabbitMQ (it refuses CONNECT while not ready); bounded. */
async function clientWhenReady(node: ThumperServer, attempts = 40): Promise<StompConn> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await client(node);
    } catch (err) {
      last = err;
      await sleep(250);
    }
  }
  throw new Error(`the gateway never took a CONNECT again: ${String(last)}`);
}

// With amqp.onConnectionLoss=close a broker loss ends each session with an ERROR that tells the
// client to reconnect, and the reconnected client is served through the next configured URL. Two
// separately booted nodes stand in for two cluster members. Restoring subscriptions (the default,
// `restore`) is tested on a real cluster in amqp-failover.test.ts.
describe('losing the RabbitMQ node in use, with two AMQP URLs', SUITE, () => {
  test('sessions get an ERROR saying reconnect; the gateway moves to the other URL and serves again', async () => {
    const lost = await startRabbitNode();
    const gateway = await startThumper({
      THUMPER_ENGINE: 'amqp',
      THUMPER_AMQP_URL: `${lost.amqpUrl},${rabbit.amqpUrl}`,
      THUMPER_AMQP_RECONNECT_INITIAL_MS: '50',
      THUMPER_AMQP_RECONNECT_MAX_MS: '500',
      THUMPER_AMQP_ON_CONNECTION_LOSS: 'close',
    });
    const queue = `mn-failover-${run}`;
    queues.push(queue);
    try {
      const before = await client(gateway);
      await before.request('SUBSCRIBE', { id: 'f', destination: `/queue/${queue}` });
      // The first URL is the one in use: the queue lives there, not on the other node.
      assert.ok((await lost.listQueues()).some((q) => q.name === queue));
      assert.ok(!(await rabbit.listQueues()).some((q) => q.name === queue));

      await lost.rabbitmqctl('stop_app');
      const error = await before.waitFor((f) => f.command === 'ERROR', 15_000);
      assert.equal(getHeader(error, 'message'), 'Broker unavailable');
      assert.match(error.body.toString(), /reconnect/);
      await before.waitClosed(5000);

      const after = await clientWhenReady(gateway);
      await after.request('SUBSCRIBE', { id: 'f', destination: `/queue/${queue}` });
      assert.ok((await rabbit.listQueues()).some((q) => q.name === queue), 'not re-declared on the second node');
      const sender = await client(gateway);
      await sender.request('SEND', { destination: `/queue/${queue}` }, 'after-failover');
      assert.equal((await after.waitFor(isMessageFor('f'))).body.toString(), 'after-failover');
    } finally {
      await gateway.stop();
      await lost.stop();
    }
  });
});
