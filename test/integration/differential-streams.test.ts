// Stream queues through STOMP (reference §1.7): `x-queue-type:stream` on a /queue destination,
// consumed with client acks, a prefetch and `x-stream-offset`; deliveries carry their offset.
// Same script against RabbitMQ's Web-STOMP and against Thumper bridged to the same node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useDifferential } from '../helpers/differential.js';
import { getHeader } from '../../broker/src/stomp/frame.js';

const differential = useDifferential();

const STREAM = { 'x-queue-type': 'stream', durable: 'true', 'auto-delete': 'false' };

test('a stream read from offset first and from offset=<n> delivers with x-stream-offset', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { thumper } = await d.compare(async (side) => {
    const queue = `/queue/stream-${side.run}`;
    side.cleanupQueue(`stream-${side.run}`);
    const conn = await side.session();
    await conn.request('SUBSCRIBE', { id: 'create', destination: queue, ...STREAM, ack: 'client', 'prefetch-count': '10' });
    await conn.request('UNSUBSCRIBE', { id: 'create' });
    for (const body of ['s0', 's1', 's2']) await conn.request('SEND', { destination: queue, ...STREAM }, body);
    conn.send('SUBSCRIBE', { id: 'first', destination: queue, ...STREAM, ack: 'client', 'prefetch-count': '10', 'x-stream-offset': 'first' });
    const fromFirst = [];
    for (let i = 0; i < 3; i++) fromFirst.push(await conn.next((f) => f.command === 'MESSAGE' && getHeader(f, 'subscription') === 'first'));
    conn.send('SUBSCRIBE', { id: 'from2', destination: queue, ...STREAM, ack: 'client', 'prefetch-count': '10', 'x-stream-offset': 'offset=2' });
    const from2 = await conn.next((f) => f.command === 'MESSAGE' && getHeader(f, 'subscription') === 'from2');
    return side.norm([...fromFirst, from2]);
  });
  assert.deepEqual(
    thumper.map((f) => [f.body, f.headers.find(([k]) => k === 'x-stream-offset')?.[1]]),
    [['s0', '0'], ['s1', '1'], ['s2', '2'], ['s2', '2']],
  );
});
