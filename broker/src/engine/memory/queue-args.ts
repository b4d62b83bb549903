// queue.declare arguments: validation of a new queue's arguments and the equivalence check of a
// re-declare, with RabbitMQ 3.10.8's rules and texts (each case observed on that broker). Pure.
//
// An ArgValue carries no AMQP type, so this module gives it the one RabbitMQ's STOMP plugin would
// send (rabbit_stomp_util:build_arguments): integers are `long`, strings `longstr`.

import type { ArgTable, ArgValue, QueueSpec } from '../../destination/types.js';
import { fail, ok, type Result, type StompError } from '../../errors.js';
import { amqpErrors } from './amqp-errors.js';

export type AmqpFieldType = 'long' | 'double' | 'longstr' | 'timestamp';

export function fieldType(value: ArgValue): AmqpFieldType {
  if (typeof value === 'string') return 'longstr';
  if (typeof value === 'number') return Number.isInteger(value) ? 'long' : 'double';
  return 'timestamp';
}

function fieldValue(value: ArgValue): string {
  return typeof value === 'object' ? String(value.value) : String(value);
}

/** What the memory engine acts on; every limit is already validated. */
export interface QueueArguments {
  readonly messageTtl: number | undefined;
  readonly expires: number | undefined;
  readonly maxLength: number | undefined;
  readonly maxLengthBytes: number | undefined;
  readonly maxPriority: number | undefined;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
}

/** rabbit_misc:check_expiry: TTLs and x-expires above ten years are refused. */
export const MAX_EXPIRY_MS = 315_360_000_000;
const MAX_PRIORITY = 255;

/**
 * The arguments RabbitMQ compares on a re-declare of a classic queue, in its order; any other
 * argument (e.g. `x-foo`) is accepted and ignored on both declare and re-declare.
 */
const EQUIVALENCE_KEYS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-mode',
  'x-single-active-consumer',
  'x-queue-type',
  'x-queue-master-locator',
] as const;

/** `quorum`/`stream` when the declare asks for a queue type this engine cannot provide. */
export function unsupportedQueueType(args: ArgTable): 'quorum' | 'stream' | undefined {
  const type = args['x-queue-type'];
  return type === 'quorum' || type === 'stream' ? type : undefined;
}

/** ttl: 0…MAX_EXPIRY_MS; expires: 1…MAX_EXPIRY_MS; count: ≥ 0; priority: 0…255. */
type IntRule = 'ttl' | 'expires' | 'count' | 'priority';

function checkInt(
  args: ArgTable,
  key: string,
  rule: IntRule,
  queue: string,
  vhost: string,
): Result<number | undefined> {
  const value = args[key];
  if (value === undefined) return ok(undefined);
  const type = fieldType(value);
  if (type !== 'long' || typeof value !== 'number') {
    return fail(amqpErrors.invalidArg(key, queue, vhost, `"expected integer, got ${type}"`));
  }
  if (value < 0) return fail(amqpErrors.invalidArg(key, queue, vhost, `{value_negative,${value}}`));
  if (rule === 'expires' && value === 0) {
    return fail(amqpErrors.invalidArg(key, queue, vhost, `{value_zero,${value}}`));
  }
  if (rule === 'priority' && value > MAX_PRIORITY) {
    return fail(amqpErrors.invalidArg(key, queue, vhost, `{max_value_exceeded,${value}}`));
  }
  if ((rule === 'ttl' || rule === 'expires') && value > MAX_EXPIRY_MS) {
    return fail(amqpErrors.invalidArg(key, queue, vhost, `{value_too_large,${value}}`));
  }
  return ok(value);
}

