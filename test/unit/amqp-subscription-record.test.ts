// What an AMQP session replays after a lost connection (broker/src/engine/amqp/subscription-record.ts):
// state, not a log — cancels, server cancels and deletes remove what they undo — and a replay plan
// that declares and binds before consuming, each consumer under the prefetch it started with.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SubscriptionRecord, type ReplayStep } from '../../broker/src/engine/amqp/subscription-record.js';
import type { QueueSpec } from '../../broker/src/destination/types.js';

const ack = { noAck: false, args: {} } as const;
const auto = { noAck: true, args: {} } as const;

function spec(name: string, extra: Partial<QueueSpec> = {}): QueueSpec {
  return { name, durable: false, autoDelete: false, exclusive: false, arguments: {}, ...extra };
}

/** The plan as short strings, callbacks left out. */
function show(steps: Array<ReplayStep<string>>): string[] {
  return steps.map((s) => {
    switch (s.kind) {
      case 'qos':
        return `qos ${s.prefetch}`;
      case 'declare':
        return `declare ${s.spec.name}`;
      case 'check':
        return `check ${s.queue}`;
      case 'bind':
        return `bind ${s.queue} ${s.exchange} ${s.routingKey}`;
      case 'consume':
        return `consume ${s.recipe.tag} ${s.recipe.queue} ${s.recipe.onDelivery}`;
    }
  });
}

