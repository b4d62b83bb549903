// ACK: settle a delivery (cumulatively in `client` mode), or hold it in a transaction.

import { getHeader } from '../../stomp/frame.js';
import type { CommandHandler } from '../context.js';
import { settleFrame } from './acknowledge.js';

export const handleAck: CommandHandler = async (ctx, frame) => {
  const tx = getHeader(frame, 'transaction');
  if (tx !== undefined) {
    const added = ctx.transactions.add(tx, frame);
    return added.ok ? undefined : added.error;
  }
  return settleFrame(ctx, frame, 'ack');
};
