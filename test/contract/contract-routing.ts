// Contract: exchanges and routing (AMQP 0-9-1 §3.1.3 exchange types, basic.publish).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  expectFatal,
  expectSessionDeath,
  Fixture,
  Inbox,
  message,
  queueSpec,
  TEST_TIMEOUT_MS,
  uniqueName,
  type ContractEnv,
} from './contract-helpers.js';

const opts = { timeout: TEST_TIMEOUT_MS };

export function routingContract(env: () => ContractEnv): void {
  describe('routing', () => {
    it('default exchange: every queue is bound to it by its own name (AMQP 0-9-1 §3.1.3.1)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', q, message('hello'), true);
      const [d] = await inbox.waitFor(1);
      assert.equal(d?.exchange, '');
      assert.equal(d?.routingKey, q);
      assert.equal(d?.redelivered, false);
      assert.deepEqual(inbox.bodies, ['hello']);
    });

    it('direct exchange: delivers only on exact routing-key equality (§3.1.3.1)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const key = uniqueName('key');
      await peer.session.bindQueue(q, fx.env.directExchange, key);
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish(fx.env.directExchange, `${key}.x`, message('longer key'), true);
      await peer.session.publish(fx.env.directExchange, key.toUpperCase(), message('other case'), true);
      await peer.session.publish(fx.env.directExchange, key, message('exact'), true);
      // Deliveries from one publisher to one queue keep their order, so a wrongly routed message
      // would arrive before 'exact'.
      const [d] = await inbox.waitFor(1);
      assert.equal(d?.exchange, fx.env.directExchange);
      assert.equal(d?.routingKey, key);
      assert.deepEqual(inbox.bodies, ['exact']);
    });

    it('topic exchange: `*` matches one word, `#` zero or more, words split on `.` (§3.1.3.3)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      // A per-test first word keeps other tests' traffic on the shared topic exchange out.
      const p = uniqueName('t');
      for (const pattern of [`${p}.a.*.c`, `${p}.x.#`, `${p}.#.z`, `${p}.*.*.c`]) {
        await peer.session.bindQueue(q, fx.env.topicExchange, pattern);
      }
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      const keys: Array<[string, boolean]> = [
        [`${p}.a.b.c`, true], // `*` = one word; also matches `*.*.c`: still one copy
        [`${p}.a.b.b.c`, false], // `*` is exactly one word
        [`${p}.a.c`, false],
        [`${p}.x`, true], // `#` = zero words
        [`${p}.x.y.z`, true],
        [`${p}.a..c`, true], // `*` matches an empty word
        [`${p}.z`, true],
        [`${p}.q.r.s.z`, true],
        [`${p}.y`, false],
        [`${p}x.a.b.c`, false], // words are compared whole
      ];
      for (const [key] of keys) await peer.session.publish(fx.env.topicExchange, key, message(key), true);
      const end = `${p}.x.end`;
      await peer.session.publish(fx.env.topicExchange, end, message(end), true);
      const expected = [...keys.filter(([, routed]) => routed).map(([key]) => key), end];
      await inbox.waitFor(expected.length);
      assert.deepEqual(inbox.bodies, expected);
      assert.deepEqual(
        inbox.deliveries.map((d) => d.routingKey),
        expected,
      );
    });

    it('fanout exchange: every bound queue gets a copy whatever the routing key (§3.1.3.2)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const token = uniqueName('fan');
      const mine = (d: { body: Buffer }) => d.body.toString().startsWith(token);
      const inboxes = [new Inbox(mine), new Inbox(mine)];
      for (const inbox of inboxes) {
        const q = await fx.declare(peer);
        await peer.session.bindQueue(q, fx.env.fanoutExchange, uniqueName('ignored'));
        await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      }
      await peer.session.publish(fx.env.fanoutExchange, 'any.key', message(`${token} one`), true);
      for (const inbox of inboxes) {
        const [d] = await inbox.waitFor(1);
        assert.equal(d?.routingKey, 'any.key');
        assert.equal(d?.exchange, fx.env.fanoutExchange);
        assert.deepEqual(inbox.bodies, [`${token} one`]);
      }
    });

    it('unroutable messages are dropped silently; a confirmed publish still resolves (basic.publish, no mandatory)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const key = uniqueName('key');
      await peer.session.bindQueue(q, fx.env.directExchange, key);
      await peer.session.publish('', uniqueName('no-such-queue'), message('to nowhere'), true);
      await peer.session.publish(fx.env.directExchange, uniqueName('unbound'), message('unbound key'), false);
      await peer.session.publish(fx.env.directExchange, key, message('routed'), true);
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.bodies, ['routed']);
      await peer.session.declareQueue(queueSpec(q));
      assert.deepEqual(peer.closed, [], 'the session is still open');
    });

    it('publish to a missing exchange is a channel error: NOT_FOUND, session closed (basic.publish 404)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const missing = uniqueName('missing-exchange');
      const text = `NOT_FOUND - no exchange '${missing}' in vhost '${fx.env.vhost}'`;
      await expectFatal(peer.session.publish(missing, 'k', message('x'), true), 'NOT_FOUND', text);
      // The channel is gone: later calls fail with the same error, and onClosed does not repeat it.
      await expectFatal(peer.session.declareQueue(queueSpec(uniqueName())), 'NOT_FOUND', text);
      assert.deepEqual(peer.closed, []);
    });

    it('publish without confirm to a missing exchange: NOT_FOUND reported exactly once (basic.publish 404)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const missing = uniqueName('missing-exchange');
      await expectSessionDeath(
        peer,
        peer.session.publish(missing, 'k', message('x'), false),
        'NOT_FOUND',
        `NOT_FOUND - no exchange '${missing}' in vhost '${fx.env.vhost}'`,
      );
    });

    it('binding to the default exchange is refused: ACCESS_REFUSED (queue.bind)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      await expectFatal(
        peer.session.bindQueue(q, '', 'k'),
        'ACCESS_REFUSED',
        'ACCESS_REFUSED - operation not permitted on the default exchange',
      );
    });

    it('binding a missing queue or to a missing exchange is NOT_FOUND (queue.bind 404)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const vhost = fx.env.vhost;
      const first = await fx.open();
      const missingQueue = uniqueName('missing-queue');
      await expectFatal(
        first.session.bindQueue(missingQueue, fx.env.topicExchange, 'k'),
        'NOT_FOUND',
        `NOT_FOUND - no queue '${missingQueue}' in vhost '${vhost}'`,
      );
      const second = await fx.open();
      const q = await fx.declare(second);
      const missingExchange = uniqueName('missing-exchange');
      await expectFatal(
        second.session.bindQueue(q, missingExchange, 'k'),
        'NOT_FOUND',
        `NOT_FOUND - no exchange '${missingExchange}' in vhost '${vhost}'`,
      );
    });
  });
}
