// SEND headers → AMQP 0-9-1 basic properties (reference §3; code: rabbit_stomp_util:message_properties/1).
// The session replaces `reply-to:/temp-queue/<n>` with the temp queue's name before or after this
// runs, and refuses `message-id` on SEND before it.

import { fail, ok, type Result } from '../errors.js';
import { parseBoolean } from '../destination/plan-common.js';
import { parseErlangInteger, processingError, trimSpaces } from '../destination/queue-args.js';
import { uniqueHeaders, type HeaderList } from '../stomp/frame.js';
import type { MessageProperties } from '../engine/message.js';

/** Headers that become properties (or nothing) instead of entries of the AMQP headers table. */
export const PROPERTY_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'content-encoding',
  'persistent',
  'priority',
  'correlation-id',
  'reply-to',
  'expiration',
  'amqp-message-id',
  'timestamp',
  'type',
  'user-id',
  'app-id',
  'destination',
]);

/**
 * First occurrence of a repeated header wins. Every header not in PROPERTY_HEADERS — `receipt`,
 * `transaction`, `content-length`, `x-…`, custom ones — is copied as a string (longstr).
 */
export function stompToAmqpProperties(headers: HeaderList): Result<MessageProperties> {
  const unique = uniqueHeaders(headers);
  const get = (name: string): string | undefined => unique.find(([k]) => k === name)?.[1];

  const priority = optionalInteger(get('priority'));
  if (priority === null) return fail(processingError());
  const timestamp = optionalInteger(get('timestamp'));
  if (timestamp === null) return fail(processingError());

  const table: Record<string, unknown> = {};
  // RabbitMQ's parser keeps headers newest-first, so the table (and the MESSAGE frames built from
  // it) lists them in reverse wire order; we keep that observable order.
  for (let i = unique.length - 1; i >= 0; i--) {
    const header = unique[i];
    if (header === undefined || PROPERTY_HEADERS.has(header[0])) continue;
    // defineProperty: a header named `__proto__` must become a key, not a prototype.
    Object.defineProperty(table, header[0], { value: header[1], enumerable: true, writable: true, configurable: true });
  }

  const props: MessageProperties = { headers: table };
  setIfDefined(props, 'contentType', get('content-type'));
  setIfDefined(props, 'contentEncoding', get('content-encoding'));
  // Only true/True set delivery mode 2; anything else leaves it unset, never 1.
  if (parseBoolean(get('persistent')) === true) props.deliveryMode = 2;
  setIfDefined(props, 'priority', priority);
  setIfDefined(props, 'correlationId', get('correlation-id'));
  setIfDefined(props, 'replyTo', get('reply-to'));
  // The broker validates expiration (fatal precondition_failed); it is passed on as sent.
  setIfDefined(props, 'expiration', get('expiration'));
  setIfDefined(props, 'messageId', get('amqp-message-id'));
  setIfDefined(props, 'timestamp', timestamp);
  setIfDefined(props, 'type', get('type'));
  // The session enforces user-id = authenticated user (or the impersonator tag).
  setIfDefined(props, 'userId', get('user-id'));
  setIfDefined(props, 'appId', get('app-id'));
  return ok(props);
}

/** undefined when absent, null when present but not an integer (RabbitMQ: list_to_integer crash). */
function optionalInteger(raw: string | undefined): number | undefined | null {
  if (raw === undefined) return undefined;
  return parseErlangInteger(trimSpaces(raw)) ?? null;
}

function setIfDefined<K extends Exclude<keyof MessageProperties, 'headers'>>(
  props: MessageProperties,
  key: K,
  value: MessageProperties[K] | undefined,
): void {
  if (value !== undefined) props[key] = value;
}
