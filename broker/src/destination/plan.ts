// Plans for SEND, SUBSCRIBE and UNSUBSCRIBE: which exchange/routing key, which queue and bindings,
// and which permission checks, in RabbitMQ 3.10.8's order (reference §1.2–§1.7, §5.3). Pure: the
// session's plan executor runs the result against either engine. Errors come in the order
// RabbitMQ's processor would hit them.

import { fail, ok, stompError, type Result } from '../errors.js';
import { getHeader, type Frame } from '../stomp/frame.js';
import { trimLeadingSpaces } from './parse.js';
import {
  checkDurableId,
  declareChecks,
  declareSpec,
  DEFAULT_EXCHANGE_RESOURCE,
  hasDurableHeader,
  parseAckMode,
  queueParams,
  type PlanOptions,
  type SubscribePlanOptions,
} from './plan-common.js';
import { consumerArguments, parseErlangInteger, processingError, queueArguments, trimSpaces } from './queue-args.js';
import { subscriptionQueueName } from './queue-name.js';
import type { Binding, Destination, PermissionCheck, QueueSpec, SendPlan, SubscribePlan, UnsubscribePlan } from './types.js';

export {
  checkDurableId,
  declareChecks,
  hasDurableHeader,
  parseAckMode,
  withoutDeclareChecks,
  type PlanOptions,
  type SubscribePlanOptions,
} from './plan-common.js';

export function planSend(dest: Destination, frame: Frame, opts: PlanOptions): Result<SendPlan> {
  // RabbitMQ builds the declare arguments for every destination, so a bad integer fails any SEND.
  const args = queueArguments(frame.headers);
  if (!args.ok) return args;
  switch (dest.kind) {
    case 'exchange': {
      const routingKey = dest.pattern ?? '';
      return ok({ exchange: dest.exchange, routingKey, declare: undefined, checks: publishChecks(dest.exchange, routingKey) });
    }
    case 'topic':
      return ok({
        exchange: opts.defaultTopicExchange,
        routingKey: dest.name,
        declare: undefined,
        checks: publishChecks(opts.defaultTopicExchange, dest.name),
      });
    case 'queue': {
      const spec = declareSpec(dest.name, queueParams(dest.kind, frame.headers), args.value);
      if (!spec.ok) return spec;
      return ok({
        exchange: '',
        routingKey: dest.name,
        declare: spec.value,
        checks: [...declareChecks(spec.value), defaultExchangeWrite()],
      });
    }
    case 'amq-queue':
    case 'reply-queue':
      return ok({ exchange: '', routingKey: dest.name, declare: undefined, checks: [defaultExchangeWrite()] });
    case 'temp-queue':
      return fail(invalidFor(dest, frame, 'SEND'));
  }
}

export function planSubscribe(dest: Destination, frame: Frame, opts: SubscribePlanOptions): Result<SubscribePlan> {
  const idCheck = checkDurableId(frame);
  if (!idCheck.ok) return idCheck;
  const prefetch = parsePrefetch(getHeader(frame, 'prefetch-count'));
  if (!prefetch.ok) return prefetch;
  const ack = parseAckMode(getHeader(frame, 'ack'));
  if (!ack.ok) return ack;
  const args = queueArguments(frame.headers);
  if (!args.ok) return args;

  let queue: QueueSpec;
  let declare = true;
  let bindings: Binding[] = [];
  let checks: PermissionCheck[];
  switch (dest.kind) {
    case 'exchange':
    case 'topic': {
      const exchange = dest.kind === 'topic' ? opts.defaultTopicExchange : dest.exchange;
      const routingKey = dest.kind === 'topic' ? dest.name : (dest.pattern ?? '');
      const spec = declareSpec('', queueParams(dest.kind, frame.headers), args.value);
      if (!spec.ok) return spec;
      const name = subscriptionQueue(routingKey, frame, opts);
      if (!name.ok) return name;
      queue = { ...spec.value, name: name.value };
      bindings = [{ exchange, routingKey }];
      checks = [
        // STOMP's own check before anything else, sent whatever the exchange's type (reference §5.3).
        ...(dest.kind === 'topic' ? [topicCheck(exchange, 'read', routingKey, true)] : []),
        ...declareChecks(queue),
        { resource: 'queue', name: queue.name, permission: 'read' }, // basic.consume
        { resource: 'queue', name: queue.name, permission: 'write' }, // queue.bind
        { resource: 'exchange', name: exchange, permission: 'read' },
        // Listed for every exchange; the broker only checks it on topic exchanges, so the
        // authorizer skips it for exchanges known to be of another type.
        topicCheck(exchange, 'read', routingKey),
      ];
      break;
    }
    case 'queue': {
      const spec = declareSpec(dest.name, queueParams(dest.kind, frame.headers), args.value);
      if (!spec.ok) return spec;
      queue = spec.value;
      checks = [...declareChecks(queue), { resource: 'queue', name: queue.name, permission: 'read' }];
      break;
    }
    case 'amq-queue':
    case 'reply-queue':
      // Consumed as it is: only the name matters, the properties are never declared.
      queue = { name: dest.name, durable: false, autoDelete: false, exclusive: false, arguments: args.value };
      declare = false;
      checks = [{ resource: 'queue', name: dest.name, permission: 'read' }];
      break;
    case 'temp-queue':
      return fail(invalidFor(dest, frame, 'SUBSCRIBE'));
  }

  const consumerArgs = consumerArguments(frame.headers);
  if (!consumerArgs.ok) return consumerArgs;
  const subscriptionQueueKind = dest.kind === 'topic' || dest.kind === 'exchange';
  return ok({
    queue,
    declare,
    bindings,
    // RabbitMQ deletes the just-declared subscription queue on a failed consume/bind, durable or not.
    deleteOnFailure: subscriptionQueueKind,
    durableSubscription: subscriptionQueueKind && hasDurableHeader(frame),
    ack: ack.value,
    prefetch: prefetch.value,
    consumerArgs: consumerArgs.value,
    checks,
  });
}

