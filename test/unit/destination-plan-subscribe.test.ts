// reference §1.2 (SUBSCRIBE column), §1.3 table, §1.4, §1.5, §2.6: SUBSCRIBE and UNSUBSCRIBE plans.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseAckMode,
  parseDestination,
  planSubscribe,
  planUnsubscribe,
  subscriptionQueueName,
  type SubscribePlanOptions,
  type SubscribePlan,
} from '../../broker/src/destination/index.js';
import { makeFrame, type HeaderList } from '../../broker/src/stomp/frame.js';

const RANDOM = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const OPTS: SubscribePlanOptions = { defaultTopicExchange: 'amq.topic', randomId: RANDOM };

function subscribe(destination: string, headers: HeaderList = [], opts: SubscribePlanOptions = OPTS) {
  const dest = parseDestination(destination, '1.2');
  assert.ok(dest.ok, `bad destination ${destination}`);
  return planSubscribe(dest.value, makeFrame('SUBSCRIBE', [['destination', destination], ...headers]), opts);
}

function planned(destination: string, headers: HeaderList = [], opts?: SubscribePlanOptions): SubscribePlan {
  const r = subscribe(destination, headers, opts);
  assert.ok(r.ok, `expected a plan, got ${r.ok ? '' : r.error.detail}`);
  return r.value;
}

function props(p: SubscribePlan) {
  return { durable: p.queue.durable, autoDelete: p.queue.autoDelete, exclusive: p.queue.exclusive };
}

function failsWith(r: ReturnType<typeof subscribe>, code: string) {
  assert.ok(!r.ok, 'expected an error');
  assert.equal(r.error.code, code);
  return r.error;
}

describe('planSubscribe: queue and binding per destination (reference §1.2)', () => {
  it('/exchange/<x>/<p>: new random subscription queue bound to x with p', () => {
    const p = planned('/exchange/amq.direct/k', [['id', 's1']]);
    assert.equal(p.queue.name, subscriptionQueueName('k', RANDOM));
    assert.equal(p.declare, true);
    assert.deepEqual(p.bindings, [{ exchange: 'amq.direct', routingKey: 'k' }]);
    assert.equal(p.deleteOnFailure, true);
    assert.equal(p.durableSubscription, false);
  });
  it('/exchange/<x> binds with "" and names the queue from ""', () => {
    const p = planned('/exchange/feed', [['id', 's1']]);
    assert.equal(p.queue.name, subscriptionQueueName('', RANDOM));
    assert.deepEqual(p.bindings, [{ exchange: 'feed', routingKey: '' }]);
  });
  it('/topic/<n>: bound to the default topic exchange with n', () => {
    const p = planned('/topic/a.b', [['id', 's1']]);
    assert.equal(p.queue.name, subscriptionQueueName('a.b', RANDOM));
    assert.deepEqual(p.bindings, [{ exchange: 'amq.topic', routingKey: 'a.b' }]);
    assert.deepEqual(planned('/topic/a.b', [], { ...OPTS, defaultTopicExchange: 'x.t' }).bindings, [
      { exchange: 'x.t', routingKey: 'a.b' },
    ]);
  });
  it('non-durable names change with the random bytes', () => {
    const other = planned('/topic/a.b', [], { ...OPTS, randomId: Buffer.alloc(16) });
    assert.notEqual(other.queue.name, planned('/topic/a.b').queue.name);
  });
  it('/queue/<n>: declares n, no binding, not deleted on failure', () => {
    const p = planned('/queue/q', [['id', 's1']]);
    assert.deepEqual(p.queue, { name: 'q', durable: true, autoDelete: false, exclusive: false, arguments: {} });
    assert.equal(p.declare, true);
    assert.deepEqual(p.bindings, []);
    assert.equal(p.deleteOnFailure, false);
  });
  for (const d of ['/amq/queue/q1', '/reply-queue/q1']) {
    it(`${d}: consumes the existing queue, no declare`, () => {
      const p = planned(d);
      assert.equal(p.queue.name, 'q1');
      assert.equal(p.declare, false);
      assert.deepEqual(p.bindings, []);
      assert.equal(p.deleteOnFailure, false);
    });
  }
  it('/temp-queue/<n> is not a valid SUBSCRIBE destination', () => {
    const e = failsWith(subscribe('/temp-queue/foo'), 'INVALID_DESTINATION');
    assert.equal(e.detail, "'/temp-queue/foo' is not a valid destination for 'SUBSCRIBE'\n");
  });
});

