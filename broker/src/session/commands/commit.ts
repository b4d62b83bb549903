// COMMIT: replay the transaction's SEND, ACK and NACK frames in order (reference §2.10).
// Differs from RabbitMQ on purpose: the COMMIT's RECEIPT comes after every replayed SEND was
// confirmed by the broker (and after those SENDs' own receipts), so a COMMIT receipt means the whole
// transaction is in RabbitMQ; RabbitMQ sends it first.

import { stompError, type StompError } from '../../errors.js';
import { getHeader } from '../../stomp/frame.js';
import type { CommandHandler } from '../context.js';
import { settleFrame } from './acknowledge.js';
import { publishSend } from './send.js';

export const handleCommit: CommandHandler = async (ctx, frame) => {
  const tx = getHeader(frame, 'transaction');
  if (tx === undefined) return stompError('MISSING_TRANSACTION', '"COMMIT" must include a \'transaction\' header\n');
  const taken = ctx.transactions.take(tx);
  if (!taken.ok) return taken.error;
  const confirmations: Array<{ receipt: string | undefined; confirmed: Promise<StompError | undefined> }> = [];
  for (const held of taken.value) {
    if (ctx.closing) return undefined;
    if (held.command === 'SEND') {
      const published = await publishSend(ctx, held);
      if ('error' in published) return published.error;
      confirmations.push({ receipt: getHeader(held, 'receipt'), confirmed: published.confirmed });
    } else {
      const err = settleFrame(ctx, held, held.command === 'ACK' ? 'ack' : 'nack');
      if (err) return err;
    }
  }
  for (const c of confirmations) {
    const err = await c.confirmed;
    if (err) {
      ctx.fail(err, c.receipt);
      return undefined;
    }
    if (c.receipt !== undefined) ctx.sendReceipt(c.receipt);
  }
  return undefined;
};
