// The soak's bookkeeping, pure: per-stream sequence checks (a gap is a lost message, a step back is a
// duplicate or reordering) and the work-queue ledger that matches SEND receipts with what the
// client-ack consumer got, whichever of the two arrives first.

/** One subscription's view of one publisher stream whose sequence numbers start at 1. */
export class SeqCheck {
  /** The next sequence number expected; undefined until the first message (a late subscriber). */
  #next: number | undefined;
  gaps = 0;
  disorder = 0;
  received = 0;

  /** `fromStart`: the subscription existed before the first publish, so seq 1 is owed. */
  constructor(fromStart: boolean) {
    this.#next = fromStart ? 1 : undefined;
  }

  /** Returns the messages this one proves missing (0 when in order). */
  see(seq: number): number {
    this.received++;
    const next = this.#next ?? seq;
    if (seq < next) {
      this.disorder++;
      return 0;
    }
    this.#next = seq + 1;
    const missing = seq - next;
    this.gaps += missing;
    return missing;
  }

  /** Missing overall once `published` messages were sent: gaps plus the tail never received. */
  lost(published: number): number {
    const seen = (this.#next ?? 1) - 1;
    return this.gaps + Math.max(0, published - seen);
  }
}

type WorkState = 'sent' | 'receipted' | 'abandoned' | 'consumed';

export interface WorkTotals {
  readonly sent: number;
  readonly receipted: number;
  /** The sender was closed before its RECEIPT (churn): the message may or may not exist. */
  readonly abandoned: number;
  readonly consumed: number;
  /** Consumed although the SEND never got its receipt: allowed. */
  readonly unreceiptedConsumed: number;
  /** Consumed again (redelivery): allowed, counted. */
  readonly duplicates: number;
  /** Receipted and not (yet) consumed: must end at 0. */
  readonly receiptedNotConsumed: number;
  /** Neither receipt nor failure yet. */
  readonly unanswered: number;
}

export class WorkLedger {
  readonly #open = new Map<number, WorkState>();
  #nextId = 1;
  #sent = 0;
  #receipted = 0;
  #abandoned = 0;
  #consumed = 0;
  #unreceiptedConsumed = 0;
  #duplicates = 0;

  send(): number {
    const id = this.#nextId++;
    this.#sent++;
    this.#open.set(id, 'sent');
    return id;
  }

  receipted(id: number): void {
    this.#receipted++;
    if (this.#open.get(id) === 'consumed') this.#open.delete(id);
    else this.#open.set(id, 'receipted');
  }

  abandoned(id: number): void {
    this.#abandoned++;
    if (this.#open.get(id) === 'consumed') {
      this.#open.delete(id);
      this.#unreceiptedConsumed++;
    } else this.#open.set(id, 'abandoned');
  }

  consumed(id: number): void {
    const state = this.#open.get(id);
    if (state === undefined || state === 'consumed') {
      this.#duplicates++;
      return;
    }
    this.#consumed++;
    if (state === 'sent') this.#open.set(id, 'consumed');
    else {
      if (state === 'abandoned') this.#unreceiptedConsumed++;
      this.#open.delete(id);
    }
  }

  totals(): WorkTotals {
    let receiptedNotConsumed = 0;
    let unanswered = 0;
    for (const state of this.#open.values()) {
      if (state === 'receipted') receiptedNotConsumed++;
      else if (state === 'sent') unanswered++;
    }
    return {
      sent: this.#sent,
      receipted: this.#receipted,
      abandoned: this.#abandoned,
      consumed: this.#consumed,
      unreceiptedConsumed: this.#unreceiptedConsumed,
      duplicates: this.#duplicates,
      receiptedNotConsumed,
      unanswered,
    };
  }
}
