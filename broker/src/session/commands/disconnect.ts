// DISCONNECT: the RECEIPT is written before the close so the client sees it (Web-STOMP 3.10.8 loses
// it, reference §4), and only after the broker has stopped delivering to this session, so nothing
// published after it is lost to a closing consumer.

import { getHeader } from '../../stomp/frame.js';
import { RECEIPT_HANDLED, type CommandHandler } from '../context.js';

export const handleDisconnect: CommandHandler = async (ctx, frame) => {
  await ctx.disconnect(getHeader(frame, 'receipt'));
  return RECEIPT_HANDLED;
};
