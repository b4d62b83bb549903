// reference §1.7: queue arguments and consumer arguments from headers.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { consumerArguments, queueArguments } from '../../broker/src/destination/index.js';

describe('queueArguments', () => {
  it('maps the eight 3.10.8 argument headers with their AMQP types', () => {
    const r = queueArguments([
      ['x-dead-letter-exchange', 'dlx'],
      ['x-dead-letter-routing-key', 'dead'],
      ['x-expires', '60000'],
      ['x-message-ttl', '1000'],
      ['x-max-length', '10'],
      ['x-max-length-bytes', '2048'],
      ['x-max-priority', '9'],
      ['x-queue-type', 'quorum'],
    ]);
    assert.deepEqual(r, {
      ok: true,
      value: {
        'x-dead-letter-exchange': 'dlx',
        'x-dead-letter-routing-key': 'dead',
        'x-expires': 60000,
        'x-message-ttl': 1000,
        'x-max-length': 10,
        'x-max-length-bytes': 2048,
        'x-max-priority': 9,
        'x-queue-type': 'quorum',
      },
    });
  });
  it('trims spaces (not other whitespace) around values', () => {
    assert.deepEqual(queueArguments([['x-message-ttl', '  500 '], ['x-queue-type', ' classic ']]), {
      ok: true,
      value: { 'x-message-ttl': 500, 'x-queue-type': 'classic' },
    });
    assert.equal(queueArguments([['x-message-ttl', '\t500']]).ok, false);
  });
  it('accepts a sign like list_to_integer', () => {
    assert.deepEqual(queueArguments([['x-max-length', '+7']]), { ok: true, value: { 'x-max-length': 7 } });
    assert.deepEqual(queueArguments([['x-expires', '-1']]), { ok: true, value: { 'x-expires': -1 } });
  });
  for (const bad of ['abc', '', '1.5', '10ms', '0x10']) {
    it(`an unparsable integer (${JSON.stringify(bad)}) is a processing error`, () => {
      const r = queueArguments([['x-max-length', bad]]);
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'PROCESSING_ERROR');
      assert.equal(r.error.message, 'Processing error');
      assert.equal(r.error.fatal, false);
    });
  }
  it('ignores headers 3.10.8 does not pass as arguments', () => {
    const r = queueArguments([
      ['x-overflow', 'reject-publish'],
      ['x-queue-mode', 'lazy'],
      ['x-single-active-consumer', 'true'],
      ['x-max-age', '7D'],
      ['x-stream-max-segment-size-bytes', '100'],
      ['custom', '1'],
    ]);
    assert.deepEqual(r, { ok: true, value: {} });
  });
  it('the first occurrence of a repeated header wins', () => {
    assert.deepEqual(queueArguments([['x-max-length', '1'], ['x-max-length', 'bad']]), { ok: true, value: { 'x-max-length': 1 } });
  });
});

describe('consumerArguments (x-stream-offset)', () => {
  const cases: Array<[string, unknown]> = [
    ['first', { 'x-stream-offset': 'first' }],
    ['last', { 'x-stream-offset': 'last' }],
    ['next', { 'x-stream-offset': 'next' }],
    ['offset=5000', { 'x-stream-offset': 5000 }],
    ['offset=0', { 'x-stream-offset': 0 }],
    ['timestamp=1000', { 'x-stream-offset': { type: 'timestamp', value: 1000 } }],
    ['foo', {}],
    ['First', {}],
    [' first', {}],
    ['offset:5', {}],
  ];
  for (const [value, want] of cases) {
    it(`${JSON.stringify(value)}`, () => assert.deepEqual(consumerArguments([['x-stream-offset', value]]), { ok: true, value: want }));
  }
  it('no header → no arguments', () => assert.deepEqual(consumerArguments([['ack', 'client']]), { ok: true, value: {} }));
  for (const bad of ['offset=abc', 'offset=', 'timestamp=now', 'offset= 5']) {
    it(`${bad} is a processing error`, () => {
      const r = consumerArguments([['x-stream-offset', bad]]);
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'PROCESSING_ERROR');
    });
  }
});
