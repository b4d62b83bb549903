// Contract: what a message carries through an engine (AMQP 0-9-1 basic properties, headers table,
// body bytes) and the broker's validation of the expiration property.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageProperties } from '../../broker/src/engine/message.js';
import { expectSessionDeath, Fixture, Inbox, message, TEST_TIMEOUT_MS, type ContractEnv } from './contract-helpers.js';

const opts = { timeout: TEST_TIMEOUT_MS };

export function messageContract(env: () => ContractEnv): void {
  describe('messages', () => {
    it('every basic property and the headers table round-trip; the body is byte-identical (basic.publish → basic.deliver)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      // userId is left out: RabbitMQ requires it to equal the connection's user, which differs per target.
      const properties: MessageProperties = {
        contentType: 'application/octet-stream',
        contentEncoding: 'identity',
        deliveryMode: 2,
        priority: 7,
        correlationId: 'corr-Ω-1',
        replyTo: 'reply-queue',
        expiration: '600000',
        messageId: 'message-1',
        timestamp: 1_700_000_000,
        type: 'contract.type',
        appId: 'thumper-contract',
        headers: { text: 'ünïcødé ✓', empty: '', colon: 'a:b', small: 42, negative: -7, large: 2 ** 40 },
      };
      const body = Buffer.concat([
        Buffer.from([0x00, 0x01, 0xff, 0xfe, 0xc3, 0x28, 0x00, 0xed, 0xa0, 0x80, 0x0a, 0x0d, 0x00]),
        Buffer.from('tail after NUL', 'utf8'),
        Buffer.alloc(70_000, 0xab),
      ]);
      const inbox = new Inbox();
      const tag = await peer.session.consume(q, { noAck: false, args: {} }, inbox.onDelivery);
      await peer.session.publish('', q, { body, properties }, true);
      const [d] = await inbox.waitFor(1);
      assert.ok(d !== undefined);
      assert.equal(d.consumerTag, tag);
      assert.equal(Buffer.compare(d.body, body), 0, 'body bytes identical');
      assert.equal(d.body.length, body.length);
      assert.deepEqual(d.properties, properties);
    });

    it('an empty body and no properties arrive as an empty body and an empty headers table', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      const inbox = new Inbox();
      await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
      await peer.session.publish('', q, message(Buffer.alloc(0)), true);
      const [d] = await inbox.waitFor(1);
      assert.equal(d?.body.length, 0);
      assert.deepEqual(d?.properties, { headers: {} });
    });

    it('a negative expiration property is a channel error: PRECONDITION_FAILED invalid expiration (basic.publish)', opts, async (t) => {
      const fx = new Fixture(env(), t);
      const peer = await fx.open();
      const q = await fx.declare(peer);
      await expectSessionDeath(
        peer,
        peer.session.publish('', q, message('x', { expiration: '-5' }), true),
        'PRECONDITION_FAILED',
        "PRECONDITION_FAILED - invalid expiration '-5': {value_negative,-5}",
      );
    });
  });
}
