// Client-side transactions (reference §2.10): SEND, ACK and NACK carrying `transaction` are held
// until COMMIT replays them in order; ABORT or the end of the session discards them. Bounded in
// open transactions, frames per transaction and bytes held by all of them (frames alone would let
// one session hold maxTransactions × maxTransactionFrames × maxFrameBytes), which RabbitMQ 3.x is
// not. A transaction that outgrows a bound is aborted whole, so that no COMMIT publishes part of it.

import { fail, ok, stompError, type Result } from '../errors.js';
import type { Frame } from '../stomp/frame.js';

/** Default of stomp.maxTransactionBytes: four largest frames (stomp.maxFrameBytes default 4 MiB). */
export const DEFAULT_MAX_TRANSACTION_BYTES = 16 * 1024 * 1024;

export class TransactionStore {
  readonly #open = new Map<string, { frames: Frame[]; bytes: number }>();
  readonly #maxTransactions: number;
  readonly #maxFrames: number;
  readonly #maxBytes: number;
  /** Held by all open transactions. */
  #bytes = 0;

  constructor(maxTransactions: number, maxFrames: number, maxBytes = DEFAULT_MAX_TRANSACTION_BYTES) {
    this.#maxTransactions = maxTransactions;
    this.#maxFrames = maxFrames;
    this.#maxBytes = maxBytes;
  }

  /** Re-BEGIN of an open id resets it, as RabbitMQ does. */
  begin(id: string): Result<void> {
    const open = this.#open.get(id);
    if (!open && this.#open.size >= this.#maxTransactions) {
      return fail(stompError('TRANSACTION_LIMIT', `At most ${this.#maxTransactions} transactions may be open at once`));
    }
    if (open) this.#bytes -= open.bytes;
    this.#open.set(id, { frames: [], bytes: 0 });
    return ok(undefined);
  }

  add(id: string, frame: Frame): Result<void> {
    const open = this.#open.get(id);
    if (!open) return fail(unknownTransaction(id));
    const size = frameSize(frame);
    const over =
      open.frames.length >= this.#maxFrames
        ? `exceeded ${this.#maxFrames} frames`
        : this.#bytes + size > this.#maxBytes
          ? `would make this session's transactions hold more than ${this.#maxBytes} bytes`
          : undefined;
    if (over !== undefined) {
      // Aborted, not just refused: a COMMIT after it must not publish the transaction without this frame.
      this.#drop(id);
      return fail(stompError('TRANSACTION_LIMIT', `Transaction "${id}" ${over} and was aborted; nothing of it will be published`));
    }
    open.frames.push(frame);
    open.bytes += size;
    this.#bytes += size;
    return ok(undefined);
  }

  /** Removes the transaction and returns its frames in order. */
  take(id: string): Result<Frame[]> {
    const open = this.#drop(id);
    if (!open) return fail(unknownTransaction(id));
    return ok(open.frames);
  }

  clear(): void {
    this.#open.clear();
    this.#bytes = 0;
  }

  /** Bytes held by all open transactions (bodies and header text). */
  get bytes(): number {
    return this.#bytes;
  }

  #drop(id: string): { frames: Frame[]; bytes: number } | undefined {
    const open = this.#open.get(id);
    if (!open) return undefined;
    this.#open.delete(id);
    this.#bytes -= open.bytes;
    return open;
  }
}

/** What a held frame costs, roughly: its body and header text. */
function frameSize(frame: Frame): number {
  let size = frame.body.length + frame.command.length;
  for (const [name, value] of frame.headers) size += name.length + value.length + 2;
  return size;
}

export function unknownTransaction(id: string) {
  return stompError('BAD_TRANSACTION', `Invalid transaction identifier: "${id}"\n`);
}
