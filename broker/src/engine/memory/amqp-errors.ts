// The AMQP 0-9-1 channel errors the memory engine raises, worded exactly as RabbitMQ 3.10.8 words
// them (each text below was observed on that broker), so a client sees the same ERROR body whichever
// engine runs. The detail is the AMQP reply text, `<CODE> - <text>`, as the AMQP engine passes it on.

import { stompError, type StompError } from '../../errors.js';
import { capReplyText } from '../reply-text.js';

type AmqpCode = 'NOT_FOUND' | 'PRECONDITION_FAILED' | 'RESOURCE_LOCKED' | 'ACCESS_REFUSED';

function amqpError(code: AmqpCode, text: string): StompError {
  return stompError(code, capReplyText(`${code} - ${text}`));
}

/** rabbit_misc:rs/1: how RabbitMQ names a resource in messages. */
export function resourceName(kind: 'queue' | 'exchange', name: string, vhost: string): string {
  return `${kind} '${name}' in vhost '${vhost}'`;
}

export const amqpErrors = {
  noQueue: (name: string, vhost: string) => amqpError('NOT_FOUND', `no ${resourceName('queue', name, vhost)}`),
  noExchange: (name: string, vhost: string) =>
    amqpError('NOT_FOUND', `no ${resourceName('exchange', name, vhost)}`),
  queueLocked: (name: string, vhost: string) =>
    amqpError(
      'RESOURCE_LOCKED',
      `cannot obtain exclusive access to locked ${resourceName('queue', name, vhost)}. It could be originally ` +
        'declared on another connection or the exclusive property value does not match that of the original ' +
        'declaration.',
    ),
  reservedQueueName: (name: string) =>
    amqpError('ACCESS_REFUSED', `queue name '${name}' contains reserved prefix 'amq.*'`),
  defaultExchangeBinding: () => amqpError('ACCESS_REFUSED', 'operation not permitted on the default exchange'),
  unknownDeliveryTag: (tag: number) => amqpError('PRECONDITION_FAILED', `unknown delivery tag ${tag}`),
  invalidExpiration: (value: string, reason: string) =>
    amqpError('PRECONDITION_FAILED', `invalid expiration '${value}': ${reason}`),
  /** Re-declare with a different durable/auto_delete flag or argument (rabbit_misc:assert_args_equivalence). */
  inequivalent: (field: string, queue: string, vhost: string, comparison: string) =>
    amqpError(
      'PRECONDITION_FAILED',
      `inequivalent arg '${field}' for ${resourceName('queue', queue, vhost)}: ${comparison}`,
    ),
  invalidArg: (arg: string, queue: string, vhost: string, reason: string) =>
    amqpError('PRECONDITION_FAILED', `invalid arg '${arg}' for ${resourceName('queue', queue, vhost)}: ${reason}`),
  invalidArgType: (arg: string, type: string, queue: string, vhost: string) =>
    amqpError('PRECONDITION_FAILED', `invalid type '${type}' for arg '${arg}' in ${resourceName('queue', queue, vhost)}`),
} as const;

/** Engine-specific errors (no RabbitMQ counterpart). */
export const memoryErrors = {
  unsupportedQueueType: (type: 'quorum' | 'stream') =>
    stompError(
      'NOT_SUPPORTED',
      `The embedded engine has no ${type} queues (x-queue-type: ${type}); ` +
        'run Thumper with the RabbitMQ (amqp) engine to use them.',
    ),
  unknownVhost: (vhost: string) => stompError('NOT_FOUND', `vhost ${vhost} not found`),
  notStarted: () => stompError('ENGINE_UNAVAILABLE', 'the embedded engine is not running'),
  shuttingDown: () => stompError('ENGINE_UNAVAILABLE', 'server shutting down'),
  sessionClosed: () => stompError('ENGINE_ERROR', 'the engine session is closed'),
  invalidPrefetch: (count: number) =>
    stompError('PROCESSING_ERROR', `prefetch count must be an integer from 0 to 65535, got ${count}`),
} as const;
