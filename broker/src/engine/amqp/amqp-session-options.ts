// The shapes an AmqpSession is built from and reports through: what the engine hands it (channel,
// lease, the way to a new channel after a loss) and what it tells the engine (restore outcomes).

import type { ConfirmChannel } from 'amqplib';
import type { EngineSessionContext, EngineSessionEvents } from '../engine.js';
import type { Lease } from './connection-pool.js';

/** What a session does when its connection is lost: replay its subscriptions, or end with an ERROR. */
export type OnConnectionLoss = 'restore' | 'close';

export interface ChannelLease {
  readonly lease: Lease;
  readonly channel: ConfirmChannel;
}

/** Told when a restore starts and how it ended (summary log, metrics). */
export interface RestoreObserver {
  started(): void;
  ended(result: 'restored' | 'failed', ms: number): void;
}

export interface AmqpSessionOptions {
  readonly channel: ConfirmChannel;
  readonly lease: Lease;
  readonly ctx: EngineSessionContext;
  readonly events: EngineSessionEvents;
  readonly onEnd: () => void;
  readonly onConfirm?: ((seconds: number) => void) | undefined;
  readonly onConnectionLoss: OnConnectionLoss;
  readonly restoreTimeoutMs: number;
  readonly blockedPublishTimeoutMs: number;
  /** A new channel on a pooled connection once RabbitMQ answers again; rejects when it will not. */
  readonly reopen: (signal: AbortSignal) => Promise<ChannelLease>;
  readonly restoreObserver?: RestoreObserver | undefined;
}
