// UNSUBSCRIBE (reference §1.5, §2.6): cancel the consumer; a durable /topic subscription is deleted
// only when the frame says `durable:true`. Unacked messages stay ackable until the session ends.

import { directSubscriptionQueueUse, planUnsubscribe } from '../../destination/index.js';
import { stompError } from '../../errors.js';
import { getHeader } from '../../stomp/frame.js';
import type { CommandHandler } from '../context.js';
import { asStompError } from '../plan-executor.js';
import { subscriptionTag } from '../subscriptions.js';

export const handleUnsubscribe: CommandHandler = async (ctx, frame) => {
  const id = getHeader(frame, 'id');
  const destination = getHeader(frame, 'destination');
  if (id === undefined && destination === undefined) {
    return stompError('MISSING_HEADER', "UNSUBSCRIBE must include a 'destination' or 'id' header", { message: 'Missing destination or id' });
  }
  const sub = ctx.subscriptions.get(subscriptionTag(id, destination ?? ''));
  if (!sub) {
    const which = id !== undefined ? `id='${id}'` : `destination='${destination}'`;
    return stompError('NO_SUBSCRIPTION', `UNSUBSCRIBE must refer to an existing subscription.\nSubscription to "${which}" not found.\n`);
  }
  if (sub.internal) {
    return stompError('INVALID_HEADER', `UNSUBSCRIBE 'id' may not start with /temp-queue/\n`, { message: 'Invalid id' });
  }
  const direct = directSubscriptionQueueUse(sub.destination, frame, ctx.principal.vhost);
  if (direct) return direct;
  const plan = planUnsubscribe(sub.destination, frame);
  if (!plan.ok) return plan.error;
  const refused = await ctx.authorize(plan.value.checks);
  if (refused) return refused;
  ctx.subscriptions.remove(sub);
  try {
    if (sub.consumerTag !== undefined) await ctx.engine.cancel(sub.consumerTag);
    if (plan.value.deleteQueue !== undefined) await ctx.engine.deleteQueue(plan.value.deleteQueue);
  } catch (e) {
    return asStompError(e);
  }
  return undefined;
};
