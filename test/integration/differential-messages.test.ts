// Differential tests, part 2: what a subscriber sees. SEND headers → AMQP properties → MESSAGE
// headers (reference §3), MESSAGE `destination` formatting (§1.8), AMQP-published messages, and
// request/reply through /temp-queue (§1.6), compared between RabbitMQ's Web-STOMP and Thumper.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { messages, useDifferential } from '../helpers/differential.js';
import type { Differential, Side } from '../helpers/differential.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import { isMessage, isMessageFor } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';

const differential = useDifferential();

/** The next `count` MESSAGE frames of one subscription, in order. */

/** SENDs exercising every mapped property (reference §3), each confirmed by a receipt. */
async function sendPropertyMessages(pub: StompConn, side: Side, destination: string): Promise<number> {
  await pub.request(
    'SEND',
    [
      ['destination', destination],
      ['content-type', 'text/plain'],
      ['content-encoding', 'identity'],
      ['persistent', 'true'],
      ['priority', '5'],
      ['correlation-id', `corr-${side.run}`],
      ['reply-to', `plain-${side.run}`],
      ['expiration', '600000'],
      ['amqp-message-id', 'amqp-id-1'],
      ['timestamp', '1700000000'],
      ['type', 'greeting'],
      ['app-id', 'differential'],
      ['x-custom', '42'],
      ['my-header', 'hello world'],
    ],
    'hello',
  );
  await pub.request('SEND', [
    ['destination', destination],
    ['reply-to', `/queue/replies-${side.run}`],
    ['persistent', 'false'],
  ]);
  // STOMP 1.2 §Value Encoding: the client escapes `:`, LF and `\`; the server must hand back the
  // same value, escaped again.
  await pub.request('SEND', [
    ['destination', destination],
    ['weird', 'a:b\nc\\d'],
  ], 'escaped');
  // A binary body with NUL bytes: content-length delimits it (STOMP 1.2 §Header content-length).
  await pub.request('SEND', [['destination', destination]], Buffer.from([0x00, 0x01, 0x02, 0x00, 0xff, 0xfe]));
  return 4;
}

interface DestinationCase {
  readonly label: string;
  /** Before subscribing (e.g. declare the /amq/queue target). */
  readonly prepare?: (side: Side) => Promise<void>;
  readonly subscribeTo: (side: Side) => string;
  readonly sendTo: (side: Side) => string;
}

const DESTINATIONS: readonly DestinationCase[] = [
  { label: '/queue', subscribeTo: (s) => `/queue/props-${s.run}`, sendTo: (s) => `/queue/props-${s.run}` },
  { label: '/topic', subscribeTo: (s) => `/topic/props.${s.run}`, sendTo: (s) => `/topic/props.${s.run}` },
  {
    label: '/exchange/amq.direct/<key>',
    subscribeTo: (s) => `/exchange/amq.direct/props-${s.run}`,
    sendTo: (s) => `/exchange/amq.direct/props-${s.run}`,
  },
  {
    label: '/exchange/amq.topic/<pattern>',
    subscribeTo: (s) => `/exchange/amq.topic/${s.run}.*`,
    sendTo: (s) => `/exchange/amq.topic/${s.run}.a`,
  },
  {
    label: '/amq/queue (declared over AMQP)',
    prepare: async (s) => {
      await s.withChannel((ch) => ch.assertQueue(`pre-${s.run}`, { durable: false, autoDelete: false }));
    },
    subscribeTo: (s) => `/amq/queue/pre-${s.run}`,
    sendTo: (s) => `/amq/queue/pre-${s.run}`,
  },
];

for (const c of DESTINATIONS) {
  test(`SEND → MESSAGE headers and bodies via ${c.label}`, async (t) => {
    const d = differential(t);
    if (!d) return;
    const { rabbitmq } = await d.compare(async (side) => {
      side.cleanupQueue(`props-${side.run}`, `pre-${side.run}`, `replies-${side.run}`);
      await c.prepare?.(side);
      const sub = await side.session();
      await sub.request('SUBSCRIBE', { id: 'sub-1', destination: c.subscribeTo(side), ack: 'client-individual' });
      const pub = await side.session();
      const count = await sendPropertyMessages(pub, side, c.sendTo(side));
      return side.norm(await messages(sub, 'sub-1', count));
    });
    assert.equal(rabbitmq.length, 4);
  });
}

test('MESSAGE destination escapes routing keys (reference §1.8)', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const sub = await side.session();
    await sub.request('SUBSCRIBE', { id: 'esc', destination: `/topic/${side.run}.#` });
    const pub = await side.session();
    await pub.request('SEND', { destination: `/topic/${side.run}.a%2Fb%25c.é` }, 'one');
    await pub.request('SEND', { destination: `/exchange/amq.topic/${side.run}.x%2Fy` }, 'two');
    return side.norm(await messages(sub, 'esc', 2));
  });
});

