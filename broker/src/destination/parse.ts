// Parses a STOMP `destination` header the way RabbitMQ 3.10.8 does (reference §1.1;
// code: rabbit_routing_util:parse_endpoint/2 and the processor's with_destination/4), including
// its error texts, so clients that match on them keep working.

import { fail, ok, stompError, type Result } from '../errors.js';
import type { StompVersion } from '../stomp/frame.js';
import type { Destination } from './types.js';

/** The prefixes RabbitMQ lists in its "Unknown destination" body, in its order. */
export const DESTINATION_PREFIXES = [
  '/temp-queue',
  '/exchange',
  '/topic',
  '/queue',
  '/amq/queue',
  '/reply-queue/',
] as const;

/** Prefixes that mark a `reply-to` value as already being a destination (reference §3). */
export const REPLY_TO_DESTINATION_PREFIXES = ['/exchange', '/topic', '/queue', '/amq/queue', '/reply-queue/'] as const;

const REPLY_QUEUE_PREFIX = '/reply-queue/';

/** RabbitMQ's atom names for destination kinds, as they appear in "not a valid … destination". */
const KIND_ATOM = {
  exchange: 'exchange',
  topic: 'topic',
  queue: 'queue',
  'amq-queue': 'amqqueue',
  'reply-queue': 'reply_queue',
  'temp-queue': 'temp_queue',
} as const satisfies Record<Destination['kind'], string>;

type SimpleKind = Exclude<Destination['kind'], 'exchange'>;

/**
 * Parses the `destination` header. `command` only shapes the "Missing destination" text.
 * STOMP 1.0 header values lose their leading spaces first (RabbitMQ's trim_headers, spaces only);
 * 1.1/1.2 keep them, so ` /queue/x` is an unknown destination there (reference §1.1).
 */
export function parseDestination(raw: string | undefined, version: StompVersion, command = 'SEND'): Result<Destination> {
  if (raw === undefined) {
    return fail(
      stompError('MISSING_HEADER', `"${command}" must include a 'destination' header\n`, {
        message: 'Missing destination',
      }),
    );
  }
  const value = version === '1.0' ? trimLeadingSpaces(raw) : raw;
  const parsed = parseEndpoint(value);
  if (parsed.ok && parsed.value.kind === 'queue' && parsed.value.name === '') {
    // RabbitMQ rejects the blank queue in ensure_endpoint: message "Invalid destination".
    return fail(stompError('BLANK_DESTINATION', 'Destination cannot be blank', { message: 'Invalid destination' }));
  }
  return parsed;
}

/**
 * The pure endpoint parser (rabbit_routing_util:parse_endpoint/2 with anonymous queues disallowed).
 * The blank queue (`''`) parses; callers that need a real destination use parseDestination.
 */
export function parseEndpoint(destination: string): Result<Destination> {
  // Like Erlang's re:split: every '/' splits, empty segments (also trailing ones) are kept.
  const parts = destination.split('/');
  const [first, type] = parts;
  if (parts.length === 1) return ok({ kind: 'queue', name: unescapeName(destination) });
  if (first === '') {
    switch (type) {
      case 'exchange':
        return parseExchange(parts.slice(2));
      case 'queue':
        return parseSimple('queue', parts.slice(2));
      case 'topic':
        return parseSimple('topic', parts.slice(2));
      case 'temp-queue':
        return parseSimple('temp-queue', parts.slice(2));
      case 'amq':
        if (parts[2] === 'queue') return parseSimple('amq-queue', parts.slice(3));
        break;
      case 'reply-queue':
        // Everything after the prefix is one name: reply queue names may contain '/'.
        if (parts.length > 2) return parseSimple('reply-queue', [destination.slice(REPLY_QUEUE_PREFIX.length)]);
        break;
      default:
        break;
    }
  }
  return fail(
    stompError(
      'UNKNOWN_DESTINATION',
      `'${destination}' is not a valid destination.\nValid destination types are: ${DESTINATION_PREFIXES.join(', ')}.\n`,
    ),
  );
}

/**
 * For `reply-to` on SEND (reference §1.6): the temp-queue id when the value is `/temp-queue/<n>`,
 * else undefined (the value is passed through). RabbitMQ parses every reply-to as a destination and
 * crashes the frame on one that does not parse, so that is a "Processing error" here too.
 */
export function replyToTempQueue(replyTo: string): Result<string | undefined> {
  const parsed = parseEndpoint(replyTo);
  if (!parsed.ok) return fail(stompError('PROCESSING_ERROR', 'Processing error'));
  return ok(parsed.value.kind === 'temp-queue' ? parsed.value.name : undefined);
}

/** Only the exact 3-byte sequence `%2F` is decoded; `%2f`, `%25`, … stay literal (reference §1.1). */
export function unescapeName(segment: string): string {
  return segment.split('%2F').join('/');
}

function parseExchange(rest: readonly string[]): Result<Destination> {
  const [name, pattern] = rest;
  // The default exchange cannot be named this way (`/exchange//rk`): it means something else
  // for SEND and SUBSCRIBE.
  if (name === undefined || name === '' || rest.length > 2) return invalid('exchange', rest);
  return ok({
    kind: 'exchange',
    exchange: unescapeName(name),
    pattern: pattern === undefined ? undefined : unescapeName(pattern),
  });
}

function parseSimple(kind: SimpleKind, rest: readonly string[]): Result<Destination> {
  const [name] = rest;
  if (rest.length !== 1 || name === undefined || name === '') return invalid(kind, rest);
  return ok({ kind, name: unescapeName(name) });
}

function invalid(kind: Destination['kind'], rest: readonly string[]): Result<never> {
  // RabbitMQ's to_url/1: the raw (undecoded) remaining segments re-joined with a leading '/'.
  const content = rest.length === 0 ? '' : '/' + rest.join('/');
  return fail(stompError('INVALID_DESTINATION', `'${content}' is not a valid ${KIND_ATOM[kind]} destination\n`));
}

/** Erlang's string:strip(V, left): spaces only, not tabs. */
export function trimLeadingSpaces(value: string): string {
  let i = 0;
  while (i < value.length && value.charCodeAt(i) === 0x20) i++;
  return i === 0 ? value : value.slice(i);
}
