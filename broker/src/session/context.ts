// What a command handler may use: the connected session's state and its ways to answer.
// Handlers get this narrow view instead of the Session class so each stays a small, testable file.

import type { Logger } from 'pino';
import type { Principal } from '../auth/authorizer.js';
import type { PermissionCheck } from '../destination/types.js';
import type { EngineSession } from '../engine/engine.js';
import type { StompError } from '../errors.js';
import type { Frame, StompVersion } from '../stomp/frame.js';
import type { SessionOptions } from './options.js';
import type { Subscription, SubscriptionRegistry } from './subscriptions.js';
import type { TransactionStore } from './transactions.js';
import type { Delivery } from '../engine/message.js';

export interface ConnectedContext {
  readonly sessionId: string;
  readonly version: StompVersion;
  readonly principal: Principal;
  readonly options: SessionOptions;
  readonly log: Logger;
  readonly engine: EngineSession;
  readonly subscriptions: SubscriptionRegistry;
  readonly transactions: TransactionStore;
  /** `/queue/<n>` is declared once per session (reference §1.2). */
  readonly declaredQueues: Set<string>;
  /** `/temp-queue/<n>` → the server-named queue created for it (reference §1.6). */
  readonly tempQueues: Map<string, string>;
  /** True once the session is closing: handlers stop doing work. */
  readonly closing: boolean;
  sendFrame(frame: Frame): void;
  sendReceipt(receiptId: string): void;
  /** Sends an ERROR (with receipt-id when given) and closes the session if the error is fatal. */
  fail(error: StompError, receiptId?: string): void;
  /** Runs the plan's permission checks in order; the first refusal is returned. */
  authorize(checks: readonly PermissionCheck[]): Promise<StompError | undefined>;
  /** Turns an engine delivery into a MESSAGE for the subscription. */
  deliver(sub: Subscription, delivery: Delivery): void;
  /** A broker confirm still to come: a graceful shutdown waits for it, so its RECEIPT goes out. */
  trackConfirm(confirmed: Promise<unknown>): void;
  /** Ends the session after a DISCONNECT; with `receiptId`, the RECEIPT once the broker stopped delivering. */
  disconnect(receiptId?: string): Promise<void>;
}

/** A handler that sends its own RECEIPT (SEND waits for the broker's confirm) returns this. */
export const RECEIPT_HANDLED = Symbol('receipt-handled');

export type CommandResult = undefined | StompError | typeof RECEIPT_HANDLED;

export type CommandHandler = (ctx: ConnectedContext, frame: Frame) => Promise<CommandResult>;
