// Which SUBSCRIBEs may be served from the node's shared queue: only those whose own queue would be
// a plain, non-durable, auto-ack subscription queue with one binding and nothing per queue.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, planSubscribe } from '../../broker/src/destination/index.js';
import { shareableBinding, sharedBindingOf } from '../../broker/src/destination/shared-binding.js';
import { makeFrame, type HeaderList } from '../../broker/src/stomp/frame.js';

function shareable(destination: string, headers: HeaderList = []) {
  const dest = parseDestination(destination, '1.2');
  assert.ok(dest.ok, destination);
  const frame = makeFrame('SUBSCRIBE', [['destination', destination], ['id', 's1'], ...headers]);
  const plan = planSubscribe(dest.value, frame, { defaultTopicExchange: 'amq.topic', randomId: Buffer.alloc(16, 7) });
  assert.ok(plan.ok, destination);
  return shareableBinding(plan.value, frame);
}

describe('shareableBinding', () => {
  it('plain /exchange and /topic auto-ack subscriptions share', () => {
    assert.deepEqual(shareable('/exchange/feed/user_x'), { exchange: 'feed', routingKey: 'user_x' });
    assert.deepEqual(shareable('/topic/news.*'), { exchange: 'amq.topic', routingKey: 'news.*' });
    assert.deepEqual(shareable('/exchange/amq.fanout'), { exchange: 'amq.fanout', routingKey: '' });
  });

  it('anything with per-subscription state or a visible queue does not', () => {
    const cases: Array<[string, HeaderList]> = [
      ['/exchange/feed/user_x', [['ack', 'client']]],
      ['/exchange/feed/user_x', [['ack', 'client-individual']]],
      ['/topic/news', [['durable', 'true'], ['auto-delete', 'false']]],
      ['/topic/news', [['persistent', 'true'], ['durable', 'true']]],
      ['/exchange/feed/user_x', [['x-queue-name', 'my-queue']]],
      ['/exchange/feed/user_x', [['x-message-ttl', '1000']]],
      ['/exchange/feed/user_x', [['x-max-length', '10']]],
      ['/exchange/feed/user_x', [['x-max-priority', '5']]],
      ['/exchange/feed/user_x', [['x-stream-offset', 'first']]],
      ['/queue/work', []],
      ['/amq/queue/work', []],
    ];
    for (const [destination, headers] of cases) {
      assert.equal(shareable(destination, headers), undefined, `${destination} ${JSON.stringify(headers)}`);
    }
  });
});

describe('sharedBindingOf', () => {
  it('needs a type the node can route by', () => {
    const b = { exchange: 'feed', routingKey: 'user_x' };
    assert.deepEqual(sharedBindingOf(b, 'topic'), { exchange: 'feed', type: 'topic', bindingKey: 'user_x' });
    assert.deepEqual(sharedBindingOf(b, 'direct'), { exchange: 'feed', type: 'direct', bindingKey: 'user_x' });
    assert.deepEqual(sharedBindingOf(b, 'fanout'), { exchange: 'feed', type: 'fanout', bindingKey: 'user_x' });
    assert.equal(sharedBindingOf(b, 'headers'), undefined);
    assert.equal(sharedBindingOf(b, 'x-consistent-hash'), undefined);
    assert.equal(sharedBindingOf(b, undefined), undefined);
  });
});
