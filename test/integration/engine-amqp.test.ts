// The AMQP engine against a real RabbitMQ node: primitives, error mapping, server cancel, channel
// pooling, exclusivity between sessions that share a connection, connection loss and recovery.
// Each run works in its own vhost so parallel test files on the shared node do not interfere.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pino from 'pino';
import amqp from 'amqplib';
import { useRabbit, type RabbitNode } from '../harness/rabbitmq.js';
import { AmqpEngine, type AmqpEngineOptions } from '../../broker/src/engine/amqp/amqp-engine.js';
import { CONNECTION_LOST_DETAIL, parseAmqpError } from '../../broker/src/engine/amqp/amqp-errors.js';
import { EngineError, type EngineSession, type EngineSessionEvents } from '../../broker/src/engine/engine.js';
import type { Delivery, OutboundMessage } from '../../broker/src/engine/message.js';
import type { StompError } from '../../broker/src/errors.js';
import { runEngineContract } from '../contract/engine-contract.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const log = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });

let rabbit: RabbitNode;
let vhost: string;

before(async () => {
  rabbit = await useRabbit();
  vhost = `thumper-engine-${randomBytes(4).toString('hex')}`;
  await rabbit.rabbitmqctl('add_vhost', vhost);
  await rabbit.rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
});

after(async () => {
  await rabbit.rabbitmqctl('delete_vhost', vhost).catch(() => {});
  await rabbit.stop();
});

function engineOptions(overrides: Partial<AmqpEngineOptions> = {}): AmqpEngineOptions {
  return {
    urls: [rabbit.amqpUrl],
    channelsPerConnection: 500,
    heartbeatSeconds: 10,
    connectionName: 'thumper-test',
    reconnect: { initialMs: 20, maxMs: 200 },
    // The primitives below are those of channel-backed sessions (sharing opens a channel lazily).
    sharedSubscriptions: false,
    ...overrides,
  };
}

interface Recorder {
  readonly events: EngineSessionEvents;
  readonly closed: StompError[];
  readonly cancelled: string[];
}

function recorder(): Recorder {
  const closed: StompError[] = [];
  const cancelled: string[] = [];
  return {
    events: { onClosed: (e) => closed.push(e), onCancelled: (t) => cancelled.push(t) },
    closed,
    cancelled,
  };
}

async function open(engine: AmqpEngine, rec = recorder(), onVhost = vhost): Promise<{ s: EngineSession; rec: Recorder }> {
  const s = await engine.openSession({ vhost: onVhost, username: 'tester', sessionId: 'test', log }, rec.events);
  return { s, rec };
}

/** Polls `cond` every 20 ms, at most `ms` (bounded in count and time). */
async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const rounds = Math.ceil(ms / 20);
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function message(body: string, properties: Partial<OutboundMessage['properties']> = {}): OutboundMessage {
  return { body: Buffer.from(body), properties: { headers: {}, ...properties } };
}

