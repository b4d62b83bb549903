// DISCONNECT: the RECEIPT is written before the close so the client sees it (Web-STOMP 3.10.8 loses
// it, reference §4).

import { getHeader } from '../../stomp/frame.js';
import { RECEIPT_HANDLED, type CommandHandler } from '../context.js';

export const handleDisconnect: CommandHandler = async (ctx, frame) => {
  const receipt = getHeader(frame, 'receipt');
  if (receipt !== undefined) ctx.sendReceipt(receipt);
  ctx.disconnect();
  return RECEIPT_HANDLED;
};
