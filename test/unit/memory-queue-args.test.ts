// queue.declare argument validation and re-declare equivalence. Every expected text below was
// produced by RabbitMQ 3.10.8 for the same declare (arguments typed as the STOMP plugin types them).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ArgTable, QueueSpec } from '../../broker/src/destination/types.js';
import {
  checkEquivalence,
  parseQueueArguments,
  unsupportedQueueType,
} from '../../broker/src/engine/memory/queue-args.js';

const Q = "queue 'q' in vhost '/'";

function invalid(args: ArgTable): string {
  const result = parseQueueArguments(args, 'q', '/');
  assert.equal(result.ok, false, `expected ${JSON.stringify(args)} to be refused`);
  if (result.ok) return '';
  assert.equal(result.error.code, 'PRECONDITION_FAILED');
  assert.equal(result.error.fatal, true);
  return result.error.detail;
}

function spec(overrides: Partial<QueueSpec> = {}): QueueSpec {
  return { name: 'q', durable: false, autoDelete: false, exclusive: false, arguments: {}, ...overrides };
}

function redeclare(existing: Partial<QueueSpec>, again: Partial<QueueSpec>): string | undefined {
  const e = spec(existing);
  const error = checkEquivalence({ ...e, declaredArguments: e.arguments }, spec(again), '/');
  return error?.detail;
}

describe('queue arguments (queue.declare)', () => {
  it('accepts the classic-queue arguments and exposes them parsed', () => {
    const result = parseQueueArguments(
      {
        'x-message-ttl': 1000,
        'x-expires': 5000,
        'x-max-length': 0,
        'x-max-length-bytes': 100,
        'x-max-priority': 255,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'dl',
        'x-queue-type': 'classic',
        'x-unknown-to-everyone': 'ignored',
      },
      'q',
      '/',
    );
    assert.deepEqual(result, {
      ok: true,
      value: {
        messageTtl: 1000,
        expires: 5000,
        maxLength: 0,
        maxLengthBytes: 100,
        maxPriority: 255,
        deadLetterExchange: '',
        deadLetterRoutingKey: 'dl',
      },
    });
  });

  it('refuses out-of-range numbers with RabbitMQ texts', () => {
    assert.equal(invalid({ 'x-max-priority': 256 }), `PRECONDITION_FAILED - invalid arg 'x-max-priority' for ${Q}: {max_value_exceeded,256}`);
    assert.equal(invalid({ 'x-max-priority': -1 }), `PRECONDITION_FAILED - invalid arg 'x-max-priority' for ${Q}: {value_negative,-1}`);
    assert.equal(invalid({ 'x-message-ttl': -1 }), `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for ${Q}: {value_negative,-1}`);
    assert.equal(invalid({ 'x-expires': 0 }), `PRECONDITION_FAILED - invalid arg 'x-expires' for ${Q}: {value_zero,0}`);
    assert.equal(invalid({ 'x-expires': -1 }), `PRECONDITION_FAILED - invalid arg 'x-expires' for ${Q}: {value_negative,-1}`);
    assert.equal(invalid({ 'x-max-length': -1 }), `PRECONDITION_FAILED - invalid arg 'x-max-length' for ${Q}: {value_negative,-1}`);
    assert.equal(invalid({ 'x-max-length-bytes': -1 }), `PRECONDITION_FAILED - invalid arg 'x-max-length-bytes' for ${Q}: {value_negative,-1}`);
    assert.equal(
      invalid({ 'x-message-ttl': 2 ** 40 }),
      `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for ${Q}: {value_too_large,1099511627776}`,
    );
    assert.equal(parseQueueArguments({ 'x-message-ttl': 315_360_000_000 }, 'q', '/').ok, true);
    assert.equal(parseQueueArguments({ 'x-max-length': 2 ** 40 }, 'q', '/').ok, true);
  });

  it('refuses wrongly typed values with RabbitMQ texts', () => {
    assert.equal(invalid({ 'x-message-ttl': 'abc' }), `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for ${Q}: "expected integer, got longstr"`);
    assert.equal(invalid({ 'x-max-priority': 'a' }), `PRECONDITION_FAILED - invalid arg 'x-max-priority' for ${Q}: "expected integer, got longstr"`);
    assert.equal(
      invalid({ 'x-message-ttl': { type: 'timestamp', value: 5 } }),
      `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for ${Q}: "expected integer, got timestamp"`,
    );
    assert.equal(invalid({ 'x-message-ttl': 5.5 }), `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for ${Q}: "expected integer, got double"`);
    assert.equal(invalid({ 'x-dead-letter-exchange': 5 }), `PRECONDITION_FAILED - invalid type 'long' for arg 'x-dead-letter-exchange' in ${Q}`);
    assert.equal(
      invalid({ 'x-dead-letter-exchange': 'a', 'x-dead-letter-routing-key': 1 }),
      `PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for ${Q}: {unacceptable_type,long}`,
    );
    assert.equal(invalid({ 'x-queue-type': 1 }), `PRECONDITION_FAILED - invalid arg 'x-queue-type' for ${Q}: {unacceptable_type,long}`);
    assert.equal(invalid({ 'x-queue-type': 'bogus' }), `PRECONDITION_FAILED - invalid arg 'x-queue-type' for ${Q}: "unsupported queue type 'bogus'"`);
  });

  it('refuses a dead-letter routing key without a dead-letter exchange', () => {
    assert.equal(
      invalid({ 'x-dead-letter-routing-key': 'a' }),
      `PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for ${Q}: routing_key_but_no_dlx_defined`,
    );
  });

  it('names quorum and stream as unsupported, nothing else', () => {
    assert.equal(unsupportedQueueType({ 'x-queue-type': 'quorum' }), 'quorum');
    assert.equal(unsupportedQueueType({ 'x-queue-type': 'stream' }), 'stream');
    assert.equal(unsupportedQueueType({ 'x-queue-type': 'classic' }), undefined);
    assert.equal(unsupportedQueueType({}), undefined);
  });
});

