// Runs destination plans against the engine: the one place that fixes the order of broker
// operations, so the memory and AMQP engines do exactly the same thing (reference §1.2:
// declare → basic.qos → basic.consume → queue.bind; a failed /exchange or /topic subscription
// deletes the queue it just declared).

import { EngineError } from '../engine/engine.js';
import { isStompError, stompError, type StompError } from '../errors.js';
import type { QueueSpec, SubscribePlan } from '../destination/types.js';
import type { ConnectedContext } from './context.js';
import type { Subscription } from './subscriptions.js';

export function asStompError(e: unknown): StompError {
  if (e instanceof EngineError) return e.error;
  if (isStompError(e)) return e;
  const text = e instanceof Error ? e.message : String(e);
  return stompError('ENGINE_ERROR', text);
}

/** Declares a `/queue` destination's queue the first time this session names it. */
export async function ensureQueueDeclared(ctx: ConnectedContext, spec: QueueSpec): Promise<StompError | undefined> {
  if (ctx.declaredQueues.has(spec.name)) return undefined;
  try {
    await ctx.engine.declareQueue(spec);
    ctx.declaredQueues.add(spec.name);
    return undefined;
  } catch (e) {
    return asStompError(e);
  }
}

export async function runSubscribePlan(
  ctx: ConnectedContext,
  plan: SubscribePlan,
  sub: Subscription,
): Promise<StompError | undefined> {
  let declared: string | undefined;
  try {
    if (plan.declare) {
      if (plan.deleteOnFailure) {
        declared = await ctx.engine.declareQueue(plan.queue);
      } else {
        const err = await ensureQueueDeclared(ctx, plan.queue);
        if (err) return err;
      }
    } else {
      await ctx.engine.checkQueue(plan.queue.name);
    }
    // RabbitMQ applies prefetch-count with basic.qos on the shared channel: it also limits later
    // subscriptions of the session that carry no header (reference §2.6).
    if (plan.prefetch !== undefined) await ctx.engine.setPrefetch(plan.prefetch);
    const consumerTag = await ctx.engine.consume(
      declared ?? plan.queue.name,
      { noAck: plan.ack === 'auto', args: plan.consumerArgs },
      (d) => ctx.deliver(sub, d),
    );
    ctx.subscriptions.setConsumer(sub, consumerTag);
    for (const b of plan.bindings) await ctx.engine.bindQueue(declared ?? plan.queue.name, b.exchange, b.routingKey);
    return undefined;
  } catch (e) {
    const error = asStompError(e);
    if (declared !== undefined && !error.fatal) {
      await ctx.engine.deleteQueue(declared).catch(() => undefined);
    }
    return error;
  }
}
