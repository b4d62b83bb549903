// A message as the memory engine keeps it, plus the pure rules that rewrite one: per-message
// expiration parsing (rabbit_basic:parse_expiration) and dead-lettering (rabbit_dead_letter).

import { fail, ok, type Result, type StompError } from '../../errors.js';
import type { MessageProperties, OutboundMessage } from '../message.js';
import { amqpErrors } from './amqp-errors.js';
import { MAX_EXPIRY_MS } from './queue-args.js';

/** One published message; shared by every queue it was routed to, never mutated. */
export interface StoredMessage {
  readonly body: Buffer;
  readonly properties: Readonly<MessageProperties>;
  readonly exchange: string;
  readonly routingKey: string;
  /** Per-message TTL in ms from the `expiration` property, already validated. */
  readonly ttl: number | undefined;
}

export type DeathReason = 'rejected' | 'expired' | 'maxlen';

/** Copies what the publisher handed over, so its later mutations cannot reach queued messages. */
export function copyProperties(p: MessageProperties): MessageProperties {
  return { ...p, headers: { ...p.headers } };
}

/**
 * AMQP `expiration` is a string of a non-negative integer of ms. Erlang's string:to_integer accepts
 * a leading sign and stops at the first non-digit, hence RabbitMQ's three failure shapes.
 */
export function parseExpiration(expiration: string | undefined): Result<number | undefined, StompError> {
  if (expiration === undefined) return ok(undefined);
  const match = /^([+-]?\d+)([\s\S]*)$/.exec(expiration);
  if (match === null) return fail(amqpErrors.invalidExpiration(expiration, 'no_integer'));
  const [, digits = '', rest = ''] = match;
  if (rest !== '') return fail(amqpErrors.invalidExpiration(expiration, `{leftover_string,${JSON.stringify(rest)}}`));
  const value = Number(digits);
  const shown = String(BigInt(digits));
  if (value < 0) return fail(amqpErrors.invalidExpiration(expiration, `{value_negative,${shown}}`));
  if (value > MAX_EXPIRY_MS) return fail(amqpErrors.invalidExpiration(expiration, `{value_too_large,${shown}}`));
  return ok(value);
}

export function storeMessage(
  exchange: string,
  routingKey: string,
  message: OutboundMessage,
  ttl: number | undefined,
): StoredMessage {
  return { body: message.body, properties: copyProperties(message.properties), exchange, routingKey, ttl };
}

/** One entry of the `x-death` header, shaped as amqplib decodes RabbitMQ's table. */
interface DeathEntry {
  count: number;
  reason: DeathReason;
  queue: string;
  /** amqplib's representation of an AMQP timestamp field inside a table. */
  time: { '!': 'timestamp'; value: number };
  exchange: string;
  'routing-keys': string[];
  'original-expiration'?: string;
}

function deathsOf(properties: Readonly<MessageProperties>): DeathEntry[] {
  const raw = properties.headers['x-death'];
  return Array.isArray(raw) ? (raw as DeathEntry[]) : [];
}

/**
 * The message a queue dead-letters: published to the DLX with the DLX routing key (or its own),
 * without `expiration` (kept as `original-expiration`), with `x-death` updated as RabbitMQ does:
 * one entry per (queue, reason), newest first, and `x-first-death-*` set once.
 */
export function deadLetter(
  message: StoredMessage,
  reason: DeathReason,
  queue: string,
  dlx: string,
  dlxRoutingKey: string | undefined,
  nowMs: number,
): StoredMessage {
  const { expiration, ...rest } = message.properties;
  const headers: Record<string, unknown> = { ...message.properties.headers };
  const previous = deathsOf(message.properties);
  const index = previous.findIndex((d) => d.queue === queue && d.reason === reason);
  const time = { '!': 'timestamp' as const, value: Math.floor(nowMs / 1000) };
  let entry: DeathEntry;
  const others = previous.filter((_, i) => i !== index);
  const old = previous[index];
  if (old !== undefined) {
    entry = { ...old, count: old.count + 1, time };
  } else {
    entry = { count: 1, reason, queue, time, exchange: message.exchange, 'routing-keys': [message.routingKey] };
    if (expiration !== undefined) entry['original-expiration'] = expiration;
  }
  headers['x-death'] = [entry, ...others];
  if (headers['x-first-death-reason'] === undefined) {
    headers['x-first-death-exchange'] = message.exchange;
    headers['x-first-death-queue'] = queue;
    headers['x-first-death-reason'] = reason;
  }
  return {
    body: message.body,
    properties: { ...rest, headers },
    exchange: dlx,
    routingKey: dlxRoutingKey ?? message.routingKey,
    ttl: undefined,
  };
}

/**
 * rabbit_dead_letter cycle detection: a message that would re-enter a queue it already died in,
 * with no `rejected` death in between (only a client can break such a loop), is dropped instead.
 */
export function isDeadLetterCycle(message: StoredMessage, targetQueue: string): boolean {
  const deaths = deathsOf(message.properties);
  for (const death of deaths) {
    if (death.reason === 'rejected') return false;
    if (death.queue === targetQueue) return true;
  }
  return false;
}