describe('planSubscribe: resulting queue properties (reference §1.3 table, 3.10.8)', () => {
  it('/queue/<n> → durable, not exclusive, not auto-delete', () =>
    assert.deepEqual(props(planned('/queue/n')), { durable: true, autoDelete: false, exclusive: false }));
  it('/topic/<n> → non-durable, auto-delete, not exclusive', () =>
    assert.deepEqual(props(planned('/topic/n')), { durable: false, autoDelete: true, exclusive: false }));
  it('/exchange/<x>… → non-durable, auto-delete, not exclusive', () =>
    assert.deepEqual(props(planned('/exchange/amq.fanout')), { durable: false, autoDelete: true, exclusive: false }));
  it('/topic + durable:true + id → durable AND auto-delete, named from the id', () => {
    const p = planned('/topic/dur2', [['durable', 'true'], ['id', 'd2']]);
    assert.deepEqual(props(p), { durable: true, autoDelete: true, exclusive: false });
    assert.equal(p.queue.name, 'stomp-subscription-zrdDK-zj0Ow7yPrh21bGag');
    assert.equal(p.durableSubscription, true);
    assert.equal(p.deleteOnFailure, true);
  });
  it('/topic + durable:true + auto-delete:false + id → durable, survives disconnect', () => {
    const p = planned('/topic/u1', [['id', 'u1'], ['durable', 'true'], ['auto-delete', 'false']]);
    assert.deepEqual(props(p), { durable: true, autoDelete: false, exclusive: false });
    assert.equal(p.queue.name, 'stomp-subscription-gQTZ2TVouG2rEcbyoXj4Mg');
  });
  it('/queue/q + exclusive:true, auto-delete:true, durable:false → exclusive, auto-delete, non-durable', () =>
    assert.deepEqual(props(planned('/queue/q', [['exclusive', 'true'], ['auto-delete', 'true'], ['durable', 'false']])), {
      durable: false,
      autoDelete: true,
      exclusive: true,
    }));
  it('persistent is an alias of durable; True/False spellings work', () => {
    const p = planned('/exchange/amq.direct/k', [['persistent', 'True'], ['id', 'u3']]);
    assert.equal(p.queue.name, 'stomp-subscription-AJZPf7OGdrYFWm9HsKNVLQ');
    assert.deepEqual(props(p), { durable: true, autoDelete: true, exclusive: false });
    assert.equal(p.durableSubscription, true);
  });
  it('of durable and persistent, the later header decides durability', () => {
    assert.equal(planned('/topic/t', [['id', 'i'], ['durable', 'true'], ['persistent', 'false']]).queue.durable, false);
    assert.equal(planned('/topic/t', [['id', 'i'], ['persistent', 'false'], ['durable', 'true']]).queue.durable, true);
  });
  it('an unrecognised exclusive/auto-delete falls back to the non-durable start (exclusive + auto-delete)', () => {
    assert.deepEqual(props(planned('/topic/t', [['exclusive', 'yes']])), { durable: false, autoDelete: true, exclusive: true });
    assert.deepEqual(props(planned('/queue/q', [['exclusive', 'yes'], ['auto-delete', '1']])), {
      durable: true,
      autoDelete: false,
      exclusive: false,
    });
  });
  it('an unrecognised durable value is a processing error where a queue is declared', () => {
    failsWith(subscribe('/topic/t', [['durable', 'yes']]), 'PROCESSING_ERROR');
    failsWith(subscribe('/queue/q', [['persistent', '1']]), 'PROCESSING_ERROR');
    assert.ok(subscribe('/amq/queue/q', [['durable', 'yes']]).ok);
  });
  it('queue arguments apply to subscription queues', () => {
    assert.deepEqual(planned('/topic/t', [['x-message-ttl', '100']]).queue.arguments, { 'x-message-ttl': 100 });
    failsWith(subscribe('/topic/t', [['x-expires', 'never']]), 'PROCESSING_ERROR');
  });
});

describe('planSubscribe: x-queue-name and durable ids (reference §1.4, §1.5)', () => {
  it('x-queue-name names /topic and /exchange subscription queues', () => {
    assert.equal(planned('/topic/t', [['x-queue-name', 'mine']]).queue.name, 'mine');
    const durable = planned('/exchange/x/k', [['x-queue-name', 'mine'], ['durable', 'true'], ['id', 'i']]);
    assert.deepEqual([durable.queue.name, durable.queue.durable], ['mine', true]);
  });
  it('x-queue-name is ignored for /queue and /amq/queue', () => {
    assert.equal(planned('/queue/q', [['x-queue-name', 'mine']]).queue.name, 'q');
    assert.equal(planned('/amq/queue/q', [['x-queue-name', 'mine']]).queue.name, 'q');
  });
  it('/exchange/a/k and /exchange/b/k with the same durable id share one queue', () => {
    const h: HeaderList = [['durable', 'true'], ['id', 'same']];
    assert.equal(planned('/exchange/a/k', h).queue.name, planned('/exchange/b/k', h).queue.name);
  });
  for (const flag of ['durable', 'persistent']) {
    for (const d of ['/topic/t', '/exchange/x/k', '/queue/q']) {
      it(`${flag}:true without id on ${d} → Missing Header`, () => {
        const e = failsWith(subscribe(d, [[flag, 'true']]), 'MISSING_HEADER');
        assert.equal(e.message, 'Missing Header');
        assert.equal(e.detail, "Header 'id' is required for durable subscriptions");
        assert.equal(e.fatal, false);
      });
    }
  }
  it('durable:True without id slips past the check and fails as a processing error', () => {
    failsWith(subscribe('/topic/t', [['durable', 'True']]), 'PROCESSING_ERROR');
  });
});

