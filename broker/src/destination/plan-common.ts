// What SEND, SUBSCRIBE and UNSUBSCRIBE planning share: queue properties from headers (reference
// §1.3; code: rabbit_stomp_util:build_params/2 and rabbit_routing_util:queue_declare_method/3),
// the durable-subscription `id` rule (§1.5), ack modes (§2.6) and the declare's permission checks (§5.3).

import { fail, ok, stompError, type Result } from '../errors.js';
import { getHeader, uniqueHeaders, type Frame, type HeaderList } from '../stomp/frame.js';
import { processingError } from './queue-args.js';
import type { AckMode, ArgTable, Destination, PermissionCheck, QueueSpec } from './types.js';

export interface PlanOptions {
  /** RabbitMQ's `stomp.default_topic_exchange` (default `amq.topic`), used by `/topic/<n>`. */
  readonly defaultTopicExchange: string;
}

/** Only a SUBSCRIBE can need randomness, so only its plan asks for it (SEND is the hot path). */
export interface SubscribePlanOptions extends PlanOptions {
  /** 16 random bytes used for non-durable subscription queue names */
  readonly randomId: Buffer;
}

/** How the authorizer names the default exchange (reference §5.1). */
export const DEFAULT_EXCHANGE_RESOURCE = 'amq.default';

/** A header value that is not true|True|false|False. */
const UNRECOGNISED = 'unrecognised';
type Flag = boolean | typeof UNRECOGNISED;

/** build_params/2 output: per-destination defaults overlaid with the frame's headers. */
export interface QueueParams {
  readonly durable?: Flag;
  readonly autoDelete?: Flag;
  readonly exclusive?: Flag;
}

/** Only these spellings are booleans to RabbitMQ (some Python clients send True/False). */
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === 'true' || value === 'True') return true;
  if (value === 'false' || value === 'False') return false;
  return undefined;
}

/** `durable:true` or `persistent:true` (either spelling): a durable subscription (reference §1.5). */
export function hasDurableHeader(frame: Pick<Frame, 'headers'>): boolean {
  return parseBoolean(getHeader(frame, 'durable')) === true || parseBoolean(getHeader(frame, 'persistent')) === true;
}

/**
 * RabbitMQ's validate_frame for SUBSCRIBE and UNSUBSCRIBE, run before the destination is even
 * parsed: a literal `durable:true` or `persistent:true` without `id` is refused. (`True` slips
 * through here and fails later as a processing error, as in RabbitMQ.)
 */
export function checkDurableId(frame: Pick<Frame, 'headers'>): Result<void> {
  const flagged = getHeader(frame, 'durable') === 'true' || getHeader(frame, 'persistent') === 'true';
  if (flagged && getHeader(frame, 'id') === undefined) {
    return fail(
      stompError('MISSING_HEADER', "Header 'id' is required for durable subscriptions", { message: 'Missing Header' }),
    );
  }
  return ok(undefined);
}

/** `ack` on SUBSCRIBE (reference §2.6): absent = auto; anything unknown crashes the frame. */
export function parseAckMode(raw: string | undefined): Result<AckMode> {
  if (raw === undefined || raw === 'auto') return ok('auto');
  if (raw === 'client' || raw === 'client-individual') return ok(raw);
  return fail(processingError());
}

/**
 * build_params/2 for RabbitMQ 3.10.8. Headers overwrite the defaults; of `durable` and
 * `persistent` the later one on the wire wins. An unrecognised value still overwrites the default
 * (it becomes `undefined` in RabbitMQ), which matters in declareSpec.
 */
export function queueParams(kind: Destination['kind'], headers: HeaderList): QueueParams {
  const params: { durable?: Flag; autoDelete?: Flag; exclusive?: Flag } =
    kind === 'queue'
      ? { durable: true }
      : kind === 'topic' || kind === 'exchange'
        ? // 3.10.8 defaults; 3.12.0 made /exchange exclusive, 4.3.0 /topic (reference §0).
          { exclusive: false, autoDelete: true }
        : { durable: false };
  for (const [name, value] of uniqueHeaders(headers)) {
    const flag = parseBoolean(value) ?? UNRECOGNISED;
    if (name === 'durable' || name === 'persistent') params.durable = flag;
    else if (name === 'auto-delete') params.autoDelete = flag;
    else if (name === 'exclusive') params.exclusive = flag;
  }
  return params;
}

/**
 * queue_declare_method/3: non-durable queues start as auto-delete + exclusive, durable ones as
 * neither; explicit exclusive/auto-delete params then overwrite. An unrecognised exclusive or
 * auto-delete leaves that start value (so a bad `exclusive` on /topic yields an exclusive queue);
 * an unrecognised durable crashes the frame.
 */
export function declareSpec(name: string, params: QueueParams, args: ArgTable): Result<QueueSpec> {
  const durable = params.durable ?? false;
  if (durable === UNRECOGNISED) return fail(processingError());
  let autoDelete = !durable;
  let exclusive = !durable;
  if (typeof params.exclusive === 'boolean') exclusive = params.exclusive;
  if (typeof params.autoDelete === 'boolean') autoDelete = params.autoDelete;
  return ok({ name, durable, autoDelete, exclusive, arguments: args });
}

/**
 * What the broker checks for a queue.declare (rabbit_channel): configure on the queue, then, when
 * the declare creates it with `x-dead-letter-exchange`, read on the queue and write on the DLX.
 * Whether the queue is new is unknown here, so the pair is listed whenever the argument is set.
 */
export function declareChecks(spec: QueueSpec): PermissionCheck[] {
  const checks: PermissionCheck[] = [{ resource: 'queue', name: spec.name, permission: 'configure' }];
  const dlx = spec.arguments['x-dead-letter-exchange'];
  if (typeof dlx === 'string') {
    checks.push(
      { resource: 'queue', name: spec.name, permission: 'read' },
      { resource: 'exchange', name: dlx === '' ? DEFAULT_EXCHANGE_RESOURCE : dlx, permission: 'write' },
    );
  }
  return checks;
}

/**
 * The checks of a `/queue` plan when the session skips the declare because it already declared
 * that queue on this connection (RabbitMQ then sends no queue.declare, so nothing is checked).
 */
export function withoutDeclareChecks(checks: readonly PermissionCheck[], spec: QueueSpec): readonly PermissionCheck[] {
  const declare = declareChecks(spec);
  const isPrefix = declare.every((c, i) => {
    const other = checks[i];
    return other !== undefined && other.resource === c.resource && other.name === c.name && other.permission === c.permission;
  });
  return isPrefix ? checks.slice(declare.length) : checks;
}
