// Publishing while RabbitMQ blocks the connection (connection.blocked: a memory or disk alarm).
// RabbitMQ stops reading a blocked connection, so a publish written then only sits in buffers and
// its confirm never comes; instead a publish waits for connection.unblocked, and both that wait and
// a confirm outstanding while the connection is blocked are bounded by amqp.blockedPublishTimeoutMs,
// after which the SEND gets a clear ERROR rather than memory growing until the alarm clears.

import { EngineError } from '../engine.js';
import { publishBlocked } from './amqp-errors.js';

/** The part of a pool lease these need. */
export interface BlockState {
  blockedReason(): string | undefined;
  onBlockedChange(listener: () => void): () => void;
}

/** Resolves at once when not blocked, else on connection.unblocked; rejects after `ms` still blocked. */
export function whenUnblocked(lease: BlockState, ms: number): Promise<void> {
  const reason = lease.blockedReason();
  if (reason === undefined) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new EngineError(publishBlocked(lease.blockedReason() ?? reason)));
    }, ms);
    const off = lease.onBlockedChange(() => {
      if (lease.blockedReason() !== undefined) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/**
 * `work` settles as it does, unless the connection stays blocked for `ms` (counted from when it
 * became blocked, restarted by every unblock) first: then it rejects with the blocked error.
 */
export function boundWhileBlocked<T>(lease: BlockState, ms: number, work: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (): void => {
      settled = true;
      off();
      if (timer !== undefined) clearTimeout(timer);
    };
    const arm = (): void => {
      if (settled) return;
      const reason = lease.blockedReason();
      if (reason === undefined) {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
      } else {
        timer ??= setTimeout(() => {
          if (settled) return;
          finish();
          reject(new EngineError(publishBlocked(lease.blockedReason() ?? reason)));
        }, ms);
      }
    };
    const off = lease.onBlockedChange(arm);
    arm();
    work.then(
      (value) => {
        if (settled) return;
        finish();
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        finish();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