describe('planSubscribe: ack, prefetch-count, consumer arguments (reference §2.6, §1.7)', () => {
  it('ack modes', () => {
    assert.equal(planned('/queue/q').ack, 'auto');
    assert.equal(planned('/queue/q', [['ack', 'client']]).ack, 'client');
    assert.equal(planned('/queue/q', [['ack', 'client-individual']]).ack, 'client-individual');
    failsWith(subscribe('/queue/q', [['ack', 'manual']]), 'PROCESSING_ERROR');
  });
  it('parseAckMode', () => {
    assert.deepEqual(parseAckMode(undefined), { ok: true, value: 'auto' });
    assert.deepEqual(parseAckMode('auto'), { ok: true, value: 'auto' });
    assert.equal(parseAckMode('Client').ok, false);
  });
  it('prefetch-count', () => {
    assert.equal(planned('/queue/q').prefetch, undefined);
    assert.equal(planned('/queue/q', [['prefetch-count', '10']]).prefetch, 10);
    assert.equal(planned('/queue/q', [['prefetch-count', ' 0 ']]).prefetch, 0);
    for (const bad of ['ten', '-1', '', '1.5']) failsWith(subscribe('/queue/q', [['prefetch-count', bad]]), 'PROCESSING_ERROR');
  });
  it('x-stream-offset becomes a consumer argument', () => {
    const p = planned('/amq/queue/st1', [['ack', 'client'], ['prefetch-count', '10'], ['x-stream-offset', 'offset=40000']]);
    assert.deepEqual(p.consumerArgs, { 'x-stream-offset': 40000 });
    assert.deepEqual(planned('/amq/queue/st1', [['x-stream-offset', 'timestamp=1700000000']]).consumerArgs, {
      'x-stream-offset': { type: 'timestamp', value: 1700000000 },
    });
    failsWith(subscribe('/amq/queue/st1', [['x-stream-offset', 'offset=x']]), 'PROCESSING_ERROR');
  });
});

describe('planUnsubscribe (reference §1.5)', () => {
  const topic = { kind: 'topic', name: 'dur2' } as const;
  const unsub = (dest: Parameters<typeof planUnsubscribe>[0], headers: HeaderList) =>
    planUnsubscribe(dest, makeFrame('UNSUBSCRIBE', headers));

  it('durable:true + id on a /topic subscription deletes the derived queue', () => {
    assert.deepEqual(unsub(topic, [['id', 'd2'], ['durable', 'true']]), {
      ok: true,
      value: {
        deleteQueue: 'stomp-subscription-zrdDK-zj0Ow7yPrh21bGag',
        checks: [{ resource: 'queue', name: 'stomp-subscription-zrdDK-zj0Ow7yPrh21bGag', permission: 'configure' }],
      },
    });
  });
  it('persistent:True works as well', () => {
    const r = unsub(topic, [['id', 'd2'], ['persistent', 'True']]);
    assert.ok(r.ok);
    assert.equal(r.value.deleteQueue, 'stomp-subscription-zrdDK-zj0Ow7yPrh21bGag');
  });
  it('the name is re-derived from the UNSUBSCRIBE frame: x-queue-name must be repeated', () => {
    const r = unsub(topic, [['id', 'd2'], ['durable', 'true'], ['x-queue-name', 'mine']]);
    assert.ok(r.ok);
    assert.equal(r.value.deleteQueue, 'mine');
  });
  it('without the durable header only the consumer is cancelled', () => {
    assert.deepEqual(unsub(topic, [['id', 'd2']]), { ok: true, value: { deleteQueue: undefined, checks: [] } });
    assert.deepEqual(unsub(topic, [['id', 'd2'], ['durable', 'false']]), { ok: true, value: { deleteQueue: undefined, checks: [] } });
  });
  it('a durable /exchange or /queue subscription is never deleted', () => {
    const none = { ok: true, value: { deleteQueue: undefined, checks: [] } };
    assert.deepEqual(unsub({ kind: 'exchange', exchange: 'x', pattern: 'k' }, [['id', 'i'], ['durable', 'true']]), none);
    assert.deepEqual(unsub({ kind: 'queue', name: 'q' }, [['id', 'i'], ['durable', 'true']]), none);
    assert.deepEqual(unsub(undefined, [['id', 'i'], ['durable', 'true']]), none);
  });
  it('durable:true without id → Missing Header', () => {
    const r = unsub(topic, [['durable', 'true'], ['destination', '/topic/dur2']]);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'MISSING_HEADER');
    assert.equal(r.error.message, 'Missing Header');
  });
  it('durable:True without id → processing error', () => {
    const r = unsub(topic, [['durable', 'True'], ['destination', '/topic/dur2']]);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'PROCESSING_ERROR');
  });
});