async function rejection(p: Promise<unknown>): Promise<StompError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${String(err)}`);
    return err.error;
  }
  return assert.fail('expected a rejection');
}

const unique = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

for (const sharedSubscriptions of [true, false]) runEngineContract({
  name: `amqp (RabbitMQ), shared subscriptions ${sharedSubscriptions ? 'on' : 'off'}`,
  async create() {
    // A vhost of its own: the contract may run in parallel with other files on the shared node.
    const contractVhost = unique('thumper-contract');
    await rabbit.rabbitmqctl('add_vhost', contractVhost);
    await rabbit.rabbitmqctl('set_permissions', '-p', contractVhost, 'guest', '.*', '.*', '.*');
    const engine = new AmqpEngine(engineOptions({ sharedSubscriptions }), log);
    await engine.start();
    return {
      engine,
      vhost: contractVhost,
      topicExchange: 'amq.topic',
      directExchange: 'amq.direct',
      fanoutExchange: 'amq.fanout',
      async cleanup() {
        await engine.stop();
        await rabbit.rabbitmqctl('delete_vhost', contractVhost);
      },
    };
  },
});

describe('AMQP engine primitives', () => {
  let engine: AmqpEngine;
  before(async () => {
    engine = new AmqpEngine(engineOptions(), log);
    await engine.start();
  });
  after(async () => {
    await engine.stop();
  });

  test('publish with confirm reaches a bound server-named queue with its properties', async () => {
    const { s } = await open(engine);
    const q = await s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
    assert.match(q, /^amq\.gen-/);
    await s.bindQueue(q, 'amq.topic', 'orders.*');
    const got: Delivery[] = [];
    const tag = await s.consume(q, { noAck: false, args: {} }, (d) => got.push(d));
    await s.publish(
      'amq.topic',
      'orders.eu',
      message('hello', {
        contentType: 'text/plain',
        deliveryMode: 2,
        correlationId: 'c-1',
        priority: 3,
        timestamp: 1_700_000_000,
        headers: { receipt: 'r-1', 'x-custom': 'yes' },
      }),
      true,
    );
    await waitFor('the delivery', () => got.length === 1);
    const d = got[0];
    assert.ok(d);
    assert.equal(d.consumerTag, tag);
    assert.equal(d.deliveryTag, 1);
    assert.equal(d.redelivered, false);
    assert.equal(d.exchange, 'amq.topic');
    assert.equal(d.routingKey, 'orders.eu');
    assert.equal(d.body.toString(), 'hello');
    assert.deepEqual(d.properties, {
      contentType: 'text/plain',
      deliveryMode: 2,
      correlationId: 'c-1',
      priority: 3,
      timestamp: 1_700_000_000,
      headers: { receipt: 'r-1', 'x-custom': 'yes' },
    });
    s.ack(d.deliveryTag, false);
    await s.close();
  });

  test('an unset delivery mode stays unset, and confirm=false resolves without waiting', async () => {
    const { s } = await open(engine);
    const q = await s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
    const got: Delivery[] = [];
    await s.consume(q, { noAck: true, args: {} }, (d) => got.push(d));
    await s.publish('', q, message('plain'), false);
    await waitFor('the delivery', () => got.length === 1);
    assert.deepEqual(got[0]?.properties, { headers: {} });
    await s.close();
  });

  test('nack with requeue redelivers; prefetch limits unacked deliveries', async () => {
    const { s } = await open(engine);
    const q = await s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
    for (let i = 0; i < 3; i++) await s.publish('', q, message(`m${i}`), true);
    await s.setPrefetch(1);
    const got: Delivery[] = [];
    await s.consume(q, { noAck: false, args: {} }, (d) => got.push(d));
    await waitFor('the first delivery', () => got.length === 1);
    // With prefetch 1 nothing else arrives until the first is settled; give the broker a moment.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 1);
    const first = got[0];
    assert.ok(first);
    s.nack(first.deliveryTag, false, true);
    await waitFor('the redelivery', () => got.length === 2);
    assert.equal(got[1]?.body.toString(), 'm0');
    assert.equal(got[1]?.redelivered, true);
    await s.close();
  });

  test('declareQueue passes durable/auto-delete/exclusive and encodes integer arguments as long', async () => {
    const { s } = await open(engine);
    const name = unique('args');
    await s.declareQueue({
      name,
      durable: true,
      autoDelete: false,
      exclusive: false,
      arguments: { 'x-max-priority': 9, 'x-message-ttl': 60000, 'x-dead-letter-exchange': 'dlx' },
    });
    const listed = (await rabbit.listQueues(vhost)).find((q) => q.name === name);
    assert.deepEqual(listed, {
      name,
      durable: true,
      auto_delete: false,
      exclusive: false,
      arguments: { 'x-max-priority': 9, 'x-message-ttl': 60000, 'x-dead-letter-exchange': 'dlx' },
    });
    // The stored AMQP types: long, as RabbitMQ's STOMP plugin declares them (reference §1.7), so a
    // queue declared through either is equivalent to the other.
    const stored = await rabbit.rabbitmqctl(
      'eval',
      `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"${vhost}">>, queue, <<"${name}">>)), amqqueue:get_arguments(Q).`,
    );
    assert.match(stored, /\{<<"x-max-priority">>,long,9\}/);
    assert.match(stored, /\{<<"x-message-ttl">>,long,60000\}/);
    assert.match(stored, /\{<<"x-dead-letter-exchange">>,longstr,<<"dlx">>\}/);
    const { s: s2 } = await open(engine);
    await s2.deleteQueue(name);
    await s.close();
    await s2.close();
  });

  test('re-declaring with other properties fails with PRECONDITION_FAILED and the reply text', async () => {
    const { s, rec } = await open(engine);
    const name = unique('pre');
    await s.declareQueue({ name, durable: false, autoDelete: false, exclusive: false, arguments: {} });
    const err = await rejection(s.declareQueue({ name, durable: true, autoDelete: false, exclusive: false, arguments: {} }));
    assert.equal(err.code, 'PRECONDITION_FAILED');
    assert.equal(err.message, 'precondition_failed');
    assert.equal(err.fatal, true);
    assert.match(err.detail, /^PRECONDITION_FAILED - inequivalent arg 'durable' for queue '.*' in vhost '.*'/);
    // The rejected call carried the failure: no onClosed as well.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(rec.closed, []);
    // The session is over, as RabbitMQ's channel is.
    const after = await rejection(s.checkQueue(name));
    assert.equal(after.code, 'PRECONDITION_FAILED');
    const { s: s2 } = await open(engine);
    await s2.deleteQueue(name);
    await s2.close();
  });

  test('checkQueue of a missing queue fails with NOT_FOUND', async () => {
    const { s, rec } = await open(engine);
    const err = await rejection(s.checkQueue('no-such-queue'));
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.detail, `NOT_FOUND - no queue 'no-such-queue' in vhost '${vhost}'`);
    assert.deepEqual(rec.closed, []);
  });

  test('a confirmed publish to a missing exchange rejects with NOT_FOUND', async () => {
    const { s, rec } = await open(engine);
    const err = await rejection(s.publish('no-such-exchange', 'k', message('x'), true));
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.message, 'not_found');
    assert.equal(err.detail, `NOT_FOUND - no exchange 'no-such-exchange' in vhost '${vhost}'`);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(rec.closed, []);
  });

  test('an unconfirmed publish to a missing exchange resolves, then onClosed reports NOT_FOUND once', async () => {
    const { s, rec } = await open(engine);
    await s.publish('no-such-exchange', 'k', message('x'), false);
    await waitFor('onClosed', () => rec.closed.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(rec.closed.length, 1);
    assert.equal(rec.closed[0]?.code, 'NOT_FOUND');
    assert.equal(rec.closed[0]?.detail, `NOT_FOUND - no exchange 'no-such-exchange' in vhost '${vhost}'`);
    await s.close();
  });

  test('acking an unknown delivery tag closes the session with PRECONDITION_FAILED', async () => {
    const { s, rec } = await open(engine);
    s.ack(42, false);
    await waitFor('onClosed', () => rec.closed.length > 0);
    assert.equal(rec.closed[0]?.code, 'PRECONDITION_FAILED');
    assert.equal(rec.closed[0]?.detail, 'PRECONDITION_FAILED - unknown delivery tag 42');
  });

  test('deleting a consumed queue cancels the consumer: onCancelled with its tag, session stays open', async () => {
    const a = await open(engine);
    const b = await open(engine);
    const name = unique('cancel');
    await a.s.declareQueue({ name, durable: false, autoDelete: false, exclusive: false, arguments: {} });
    const tag = await a.s.consume(name, { noAck: true, args: {} }, () => {});
    await b.s.deleteQueue(name);
    await waitFor('onCancelled', () => a.rec.cancelled.length > 0);
    assert.deepEqual(a.rec.cancelled, [tag]);
    assert.deepEqual(a.rec.closed, []);
    // Still usable.
    const q = await a.s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
    assert.match(q, /^amq\.gen-/);
    await a.s.close();
    await b.s.close();
  });

  test('cancel stops deliveries to that consumer', async () => {
    const { s } = await open(engine);
    const q = await s.declareQueue({ name: '', durable: false, autoDelete: false, exclusive: true, arguments: {} });
    const got: Delivery[] = [];
    const tag = await s.consume(q, { noAck: true, args: {} }, (d) => got.push(d));
    await s.publish('', q, message('one'), true);
    await waitFor('the delivery', () => got.length === 1);
    await s.cancel(tag);
    await s.publish('', q, message('two'), true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 1);
    await s.close();
  });

  test("another session's exclusive queue is RESOURCE_LOCKED even on a shared connection, in RabbitMQ's words", async () => {
    const a = await open(engine);
    const b = await open(engine);
    // Long enough that RabbitMQ cuts its reply text at 255 bytes.
    const name = unique('exclusive-queue-with-a-rather-long-name');
    await a.s.declareQueue({ name, durable: false, autoDelete: false, exclusive: true, arguments: {} });
    // What the broker itself says to another connection.
    const conn = await amqp.connect(`${rabbit.amqpUrl}/${encodeURIComponent(vhost)}`);
    let brokerText = '';
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      await ch.checkQueue(name).catch((err: Error) => {
        brokerText = parseAmqpError(err).replyText;
      });
    } finally {
      await conn.close();
    }
    assert.match(brokerText, /^RESOURCE_LOCKED - .*\.\.\.$/);
    const err = await rejection(b.s.consume(name, { noAck: true, args: {} }, () => {}));
    assert.equal(err.code, 'RESOURCE_LOCKED');
    assert.equal(err.detail, brokerText);
    assert.deepEqual(b.rec.closed, []);
    // The owner still uses it freely.
    await a.s.checkQueue(name);
    await a.s.close();
  });

  test('closing a session deletes its exclusive queues, as closing its connection would', async () => {
    const { s } = await open(engine);
    const name = unique('gone');
    await s.declareQueue({ name, durable: false, autoDelete: false, exclusive: true, arguments: {} });
    assert.ok((await rabbit.listQueues(vhost)).some((q) => q.name === name));
    await s.close();
    await s.close();
    assert.ok(!(await rabbit.listQueues(vhost)).some((q) => q.name === name));
    // Another session may now declare it.
    const other = await open(engine);
    await other.s.declareQueue({ name, durable: false, autoDelete: false, exclusive: true, arguments: {} });
    await other.s.close();
  });

  test('an exclusive auto-delete queue the broker dropped is forgotten: closing never deletes a namesake', async () => {
    const a = await open(engine);
    const b = await open(engine);
    const name = unique('namesake');
    await a.s.declareQueue({ name, durable: false, autoDelete: true, exclusive: true, arguments: {} });
    const tag = await a.s.consume(name, { noAck: true, args: {} }, () => {});
    await a.s.cancel(tag);
    await waitFor('auto-delete', async () => !(await rabbit.listQueues(vhost)).some((q) => q.name === name));
    // Same pooled connection, queue gone: b may declare the name, non-exclusive this time.
    await b.s.declareQueue({ name, durable: false, autoDelete: false, exclusive: false, arguments: {} });
    await a.s.close();
    assert.ok((await rabbit.listQueues(vhost)).some((q) => q.name === name), "b's queue survives a's close");
    await b.s.deleteQueue(name);
    await b.s.close();
  });

  test("a session that died of a channel error still loses its exclusive queues", async () => {
    const { s, rec } = await open(engine);
    const name = unique('died');
    await s.declareQueue({ name, durable: false, autoDelete: false, exclusive: true, arguments: {} });
    await s.publish('no-such-exchange', 'k', message('x'), false);
    await waitFor('onClosed', () => rec.closed.length > 0);
    await waitFor('the queue to go', async () => !(await rabbit.listQueues(vhost)).some((q) => q.name === name));
  });

  test('names longer than 255 bytes are refused before reaching amqplib', async () => {
    const { s, rec } = await open(engine);
    const err = await rejection(s.checkQueue('q'.repeat(256)));
    assert.equal(err.code, 'INVALID_DESTINATION');
    assert.deepEqual(rec.closed, []);
    // The channel is untouched.
    await s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
    await s.close();
  });

  test('headers or properties AMQP cannot encode are refused without harming the session', async () => {
    const { s, rec } = await open(engine);
    const q = await s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
    const big = await rejection(s.publish('', q, message('x', { headers: { big: 'h'.repeat(70_000) } }), true));
    assert.equal(big.code, 'INVALID_HEADER');
    assert.equal(big.fatal, false);
    const long = await rejection(s.publish('', q, message('x', { correlationId: 'c'.repeat(256) }), true));
    assert.equal(long.code, 'INVALID_HEADER');
    const got: Delivery[] = [];
    await s.consume(q, { noAck: true, args: {} }, (d) => got.push(d));
    await s.publish('', q, message('fine'), true);
    await waitFor('the delivery', () => got.length === 1);
    assert.equal(got[0]?.body.toString(), 'fine');
    assert.deepEqual(rec.closed, []);
    await s.close();
  });

  test('a closed session rejects further calls', async () => {
    const { s } = await open(engine);
    await s.close();
    await rejection(s.checkQueue('anything'));
  });
});

describe('AMQP engine connection pool', () => {
  test(`sessions share connections, at most channelsPerConnection each, in the session's vhost`, async () => {
    const engine = new AmqpEngine(engineOptions({ channelsPerConnection: 3 }), log);
    await engine.start();
    try {
      const sessions = await Promise.all(Array.from({ length: 7 }, () => open(engine)));
      const inVhost = engine.connections().filter((c) => c.vhost === vhost);
      assert.equal(inVhost.length, 3);
      assert.deepEqual(inVhost.map((c) => c.load).sort(), [1, 3, 3]);
      // The broker agrees: 7 channels over 3 connections in this vhost, none over 3.
      await waitFor('the broker to list the channels', async () => {
        const out = await rabbit.rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'vhost', 'channels');
        const counts = out
          .split('\n')
          .map((line) => line.split('\t'))
          .filter(([v]) => v === vhost)
          .map(([, n]) => Number(n))
          .sort();
        return JSON.stringify(counts) === JSON.stringify([1, 3, 3]);
      });
      // Heartbeat, channel_max (= channelsPerConnection) and the name shown in the management UI.
      const details = await rabbit.rabbitmqctl(
        'list_connections', '--quiet', '--no-table-headers', 'vhost', 'timeout', 'channel_max', 'client_properties',
      );
      const ours = details.split('\n').filter((line) => line.startsWith(`${vhost}\t`));
      assert.equal(ours.length, 3);
      for (const line of ours) {
        assert.match(line, /^[^\t]+\t10\t3\t/);
        assert.ok(line.includes('{"connection_name","thumper-test"}'), line);
      }
      await Promise.all(sessions.map(({ s }) => s.close()));
      // Idle connections are trimmed to one warm connection.
      await waitFor('idle connections to close', () => engine.connections().filter((c) => c.vhost === vhost).length === 1);
    } finally {
      await engine.stop();
    }
  });

  test('start() against an unreachable broker rejects naming the URL without its password', async () => {
    const port = await closedPort();
    const engine = new AmqpEngine(engineOptions({ urls: [`amqp://guest:s3cret@127.0.0.1:${port}`] }), log);
    const err = await rejection(engine.start());
    assert.equal(err.code, 'ENGINE_UNAVAILABLE');
    assert.ok(err.detail.includes(`amqp://guest@127.0.0.1:${port}`), err.detail);
    assert.ok(!err.detail.includes('s3cret'), err.detail);
    assert.equal(engine.isReady(), false);
    const open2 = await rejection(engine.openSession({ vhost: '/', username: 'u', sessionId: 's', log }, recorder().events));
    assert.equal(open2.code, 'ENGINE_UNAVAILABLE');
    await engine.stop();
  });

  test('the URLs are tried in turn', async () => {
    const port = await closedPort();
    const engine = new AmqpEngine(engineOptions({ urls: [`amqp://guest:guest@127.0.0.1:${port}`, rabbit.amqpUrl] }), log);
    await engine.start();
    assert.equal(engine.isReady(), true);
    const { s } = await open(engine);
    await s.checkQueue('amq.gen-none').catch(() => {});
    await engine.stop();
  });

  test('a vhost RabbitMQ does not know is refused with ACCESS_REFUSED, and the engine stays ready', async () => {
    const engine = new AmqpEngine(engineOptions(), log);
    await engine.start();
    try {
      const err = await rejection(open(engine, recorder(), 'no-such-vhost'));
      assert.equal(err.code, 'ACCESS_REFUSED');
      assert.equal(engine.isReady(), true);
    } finally {
      await engine.stop();
    }
  });

  test('stop() ends open sessions with SERVER_SHUTDOWN', async () => {
    const engine = new AmqpEngine(engineOptions(), log);
    await engine.start();
    const { rec } = await open(engine);
    await engine.stop();
    assert.equal(rec.closed.length, 1);
    assert.equal(rec.closed[0]?.code, 'SERVER_SHUTDOWN');
    assert.equal(engine.isReady(), false);
  });

  test('a forced close of the connections: onClosed(ENGINE_UNAVAILABLE) per session, then recovery', async () => {
    // Restoring sessions is covered in amqp-failover.test.ts; here each session ends with the ERROR.
    const engine = new AmqpEngine(engineOptions({ onConnectionLoss: 'close' }), log);
    await engine.start();
    try {
      const a = await open(engine);
      const b = await open(engine);
      await a.s.consume(
        await a.s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} }),
        { noAck: true, args: {} },
        () => {},
      );
      await waitFor('the broker to list the connection', async () =>
        (await rabbit.rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'vhost')).split('\n').includes(vhost),
      );
      await rabbit.rabbitmqctl('close_all_connections', '-p', vhost, 'engine test');
      await waitFor('both sessions to hear', () => a.rec.closed.length === 1 && b.rec.closed.length === 1);
      for (const rec of [a.rec, b.rec]) {
        assert.equal(rec.closed[0]?.code, 'ENGINE_UNAVAILABLE');
        assert.equal(rec.closed[0]?.detail, CONNECTION_LOST_DETAIL);
      }
      await waitFor('ready again', () => engine.isReady());
      const c = await open(engine);
      await c.s.declareQueue({ name: '', durable: false, autoDelete: true, exclusive: true, arguments: {} });
      await c.s.close();
      // Closing a session that already died is harmless.
      await a.s.close();
    } finally {
      await engine.stop();
    }
  });

  test('while RabbitMQ is unreachable the engine is not ready; it recovers when RabbitMQ returns', async () => {
    const target = new URL(rabbit.amqpUrl);
    const proxy = await startTcpProxy(Number(target.port));
    const viaProxy = new URL(rabbit.amqpUrl);
    viaProxy.port = String(proxy.port);
    const engine = new AmqpEngine(engineOptions({ urls: [viaProxy.toString()], onConnectionLoss: 'close' }), log);
    await engine.start();
    try {
      const { rec } = await open(engine);
      await proxy.stop();
      await waitFor('onClosed', () => rec.closed.length === 1);
      assert.equal(rec.closed[0]?.code, 'ENGINE_UNAVAILABLE');
      await waitFor('not ready', () => !engine.isReady());
      const err = await rejection(open(engine, recorder(), '/'));
      assert.equal(err.code, 'ENGINE_UNAVAILABLE');
      await proxy.restart();
      await waitFor('ready again', () => engine.isReady());
      const again = await open(engine, recorder(), '/');
      await again.s.close();
    } finally {
      await engine.stop();
      await proxy.stop();
    }
  });
});

/** A loopback port with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

