// reference §1.2 (SEND column), §1.3, §1.7: SEND plans.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, planSend, type PlanOptions, type SendPlan } from '../../broker/src/destination/index.js';
import { makeFrame, type HeaderList } from '../../broker/src/stomp/frame.js';

const OPTS: PlanOptions = { defaultTopicExchange: 'amq.topic' };

function plan(destination: string, headers: HeaderList = [], opts: PlanOptions = OPTS) {
  const dest = parseDestination(destination, '1.2');
  assert.ok(dest.ok, `bad destination ${destination}`);
  return planSend(dest.value, makeFrame('SEND', [['destination', destination], ...headers]), opts);
}

function planned(destination: string, headers: HeaderList = [], opts?: PlanOptions): SendPlan {
  const r = plan(destination, headers, opts);
  assert.ok(r.ok, `expected a plan, got ${r.ok ? '' : r.error.detail}`);
  return r.value;
}

describe('planSend: where each destination publishes (reference §1.2)', () => {
  it('/exchange/<x>/<p> → x / p, no declare', () => {
    const p = planned('/exchange/amq.direct/k');
    assert.equal(p.exchange, 'amq.direct');
    assert.equal(p.routingKey, 'k');
    assert.equal(p.declare, undefined);
  });
  it('/exchange/<x> → x / ""', () => {
    const p = planned('/exchange/feed');
    assert.deepEqual([p.exchange, p.routingKey, p.declare], ['feed', '', undefined]);
  });
  it('/topic/<n> → default topic exchange / n', () => {
    const p = planned('/topic/a.b');
    assert.deepEqual([p.exchange, p.routingKey, p.declare], ['amq.topic', 'a.b', undefined]);
    const custom = planned('/topic/a.b', [], { ...OPTS, defaultTopicExchange: 'stomp.topic' });
    assert.deepEqual([custom.exchange, custom.routingKey], ['stomp.topic', 'a.b']);
  });
  it('/topic/<n> routes with the %2F-decoded key', () => {
    assert.equal(planned('/topic/a%2Fb%25c').routingKey, 'a/b%25c');
  });
  it('/queue/<n> → "" / n and declares n durable', () => {
    const p = planned('/queue/orders');
    assert.deepEqual([p.exchange, p.routingKey], ['', 'orders']);
    assert.deepEqual(p.declare, { name: 'orders', durable: true, autoDelete: false, exclusive: false, arguments: {} });
  });
  it('a bare name is /queue/<name>, including the declare', () => {
    assert.deepEqual(planned('orders'), planned('/queue/orders'));
  });
  it('/amq/queue/<n> → "" / n, no declare', () => {
    const p = planned('/amq/queue/q1');
    assert.deepEqual([p.exchange, p.routingKey, p.declare], ['', 'q1', undefined]);
  });
  it('/reply-queue/<n> → "" / n (slashes kept), no declare', () => {
    const p = planned('/reply-queue/a/b');
    assert.deepEqual([p.exchange, p.routingKey, p.declare], ['', 'a/b', undefined]);
  });
  it('/temp-queue/<n> is not a valid SEND destination', () => {
    const r = plan('/temp-queue/foo');
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'INVALID_DESTINATION');
    assert.equal(r.error.message, 'Invalid destination');
    assert.equal(r.error.detail, "'/temp-queue/foo' is not a valid destination for 'SEND'\n");
    assert.equal(r.error.fatal, false);
  });
  it('the temp-queue error quotes the header as sent (1.0 leading spaces dropped)', () => {
    const dest = parseDestination(' /temp-queue/a%2Fb', '1.0');
    assert.ok(dest.ok);
    const r = planSend(dest.value, makeFrame('SEND', [['destination', ' /temp-queue/a%2Fb']]), OPTS);
    assert.ok(!r.ok);
    assert.equal(r.error.detail, "'/temp-queue/a%2Fb' is not a valid destination for 'SEND'\n");
  });
});

describe('planSend: /queue declare properties and arguments (reference §1.3, §1.7)', () => {
  it('headers overlay the durable default', () => {
    assert.deepEqual(planned('/queue/q', [['durable', 'false']]).declare, {
      name: 'q',
      durable: false,
      autoDelete: true,
      exclusive: true,
      arguments: {},
    });
    assert.deepEqual(
      planned('/queue/q', [['exclusive', 'true'], ['auto-delete', 'true'], ['durable', 'false']]).declare,
      { name: 'q', durable: false, autoDelete: true, exclusive: true, arguments: {} },
    );
    assert.equal(planned('/queue/q', [['persistent', 'False']]).declare?.durable, false);
  });
  it('queue arguments from headers', () => {
    assert.deepEqual(planned('/queue/q', [['x-max-priority', '9'], ['x-queue-type', 'classic']]).declare?.arguments, {
      'x-max-priority': 9,
      'x-queue-type': 'classic',
    });
  });
  it('an unrecognised durable value on /queue is a processing error', () => {
    const r = plan('/queue/q', [['durable', 'yes']]);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'PROCESSING_ERROR');
  });
  it('an unrecognised durable value is harmless where nothing is declared', () => {
    assert.ok(plan('/topic/t', [['durable', 'yes']]).ok);
    assert.ok(plan('/amq/queue/q', [['persistent', 'maybe']]).ok);
  });
  it('an unparsable integer argument fails every SEND, even without a declare', () => {
    for (const d of ['/topic/t', '/exchange/x/k', '/queue/q', '/amq/queue/q']) {
      const r = plan(d, [['x-message-ttl', 'soon']]);
      assert.ok(!r.ok, d);
      assert.equal(r.error.code, 'PROCESSING_ERROR');
    }
  });
});
