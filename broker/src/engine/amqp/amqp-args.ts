// Pure conversions between the engine-neutral shapes and amqplib's: argument tables with explicit
// AMQP types, publish options, deliveries, and the shortstr limits amqplib would otherwise throw on.

import type { ConsumeMessage, Options } from 'amqplib';
import type { ArgTable, ArgValue } from '../../destination/types.js';
import type { Delivery, MessageProperties, OutboundMessage } from '../message.js';
import { stompError, type StompError } from '../../errors.js';

/** amqplib's escape hatch for typed field values: `{ '!': type, value }`. */
export interface TypedFieldValue {
  readonly '!': 'long' | 'double' | 'timestamp';
  readonly value: number;
}

export type AmqpFieldValue = string | TypedFieldValue;

// RabbitMQ's STOMP plugin sends integer arguments as `long` (reference §1.7). Declaring through
// amqplib's guess (byte/short/int by size) would make a queue declared via Thumper inequivalent to
// the same queue declared via the plugin: `received the value '9' of type 'long' but current is
// 'byte'` → PRECONDITION_FAILED. So every integer is tagged `long`.
export function toAmqpValue(value: ArgValue): AmqpFieldValue {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? { '!': 'long', value } : { '!': 'double', value };
  }
  return { '!': 'timestamp', value: value.value };
}

export function toAmqpArgs(args: ArgTable): Record<string, AmqpFieldValue> {
  const table: Record<string, AmqpFieldValue> = {};
  for (const [key, value] of Object.entries(args)) table[key] = toAmqpValue(value);
  return table;
}

/** AMQP shortstr: at most 255 bytes of UTF-8. */
export const SHORTSTR_MAX_BYTES = 255;

export function fitsShortstr(value: string): boolean {
  return Buffer.byteLength(value, 'utf8') <= SHORTSTR_MAX_BYTES;
}

/** The STOMP error for a name or key that does not fit its AMQP shortstr. */
export function tooLong(what: string, value: string): StompError {
  const shown = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return stompError('INVALID_DESTINATION', `${what} '${shown}' is longer than ${SHORTSTR_MAX_BYTES} bytes, the AMQP limit`);
}

/** The basic properties AMQP carries as shortstr (the rest are numbers or the headers table). */
const STRING_PROPERTIES = [
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'expiration',
  'messageId',
  'type',
  'userId',
  'appId',
] as const;

/** The first basic property too long for its AMQP shortstr field, if any. */
export function oversizedProperty(properties: MessageProperties): string | undefined {
  return STRING_PROPERTIES.find((key) => {
    const value = properties[key];
    return value !== undefined && !fitsShortstr(value);
  });
}

/** Publish options: properties pass through under amqplib's names; unset stays unset. */
export function toPublishOptions(message: OutboundMessage): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = { headers: p.headers };
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  // Left unset unless given: RabbitMQ's plugin sends no delivery_mode for non-persistent SENDs.
  if (p.deliveryMode !== undefined) options.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.expiration !== undefined) options.expiration = p.expiration;
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.type !== undefined) options.type = p.type;
  if (p.userId !== undefined) options.userId = p.userId;
  if (p.appId !== undefined) options.appId = p.appId;
  return options;
}

/** amqplib's decoded properties (every field present, unset ones undefined) → ours (unset = absent). */
export function fromAmqpProperties(props: ConsumeMessage['properties']): MessageProperties {
  const out: MessageProperties = { headers: { ...(props.headers ?? {}) } };
  for (const key of STRING_PROPERTIES) {
    const value: unknown = props[key];
    if (value !== undefined && value !== null) out[key] = String(value);
  }
  if (typeof props.deliveryMode === 'number') out.deliveryMode = props.deliveryMode;
  if (typeof props.priority === 'number') out.priority = props.priority;
  if (typeof props.timestamp === 'number') out.timestamp = props.timestamp;
  return out;
}

export function toDelivery(msg: ConsumeMessage): Delivery {
  return {
    consumerTag: msg.fields.consumerTag,
    deliveryTag: msg.fields.deliveryTag,
    redelivered: msg.fields.redelivered,
    exchange: msg.fields.exchange,
    routingKey: msg.fields.routingKey,
    body: msg.content,
    properties: fromAmqpProperties(msg.properties),
  };
}
