// SUBSCRIBE (reference §1.2–§1.5, §2.6): plan the queue and bindings, authorize, then run the plan.

import { directSubscriptionQueueUse, parseDestination, planSubscribe, withoutDeclareChecks } from '../../destination/index.js';
import { shareableBinding } from '../../destination/shared-binding.js';
import type { SubscribePlan } from '../../destination/types.js';
import { stompError, type StompError } from '../../errors.js';
import { getHeader, type Frame } from '../../stomp/frame.js';
import type { CommandHandler, ConnectedContext } from '../context.js';
import { asStompError, runSubscribePlan } from '../plan-executor.js';
import { subscriptionTag, type Subscription } from '../subscriptions.js';
import { pooledRandomBytes } from '../../random-pool.js';

/**
 * A subscription served from the node's shared queue (same checks, same deliveries, no queue of its
 * own). undefined: not shareable here, run the ordinary plan; 'done' or an error otherwise.
 */
async function runShared(ctx: ConnectedContext, plan: SubscribePlan, frame: Frame, sub: Subscription): Promise<StompError | 'done' | undefined> {
  const binding = ctx.engine.consumeShared === undefined ? undefined : shareableBinding(plan, frame);
  if (binding === undefined || ctx.engine.consumeShared === undefined) return undefined;
  try {
    // basic.qos on the session's channel still limits its later subscriptions (reference §2.6).
    if (plan.prefetch !== undefined) await ctx.engine.setPrefetch(plan.prefetch);
    const consumerTag = await ctx.engine.consumeShared(binding, (d) => ctx.deliver(sub, d));
    if (consumerTag === undefined) return undefined;
    ctx.subscriptions.setConsumer(sub, consumerTag);
    return 'done';
  } catch (e) {
    return asStompError(e);
  }
}

export const handleSubscribe: CommandHandler = async (ctx, frame) => {
  const id = getHeader(frame, 'id');
  // STOMP 1.1/1.2 §SUBSCRIBE: `id` is required; 1.0 clients may omit it.
  if (id === undefined && ctx.version !== '1.0') {
    return stompError('MISSING_HEADER', `Header 'id' is required on SUBSCRIBE (STOMP ${ctx.version})`);
  }
  const destinationHeader = getHeader(frame, 'destination');
  const dest = parseDestination(destinationHeader, ctx.version, 'SUBSCRIBE');
  if (!dest.ok) return dest.error;
  const direct = directSubscriptionQueueUse(dest.value, frame, ctx.principal.vhost);
  if (direct) return direct;
  const tag = subscriptionTag(id, destinationHeader ?? '');
  if (ctx.subscriptions.has(tag)) {
    return stompError('DUPLICATE_SUBSCRIPTION', `A subscription identified by '${tag}' already exists.`);
  }
  if (ctx.subscriptions.size >= ctx.options.maxSubscriptions) {
    return stompError('TOO_MANY_SUBSCRIPTIONS', `At most ${ctx.options.maxSubscriptions} subscriptions per connection`);
  }
  const plan = planSubscribe(dest.value, frame, {
    defaultTopicExchange: ctx.options.defaultTopicExchange,
    randomId: pooledRandomBytes(16),
  });
  if (!plan.ok) return plan.error;
  const { queue, declare, deleteOnFailure } = plan.value;
  // A `/queue` this session already declared is not declared again (reference §1.2), nor checked.
  const checks =
    declare && !deleteOnFailure && ctx.declaredQueues.has(queue.name)
      ? withoutDeclareChecks(plan.value.checks, queue)
      : plan.value.checks;
  const refused = await ctx.authorize(checks);
  if (refused) return refused;

  const sub: Subscription = {
    id,
    tag,
    destinationHeader: destinationHeader ?? '',
    destination: dest.value,
    ack: plan.value.ack,
    queue: plan.value.queue.name,
    consumerTag: undefined,
    internal: false,
    pending: [],
    active: true,
  };
  // Registered before consuming: a /queue subscription can receive messages before consume resolves.
  ctx.subscriptions.add(sub);
  const failed = (await runShared(ctx, plan.value, frame, sub)) ?? (await runSubscribePlan(ctx, plan.value, sub));
  if (failed !== undefined && failed !== 'done') {
    ctx.subscriptions.remove(sub);
    return failed;
  }
  return undefined;
};
