// `reply-to:/temp-queue/<n>` (reference §1.6): the first use per name creates a server-named,
// exclusive, auto-delete queue and an auto-ack internal subscription `/temp-queue/<n>`; replies
// arrive as MESSAGE frames with `subscription:/temp-queue/<n>`.

import type { Result } from '../../errors.js';
import { fail, ok } from '../../errors.js';
import type { ConnectedContext } from '../context.js';
import { asStompError } from '../plan-executor.js';
import { subscriptionTag, type Subscription } from '../subscriptions.js';

export async function ensureTempQueue(ctx: ConnectedContext, replyTo: string): Promise<Result<string>> {
  const known = ctx.tempQueues.get(replyTo);
  if (known !== undefined) return ok(known);
  try {
    const queue = await ctx.engine.declareQueue({
      name: '',
      durable: false,
      autoDelete: true,
      exclusive: true,
      arguments: {},
    });
    const sub: Subscription = {
      id: replyTo,
      tag: subscriptionTag(replyTo, replyTo),
      destinationHeader: replyTo,
      destination: { kind: 'temp-queue', name: replyTo.slice('/temp-queue/'.length) },
      ack: 'auto',
      queue,
      consumerTag: undefined,
      internal: true,
      pending: [],
      active: true,
    };
    ctx.subscriptions.add(sub);
    const consumerTag = await ctx.engine.consume(queue, { noAck: true, args: {} }, (d) => ctx.deliver(sub, d));
    ctx.subscriptions.setConsumer(sub, consumerTag);
    ctx.tempQueues.set(replyTo, queue);
    return ok(queue);
  } catch (e) {
    return fail(asStompError(e));
  }
}
