// A counter for the per-frame hot path. prom-client's Counter.inc() hashes its label object on every
// call (about 3% of Thumper's CPU in the fan-out profile, three calls per MESSAGE); a Tally keeps
// plain numbers, one slot per label value, and hands the totals to a prom-client Counter only when
// /metrics is scraped. Same metric, same text, nothing counted twice.

import { Counter, type Registry } from 'prom-client';

/** One label value's running total; the hot path adds to `n` directly. */
export interface TallySlot {
  n: number;
}

export class Tally {
  readonly #slots = new Map<string, TallySlot>();

  /** `labelName` undefined: an unlabelled counter (use slot('')). */
  constructor(options: { name: string; help: string; labelName?: string; registers: Registry[] }) {
    const slots = this.#slots;
    const labelName = options.labelName;
    new Counter({
      name: options.name,
      help: options.help,
      labelNames: labelName === undefined ? [] : [labelName],
      registers: options.registers,
      collect() {
        this.reset();
        for (const [value, slot] of slots) {
          if (slot.n === 0) continue;
          if (labelName === undefined) this.inc(slot.n);
          else this.inc({ [labelName]: value }, slot.n);
        }
      },
    });
  }

  slot(labelValue: string): TallySlot {
    let slot = this.#slots.get(labelValue);
    if (slot === undefined) {
      slot = { n: 0 };
      this.#slots.set(labelValue, slot);
    }
    return slot;
  }

  add(labelValue: string, n = 1): void {
    this.slot(labelValue).n += n;
  }
}
