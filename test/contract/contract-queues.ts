// Contract: queue.declare and its arguments, exclusivity, auto-delete, expiry, queue.delete.

import { capReplyText } from '../../broker/src/engine/reply-text.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  expectFatal,
  Fixture,
  Inbox,
  message,
  queueSpec,
  TEST_TIMEOUT_MS,
  uniqueName,
  type ContractEnv,
} from './contract-helpers.js';

const opts = { timeout: TEST_TIMEOUT_MS };
// Reply texts are shortstrs: RabbitMQ cuts them at 255 bytes (long queue names make this one longer).
const locked = (q: string, vhost: string) =>
  capReplyText(`RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '${vhost}'. It could be ` +
  'originally declared on another connection or the exclusive property value does not match that of the ' +
  'original declaration.');

export function queueContract(env: () => ContractEnv): void {
  describe('queue.declare', () => {
    it('re-declaring with identical properties is idempotent and returns the name (queue.declare)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = fx.queueName();
      const spec = queueSpec(name, { arguments: { 'x-max-length': 10, 'x-dead-letter-exchange': fx.env.directExchange } });
      assert.equal(await peer.session.declareQueue(spec), name);
      await peer.session.publish('', name, message('kept'), true);
      assert.equal(await peer.session.declareQueue(spec), name);
      const other = await fx.open();
      assert.equal(await other.session.declareQueue(spec), name);
      const inbox = new Inbox();
      await other.session.consume(name, { noAck: true, args: {} }, inbox.onDelivery);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.bodies, ['kept'], 'a re-declare leaves the messages alone');
    });

    it('re-declare with another argument is PRECONDITION_FAILED inequivalent arg (queue.declare equivalence)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = await fx.declare(peer);
      await expectFatal(
        peer.session.declareQueue(queueSpec(name, { arguments: { 'x-max-priority': 9 } })),
        'PRECONDITION_FAILED',
        `PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue '${name}' in vhost '${fx.env.vhost}': ` +
          "received the value '9' of type 'long' but current is none",
      );
    });

    it('re-declare with another durable flag is PRECONDITION_FAILED inequivalent arg (queue.declare equivalence)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = await fx.declare(peer, { durable: true });
      await expectFatal(
        peer.session.declareQueue(queueSpec(name, { durable: false })),
        'PRECONDITION_FAILED',
        `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${name}' in vhost '${fx.env.vhost}': ` +
          "received 'false' but current is 'true'",
      );
    });

    it('unknown x- arguments are accepted and not compared on re-declare (queue.declare)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = await fx.declare(peer, {}, { 'x-thumper-unknown': 'a' });
      assert.equal(await peer.session.declareQueue(queueSpec(name, { arguments: { 'x-thumper-unknown': 'b' } })), name);
      assert.equal(await peer.session.declareQueue(queueSpec(name)), name);
    });

    it('an empty name asks for a server-named queue `amq.gen-…` (queue.declare)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const spec = queueSpec('', { exclusive: true, autoDelete: true });
      const first = fx.track(await peer.session.declareQueue(spec));
      const second = fx.track(await peer.session.declareQueue(spec));
      assert.match(first, /^amq\.gen-[A-Za-z0-9_-]{22}$/);
      assert.notEqual(first, second);
      const inbox = new Inbox();
      await peer.session.consume(first, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', first, message('to generated'), true);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.bodies, ['to generated']);
    });

    it('queue names starting with `amq.` are reserved: ACCESS_REFUSED (queue.declare)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = `amq.${uniqueName()}`;
      await expectFatal(
        peer.session.declareQueue(queueSpec(name)),
        'ACCESS_REFUSED',
        `ACCESS_REFUSED - queue name '${name}' contains reserved prefix 'amq.*'`,
      );
    });

    it('passive declare of a missing queue is NOT_FOUND and closes the session (queue.declare passive)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = uniqueName('missing');
      const detail = `NOT_FOUND - no queue '${name}' in vhost '${fx.env.vhost}'`;
      await expectFatal(peer.session.checkQueue(name), 'NOT_FOUND', detail);
      await expectFatal(peer.session.setPrefetch(1), 'NOT_FOUND', detail);
      const alive = await fx.open();
      const q = await fx.declare(alive);
      await alive.session.checkQueue(q);
    });

    it('deleting a queue that does not exist succeeds (queue.delete)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      await peer.session.deleteQueue(uniqueName('missing'));
      const q = await fx.declare(peer);
      await peer.session.deleteQueue(q);
      assert.equal(await fx.queueGone(q), true);
    });
  });

  describe('exclusive and auto-delete queues', () => {
    it('an exclusive queue is RESOURCE_LOCKED for every other session (queue.declare exclusive)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const vhost = fx.env.vhost;
      const owner = await fx.open();
      const q = await fx.declare(owner, { exclusive: true });
      const attempts: Array<(s: Awaited<ReturnType<Fixture['open']>>['session']) => Promise<unknown>> = [
        (s) => s.declareQueue(queueSpec(q, { exclusive: true })),
        (s) => s.checkQueue(q),
        (s) => s.consume(q, { noAck: true, args: {} }, () => undefined),
        (s) => s.bindQueue(q, fx.env.topicExchange, uniqueName('k')),
        (s) => s.deleteQueue(q),
      ];
      for (const attempt of attempts) {
        const other = await fx.open();
        await expectFatal(attempt(other.session), 'RESOURCE_LOCKED', locked(q, vhost));
      }
      // Publishing to it is not an access to the queue: allowed.
      const publisher = await fx.open();
      await publisher.session.publish('', q, message('for the owner'), true);
      const inbox = new Inbox();
      await owner.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.bodies, ['for the owner']);
    });

    it('re-declaring with another exclusive flag is RESOURCE_LOCKED, even for the owner (queue.declare)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const owner = await fx.open();
      const q = await fx.declare(owner, { exclusive: true });
      await expectFatal(owner.session.declareQueue(queueSpec(q)), 'RESOURCE_LOCKED', locked(q, fx.env.vhost));
      const plain = await fx.open();
      const shared = await fx.declare(plain);
      await expectFatal(
        plain.session.declareQueue(queueSpec(shared, { exclusive: true })),
        'RESOURCE_LOCKED',
        locked(shared, fx.env.vhost),
      );
    });

    it('an exclusive queue is deleted when its owner session closes (queue.declare exclusive)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const owner = await fx.open();
      const q = await fx.declare(owner, { exclusive: true });
      assert.equal(await fx.queueGone(q), false);
      await owner.session.close();
      await fx.waitQueueGone(q);
    });

    it('an auto-delete queue goes when its last consumer is cancelled, not before it had one (queue.declare auto-delete)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer, { autoDelete: true });
      assert.equal(await fx.queueGone(q), false, 'never consumed: stays');
      const other = await fx.open();
      const first = await peer.session.consume(q, { noAck: true, args: {} }, () => undefined);
      const second = await other.session.consume(q, { noAck: true, args: {} }, () => undefined);
      await peer.session.cancel(first);
      assert.equal(await fx.queueGone(q), false, 'one consumer left');
      await other.session.cancel(second);
      await fx.waitQueueGone(q);
    });

    it('x-expires: a queue unused for that many ms is deleted (queue.declare x-expires)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer, {}, { 'x-expires': 100 });
      // A passive declare (how queueGone looks) counts as use on RabbitMQ and restarts the timer:
      // look only after the queue has had time to expire, and then less often than x-expires.
      await new Promise((resolve) => setTimeout(resolve, 400));
      await fx.waitQueueGone(q, 250);
    });
  });

  describe('queue limits', () => {
    it('x-max-length: overflow drops messages from the head (queue.declare x-max-length, drop-head)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer, {}, { 'x-max-length': 3 });
      for (const body of ['m1', 'm2', 'm3', 'm4', 'm5']) await peer.session.publish('', q, message(body), true);
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', q, message('end'), true);
      await inbox.waitFor(4);
      assert.deepEqual(inbox.bodies, ['m3', 'm4', 'm5', 'end']);
    });

    it('x-max-length 0 and TTL 0 still deliver to a consumer ready at publish time (deliver, else enqueue)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const noRoom = await fx.declare(peer, {}, { 'x-max-length': 0 });
      const noTime = await fx.declare(peer, {}, { 'x-message-ttl': 0 });
      await peer.session.publish('', noRoom, message('never stored'), true);
      await peer.session.publish('', noTime, message('expired at once'), true);
      const inbox = new Inbox();
      await peer.session.consume(noRoom, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.consume(noTime, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', noRoom, message('handed over 1'), true);
      await peer.session.publish('', noTime, message('handed over 2'), true);
      await inbox.waitFor(2);
      assert.deepEqual(inbox.bodies.sort(), ['handed over 1', 'handed over 2']);
    });

    it('x-message-ttl: a message older than the TTL is discarded, not delivered (queue.declare x-message-ttl)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer, {}, { 'x-message-ttl': 50 });
      await peer.session.publish('', q, message('stale'), true);
      await sleep(300); // let the TTL pass (a wait, not an assertion)
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', q, message('fresh'), true);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.bodies, ['fresh']);
    });

    it('x-message-ttl with x-dead-letter-exchange: expired messages are dead-lettered, reason expired', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const dead = await fx.declare(peer);
      const key = uniqueName('dlk');
      await peer.session.bindQueue(dead, fx.env.directExchange, key);
      const q = await fx.declare(peer, {}, {
        'x-message-ttl': 50,
        'x-dead-letter-exchange': fx.env.directExchange,
        'x-dead-letter-routing-key': key,
      });
      await peer.session.publish('', q, message('expires'), true);
      const inbox = new Inbox();
      await peer.session.consume(dead, { noAck: true, args: {} }, inbox.onDelivery);
      const [d] = await inbox.waitFor(1);
      assert.equal(text(d), 'expires');
      assert.equal(d?.exchange, fx.env.directExchange);
      assert.equal(d?.routingKey, key);
      assert.equal(d?.properties.headers['x-first-death-reason'], 'expired');
      assert.equal(d?.properties.headers['x-first-death-queue'], q);
    });

    it('per-message expiration: the message is discarded after that many ms (basic.publish expiration)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      await peer.session.publish('', q, message('short-lived', { expiration: '50' }), true);
      await sleep(300); // let it expire (a wait, not an assertion)
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', q, message('fresh', { expiration: '60000' }), true);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.bodies, ['fresh']);
    });

    it('x-max-priority: higher priority first, FIFO within one, above the maximum counts as the maximum', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer, {}, { 'x-max-priority': 10 });
      const sent: Array<[string, number | undefined]> = [
        ['p1', 1],
        ['none-a', undefined],
        ['p5', 5],
        ['p10', 10],
        ['p200', 200],
        ['p0', 0],
        ['p5-b', 5],
      ];
      for (const [body, priority] of sent) {
        await peer.session.publish('', q, message(body, priority === undefined ? {} : { priority }), true);
      }
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await inbox.waitFor(sent.length);
      // p200 counts as 10 and so stays behind p10, which arrived first.
      assert.deepEqual(inbox.bodies, ['p10', 'p200', 'p5', 'p5-b', 'p1', 'none-a', 'p0']);
      assert.equal(inbox.deliveries[1]?.properties.priority, 200, 'the property itself is not clamped');
    });
  });
}

const text = (d: { body: Buffer } | undefined): string => d?.body.toString() ?? '<none>';