/**
 * `dest` is the destination the subscription was created with (RabbitMQ re-parses the stored
 * header); `id`, the durable flag and `x-queue-name` come from the UNSUBSCRIBE frame (reference §1.5).
 */
export function planUnsubscribe(dest: Destination | undefined, frame: Frame): Result<UnsubscribePlan> {
  const idCheck = checkDurableId(frame);
  if (!idCheck.ok) return idCheck;
  // Only /topic subscriptions are ever deleted; a durable /exchange subscription never is.
  if (dest?.kind !== 'topic' || !hasDurableHeader(frame)) return ok({ deleteQueue: undefined, checks: [] });
  const id = getHeader(frame, 'id');
  // `durable:True` without `id` passes checkDurableId and crashes RabbitMQ's handler.
  if (id === undefined) return fail(processingError());
  const queue = getHeader(frame, 'x-queue-name') ?? subscriptionQueueName(dest.name, id);
  return ok({ deleteQueue: queue, checks: [{ resource: 'queue', name: queue, permission: 'configure' }] });
}

/** `x-queue-name`, else the derived name: durable subscriptions hash their `id`, others random bytes. */
function subscriptionQueue(routingKey: string, frame: Frame, opts: SubscribePlanOptions): Result<string> {
  let id: string | Buffer = opts.randomId;
  if (hasDurableHeader(frame)) {
    const header = getHeader(frame, 'id');
    // RabbitMQ derives the id before it looks at x-queue-name, so this fails even with one.
    if (header === undefined) return fail(processingError());
    id = header;
  }
  return ok(getHeader(frame, 'x-queue-name') ?? subscriptionQueueName(routingKey, id));
}

/** `prefetch-count` (reference §2.6): an integer (spaces trimmed) ≥ 0, else a processing error. */
function parsePrefetch(raw: string | undefined): Result<number | undefined> {
  if (raw === undefined) return ok(undefined);
  const n = parseErlangInteger(trimSpaces(raw));
  if (n === undefined || n < 0) return fail(processingError());
  return ok(n);
}

/** basic.publish checks: write on the exchange, then topic write (reference §5.3). */
function publishChecks(exchange: string, routingKey: string): PermissionCheck[] {
  return [
    { resource: 'exchange', name: exchange, permission: 'write' },
    // Listed for every exchange; the broker only checks it on topic exchanges, so the authorizer
    // skips it for exchanges of other types.
    topicCheck(exchange, 'write', routingKey),
  ];
}

function topicCheck(exchange: string, permission: 'read' | 'write', routingKey: string, always = false): PermissionCheck {
  return always ? { resource: 'topic', name: exchange, permission, routingKey, always } : { resource: 'topic', name: exchange, permission, routingKey };
}

function defaultExchangeWrite(): PermissionCheck {
  return { resource: 'exchange', name: DEFAULT_EXCHANGE_RESOURCE, permission: 'write' };
}

/** "Invalid destination" for a destination the command cannot use, quoting the header as sent. */
function invalidFor(dest: Destination & { kind: 'temp-queue' }, frame: Frame, command: string) {
  const raw = getHeader(frame, 'destination');
  const shown = raw === undefined ? `/temp-queue/${dest.name}` : trimLeadingSpaces(raw);
  return stompError('INVALID_DESTINATION', `'${shown}' is not a valid destination for '${command}'\n`);
}