test('a message published over AMQP with properties and a typed headers table', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const queue = `amqp-${side.run}`;
    side.cleanupQueue(queue);
    const sub = await side.session();
    await sub.request('SUBSCRIBE', { id: 'a', destination: `/queue/${queue}` });
    await side.withChannel(async (ch) => {
      ch.sendToQueue(queue, Buffer.from('{"from":"amqp"}'), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        priority: 3,
        correlationId: 'corr',
        replyTo: 'amq-reply',
        expiration: '600000',
        messageId: 'mid-1',
        timestamp: 1700000000,
        type: 'event',
        userId: 'guest',
        appId: 'backend',
        // amqplib picks the narrowest integer type: 70000 → int, 2^40 → long. Known difference left
        // out here: RabbitMQ's plugin drops byte/short values (42, -7, 1000) while Thumper, which sees
        // them through amqplib as plain numbers, passes them on as strings (docs/compatibility.md).
        headers: { s: 'text', int: 70000, long: 2 ** 40, b: true, f: 1.5, arr: [1, 'x'], tbl: { k: 'v' } },
      });
      ch.sendToQueue(queue, Buffer.from('persistent'), { persistent: true, replyTo: '/topic/back' });
    });
    return side.norm(await messages(sub, 'a', 2));
  });
  assert.equal(getHeaderOf(rabbitmq[0]?.headers, 's'), 'text');
});

function getHeaderOf(headers: Array<[string, string]> | undefined, name: string): string | undefined {
  return headers?.find(([k]) => k === name)?.[1];
}

test('STOMP 1.0 and 1.1 sessions: MESSAGE headers without `ack`, 1.0 subscription without id', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const queue = `/queue/v10-${side.run}`;
    side.cleanupQueue(`v10-${side.run}`);
    const v10 = await side.session({ acceptVersion: '1.0' });
    // STOMP 1.0 allows SUBSCRIBE without id: no `subscription` header, consumer tag Q_<dest> (§2.6).
    v10.send('SUBSCRIBE', { destination: queue, receipt: 'sub-10' });
    const subscribed = await v10.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR');
    const v11 = await side.session({ acceptVersion: '1.1' });
    await v11.request('SUBSCRIBE', { id: 's11', destination: `/topic/v11.${side.run}`, ack: 'client' });
    const pub = await side.session();
    await pub.request('SEND', { destination: queue }, 'to 1.0');
    await pub.request('SEND', { destination: `/topic/v11.${side.run}` }, 'to 1.1');
    return {
      v10: side.norm([subscribed, await v10.next(isMessage)]),
      v11: side.norm(await messages(v11, 's11', 1)),
    };
  });
});

test('request/reply through reply-to:/temp-queue (reference §1.6)', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const service = `svc-${side.run}`;
    side.cleanupQueue(service);
    const server = await side.session();
    await server.request('SUBSCRIBE', { id: 'svc', destination: `/queue/${service}` });
    const client = await side.session();
    await client.request('SEND', { destination: `/queue/${service}`, 'reply-to': '/temp-queue/r' }, 'ping');
    const request = await server.next(isMessageFor('svc'));
    const replyTo = getHeader(request, 'reply-to');
    assert.ok(replyTo !== undefined, 'the request carries reply-to');
    await server.request('SEND', { destination: replyTo }, 'pong');
    const reply = await client.next(isMessage);
    // A second request reuses the same temp queue.
    await client.request('SEND', { destination: `/queue/${service}`, 'reply-to': '/temp-queue/r' }, 'ping 2');
    const second = await server.next(isMessageFor('svc'));
    const sameQueue = getHeader(second, 'reply-to') === replyTo;
    // The internal temp-queue subscription cannot be cancelled.
    client.send('UNSUBSCRIBE', { id: '/temp-queue/r' });
    const refused = await client.next((f) => f.command === 'ERROR');
    return { frames: side.norm([request, reply, second, refused]), sameQueue };
  });
  assert.equal(rabbitmq.sameQueue, true);
});

test('a bare destination name is a /queue; unroutable SENDs still get their receipt', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    side.cleanupQueue(`bare-${side.run}`);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'bare', destination: `bare-${side.run}` });
    await conn.request('SEND', { destination: `bare-${side.run}` }, 'bare');
    const [bare] = await messages(conn, 'bare', 1);
    // Nothing is bound with these keys: the broker drops the messages, the receipts still come.
    const dropped = [
      await conn.request('SEND', { destination: `/amq/queue/missing-${side.run}` }, 'dropped'),
      await conn.request('SEND', { destination: `/exchange/amq.direct/nobody-${side.run}` }, 'dropped'),
      await conn.request('SEND', { destination: `/topic/nobody.${side.run}` }, 'dropped'),
    ];
    return side.norm([bare!, ...dropped]);
  });
  assert.equal(rabbitmq[0]?.command, 'MESSAGE');
});

test('repeated headers on SEND: the first occurrence wins', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    side.cleanupQueue(`rep-${side.run}`);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'rep', destination: `/queue/rep-${side.run}` });
    await conn.request(
      'SEND',
      [
        ['destination', `/queue/rep-${side.run}`],
        ['content-type', 'text/first'],
        ['content-type', 'text/second'],
        ['x-dup', 'one'],
        ['x-dup', 'two'],
      ],
      'repeated',
    );
    return side.norm(await messages(conn, 'rep', 1));
  });
});

test('UNSUBSCRIBE by destination ends an id-less STOMP 1.0 subscription', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const queue = `/queue/unsub10-${side.run}`;
    side.cleanupQueue(`unsub10-${side.run}`);
    const conn = await side.session({ acceptVersion: '1.0' });
    await conn.request('SUBSCRIBE', { destination: queue });
    await conn.request('UNSUBSCRIBE', { destination: queue });
    const pub = await side.session();
    await pub.request('SEND', { destination: queue }, 'after unsubscribe');
    // The message stays in the queue: a new subscriber gets it, the old one got nothing.
    const later = await side.session();
    await later.request('SUBSCRIBE', { id: 'later', destination: queue });
    const [got] = await messages(later, 'later', 1);
    return { old: side.norm(conn.frames), got: side.norm([got!]) };
  });
});
