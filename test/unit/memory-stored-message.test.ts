// Per-message expiration parsing and dead-lettering rewrites. Expiration texts are RabbitMQ 3.10.8's.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  deadLetter,
  isDeadLetterCycle,
  parseExpiration,
  storeMessage,
  type StoredMessage,
} from '../../broker/src/engine/memory/stored-message.js';

function refused(expiration: string): string {
  const result = parseExpiration(expiration);
  assert.equal(result.ok, false, `'${expiration}' should be refused`);
  return result.ok ? '' : result.error.detail;
}

const original: StoredMessage = storeMessage(
  'amq.topic',
  'a.b',
  { body: Buffer.from('x'), properties: { expiration: '60000', priority: 3, headers: { h: 'v' } } },
  60_000,
);

describe('expiration property (basic.publish)', () => {
  it('accepts non-negative integers, with an optional sign as Erlang parses them', () => {
    assert.deepEqual(parseExpiration(undefined), { ok: true, value: undefined });
    assert.deepEqual(parseExpiration('0'), { ok: true, value: 0 });
    assert.deepEqual(parseExpiration('+5'), { ok: true, value: 5 });
    assert.deepEqual(parseExpiration('315360000000'), { ok: true, value: 315_360_000_000 });
  });

  it('refuses everything else with RabbitMQ texts', () => {
    assert.equal(refused('-5'), "PRECONDITION_FAILED - invalid expiration '-5': {value_negative,-5}");
    assert.equal(refused('abc'), "PRECONDITION_FAILED - invalid expiration 'abc': no_integer");
    assert.equal(refused(''), "PRECONDITION_FAILED - invalid expiration '': no_integer");
    assert.equal(refused(' 5'), "PRECONDITION_FAILED - invalid expiration ' 5': no_integer");
    assert.equal(refused('12abc'), 'PRECONDITION_FAILED - invalid expiration \'12abc\': {leftover_string,"abc"}');
    assert.equal(refused('5.5'), 'PRECONDITION_FAILED - invalid expiration \'5.5\': {leftover_string,".5"}');
    assert.equal(
      refused('315360000001'),
      "PRECONDITION_FAILED - invalid expiration '315360000001': {value_too_large,315360000001}",
    );
  });
});

describe('dead-lettering', () => {
  it('publishes to the DLX with its routing key, drops expiration, records x-death and x-first-death-*', () => {
    const dead = deadLetter(original, 'rejected', 'q1', 'dlx', 'dlk', 1_700_000_000_500);
    assert.equal(dead.exchange, 'dlx');
    assert.equal(dead.routingKey, 'dlk');
    assert.equal(dead.ttl, undefined);
    assert.equal(dead.properties.expiration, undefined);
    assert.equal(dead.properties.priority, 3);
    assert.deepEqual(dead.properties.headers, {
      h: 'v',
      'x-death': [
        {
          count: 1,
          reason: 'rejected',
          queue: 'q1',
          time: { '!': 'timestamp', value: 1_700_000_000 },
          exchange: 'amq.topic',
          'routing-keys': ['a.b'],
          'original-expiration': '60000',
        },
      ],
      'x-first-death-exchange': 'amq.topic',
      'x-first-death-queue': 'q1',
      'x-first-death-reason': 'rejected',
    });
    assert.equal(original.properties.headers['x-death'], undefined, 'the original is not mutated');
  });

  it('keeps the routing key without x-dead-letter-routing-key; counts repeated deaths per (queue, reason)', () => {
    const once = deadLetter(original, 'expired', 'q1', '', undefined, 0);
    assert.equal(once.routingKey, 'a.b');
    const other = deadLetter(once, 'rejected', 'q2', '', undefined, 0);
    const twice = deadLetter(other, 'expired', 'q1', '', undefined, 0);
    const deaths = twice.properties.headers['x-death'] as Array<Record<string, unknown>>;
    assert.deepEqual(
      deaths.map((d) => [d['queue'], d['reason'], d['count']]),
      [
        ['q1', 'expired', 2],
        ['q2', 'rejected', 1],
      ],
    );
    assert.equal(twice.properties.headers['x-first-death-queue'], 'q1');
    assert.equal(twice.properties.headers['x-first-death-reason'], 'expired');
  });

  it('detects cycles that no client rejection breaks', () => {
    const expired = deadLetter(original, 'expired', 'q1', '', undefined, 0);
    assert.equal(isDeadLetterCycle(expired, 'q1'), true, 'straight back into the queue it expired in');
    assert.equal(isDeadLetterCycle(expired, 'q2'), false);
    const rejected = deadLetter(original, 'rejected', 'q1', '', undefined, 0);
    assert.equal(isDeadLetterCycle(rejected, 'q1'), false, 'a rejection is a client decision, not a loop');
    const viaOther = deadLetter(deadLetter(original, 'rejected', 'q1', '', undefined, 0), 'expired', 'q2', '', undefined, 0);
    assert.equal(isDeadLetterCycle(viaOther, 'q1'), false);
    assert.equal(isDeadLetterCycle(viaOther, 'q2'), true);
  });
});
