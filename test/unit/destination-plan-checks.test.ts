// reference §5.3: the permission checks each operation triggers, row by row, in RabbitMQ's order.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseDestination,
  planSend,
  planSubscribe,
  planUnsubscribe,
  withoutDeclareChecks,
  type PermissionCheck,
  type SubscribePlanOptions,
} from '../../broker/src/destination/index.js';
import { makeFrame, type HeaderList } from '../../broker/src/stomp/frame.js';

const OPTS: SubscribePlanOptions = { defaultTopicExchange: 'amq.topic', randomId: Buffer.alloc(16, 1) };

const q = (name: string, permission: 'configure' | 'write' | 'read'): PermissionCheck => ({ resource: 'queue', name, permission });
const x = (name: string, permission: 'configure' | 'write' | 'read'): PermissionCheck => ({ resource: 'exchange', name, permission });
const t = (name: string, permission: 'write' | 'read', routingKey: string): PermissionCheck => ({
  resource: 'topic',
  name,
  permission,
  routingKey,
});

function sendChecks(destination: string, headers: HeaderList = [], opts = OPTS) {
  const dest = parseDestination(destination, '1.2');
  assert.ok(dest.ok);
  const r = planSend(dest.value, makeFrame('SEND', [['destination', destination], ...headers]), opts);
  assert.ok(r.ok);
  return r.value.checks;
}

function subscribePlan(destination: string, headers: HeaderList = [], opts = OPTS) {
  const dest = parseDestination(destination, '1.2');
  assert.ok(dest.ok);
  const r = planSubscribe(dest.value, makeFrame('SUBSCRIBE', [['destination', destination], ...headers]), opts);
  assert.ok(r.ok);
  return r.value;
}

describe('SEND checks', () => {
  it('/topic/<k>: exchange T write → topic T write rk=k', () => {
    assert.deepEqual(sendChecks('/topic/orders.eu'), [x('amq.topic', 'write'), t('amq.topic', 'write', 'orders.eu')]);
    assert.deepEqual(sendChecks('/topic/k', [], { ...OPTS, defaultTopicExchange: 'T' }), [x('T', 'write'), t('T', 'write', 'k')]);
  });
  it('/exchange/<x>/<k>: exchange x write → topic x write rk=k (always listed)', () => {
    assert.deepEqual(sendChecks('/exchange/feed/user_x'), [x('feed', 'write'), t('feed', 'write', 'user_x')]);
  });
  it('/exchange/<x>: as above with rk=""', () => {
    assert.deepEqual(sendChecks('/exchange/amq.fanout'), [x('amq.fanout', 'write'), t('amq.fanout', 'write', '')]);
  });
  it('/queue/<q>: queue q configure → exchange amq.default write', () => {
    assert.deepEqual(sendChecks('/queue/q1'), [q('q1', 'configure'), x('amq.default', 'write')]);
  });
  it('/queue/<q> with x-dead-letter-exchange: + queue q read, exchange dlx write', () => {
    assert.deepEqual(sendChecks('/queue/q1', [['x-dead-letter-exchange', ' dlx ']]), [
      q('q1', 'configure'),
      q('q1', 'read'),
      x('dlx', 'write'),
      x('amq.default', 'write'),
    ]);
  });
  it('a DLX of "" is the default exchange', () => {
    assert.deepEqual(sendChecks('/queue/q1', [['x-dead-letter-exchange', '']]), [
      q('q1', 'configure'),
      q('q1', 'read'),
      x('amq.default', 'write'),
      x('amq.default', 'write'),
    ]);
  });
  it('/amq/queue/<q> and /reply-queue/<q>: exchange amq.default write', () => {
    assert.deepEqual(sendChecks('/amq/queue/q1'), [x('amq.default', 'write')]);
    assert.deepEqual(sendChecks('/reply-queue/amq.gen-1'), [x('amq.default', 'write')]);
  });
});