/** Validates a new queue's arguments (rabbit_amqqueue:check_arguments). */
export function parseQueueArguments(args: ArgTable, queue: string, vhost: string): Result<QueueArguments> {
  const expires = checkInt(args, 'x-expires', 'expires', queue, vhost);
  if (!expires.ok) return expires;
  const messageTtl = checkInt(args, 'x-message-ttl', 'ttl', queue, vhost);
  if (!messageTtl.ok) return messageTtl;

  const dlx = args['x-dead-letter-exchange'];
  if (dlx !== undefined && typeof dlx !== 'string') {
    return fail(amqpErrors.invalidArgType('x-dead-letter-exchange', fieldType(dlx), queue, vhost));
  }
  const dlrk = args['x-dead-letter-routing-key'];
  if (dlrk !== undefined) {
    if (typeof dlrk !== 'string') {
      return fail(
        amqpErrors.invalidArg('x-dead-letter-routing-key', queue, vhost, `{unacceptable_type,${fieldType(dlrk)}}`),
      );
    }
    if (dlx === undefined) {
      return fail(amqpErrors.invalidArg('x-dead-letter-routing-key', queue, vhost, 'routing_key_but_no_dlx_defined'));
    }
  }

  const maxLength = checkInt(args, 'x-max-length', 'count', queue, vhost);
  if (!maxLength.ok) return maxLength;
  const maxLengthBytes = checkInt(args, 'x-max-length-bytes', 'count', queue, vhost);
  if (!maxLengthBytes.ok) return maxLengthBytes;
  const maxPriority = checkInt(args, 'x-max-priority', 'priority', queue, vhost);
  if (!maxPriority.ok) return maxPriority;

  const queueType = args['x-queue-type'];
  if (queueType !== undefined) {
    if (typeof queueType !== 'string') {
      return fail(amqpErrors.invalidArg('x-queue-type', queue, vhost, `{unacceptable_type,${fieldType(queueType)}}`));
    }
    if (queueType !== 'classic' && queueType !== 'quorum' && queueType !== 'stream') {
      return fail(amqpErrors.invalidArg('x-queue-type', queue, vhost, `"unsupported queue type '${queueType}'"`));
    }
  }

  return ok({
    messageTtl: messageTtl.value,
    expires: expires.value,
    maxLength: maxLength.value,
    maxLengthBytes: maxLengthBytes.value,
    maxPriority: maxPriority.value,
    deadLetterExchange: dlx,
    deadLetterRoutingKey: dlrk,
  });
}

/** What an existing queue was declared with. */
export interface DeclaredQueue {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly declaredArguments: ArgTable;
}

/**
 * AMQP 0-9-1 queue.declare: a re-declare must match the existing queue. RabbitMQ checks durable,
 * then auto_delete, then the arguments in EQUIVALENCE_KEYS order; the first difference fails.
 * (Exclusivity is checked before, with RESOURCE_LOCKED, by the caller.)
 */
export function checkEquivalence(existing: DeclaredQueue, spec: QueueSpec, vhost: string): StompError | undefined {
  const flag = (field: string, current: boolean, received: boolean) =>
    current === received
      ? undefined
      : amqpErrors.inequivalent(field, existing.name, vhost, `received '${received}' but current is '${current}'`);
  const flagError =
    flag('durable', existing.durable, spec.durable) ?? flag('auto_delete', existing.autoDelete, spec.autoDelete);
  if (flagError !== undefined) return flagError;

  for (const key of EQUIVALENCE_KEYS) {
    let current = existing.declaredArguments[key];
    let received = spec.arguments[key];
    // 3.10.8 treats x-queue-type 'classic' as equivalent to no type at all.
    if (key === 'x-queue-type') {
      if (current === 'classic') current = undefined;
      if (received === 'classic') received = undefined;
    }
    const comparison = compareArg(current, received);
    if (comparison !== undefined) return amqpErrors.inequivalent(key, existing.name, vhost, comparison);
  }
  return undefined;
}

function typeClass(type: AmqpFieldType): string {
  return type === 'long' ? 'int' : type === 'double' ? 'float' : type;
}

function describeArg(value: ArgValue | undefined): string {
  return value === undefined ? 'none' : `the value '${fieldValue(value)}' of type '${fieldType(value)}'`;
}

/** undefined when equivalent, else RabbitMQ's "received … but current is …" clause. */
function compareArg(current: ArgValue | undefined, received: ArgValue | undefined): string | undefined {
  if (current === undefined && received === undefined) return undefined;
  if (current === undefined || received === undefined) {
    return `received ${describeArg(received)} but current is ${describeArg(current)}`;
  }
  const sameClass = typeClass(fieldType(current)) === typeClass(fieldType(received));
  if (sameClass && fieldValue(current) === fieldValue(received)) return undefined;
  return `received '${fieldValue(received)}' but current is '${fieldValue(current)}'`;
}
