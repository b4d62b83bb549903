// BEGIN: open a client-side transaction (reference §2.10).

import { stompError } from '../../errors.js';
import { getHeader } from '../../stomp/frame.js';
import type { CommandHandler } from '../context.js';

export const handleBegin: CommandHandler = async (ctx, frame) => {
  const tx = getHeader(frame, 'transaction');
  if (tx === undefined) return stompError('MISSING_TRANSACTION', '"BEGIN" must include a \'transaction\' header\n');
  const begun = ctx.transactions.begin(tx);
  return begun.ok ? undefined : begun.error;
};