describe('SUBSCRIBE checks', () => {
  it('/topic/<k>: topic T read (STOMP) → Q configure → Q read → Q write → exchange T read → topic T read', () => {
    const p = subscribePlan('/topic/k');
    const Q = p.queue.name;
    assert.deepEqual(p.checks, [
      { ...t('amq.topic', 'read', 'k'), always: true },
      q(Q, 'configure'),
      q(Q, 'read'),
      q(Q, 'write'),
      x('amq.topic', 'read'),
      t('amq.topic', 'read', 'k'),
    ]);
  });
  it('/exchange/<x>/<p>: Q configure → Q read → Q write → exchange x read → topic x read rk=p', () => {
    const p = subscribePlan('/exchange/feed/user_x', [['id', 's']]);
    const Q = p.queue.name;
    assert.deepEqual(p.checks, [q(Q, 'configure'), q(Q, 'read'), q(Q, 'write'), x('feed', 'read'), t('feed', 'read', 'user_x')]);
  });
  it('the subscription queue checks use x-queue-name when given', () => {
    const p = subscribePlan('/exchange/feed/k', [['x-queue-name', 'stomp-mine']]);
    assert.deepEqual(p.checks.slice(0, 3), [q('stomp-mine', 'configure'), q('stomp-mine', 'read'), q('stomp-mine', 'write')]);
  });
  it('a DLX on a subscription queue adds the declare pair after configure', () => {
    const p = subscribePlan('/exchange/feed/k', [['x-dead-letter-exchange', 'dlx']]);
    const Q = p.queue.name;
    assert.deepEqual(p.checks.slice(0, 4), [q(Q, 'configure'), q(Q, 'read'), x('dlx', 'write'), q(Q, 'read')]);
  });
  it('/queue/<q>: queue q configure (+DLX pair) → queue q read', () => {
    assert.deepEqual(subscribePlan('/queue/q1').checks, [q('q1', 'configure'), q('q1', 'read')]);
    assert.deepEqual(subscribePlan('/queue/q1', [['x-dead-letter-exchange', 'dlx']]).checks, [
      q('q1', 'configure'),
      q('q1', 'read'),
      x('dlx', 'write'),
      q('q1', 'read'),
    ]);
  });
  it('/amq/queue/<q> and /reply-queue/<q>: queue q read', () => {
    assert.deepEqual(subscribePlan('/amq/queue/q1').checks, [q('q1', 'read')]);
    assert.deepEqual(subscribePlan('/reply-queue/amq.gen-1').checks, [q('amq.gen-1', 'read')]);
  });
});

describe('UNSUBSCRIBE checks', () => {
  it('durable /topic: queue Q configure', () => {
    const r = planUnsubscribe({ kind: 'topic', name: 'k' }, makeFrame('UNSUBSCRIBE', [['id', 'u1'], ['durable', 'true']]));
    assert.ok(r.ok);
    assert.equal(r.value.checks.length, 1);
    assert.deepEqual(r.value.checks[0], q(r.value.deleteQueue ?? '', 'configure'));
  });
});

describe('withoutDeclareChecks: a /queue already declared on this connection is not re-checked', () => {
  it('SEND drops the configure (and DLX) checks', () => {
    const dest = parseDestination('/queue/q1', '1.2');
    assert.ok(dest.ok);
    const r = planSend(dest.value, makeFrame('SEND', [['x-dead-letter-exchange', 'dlx']]), OPTS);
    assert.ok(r.ok && r.value.declare);
    assert.deepEqual(withoutDeclareChecks(r.value.checks, r.value.declare), [x('amq.default', 'write')]);
  });
  it('SUBSCRIBE keeps only the consume check', () => {
    const p = subscribePlan('/queue/q1');
    assert.deepEqual(withoutDeclareChecks(p.checks, p.queue), [q('q1', 'read')]);
  });
  it('leaves checks alone when they do not start with the declare', () => {
    const p = subscribePlan('/topic/k');
    assert.deepEqual(withoutDeclareChecks(p.checks, p.queue), p.checks);
  });
});
