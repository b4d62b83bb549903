// AMQP delivery → MESSAGE headers (reference §2.7, §3; code: rabbit_stomp_util:headers/5,
// message_headers/1, headers_post_process/1).

import { REPLY_TO_DESTINATION_PREFIXES } from '../destination/parse.js';
import type { MessageProperties } from '../engine/message.js';
import type { HeaderList } from '../stomp/frame.js';

export interface MessageHeaderInput {
  /** The SUBSCRIBE `id`; undefined for id-less (STOMP 1.0) subscriptions: no `subscription` header. */
  readonly subscriptionId: string | undefined;
  /** formatDestination(exchange, routingKey) of the delivery. */
  readonly destination: string;
  readonly messageId: string;
  readonly redelivered: boolean;
  /** Present only for STOMP 1.2 with ack ≠ auto (same value as message-id). */
  readonly ack: string | undefined;
  readonly properties: MessageProperties;
}

type PropertyKey = Exclude<keyof MessageProperties, 'headers'>;

/**
 * RabbitMQ emits the properties in reverse of its declaration order (content-type … app-id),
 * because message_headers/1 prepends while folding over that list; we keep that observable order.
 */
const PROPERTY_ORDER: ReadonlyArray<readonly [header: string, key: PropertyKey]> = [
  ['app-id', 'appId'],
  ['user-id', 'userId'],
  ['type', 'type'],
  ['timestamp', 'timestamp'],
  ['amqp-message-id', 'messageId'],
  ['expiration', 'expiration'],
  ['reply-to', 'replyTo'],
  ['correlation-id', 'correlationId'],
  ['priority', 'priority'],
  ['persistent', 'deliveryMode'],
  ['content-encoding', 'contentEncoding'],
  ['content-type', 'contentType'],
];

/**
 * Server headers, then the AMQP headers table, then the properties. An AMQP header with the same
 * name as a server header is emitted as well (reference §3). `content-length` is left to the
 * encoder, which computes it from the body.
 */
export function messageHeaders(d: MessageHeaderInput): HeaderList {
  const out: HeaderList = [];
  if (d.subscriptionId !== undefined) out.push(['subscription', d.subscriptionId]);
  out.push(['destination', d.destination], ['message-id', d.messageId], ['redelivered', String(d.redelivered)]);
  if (d.ack !== undefined) out.push(['ack', d.ack]);

  for (const [name, value] of Object.entries(d.properties.headers ?? {})) {
    // RabbitMQ's serializer drops the first content-length it finds (a SEND copies its own into
    // the table) and writes the real one; a stale value here would break framing.
    if (name === 'content-length') continue;
    const text = tableValue(value);
    if (text !== undefined) out.push(postProcess(name, text));
  }
  for (const [header, key] of PROPERTY_ORDER) {
    const text = propertyValue(key, d.properties[key]);
    if (text !== undefined) out.push(postProcess(header, text));
  }
  return out;
}

/** Only longstr, signedint and long survive; bool, float, table, array, bytes… are dropped. */
function tableValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  return undefined;
}

function propertyValue(key: PropertyKey, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  // delivery_mode 2 reads `persistent:true`; any other mode is shown as its number (1 → `persistent:1`).
  if (key === 'deliveryMode' && value === 2) return 'true';
  return tableValue(value);
}

/** A reply-to that is not already a destination becomes a `/reply-queue/` one (reference §3). */
function postProcess(name: string, value: string): readonly [string, string] {
  if (name !== 'reply-to') return [name, value];
  const isDestination = REPLY_TO_DESTINATION_PREFIXES.some((p) => value.startsWith(p));
  return [name, isDestination ? value : '/reply-queue/' + value];
}
