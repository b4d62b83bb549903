// reference §3 (SEND → AMQP): headers to basic properties and the headers table.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stompToAmqpProperties } from '../../broker/src/mapping/stomp-to-amqp.js';
import type { HeaderList } from '../../broker/src/stomp/frame.js';

function props(headers: HeaderList) {
  const r = stompToAmqpProperties(headers);
  assert.ok(r.ok, `expected properties, got ${r.ok ? '' : r.error.detail}`);
  return r.value;
}

describe('stompToAmqpProperties', () => {
  it('maps every property header', () => {
    const p = props([
      ['destination', '/queue/q'],
      ['content-type', 'application/json'],
      ['content-encoding', 'gzip'],
      ['persistent', 'true'],
      ['priority', '5'],
      ['correlation-id', 'c1'],
      ['reply-to', '/queue/replies'],
      ['expiration', '60000'],
      ['amqp-message-id', 'm1'],
      ['timestamp', '1700000000'],
      ['type', 'order.created'],
      ['user-id', 'alice'],
      ['app-id', 'shop'],
    ]);
    assert.deepEqual(p, {
      headers: {},
      contentType: 'application/json',
      contentEncoding: 'gzip',
      deliveryMode: 2,
      priority: 5,
      correlationId: 'c1',
      replyTo: '/queue/replies',
      expiration: '60000',
      messageId: 'm1',
      timestamp: 1700000000,
      type: 'order.created',
      userId: 'alice',
      appId: 'shop',
    });
  });

  it('persistent: true/True → delivery mode 2; anything else leaves it unset (never 1)', () => {
    assert.equal(props([['persistent', 'True']]).deliveryMode, 2);
    for (const v of ['false', 'False', '1', 'yes', '']) {
      const p = props([['persistent', v]]);
      assert.equal('deliveryMode' in p, false, v);
      assert.deepEqual(p.headers, {}, 'persistent never lands in the headers table');
    }
    assert.equal('deliveryMode' in props([]), false);
  });

  it('priority and timestamp are integers (spaces trimmed); anything else is a processing error', () => {
    assert.equal(props([['priority', ' 3 ']]).priority, 3);
    assert.equal(props([['timestamp', '-5']]).timestamp, -5);
    for (const [name, value] of [['priority', 'high'], ['priority', '1.5'], ['timestamp', ''], ['timestamp', '2024-01-01']] as const) {
      const r = stompToAmqpProperties([[name, value]]);
      assert.ok(!r.ok, `${name}:${value}`);
      assert.equal(r.error.code, 'PROCESSING_ERROR');
      assert.equal(r.error.fatal, false);
    }
  });

  it('every other header goes into the table as a string, receipt/transaction/content-length included', () => {
    const p = props([
      ['destination', '/topic/t'],
      ['receipt', 'r-1'],
      ['transaction', 'tx1'],
      ['content-length', '5'],
      ['x-overflow', 'reject-publish'],
      ['x-max-length', '10'],
      ['id', 'i'],
      ['custom', '007'],
    ]);
    assert.deepEqual(p.headers, {
      custom: '007',
      id: 'i',
      'x-max-length': '10',
      'x-overflow': 'reject-publish',
      'content-length': '5',
      transaction: 'tx1',
      receipt: 'r-1',
    });
  });

  it('the table lists headers in reverse wire order, like RabbitMQ 3.10.8', () => {
    assert.deepEqual(Object.keys(props([['a', '1'], ['b', '2'], ['c', '3']]).headers), ['c', 'b', 'a']);
  });

  it('the first occurrence of a repeated header wins', () => {
    const p = props([['custom', 'first'], ['priority', '1'], ['custom', 'second'], ['priority', 'bad'], ['content-type', 'a'], ['content-type', 'b']]);
    assert.equal(p.headers['custom'], 'first');
    assert.equal(p.priority, 1);
    assert.equal(p.contentType, 'a');
  });

  it('a header named __proto__ becomes a table key', () => {
    const p = props([['__proto__', 'x']]);
    assert.deepEqual(Object.keys(p.headers), ['__proto__']);
    assert.equal(Object.getPrototypeOf(p.headers), Object.prototype);
  });

  it('empty values are kept', () => {
    const p = props([['content-type', ''], ['custom', '']]);
    assert.equal(p.contentType, '');
    assert.deepEqual(p.headers, { custom: '' });
  });
});
