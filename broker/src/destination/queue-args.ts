// Queue-declare arguments and basic.consume arguments taken from SEND/SUBSCRIBE headers
// (reference §1.7; code: rabbit_stomp_util:build_arguments/1, rabbit_stomp_frame:stream_offset_header).

import { fail, ok, stompError, type Result, type StompError } from '../errors.js';
import { uniqueHeaders, type HeaderList } from '../stomp/frame.js';
import type { ArgTable, ArgValue } from './types.js';

/**
 * The argument headers RabbitMQ 3.10.8 passes to queue.declare, with their AMQP type. Later
 * versions add `x-max-age` (longstr), `x-stream-max-segment-size-bytes` (3.12.0) and
 * `x-stream-filter-size-bytes` (3.13.0); in 3.10.8 those are ordinary message headers only.
 */
export const QUEUE_ARGUMENT_HEADERS = {
  'x-dead-letter-exchange': 'longstr',
  'x-dead-letter-routing-key': 'longstr',
  'x-expires': 'long',
  'x-message-ttl': 'long',
  'x-max-length': 'long',
  'x-max-length-bytes': 'long',
  'x-max-priority': 'long',
  'x-queue-type': 'longstr',
} as const satisfies Record<string, 'long' | 'longstr'>;

const STREAM_OFFSET_WORDS: readonly string[] = ['first', 'last', 'next'];

/** RabbitMQ crashes the frame on a bad integer: a non-fatal "Processing error" (reference §2.11). */
export function processingError(): StompError {
  return stompError('PROCESSING_ERROR', 'Processing error');
}

/**
 * Arguments for every declare the frame triggers. Values are trimmed of spaces; an integer header
 * that does not parse fails the whole frame (RabbitMQ evaluates them for every destination).
 */
export function queueArguments(headers: HeaderList): Result<ArgTable> {
  const args: Record<string, ArgValue> = {};
  for (const [name, raw] of uniqueHeaders(headers)) {
    if (!Object.hasOwn(QUEUE_ARGUMENT_HEADERS, name)) continue;
    const type = QUEUE_ARGUMENT_HEADERS[name as keyof typeof QUEUE_ARGUMENT_HEADERS];
    const value = trimSpaces(raw);
    if (type === 'longstr') {
      args[name] = value;
      continue;
    }
    const n = parseErlangInteger(value);
    if (n === undefined) return fail(processingError());
    args[name] = n;
  }
  return ok(args);
}

/**
 * basic.consume arguments from SUBSCRIBE. 3.10.8 knows only `x-stream-offset`: `first`, `last`,
 * `next` (longstr), `offset=<n>` (long), `timestamp=<unix s>` (timestamp); other values are
 * ignored, a non-integer after `offset=`/`timestamp=` crashes the frame. The value is not trimmed.
 */
export function consumerArguments(headers: HeaderList): Result<ArgTable> {
  const value = headerValue(headers, 'x-stream-offset');
  if (value === undefined) return ok({});
  if (STREAM_OFFSET_WORDS.includes(value)) return ok({ 'x-stream-offset': value });
  for (const prefix of ['offset=', 'timestamp='] as const) {
    if (!value.startsWith(prefix)) continue;
    const n = parseErlangInteger(value.slice(prefix.length));
    if (n === undefined) return fail(processingError());
    return ok({ 'x-stream-offset': prefix === 'offset=' ? n : { type: 'timestamp', value: n } });
  }
  return ok({});
}

/** Erlang's list_to_integer/1: optional sign, decimal digits, nothing else. */
export function parseErlangInteger(text: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  return Number(text);
}

/** Erlang's string:strip/1: leading and trailing spaces (not tabs or newlines). */
export function trimSpaces(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) === 0x20) start++;
  while (end > start && text.charCodeAt(end - 1) === 0x20) end--;
  return text.slice(start, end);
}

function headerValue(headers: HeaderList, name: string): string | undefined {
  for (const [k, v] of headers) if (k === name) return v;
  return undefined;
}
