// Pure helpers of the AMQP engine: typed argument tables, property conversion both ways, shortstr
// limits, per-vhost URLs with passwords kept out of logs, and full-jitter backoff.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsumeMessage } from 'amqplib';
import {
  fitsShortstr,
  fromAmqpProperties,
  oversizedProperty,
  toAmqpArgs,
  toDelivery,
  toPublishOptions,
} from '../../broker/src/engine/amqp/amqp-args.js';
import { redactUrl, urlVhost, vhostUrl } from '../../broker/src/engine/amqp/amqp-url.js';
import { fullJitterDelay } from '../../broker/src/engine/amqp/backoff.js';

test('integer arguments are tagged long, strings stay longstr, timestamps are typed (reference §1.7)', () => {
  assert.deepEqual(
    toAmqpArgs({
      'x-max-priority': 9,
      'x-message-ttl': 60000,
      'x-max-length-bytes': 2 ** 40,
      'x-queue-type': 'quorum',
      'x-stream-offset': { type: 'timestamp', value: 1_700_000_000 },
    }),
    {
      'x-max-priority': { '!': 'long', value: 9 },
      'x-message-ttl': { '!': 'long', value: 60000 },
      'x-max-length-bytes': { '!': 'long', value: 2 ** 40 },
      'x-queue-type': 'quorum',
      'x-stream-offset': { '!': 'timestamp', value: 1_700_000_000 },
    },
  );
  assert.deepEqual(toAmqpArgs({ odd: 1.5 }), { odd: { '!': 'double', value: 1.5 } });
  assert.deepEqual(toAmqpArgs({}), {});
});

test('publish options carry only the properties that are set', () => {
  assert.deepEqual(toPublishOptions({ body: Buffer.alloc(0), properties: { headers: { a: 'b' } } }), { headers: { a: 'b' } });
  assert.deepEqual(
    toPublishOptions({
      body: Buffer.alloc(0),
      properties: {
        headers: {},
        contentType: 'text/plain',
        contentEncoding: 'gzip',
        deliveryMode: 2,
        priority: 4,
        correlationId: 'c',
        replyTo: 'r',
        expiration: '1000',
        messageId: 'm',
        timestamp: 17,
        type: 't',
        userId: 'u',
        appId: 'a',
      },
    }),
    {
      headers: {},
      contentType: 'text/plain',
      contentEncoding: 'gzip',
      deliveryMode: 2,
      priority: 4,
      correlationId: 'c',
      replyTo: 'r',
      expiration: '1000',
      messageId: 'm',
      timestamp: 17,
      type: 't',
      userId: 'u',
      appId: 'a',
    },
  );
});

function consumeMessage(properties: Partial<ConsumeMessage['properties']>): ConsumeMessage {
  return {
    content: Buffer.from('body'),
    fields: { consumerTag: 'ctag', deliveryTag: 7, redelivered: true, exchange: 'amq.topic', routingKey: 'a.b' },
    properties: {
      contentType: undefined,
      contentEncoding: undefined,
      headers: undefined,
      deliveryMode: undefined,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: undefined,
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
      ...properties,
    },
  };
}

test('amqplib deliveries become Delivery values; unset properties are absent, not undefined', () => {
  const d = toDelivery(consumeMessage({ contentType: 'application/json', deliveryMode: 1, headers: { n: 5 } }));
  assert.deepEqual(d, {
    consumerTag: 'ctag',
    deliveryTag: 7,
    redelivered: true,
    exchange: 'amq.topic',
    routingKey: 'a.b',
    body: Buffer.from('body'),
    properties: { contentType: 'application/json', deliveryMode: 1, headers: { n: 5 } },
  });
  assert.ok(!('priority' in d.properties));
  assert.deepEqual(fromAmqpProperties(consumeMessage({}).properties), { headers: {} });
  assert.deepEqual(fromAmqpProperties(consumeMessage({ timestamp: 9, priority: 0 }).properties), {
    headers: {},
    timestamp: 9,
    priority: 0,
  });
});

test('shortstr limits are counted in UTF-8 bytes', () => {
  assert.equal(fitsShortstr('a'.repeat(255)), true);
  assert.equal(fitsShortstr('a'.repeat(256)), false);
  assert.equal(fitsShortstr('é'.repeat(127)), true);
  assert.equal(fitsShortstr('é'.repeat(128)), false);
  assert.equal(oversizedProperty({ headers: {}, correlationId: 'x'.repeat(256) }), 'correlationId');
  assert.equal(oversizedProperty({ headers: { big: 'x'.repeat(1000) }, correlationId: 'ok' }), undefined);
});

test("the session's vhost replaces the URL path, percent-encoded, with the tuning in the query", () => {
  const tuning = { heartbeatSeconds: 30, channelMax: 500 };
  assert.equal(
    vhostUrl('amqp://svc:pw@rabbit:5672/ignored', '/', tuning),
    'amqp://svc:pw@rabbit:5672/%2F?heartbeat=30&channelMax=500',
  );
  assert.equal(
    vhostUrl('amqps://svc:pw@rabbit?frameMax=8192', 'tenant a/b', tuning),
    'amqps://svc:pw@rabbit/tenant%20a%2Fb?frameMax=8192&heartbeat=30&channelMax=500',
  );
});

test('URLs lose their password for logs, and the configured vhost is read like amqplib does', () => {
  assert.equal(redactUrl('amqp://svc:s3cret@rabbit:5672/v'), 'amqp://svc@rabbit:5672/v');
  assert.equal(redactUrl('amqp://rabbit'), 'amqp://rabbit');
  assert.equal(redactUrl('not a url with s3cret'), '<invalid URL>');
  assert.equal(urlVhost('amqp://rabbit'), '/');
  assert.equal(urlVhost('amqp://rabbit/'), '/');
  assert.equal(urlVhost('amqp://rabbit/%2F'), '/');
  assert.equal(urlVhost('amqp://rabbit/prod'), 'prod');
});

test('full-jitter backoff draws below an exponential ceiling capped at maxMs', () => {
  const options = { initialMs: 100, maxMs: 1000 };
  const top = (): number => 0.999999;
  assert.equal(fullJitterDelay(0, options, top), 99);
  assert.equal(fullJitterDelay(1, options, top), 199);
  assert.equal(fullJitterDelay(3, options, top), 799);
  assert.equal(fullJitterDelay(4, options, top), 999);
  assert.equal(fullJitterDelay(10_000, options, top), 999);
  assert.equal(fullJitterDelay(5, options, () => 0), 0);
  for (let attempt = 0; attempt < 50; attempt++) {
    const delay = fullJitterDelay(attempt, options);
    assert.ok(delay >= 0 && delay < 1000, String(delay));
  }
});
