// ABORT: discard a transaction's held frames (reference §2.10).

import { stompError } from '../../errors.js';
import { getHeader } from '../../stomp/frame.js';
import type { CommandHandler } from '../context.js';

export const handleAbort: CommandHandler = async (ctx, frame) => {
  const tx = getHeader(frame, 'transaction');
  if (tx === undefined) return stompError('MISSING_TRANSACTION', '"ABORT" must include a \'transaction\' header\n');
  const taken = ctx.transactions.take(tx);
  return taken.ok ? undefined : taken.error;
};