describe('SubscriptionRecord', () => {
  test('a /topic subscription (declare → qos → consume → bind) replays declare, bind, qos, consume', () => {
    const r = new SubscriptionRecord<string>();
    r.declared('stomp-subscription-a', spec('stomp-subscription-a', { autoDelete: true }));
    r.prefetch(10);
    r.consumed('t1', 'stomp-subscription-a', ack, 'deliver-a');
    r.bound('stomp-subscription-a', 'amq.topic', 'news.#');
    assert.deepEqual(show(r.replay()), [
      'declare stomp-subscription-a',
      'bind stomp-subscription-a amq.topic news.#',
      'qos 10',
      'consume t1 stomp-subscription-a deliver-a',
    ]);
  });

  test('each consumer starts under its own prefetch; the current one is in force at the end', () => {
    const r = new SubscriptionRecord<string>();
    r.declared('q1', spec('q1'));
    r.consumed('t1', 'q1', ack, 'd1');
    r.prefetch(5);
    r.declared('q2', spec('q2'));
    r.consumed('t2', 'q2', ack, 'd2');
    r.prefetch(7);
    assert.deepEqual(show(r.replay()), ['declare q1', 'declare q2', 'consume t1 q1 d1', 'qos 5', 'consume t2 q2 d2', 'qos 7']);
    const consume = r.replay().find((s) => s.kind === 'consume' && s.recipe.tag === 't2');
    assert.equal(consume?.kind === 'consume' ? consume.recipe.prefetch : undefined, 5);
  });

  test('consume options and the delivery callback are kept as given', () => {
    const r = new SubscriptionRecord<() => void>();
    const cb = (): void => {};
    r.declared('q', spec('q'));
    r.consumed('t', 'q', { noAck: true, args: { 'x-priority': 3 } }, cb);
    const step = r.replay().find((s) => s.kind === 'consume');
    assert.ok(step?.kind === 'consume');
    assert.deepEqual(step.recipe.options, { noAck: true, args: { 'x-priority': 3 } });
    assert.equal(step.recipe.onDelivery, cb);
  });

  test('cancel forgets the consumer; an auto-delete queue goes with its last consumer, a plain one stays', () => {
    const r = new SubscriptionRecord<string>();
    r.declared('auto', spec('auto', { autoDelete: true }));
    r.declared('plain', spec('plain'));
    r.consumed('t1', 'auto', auto, 'a1');
    r.consumed('t2', 'auto', auto, 'a2');
    r.consumed('t3', 'plain', ack, 'p');
    r.cancelled('t1', false);
    assert.deepEqual(show(r.replay()), ['declare auto', 'declare plain', 'consume t2 auto a2', 'consume t3 plain p']);
    r.cancelled('t2', false);
    r.cancelled('t3', false);
    assert.deepEqual(show(r.replay()), ['declare plain'], 'a queue this session declared (e.g. by SEND) is declared again');
    assert.deepEqual(r.consumerTags(), []);
  });

  test('a checked queue (/amq/queue) is replayed only while consumed', () => {
    const r = new SubscriptionRecord<string>();
    r.checked('existing');
    assert.deepEqual(show(r.replay()), []);
    r.consumed('t', 'existing', ack, 'd');
    assert.deepEqual(show(r.replay()), ['check existing', 'consume t existing d']);
    r.cancelled('t', false);
    assert.deepEqual(show(r.replay()), []);
  });

  test('checking a queue this session declared keeps the declaration', () => {
    const r = new SubscriptionRecord<string>();
    r.declared('q', spec('q', { durable: true }));
    r.checked('q');
    r.consumed('t', 'q', ack, 'd');
    assert.deepEqual(show(r.replay()), ['declare q', 'consume t q d']);
  });

  test('a server cancel forgets the consumer and its queue (deleted, or its node is down)', () => {
    const r = new SubscriptionRecord<string>();
    r.declared('q', spec('q', { durable: true }));
    r.bound('q', 'feed', 'k');
    r.consumed('t', 'q', ack, 'd');
    r.declared('other', spec('other'));
    r.cancelled('t', true);
    assert.deepEqual(show(r.replay()), ['declare other']);
  });

  test('delete removes the queue, its bindings and its consumers', () => {
    const r = new SubscriptionRecord<string>();
    r.declared('q', spec('q'));
    r.bound('q', 'amq.topic', 'a');
    r.consumed('t1', 'q', ack, 'd1');
    r.consumed('t2', 'q', ack, 'd2');
    r.deleted('q');
    assert.deepEqual(show(r.replay()), []);
    assert.deepEqual(r.consumerTags(), []);
  });

  test('re-declaring and re-binding do not grow the record', () => {
    const r = new SubscriptionRecord<string>();
    for (let i = 0; i < 100; i++) {
      r.declared('q', spec('q'));
      r.bound('q', 'amq.topic', 'k');
    }
    assert.deepEqual(show(r.replay()), ['declare q', 'bind q amq.topic k']);
  });

  test('subscribe/unsubscribe cycles leave nothing behind', () => {
    const r = new SubscriptionRecord<string>();
    for (let i = 0; i < 50; i++) {
      const q = `stomp-subscription-${i}`;
      r.declared(q, spec(q, { autoDelete: true }));
      r.consumed(`t${i}`, q, auto, 'd');
      r.bound(q, 'amq.topic', `k${i}`);
      r.cancelled(`t${i}`, false);
    }
    assert.deepEqual(show(r.replay()), []);
  });

  test('a server-named queue (declared as "") makes the session unrestorable while it is kept', () => {
    const r = new SubscriptionRecord<string>();
    assert.equal(r.serverNamedQueue(), undefined);
    r.declared('amq.gen-abc', spec('', { exclusive: true, autoDelete: true }));
    r.consumed('t', 'amq.gen-abc', auto, 'd');
    assert.equal(r.serverNamedQueue(), 'amq.gen-abc');
    r.cancelled('t', false);
    assert.equal(r.serverNamedQueue(), undefined, 'auto-delete: gone with its consumer');
  });

  test('a declared spec is replayed exactly, arguments included', () => {
    const r = new SubscriptionRecord<string>();
    const quorum = spec('orders', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    r.declared('orders', quorum);
    const step = r.replay()[0];
    assert.ok(step?.kind === 'declare');
    assert.deepEqual(step.spec, quorum);
  });

  test('bindings on a queue the session neither declared nor checked replay as check + bind when consumed', () => {
    const r = new SubscriptionRecord<string>();
    r.bound('shared', 'amq.topic', 'k');
    r.consumed('t', 'shared', ack, 'd');
    assert.deepEqual(show(r.replay()), ['check shared', 'bind shared amq.topic k', 'consume t shared d']);
  });
});
