// reference §2.7, §3 (AMQP → MESSAGE): header order, value conversion, reply-to prefixing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { messageHeaders, type MessageHeaderInput } from '../../broker/src/mapping/amqp-to-stomp.js';
import { stompToAmqpProperties } from '../../broker/src/mapping/stomp-to-amqp.js';
import type { MessageProperties } from '../../broker/src/engine/message.js';

const BASE: MessageHeaderInput = {
  subscriptionId: 'sub-1',
  destination: '/queue/q',
  messageId: 'T_sub-1@@session-abc@@1',
  redelivered: false,
  ack: undefined,
  properties: { headers: {} },
};

const headersOf = (properties: MessageProperties, extra: Partial<MessageHeaderInput> = {}) =>
  messageHeaders({ ...BASE, ...extra, properties });

describe('messageHeaders: server headers', () => {
  it('subscription, destination, message-id, redelivered', () => {
    assert.deepEqual(headersOf({ headers: {} }), [
      ['subscription', 'sub-1'],
      ['destination', '/queue/q'],
      ['message-id', 'T_sub-1@@session-abc@@1'],
      ['redelivered', 'false'],
    ]);
  });
  it('no subscription header for id-less subscriptions; ack when given', () => {
    assert.deepEqual(headersOf({ headers: {} }, { subscriptionId: undefined, redelivered: true, ack: 'T_x@@s@@2' }), [
      ['destination', '/queue/q'],
      ['message-id', 'T_sub-1@@session-abc@@1'],
      ['redelivered', 'true'],
      ['ack', 'T_x@@s@@2'],
    ]);
  });
});

describe('messageHeaders: AMQP headers table', () => {
  it('keeps strings and integers, drops everything else', () => {
    const h = headersOf({
      headers: {
        s: 'text',
        i: 42,
        neg: -7,
        big: 9007199254740993n,
        f: 1.5,
        b: true,
        tbl: { a: 1 },
        arr: ['x'],
        bytes: Buffer.from('x'),
        nul: null,
        und: undefined,
      },
    });
    assert.deepEqual(h.slice(4), [
      ['s', 'text'],
      ['i', '42'],
      ['neg', '-7'],
      ['big', '9007199254740993'],
    ]);
  });
  it('table entries come before properties, table order kept', () => {
    const h = headersOf({ headers: { z: '1', a: '2' }, contentType: 'text/plain' });
    assert.deepEqual(h.slice(4), [
      ['z', '1'],
      ['a', '2'],
      ['content-type', 'text/plain'],
    ]);
  });
  it('a table entry named like a server header is emitted as well', () => {
    const h = headersOf({ headers: { destination: '/queue/other' } });
    assert.deepEqual(h.filter(([k]) => k === 'destination'), [
      ['destination', '/queue/q'],
      ['destination', '/queue/other'],
    ]);
  });
  it('a content-length from the table is dropped (the encoder writes the real one)', () => {
    const h = headersOf({ headers: { 'content-length': '999', receipt: 'r1' } });
    assert.deepEqual(h.slice(4), [['receipt', 'r1']]);
  });
});

describe('messageHeaders: properties', () => {
  const all: MessageProperties = {
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
  };
  it('all twelve, in RabbitMQ 3.10.8 emission order (reverse of declaration)', () => {
    assert.deepEqual(headersOf(all).slice(4), [
      ['app-id', 'shop'],
      ['user-id', 'alice'],
      ['type', 'order.created'],
      ['timestamp', '1700000000'],
      ['amqp-message-id', 'm1'],
      ['expiration', '60000'],
      ['reply-to', '/queue/replies'],
      ['correlation-id', 'c1'],
      ['priority', '5'],
      ['persistent', 'true'],
      ['content-encoding', 'gzip'],
      ['content-type', 'application/json'],
    ]);
  });
  it('delivery mode 1 → persistent:1', () => {
    assert.deepEqual(headersOf({ headers: {}, deliveryMode: 1 }).slice(4), [['persistent', '1']]);
  });
  it('unset properties are not emitted; no content-length, no content-type by default', () => {
    const h = headersOf({ headers: {} });
    assert.equal(h.some(([k]) => k === 'content-type' || k === 'content-length' || k === 'persistent'), false);
  });
});

describe('messageHeaders: reply-to', () => {
  const replyTo = (value: string) => headersOf({ headers: {}, replyTo: value }).find(([k]) => k === 'reply-to')?.[1];
  it('a bare queue name gets /reply-queue/', () => assert.equal(replyTo('plainq'), '/reply-queue/plainq'));
  it('a server-named temp queue gets /reply-queue/', () => assert.equal(replyTo('amq.gen-xyz'), '/reply-queue/amq.gen-xyz'));
  it('/temp-queue is not a reply prefix', () => assert.equal(replyTo('/temp-queue/x'), '/reply-queue//temp-queue/x'));
  for (const v of ['/exchange/x/k', '/topic/t', '/queue/q', '/amq/queue/q', '/reply-queue/r', '/queues-are-prefix-matched']) {
    it(`${v} is kept`, () => assert.equal(replyTo(v), v));
  }
  it('a reply-to entry in the AMQP headers table is processed the same way', () => {
    assert.deepEqual(headersOf({ headers: { 'reply-to': 'plainq' } }).slice(4), [['reply-to', '/reply-queue/plainq']]);
  });
});

describe('SEND → MESSAGE through both mappings', () => {
  it('custom headers and properties survive, in RabbitMQ order', () => {
    const props = stompToAmqpProperties([
      ['destination', '/queue/q'],
      ['receipt', 'r-9'],
      ['content-type', 'text/plain'],
      ['persistent', 'true'],
      ['x-trace', 't1'],
      ['reply-to', 'plainq'],
    ]);
    assert.ok(props.ok);
    assert.deepEqual(headersOf(props.value).slice(4), [
      ['x-trace', 't1'],
      ['receipt', 'r-9'],
      ['reply-to', '/reply-queue/plainq'],
      ['persistent', 'true'],
      ['content-type', 'text/plain'],
    ]);
  });
});
