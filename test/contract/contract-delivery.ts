// Contract: consumers, prefetch and acknowledgements (basic.consume, basic.qos, basic.ack/nack,
// basic.cancel, channel close).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delivery } from '../../broker/src/engine/message.js';
import {
  expectFatal,
  Fixture,
  Inbox,
  message,
  queueSpec,
  TEST_TIMEOUT_MS,
  uniqueName,
  type ContractEnv,
  type Peer,
} from './contract-helpers.js';

const opts = { timeout: TEST_TIMEOUT_MS };
const manual = { noAck: false, args: {} } as const;
const auto = { noAck: true, args: {} } as const;

async function publishAll(peer: Peer, queue: string, bodies: readonly string[]): Promise<void> {
  for (const body of bodies) await peer.session.publish('', queue, message(body), true);
}

export function deliveryContract(env: () => ContractEnv): void {
  describe('consumers', () => {
    it('consuming a missing queue is NOT_FOUND and closes the session (basic.consume 404)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const name = uniqueName('missing');
      await expectFatal(
        peer.session.consume(name, auto, () => undefined),
        'NOT_FOUND',
        `NOT_FOUND - no queue '${name}' in vhost '${fx.env.vhost}'`,
      );
    });

    it('competing consumers on one queue are served round-robin (basic.consume, RabbitMQ consumer rotation)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const b = await fx.open();
      const q = await fx.declare(a);
      const owner = new Map<string, string>();
      const all = new Inbox();
      const tagA = await a.session.consume(q, auto, (d) => {
        owner.set(d.body.toString(), 'a');
        all.onDelivery(d);
      });
      const tagB = await b.session.consume(q, auto, (d) => {
        owner.set(d.body.toString(), 'b');
        all.onDelivery(d);
      });
      assert.notEqual(tagA, tagB);
      const bodies = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
      await publishAll(a, q, bodies);
      await all.waitFor(bodies.length);
      const owners = bodies.map((body) => owner.get(body));
      for (let i = 1; i < owners.length; i++) {
        assert.notEqual(owners[i], owners[i - 1], `consecutive messages alternate: ${owners.join(',')}`);
      }
    });

    it('basic.qos prefetch caps unacked deliveries per consumer; the rest go to other consumers', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const q = await fx.declare(a);
      await publishAll(a, q, ['m1', 'm2', 'm3', 'm4', 'm5']);
      await a.session.setPrefetch(2);
      const limited = new Inbox();
      await a.session.consume(q, manual, limited.onDelivery);
      await limited.waitFor(2);
      const b = await fx.open();
      const unlimited = new Inbox();
      await b.session.consume(q, manual, unlimited.onDelivery);
      await unlimited.waitFor(3);
      assert.deepEqual(limited.bodies, ['m1', 'm2']);
      assert.deepEqual(unlimited.bodies, ['m3', 'm4', 'm5']);
    });

    it('an ack opens the prefetch window for the next delivery (basic.qos + basic.ack)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      await publishAll(peer, q, ['m1', 'm2', 'm3']);
      await peer.session.setPrefetch(1);
      const inbox = new Inbox();
      await peer.session.consume(q, manual, inbox.onDelivery);
      for (let n = 1; n <= 3; n++) {
        const got = await inbox.waitFor(n);
        assert.equal(inbox.deliveries.length, n, 'no delivery beyond the window');
        peer.session.ack(got[n - 1]?.deliveryTag ?? -1, false);
      }
      assert.deepEqual(inbox.bodies, ['m1', 'm2', 'm3']);
    });

    it('basic.qos (global=false) binds consumers started after it, not existing ones', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const before = await fx.declare(peer);
      const after = await fx.declare(peer);
      const early = new Inbox();
      await peer.session.consume(before, manual, early.onDelivery);
      await peer.session.setPrefetch(1);
      const late = new Inbox();
      await peer.session.consume(after, manual, late.onDelivery);
      await publishAll(peer, before, ['e1', 'e2', 'e3']);
      await publishAll(peer, after, ['l1', 'l2', 'l3']);
      await early.waitFor(3, 'all three on the consumer started before basic.qos');
      await late.waitFor(1);
      const other = await fx.open();
      const rest = new Inbox();
      await other.session.consume(after, manual, rest.onDelivery);
      await rest.waitFor(2);
      assert.deepEqual(late.bodies, ['l1']);
      assert.deepEqual(rest.bodies, ['l2', 'l3']);
    });

    it('delivery tags start at 1 per session and increase across all its consumers (basic.deliver)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q1 = await fx.declare(peer);
      const q2 = await fx.declare(peer);
      const seen: Delivery[] = [];
      const inbox = new Inbox();
      const record = (d: Delivery) => {
        seen.push(d);
        inbox.onDelivery(d);
      };
      const tag1 = await peer.session.consume(q1, manual, record);
      const tag2 = await peer.session.consume(q2, auto, record);
      for (let i = 0; i < 3; i++) {
        await peer.session.publish('', q1, message(`a${i}`), true);
        await peer.session.publish('', q2, message(`b${i}`), true);
      }
      await inbox.waitFor(6);
      assert.deepEqual(
        seen.map((d) => d.deliveryTag),
        [1, 2, 3, 4, 5, 6],
      );
      assert.deepEqual(new Set(seen.map((d) => d.consumerTag)), new Set([tag1, tag2]));
      const second = await fx.open();
      const q3 = await fx.declare(second);
      const other = new Inbox();
      await second.session.consume(q3, manual, other.onDelivery);
      await second.session.publish('', q3, message('first'), true);
      const [d] = await other.waitFor(1);
      assert.equal(d?.deliveryTag, 1, 'each session numbers its own deliveries');
    });

    it('basic.cancel stops deliveries; deliveries already received can still be acked', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const first = new Inbox();
      const tag = await peer.session.consume(q, manual, first.onDelivery);
      await peer.session.publish('', q, message('before cancel'), true);
      const [d] = await first.waitFor(1);
      await peer.session.cancel(tag);
      peer.session.ack(d?.deliveryTag ?? -1, false);
      await peer.session.publish('', q, message('after cancel'), true);
      const second = new Inbox();
      await peer.session.consume(q, manual, second.onDelivery);
      await second.waitFor(1);
      assert.deepEqual(second.bodies, ['after cancel'], 'the acked message is gone, the next one is not redelivered');
      assert.deepEqual(first.bodies, ['before cancel']);
      assert.deepEqual(peer.closed, []);
    });

    it('queue.delete cancels its consumers on every session, the deleting one too (server basic.cancel)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const b = await fx.open();
      const q = await fx.declare(a);
      const held = new Inbox();
      const tagA = await a.session.consume(q, manual, held.onDelivery);
      const tagB = await b.session.consume(q, auto, () => undefined);
      await a.session.publish('', q, message('unacked'), true);
      const [d] = await held.waitFor(1, 'a delivery to consumer A');
      await b.session.deleteQueue(q);
      await a.until(() => a.cancelled.includes(tagA), 'onCancelled on the other session');
      await b.until(() => b.cancelled.includes(tagB), 'onCancelled on the deleting session');
      assert.equal(await fx.queueGone(q), true);
      // A delivery from the deleted queue is still a valid tag on its channel.
      a.session.ack(d?.deliveryTag ?? -1, false);
      // A server cancel is not a channel error: both sessions still work.
      await a.session.declareQueue(queueSpec(fx.queueName()));
      await b.session.setPrefetch(0);
      assert.deepEqual([...a.closed, ...b.closed], []);
    });
  });

  describe('acknowledgements', () => {
    it('ack with multiple settles every unacked delivery up to the tag; later ones stay unacked', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const q = await fx.declare(a);
      await publishAll(a, q, ['m1', 'm2', 'm3']);
      const inbox = new Inbox();
      await a.session.consume(q, manual, inbox.onDelivery);
      const got = await inbox.waitFor(3);
      a.session.ack(got[1]?.deliveryTag ?? -1, true);
      await a.session.close();
      const after = await fx.remaining(q, 1);
      assert.deepEqual(after.bodies, ['m3', 'end']);
      assert.equal(after.deliveries[0]?.redelivered, true);
    });

    it('ack of tag 0 with multiple settles everything outstanding (basic.ack)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const q = await fx.declare(a);
      await publishAll(a, q, ['m1', 'm2']);
      const inbox = new Inbox();
      await a.session.consume(q, manual, inbox.onDelivery);
      await inbox.waitFor(2);
      a.session.ack(0, true);
      await a.session.close();
      const after = await fx.remaining(q, 0);
      assert.deepEqual(after.bodies, ['end']);
    });

    it('nack with requeue redelivers the message with redelivered=true (basic.nack requeue)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const inbox = new Inbox();
      await peer.session.consume(q, manual, inbox.onDelivery);
      await peer.session.publish('', q, message('again'), true);
      const [first] = await inbox.waitFor(1);
      assert.equal(first?.redelivered, false);
      peer.session.nack(first?.deliveryTag ?? -1, false, true);
      const [, second] = await inbox.waitFor(2);
      assert.equal(second?.body.toString(), 'again');
      assert.equal(second?.redelivered, true);
      assert.ok((second?.deliveryTag ?? 0) > (first?.deliveryTag ?? 0), 'a redelivery gets a new tag');
    });

    it('a requeued message goes back to its original position, ahead of later ones (basic.nack requeue)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      await publishAll(peer, q, ['a', 'b', 'c', 'd']);
      await peer.session.setPrefetch(2);
      const first = new Inbox();
      const tag = await peer.session.consume(q, manual, first.onDelivery);
      const [, b] = await first.waitFor(2);
      await peer.session.cancel(tag);
      peer.session.nack(b?.deliveryTag ?? -1, false, true);
      await peer.session.setPrefetch(0);
      const second = new Inbox();
      await peer.session.consume(q, manual, second.onDelivery);
      await second.waitFor(3);
      assert.deepEqual(second.bodies, ['b', 'c', 'd']);
      assert.deepEqual(
        second.deliveries.map((d) => d.redelivered),
        [true, false, false],
      );
      assert.deepEqual(first.bodies, ['a', 'b'], 'the cancelled consumer got nothing more');
    });

    it('nack without requeue dead-letters to x-dead-letter-exchange with x-dead-letter-routing-key', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const dead = await fx.declare(peer);
      const key = uniqueName('dlk');
      await peer.session.bindQueue(dead, fx.env.directExchange, key);
      const q = await fx.declare(peer, {}, { 'x-dead-letter-exchange': fx.env.directExchange, 'x-dead-letter-routing-key': key });
      const inbox = new Inbox();
      await peer.session.consume(q, manual, inbox.onDelivery);
      await peer.session.publish('', q, message('rejected', { headers: { keep: 'me' } }), true);
      const [d] = await inbox.waitFor(1);
      peer.session.nack(d?.deliveryTag ?? -1, false, false);
      const deadInbox = new Inbox();
      await peer.session.consume(dead, manual, deadInbox.onDelivery);
      const [dl] = await deadInbox.waitFor(1);
      assert.equal(dl?.body.toString(), 'rejected');
      assert.equal(dl?.exchange, fx.env.directExchange);
      assert.equal(dl?.routingKey, key);
      const headers = dl?.properties.headers ?? {};
      assert.equal(headers['keep'], 'me');
      assert.equal(headers['x-first-death-reason'], 'rejected');
      assert.equal(headers['x-first-death-queue'], q);
      assert.equal(headers['x-first-death-exchange'], '');
      const deaths = headers['x-death'];
      assert.ok(Array.isArray(deaths) && deaths.length === 1, 'one x-death entry');
      const death = deaths[0] as Record<string, unknown>;
      assert.equal(death['reason'], 'rejected');
      assert.equal(death['queue'], q);
      assert.equal(death['count'], 1);
    });

    it('nack without requeue and without a dead-letter exchange drops the message (basic.nack)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const inbox = new Inbox();
      await peer.session.consume(q, manual, inbox.onDelivery);
      await peer.session.publish('', q, message('dropped'), true);
      const [d] = await inbox.waitFor(1);
      peer.session.nack(d?.deliveryTag ?? -1, false, false);
      await peer.session.publish('', q, message('next'), true);
      await inbox.waitFor(2);
      assert.deepEqual(inbox.bodies, ['dropped', 'next']);
    });

    it('closing a session requeues its unacked deliveries in order, redelivered=true (channel close)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const b = await fx.open();
      const q = await fx.declare(a);
      await publishAll(a, q, ['m1', 'm2']);
      const first = new Inbox();
      await a.session.consume(q, manual, first.onDelivery);
      await first.waitFor(2);
      const second = new Inbox();
      await b.session.consume(q, manual, second.onDelivery);
      await a.session.close();
      await a.session.close(); // idempotent
      await second.waitFor(2);
      assert.deepEqual(second.bodies, ['m1', 'm2']);
      assert.deepEqual(
        second.deliveries.map((d) => d.redelivered),
        [true, true],
      );
    });

    it('auto-ack (noAck) deliveries are settled on sending: nothing comes back after close', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const q = await fx.declare(a);
      const inbox = new Inbox();
      await a.session.consume(q, auto, inbox.onDelivery);
      await publishAll(a, q, ['m1', 'm2']);
      await inbox.waitFor(2);
      await a.session.close();
      const after = await fx.remaining(q, 0);
      assert.deepEqual(after.bodies, ['end']);
    });

    it('ack of an unknown delivery tag closes the session: PRECONDITION_FAILED via onClosed', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      peer.session.ack(12_345, false);
      const error = await peer.waitClosed();
      assert.equal(error.code, 'PRECONDITION_FAILED');
      assert.equal(error.detail, 'PRECONDITION_FAILED - unknown delivery tag 12345');
      assert.equal(error.fatal, true);
      await expectFatal(peer.session.setPrefetch(0), 'PRECONDITION_FAILED');
    });

    it('acking the same delivery twice is an unknown delivery tag (basic.ack)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const a = await fx.open();
      const q = await fx.declare(a);
      const inbox = new Inbox();
      await a.session.consume(q, manual, inbox.onDelivery);
      await publishAll(a, q, ['once', 'held']);
      const [d] = await inbox.waitFor(2);
      const tag = d?.deliveryTag ?? -1;
      a.session.ack(tag, false);
      a.session.ack(tag, false);
      const error = await a.waitClosed();
      assert.equal(error.detail, `PRECONDITION_FAILED - unknown delivery tag ${tag}`);
      // The channel died with 'held' unacked: it goes back to the queue.
      const b = await fx.open();
      const after = new Inbox();
      await b.session.consume(q, manual, after.onDelivery);
      await after.waitFor(1);
      assert.deepEqual(after.bodies, ['held']);
      assert.equal(after.deliveries[0]?.redelivered, true);
    });
  });
}
