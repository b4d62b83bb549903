// SEND (reference §1.2, §1.6, §2.9, §3): publish through the engine; a RECEIPT only once the broker
// confirmed the message, so a receipt means the message is in RabbitMQ.

import { directSubscriptionQueueUse, parseDestination, planSend, replyToTempQueue, withoutDeclareChecks } from '../../destination/index.js';
import { stompError, type StompError } from '../../errors.js';
import { stompToAmqpProperties } from '../../mapping/stomp-to-amqp.js';
import { getHeader, hasHeader, type Frame } from '../../stomp/frame.js';
import { RECEIPT_HANDLED, type CommandHandler, type ConnectedContext } from '../context.js';
import { asStompError, ensureQueueDeclared } from '../plan-executor.js';
import { ensureTempQueue } from './temp-queue.js';

export const handleSend: CommandHandler = async (ctx, frame) => {
  const tx = getHeader(frame, 'transaction');
  if (tx !== undefined) {
    const added = ctx.transactions.add(tx, frame);
    if (!added.ok) return added.error;
    // The receipt of a transactional SEND follows its COMMIT, once the broker confirmed it.
    return hasHeader(frame, 'receipt') ? RECEIPT_HANDLED : undefined;
  }
  const published = await publishSend(ctx, frame);
  if ('error' in published) return published.error;
  const receipt = getHeader(frame, 'receipt');
  if (receipt === undefined) return undefined;
  void published.confirmed.then((err) => {
    if (err) ctx.fail(err, receipt);
    else ctx.sendReceipt(receipt);
  });
  return RECEIPT_HANDLED;
};

/**
 * Validates, authorizes and hands the message to the engine. Resolves once the publish is issued
 * (frames keep flowing while the broker confirms); `confirmed` settles with the broker's answer.
 */
export async function publishSend(
  ctx: ConnectedContext,
  frame: Frame,
): Promise<{ error: StompError } | { confirmed: Promise<StompError | undefined> }> {
  if (hasHeader(frame, 'message-id')) {
    return { error: stompError('INVALID_HEADER', `'message-id' is not allowed on 'SEND'.\n`) };
  }
  const dest = parseDestination(getHeader(frame, 'destination'), ctx.version, 'SEND');
  if (!dest.ok) return { error: dest.error };
  const direct = directSubscriptionQueueUse(dest.value, frame, ctx.principal.vhost);
  if (direct) return { error: direct };
  const plan = planSend(dest.value, frame, { defaultTopicExchange: ctx.options.defaultTopicExchange });
  if (!plan.ok) return { error: plan.error };
  const props = stompToAmqpProperties(frame.headers);
  if (!props.ok) return { error: props.error };
  const properties = props.value;

  const userIdError = checkUserId(ctx, properties.userId);
  if (userIdError) return { error: userIdError };

  const replyTo = getHeader(frame, 'reply-to');
  const tempName = replyTo === undefined ? undefined : replyToTempQueue(replyTo);
  if (tempName && !tempName.ok) return { error: tempName.error };

  const { declare } = plan.value;
  // A queue this session already declared is not declared again, so nothing of the declare is checked.
  const checks = declare && ctx.declaredQueues.has(declare.name) ? withoutDeclareChecks(plan.value.checks, declare) : plan.value.checks;
  const refused = await ctx.authorize(checks);
  if (refused) return { error: refused };
  if (declare) {
    const err = await ensureQueueDeclared(ctx, declare);
    if (err) return { error: err };
  }
  if (replyTo !== undefined && tempName?.ok && tempName.value !== undefined) {
    const temp = await ensureTempQueue(ctx, replyTo);
    if (!temp.ok) return { error: temp.error };
    properties.replyTo = temp.value;
  }
  const confirm = hasHeader(frame, 'receipt');
  const confirmed = ctx.engine
    .publish(plan.value.exchange, plan.value.routingKey, { body: frame.body, properties }, confirm)
    .then(
      () => undefined,
      (e: unknown) => asStompError(e),
    );
  ctx.trackConfirm(confirmed);
  return { confirmed };
}

/** AMQP's user-id rule (reference §3): only the authenticated user, unless it may impersonate. */
function checkUserId(ctx: ConnectedContext, userId: string | undefined): StompError | undefined {
  if (userId === undefined || userId === ctx.principal.username) return undefined;
  if (ctx.principal.tags.includes('impersonator')) return undefined;
  return stompError(
    'PRECONDITION_FAILED',
    `PRECONDITION_FAILED - user_id property set to '${userId}' but authenticated user was '${ctx.principal.username}'`,
  );
}
