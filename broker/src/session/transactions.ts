// Client-side transactions (reference §2.10): SEND, ACK and NACK carrying `transaction` are held
// until COMMIT replays them in order; ABORT or the end of the session discards them. Bounded in
// open transactions and frames per transaction, which RabbitMQ 3.x is not.

import { fail, ok, stompError, type Result } from '../errors.js';
import type { Frame } from '../stomp/frame.js';

export class TransactionStore {
  readonly #open = new Map<string, Frame[]>();
  readonly #maxTransactions: number;
  readonly #maxFrames: number;

  constructor(maxTransactions: number, maxFrames: number) {
    this.#maxTransactions = maxTransactions;
    this.#maxFrames = maxFrames;
  }

  /** Re-BEGIN of an open id resets it, as RabbitMQ does. */
  begin(id: string): Result<void> {
    if (!this.#open.has(id) && this.#open.size >= this.#maxTransactions) {
      return fail(stompError('TRANSACTION_LIMIT', `At most ${this.#maxTransactions} transactions may be open at once`));
    }
    this.#open.set(id, []);
    return ok(undefined);
  }

  add(id: string, frame: Frame): Result<void> {
    const frames = this.#open.get(id);
    if (!frames) return fail(unknownTransaction(id));
    if (frames.length >= this.#maxFrames) {
      return fail(stompError('TRANSACTION_LIMIT', `Transaction "${id}" holds ${this.#maxFrames} frames, the limit`));
    }
    frames.push(frame);
    return ok(undefined);
  }

  /** Removes the transaction and returns its frames in order. */
  take(id: string): Result<Frame[]> {
    const frames = this.#open.get(id);
    if (!frames) return fail(unknownTransaction(id));
    this.#open.delete(id);
    return ok(frames);
  }

  clear(): void {
    this.#open.clear();
  }
}

export function unknownTransaction(id: string) {
  return stompError('BAD_TRANSACTION', `Invalid transaction identifier: "${id}"\n`);
}
