// NACK: return a delivery (requeue unless `requeue:false`, then dead-letter or drop), or hold it in a
// transaction. Accepted on every STOMP version, as RabbitMQ does.

import { getHeader } from '../../stomp/frame.js';
import type { CommandHandler } from '../context.js';
import { settleFrame } from './acknowledge.js';

export const handleNack: CommandHandler = async (ctx, frame) => {
  const tx = getHeader(frame, 'transaction');
  if (tx !== undefined) {
    const added = ctx.transactions.add(tx, frame);
    return added.ok ? undefined : added.error;
  }
  return settleFrame(ctx, frame, 'nack');
};
