// reference §1.4: stomp-subscription- + base64url(md5(ETF({Name, Id}))).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { subscriptionQueueName } from '../../broker/src/destination/index.js';

const md5Name = (bytes: number[] | Buffer) =>
  'stomp-subscription-' + createHash('md5').update(Buffer.from(bytes)).digest('base64url');

describe('subscriptionQueueName', () => {
  it('test vectors checked on RabbitMQ 3.10.8', () => {
    assert.equal(subscriptionQueueName('dur2', 'd2'), 'stomp-subscription-zrdDK-zj0Ow7yPrh21bGag');
    assert.equal(subscriptionQueueName('u1', 'u1'), 'stomp-subscription-gQTZ2TVouG2rEcbyoXj4Mg');
    // /exchange/amq.direct/k with id u3: the exchange is not part of the name.
    assert.equal(subscriptionQueueName('k', 'u3'), 'stomp-subscription-AJZPf7OGdrYFWm9HsKNVLQ');
  });

  it('an empty name is encoded as NIL_EXT (6A)', () => {
    const etf = [0x83, 0x68, 2, 0x6a, 0x6b, 0, 2, ...Buffer.from('id')];
    assert.equal(subscriptionQueueName('', 'id'), md5Name(etf));
  });

  it('non-ASCII names are hashed as their UTF-8 bytes', () => {
    const etf = [0x83, 0x68, 2, 0x6b, 0, 2, 0xc3, 0xa9, 0x6b, 0, 1, 0x78];
    assert.equal(subscriptionQueueName('é', 'x'), md5Name(etf));
  });

  it('random bytes are an Erlang binary (BINARY_EXT), not a string', () => {
    const random = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const etf = [0x83, 0x68, 2, 0x6b, 0, 1, 0x6b, 0x6d, 0, 0, 0, 16, ...random];
    assert.equal(subscriptionQueueName('k', random), md5Name(etf));
    assert.notEqual(subscriptionQueueName('k', random), subscriptionQueueName('k', random.toString('latin1')));
  });

  it('names over 65535 bytes use LIST_EXT', () => {
    const name = 'a'.repeat(70000);
    const list = Buffer.alloc(5 + 2 * 70000 + 1);
    list[0] = 0x6c;
    list.writeUInt32BE(70000, 1);
    for (let i = 0; i < 70000; i++) {
      list[5 + 2 * i] = 0x61;
      list[6 + 2 * i] = 0x61;
    }
    list[list.length - 1] = 0x6a;
    const etf = Buffer.concat([Buffer.from([0x83, 0x68, 2]), list, Buffer.from([0x6b, 0, 1, 0x69])]);
    assert.equal(subscriptionQueueName(name, 'i'), md5Name(etf));
  });

  it('is a valid AMQP queue name (≤ 255 bytes, URL-safe)', () => {
    const n = subscriptionQueueName('x'.repeat(1000), 'y'.repeat(1000));
    assert.match(n, /^stomp-subscription-[A-Za-z0-9_-]{22}$/);
  });
});
