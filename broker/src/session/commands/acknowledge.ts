// ACK and NACK (reference §2.8). The pending-delivery index refuses what the broker would refuse
// (an unknown or already-settled delivery tag) before it reaches the engine.

import { stompError, type StompError } from '../../errors.js';
import { getHeader, type Frame } from '../../stomp/frame.js';
import type { ConnectedContext } from '../context.js';
import { parseMessageId } from '../subscriptions.js';

export type Settlement = 'ack' | 'nack';

export function settleFrame(ctx: ConnectedContext, frame: Frame, kind: Settlement): StompError | undefined {
  // STOMP 1.2 §ACK: `id` (the MESSAGE's `ack` header); 1.0/1.1: `message-id`.
  const keyName = ctx.version === '1.2' ? 'id' : 'message-id';
  const raw = getHeader(frame, keyName);
  if (raw === undefined) {
    return stompError('MISSING_HEADER', `"${frame.command}" must include the "${keyName}" header\n`);
  }
  const parsed = parseMessageId(raw);
  if (!parsed) return stompError('INVALID_HEADER', `"${frame.command}" must include a valid "${keyName}" header\n`);
  const owner = ctx.subscriptions.pendingOwner(parsed.deliveryTag);
  if (!owner || owner.tag !== parsed.tag) {
    if (!owner && !ctx.subscriptions.has(parsed.tag)) {
      return stompError('SUBSCRIPTION_NOT_FOUND', `Message with id "${raw}" has no subscription`);
    }
    return stompError('UNKNOWN_MESSAGE_ID', `PRECONDITION_FAILED - unknown delivery tag ${parsed.deliveryTag}`);
  }
  const requeue = kind === 'nack' && getHeader(frame, 'requeue') !== 'false';
  const tags = ctx.subscriptions.settle(owner, parsed.deliveryTag);
  const last = tags[tags.length - 1];
  if (last === undefined) return undefined;
  // One `multiple` settlement is equivalent only if no other subscription holds a lower tag.
  if (tags.length === 1 || !ctx.subscriptions.onlyOwnerBelow(owner, last)) {
    for (const t of tags) settleOne(ctx, kind, t, false, requeue);
  } else {
    settleOne(ctx, kind, last, true, requeue);
  }
  return undefined;
}

function settleOne(ctx: ConnectedContext, kind: Settlement, tag: number, multiple: boolean, requeue: boolean): void {
  if (kind === 'ack') ctx.engine.ack(tag, multiple);
  else ctx.engine.nack(tag, multiple, requeue);
}
