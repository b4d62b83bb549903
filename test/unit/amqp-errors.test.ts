// amqplib error → StompError mapping: RabbitMQ's code names and reply text survive (reference §2.11).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  amqpErrorToStomp,
  capReplyText,
  parseAmqpError,
  resourceLocked,
} from '../../broker/src/engine/amqp/amqp-errors.js';

function amqplibError(message: string, code?: number): Error {
  const err = new Error(message) as Error & { code?: number };
  if (code !== undefined) err.code = code;
  return err;
}

test('a channel-close error maps 404 to NOT_FOUND with the reply text as detail', () => {
  const err = amqplibError(
    `Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'x' in vhost '/'"`,
    404,
  );
  const mapped = amqpErrorToStomp(err);
  assert.equal(mapped.code, 'NOT_FOUND');
  assert.equal(mapped.message, 'not_found');
  assert.equal(mapped.detail, "NOT_FOUND - no exchange 'x' in vhost '/'");
  assert.equal(mapped.fatal, true);
});

test('an RPC failure ("Operation failed: …") yields the same reply text', () => {
  const err = amqplibError(
    `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'"`,
    406,
  );
  const mapped = amqpErrorToStomp(err);
  assert.equal(mapped.code, 'PRECONDITION_FAILED');
  assert.equal(mapped.message, 'precondition_failed');
  assert.equal(
    mapped.detail,
    "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'",
  );
});

test('403 and 405 keep their RabbitMQ names', () => {
  const refused = amqpErrorToStomp(
    amqplibError(`Channel closed by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'"`, 403),
  );
  assert.equal(refused.code, 'ACCESS_REFUSED');
  assert.equal(refused.message, 'access_refused');
  assert.equal(refused.detail, "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'");
  const locked = amqpErrorToStomp(
    amqplibError(`Operation failed: BasicConsume; 405 (RESOURCE-LOCKED) with message "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'."`, 405),
  );
  assert.equal(locked.code, 'RESOURCE_LOCKED');
  assert.equal(locked.message, 'resource_locked');
});

test('any other code is an internal engine error that still carries the reply text', () => {
  const mapped = amqpErrorToStomp(
    amqplibError(`Channel closed by server: 541 (INTERNAL-ERROR) with message "INTERNAL_ERROR"`, 541),
  );
  assert.equal(mapped.code, 'ENGINE_ERROR');
  assert.equal(mapped.detail, 'INTERNAL_ERROR');
  assert.equal(mapped.fatal, true);
});

test('errors without a code (socket, local) map to ENGINE_ERROR with their message', () => {
  const mapped = amqpErrorToStomp(new Error('Channel ended, no reply will be forthcoming'));
  assert.equal(mapped.code, 'ENGINE_ERROR');
  assert.equal(mapped.detail, 'Channel ended, no reply will be forthcoming');
  // A string code (Node's ECONNREFUSED) is not an AMQP reply code.
  const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  assert.deepEqual(parseAmqpError(socket), { code: undefined, replyText: 'connect ECONNREFUSED 127.0.0.1:1' });
  assert.equal(amqpErrorToStomp('not even an Error').detail, 'not even an Error');
});

test('reply text containing quotes is kept whole', () => {
  const parsed = parseAmqpError(
    amqplibError(`Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no queue 'a "b" c' in vhost '/'"`, 404),
  );
  assert.deepEqual(parsed, { code: 404, replyText: `NOT_FOUND - no queue 'a "b" c' in vhost '/'` });
});

test("reply texts are cut like RabbitMQ's: 252 bytes and '...' once past 255 bytes", () => {
  assert.equal(capReplyText('x'.repeat(255)), 'x'.repeat(255));
  assert.equal(capReplyText('x'.repeat(256)), `${'x'.repeat(252)}...`);
  const short = resourceLocked('q', '/');
  assert.equal(short.code, 'RESOURCE_LOCKED');
  assert.equal(
    short.detail,
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be originally " +
      'declared on another connection or the exclusive property value does not match that of the original declaration.',
  );
  // As observed from RabbitMQ 3.10.8 for these names.
  assert.equal(
    resourceLocked('contract-24d06c4eb3ae8cc9', 'thumper-contract-1c7ff5c8').detail,
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'contract-24d06c4eb3ae8cc9' in vhost " +
      "'thumper-contract-1c7ff5c8'. It could be originally declared on another connection or the exclusive " +
      'property value does not match that of the original...',
  );
});