describe('re-declare equivalence (queue.declare)', () => {
  it('identical declares are equivalent; unknown arguments are not compared', () => {
    const args = { 'x-max-length': 5, 'x-dead-letter-exchange': 'abc' };
    assert.equal(redeclare({ arguments: args }, { arguments: { ...args } }), undefined);
    assert.equal(redeclare({ arguments: { 'x-foo': 1 } }, { arguments: { 'x-foo': 2 } }), undefined);
    assert.equal(redeclare({}, { arguments: { 'x-queue-type': 'classic' } }), undefined);
  });

  it('flags: durable first, then auto_delete', () => {
    assert.equal(
      redeclare({ durable: true }, { durable: false, autoDelete: true }),
      `PRECONDITION_FAILED - inequivalent arg 'durable' for ${Q}: received 'false' but current is 'true'`,
    );
    assert.equal(
      redeclare({ durable: true }, { durable: true, autoDelete: true }),
      `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for ${Q}: received 'true' but current is 'false'`,
    );
  });

  it('an argument present on one side only', () => {
    assert.equal(
      redeclare({}, { arguments: { 'x-max-priority': 9 } }),
      `PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for ${Q}: received the value '9' of type 'long' but current is none`,
    );
    assert.equal(
      redeclare({ arguments: { 'x-message-ttl': 1000 } }, {}),
      `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${Q}: received none but current is the value '1000' of type 'long'`,
    );
    assert.equal(
      redeclare({}, { arguments: { 'x-dead-letter-exchange': 'abc' } }),
      `PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for ${Q}: received the value 'abc' of type 'longstr' but current is none`,
    );
    assert.equal(
      redeclare({}, { arguments: { 'x-queue-type': 'quorum' } }),
      `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for ${Q}: received the value 'quorum' of type 'longstr' but current is none`,
    );
  });

  it('different values, or the same digits under another type class', () => {
    assert.equal(
      redeclare({ arguments: { 'x-message-ttl': 1000 } }, { arguments: { 'x-message-ttl': 2000 } }),
      `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${Q}: received '2000' but current is '1000'`,
    );
    assert.equal(
      redeclare({ arguments: { 'x-message-ttl': 1000 } }, { arguments: { 'x-message-ttl': '1000' } }),
      `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${Q}: received '1000' but current is '1000'`,
    );
    assert.equal(
      redeclare({ arguments: { 'x-dead-letter-exchange': 'abc' } }, { arguments: { 'x-dead-letter-exchange': 'def' } }),
      `PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for ${Q}: received 'def' but current is 'abc'`,
    );
  });
});
