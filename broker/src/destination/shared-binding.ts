// Which subscriptions may share one node-wide RabbitMQ queue instead of each declaring its own
// (DESIGN.md "Resources per client"). Sharing must deliver exactly what the per-subscription queue
// would have, so only the plain case qualifies: a non-durable `/exchange` or `/topic` subscription
// with automatic acks (nothing to redeliver, no per-queue state), one binding, no queue or consumer
// arguments (a TTL or length limit is per queue), no client-chosen queue name (the client may look
// at it), on an exchange whose type is known, because the node then routes by that type's rule.

import { getHeader, type Frame } from '../stomp/frame.js';
import type { Binding, SubscribePlan } from './types.js';

export type SharedExchangeType = 'topic' | 'direct' | 'fanout';

export interface SharedBinding {
  readonly exchange: string;
  readonly type: SharedExchangeType;
  readonly bindingKey: string;
}

const SHAREABLE_TYPES: ReadonlySet<string> = new Set<SharedExchangeType>(['topic', 'direct', 'fanout']);

/** The one binding of a subscription that may be served from a shared queue, or undefined. */
export function shareableBinding(plan: SubscribePlan, frame: Frame): Binding | undefined {
  if (!plan.declare || !plan.deleteOnFailure || plan.durableSubscription || plan.queue.durable || plan.ack !== 'auto') return undefined;
  if (plan.bindings.length !== 1 || getHeader(frame, 'x-queue-name') !== undefined) return undefined;
  if (Object.keys(plan.queue.arguments).length > 0 || Object.keys(plan.consumerArgs).length > 0) return undefined;
  return plan.bindings[0];
}

/** The node can route for these exchange types only (headers exchanges match on arguments). */
export function sharedBindingOf(binding: Binding, exchangeType: string | undefined): SharedBinding | undefined {
  if (exchangeType === undefined || !SHAREABLE_TYPES.has(exchangeType)) return undefined;
  return { exchange: binding.exchange, type: exchangeType as SharedExchangeType, bindingKey: binding.routingKey };
}
