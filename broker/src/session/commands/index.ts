// The dispatch table: one handler per STOMP command a connected client may send.
// CONNECT/STOMP are handled by the session itself (they change its state).

import type { CommandHandler } from '../context.js';
import { handleAbort } from './abort.js';
import { handleAck } from './ack.js';
import { handleBegin } from './begin.js';
import { handleCommit } from './commit.js';
import { handleDisconnect } from './disconnect.js';
import { handleNack } from './nack.js';
import { handleSend } from './send.js';
import { handleSubscribe } from './subscribe.js';
import { handleUnsubscribe } from './unsubscribe.js';

export const COMMAND_HANDLERS: Readonly<Record<string, CommandHandler>> = {
  SEND: handleSend,
  SUBSCRIBE: handleSubscribe,
  UNSUBSCRIBE: handleUnsubscribe,
  ACK: handleAck,
  NACK: handleNack,
  BEGIN: handleBegin,
  COMMIT: handleCommit,
  ABORT: handleAbort,
  DISCONNECT: handleDisconnect,
};
