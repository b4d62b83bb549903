// Pure mapping from amqplib's errors to the client-facing StompError. RabbitMQ's STOMP plugin
// names a channel error by its AMQP reply code in lower case and puts the broker's reply text in
// the ERROR body (reference §2.11), so we keep both: `message` from the code, `detail` verbatim.

import { stompError, type ErrorCode, type StompError } from '../../errors.js';
import { capReplyText } from '../reply-text.js';

/** AMQP 0-9-1 reply codes RabbitMQ uses for channel errors a STOMP client can provoke. */
const CODE_TO_ERROR: Readonly<Record<number, ErrorCode>> = {
  403: 'ACCESS_REFUSED',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
};

export interface AmqpFailure {
  /** The AMQP reply code, when the broker sent one. */
  readonly code: number | undefined;
  /** The broker's reply text (`NOT_FOUND - no exchange 'x' in vhost '/'`), else the error message. */
  readonly replyText: string;
}

// amqplib: `Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - …"` or
// `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "…"`. The reply text may
// itself contain quotes, so the match is greedy up to the final quote.
const REPLY_TEXT = /with message "([\s\S]*)"\s*$/;

/** Pulls the reply code and text out of whatever amqplib rejected or emitted. */
export function parseAmqpError(err: unknown): AmqpFailure {
  const message = err instanceof Error ? err.message : String(err);
  const rawCode = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const code = typeof rawCode === 'number' && Number.isInteger(rawCode) ? rawCode : undefined;
  const match = REPLY_TEXT.exec(message);
  return { code, replyText: match?.[1] ?? message };
}

/** 403/404/405/406 keep RabbitMQ's names; every other failure is an internal engine error. */
export function amqpErrorToStomp(err: unknown): StompError {
  const { code, replyText } = parseAmqpError(err);
  const mapped = code === undefined ? undefined : CODE_TO_ERROR[code];
  return stompError(mapped ?? 'ENGINE_ERROR', replyText);
}

/**
 * RabbitMQ cuts every reply text to an AMQP shortstr: past 255 bytes it keeps 252 and appends '...'
 * (`rabbit_binary_generator:amqp_exception_explanation`), and its STOMP plugin shows that cut text.
 * Errors we raise in its place are cut the same way.
 */
export { capReplyText };

/** RabbitMQ 3.10.8's reply to a connection touching another connection's exclusive queue. */
export function resourceLocked(queue: string, vhost: string): StompError {
  return stompError(
    'RESOURCE_LOCKED',
    capReplyText(
      `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' in vhost '${vhost}'. ` +
        'It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.',
    ),
  );
}

// With amqp.onConnectionLoss=close, or for a session that had calls in flight when the connection
// went, the session is not restored: the client must reconnect, and this text is what tells it so.
export const CONNECTION_LOST_DETAIL = 'lost the connection to RabbitMQ; reconnect (subscriptions are not restored)';

export function connectionLost(): StompError {
  return stompError('ENGINE_UNAVAILABLE', CONNECTION_LOST_DETAIL);
}

/** A restore that failed: `why` is the broker's reply text or what ran out. */
export function restoreFailed(why: string): StompError {
  return stompError('ENGINE_UNAVAILABLE', `lost the connection to RabbitMQ and could not restore the subscriptions (${why}); reconnect`);
}

/** RabbitMQ names server-named queues itself: a new connection cannot declare one under the old name. */
export function unrestorableQueue(queue: string): StompError {
  return restoreFailed(`the server-named queue '${queue}' (e.g. a /temp-queue) cannot be declared again`);
}

/** connection.blocked outlasted amqp.blockedPublishTimeoutMs. `reason` is RabbitMQ's (e.g. "low on memory"). */
export function publishBlocked(reason: string): StompError {
  return stompError('ENGINE_UNAVAILABLE', `RabbitMQ is refusing publishes (resource alarm: ${reason}); try again later`);
}
