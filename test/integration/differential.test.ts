// Differential tests, part 1: connection set-up. The same scripted client talks to RabbitMQ's own
// Web-STOMP and to Thumper bridged to the same RabbitMQ node; what each client observes (frames,
// normalized by test/helpers/stomp-script.ts) must be identical.
// Other parts: differential-messages (SEND/MESSAGE mapping), differential-acks (acks, receipts,
// transactions), differential-queues (queue naming and properties), differential-errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useDifferential } from '../helpers/differential.js';
import type { Differential } from '../helpers/differential.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import { withDeadline, sleep } from '../helpers/stomp-script.js';

const differential = useDifferential();

const LOGIN: Array<[string, string]> = [
  ['host', '/'],
  ['login', 'guest'],
  ['passcode', 'guest'],
];

// Reference §2.1: highest common version; absent header = 1.0; no common version = non-fatal
// "Version mismatch" after which the same socket may CONNECT again.
const ACCEPT_VERSIONS: ReadonlyArray<string | undefined> = ['1.0', '1.1', '1.2', '1.0,1.1', '1.1,1.2,2.0', undefined, '2.0'];

for (const acceptVersion of ACCEPT_VERSIONS) {
  test(`CONNECT with accept-version ${acceptVersion ?? '(absent)'}`, async (t) => {
    const d = differential(t);
    if (!d) return;
    const { rabbitmq } = await d.compare(async (side) => {
      const conn = await side.open();
      conn.send('CONNECT', acceptVersion === undefined ? LOGIN : [['accept-version', acceptVersion], ...LOGIN]);
      const first = await conn.next();
      if (first.command === 'ERROR') {
        conn.send('CONNECT', [['accept-version', '1.2'], ...LOGIN]);
        await conn.next();
      }
      return side.norm(conn.frames);
    });
    // Guard against two servers failing the same way.
    const expected = acceptVersion === '2.0' ? 'ERROR' : 'CONNECTED';
    assert.equal(rabbitmq[0]?.command, expected);
  });
}

test('STOMP is accepted like CONNECT', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const conn = await side.open();
    conn.send('STOMP', [['accept-version', '1.1,1.2'], ...LOGIN]);
    await conn.next();
    return side.norm(conn.frames);
  });
  assert.equal(rabbitmq[0]?.command, 'CONNECTED');
});

// Reference §2.5: the server mirrors the client's wishes, rounded (≤0 → 0, 1..999 → 1000, else
// floored to whole seconds). Thumper raises wishes to its 1000 ms minimums.
const HEART_BEATS: ReadonlyArray<string> = ['0,0', '10000,10000', '1500,500', '0,2000', '1000,0', '2500,999'];

for (const heartBeat of HEART_BEATS) {
  test(`CONNECT heart-beat:${heartBeat} is answered the same way`, async (t) => {
    const d = differential(t);
    if (!d) return;
    await d.compare(async (side) => {
      const conn = await side.session({ heartBeat });
      const connected = conn.frames[0];
      assert.ok(connected);
      return getHeader(connected, 'heart-beat');
    }, `heart-beat answer to ${heartBeat}: Thumper (actual) vs RabbitMQ (expected)`);
  });
}

test('a client that asks for heart-beats receives them', async (t) => {
  const d = differential(t);
  if (!d) return;
  await d.compare(async (side) => {
    const conn = await side.session({ heartBeat: '0,1000' });
    // RabbitMQ follows every frame with an EOL: count only what arrives after CONNECTED.
    const base = conn.heartbeats;
    // Bounded: with a 1 s send interval at least one EOL arrives well within 5 s.
    await withDeadline(
      (async () => {
        for (let i = 0; i < 50 && conn.heartbeats === base; i++) await sleep(100);
      })(),
      6000,
      'waiting for a heart-beat',
    );
    return conn.heartbeats > base;
  });
});

test('a frame before CONNECT is refused without closing the socket', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const conn = await side.open();
    conn.send('SEND', { destination: `/queue/early-${side.run}` }, 'too early');
    await conn.next();
    conn.send('CONNECT', [['accept-version', '1.2'], ...LOGIN]);
    await conn.next();
    return side.norm(conn.frames);
  });
  assert.deepEqual(
    rabbitmq.map((f) => f.command),
    ['ERROR', 'CONNECTED'],
  );
});

test('CONNECT with a vhost that does not exist', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq } = await d.compare(async (side) => {
    const conn = await side.open();
    conn.send('CONNECT', [
      ['accept-version', '1.2'],
      ['host', `no-such-vhost-${side.run}`],
      ['login', 'guest'],
      ['passcode', 'guest'],
    ]);
    await conn.next();
    return side.norm(conn.frames);
  });
  assert.equal(rabbitmq[0]?.command, 'ERROR');
});

// Deliberate difference: both answer `message:Processing error`; RabbitMQ's body repeats that, while
// Thumper's body says which header is wrong and what form it expects.
test('heart-beat header values are all-or-nothing numbers', async (t) => {
  const d = differential(t);
  if (!d) return;
  const { rabbitmq, thumper } = await d.both(async (side) => {
    const conn = await side.open();
    conn.send('CONNECT', [['accept-version', '1.2'], ['heart-beat', 'soon,later'], ...LOGIN]);
    await conn.next();
    return side.norm(conn.frames);
  });
  const strip = (fs: typeof rabbitmq) => fs.map((f) => ({ ...f, body: '' }));
  assert.deepEqual(strip(thumper), strip(rabbitmq));
  assert.match(thumper[0]?.body ?? '', /heart-beat.*soon,later/);
});
