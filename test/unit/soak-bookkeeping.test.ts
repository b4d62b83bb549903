// The soak run's verdict rests on its pure bookkeeping: sequence gaps, the receipt/consume ledger
// and the least-squares slope. A wrong one would call a leaking or lossy run flat.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SeqCheck, WorkLedger } from '../bench/soak-ledger.js';
import { slope } from '../bench/soak-report.js';

describe('SeqCheck', () => {
  it('counts gaps, the missing tail, and reordering', () => {
    const seq = new SeqCheck(true);
    for (const n of [1, 2, 4, 5, 3, 7]) seq.see(n);
    assert.equal(seq.gaps, 2); // 3 (seen late, counted as disorder) and 6
    assert.equal(seq.disorder, 1);
    assert.equal(seq.lost(9), 4); // gaps 2 + 8 and 9 never came
  });

  it('a late subscriber owes nothing before its first message', () => {
    const seq = new SeqCheck(false);
    seq.see(40);
    seq.see(41);
    assert.equal(seq.lost(41), 0);
  });
});

describe('WorkLedger', () => {
  it('matches receipts and consumption in either order; what was receipted and never consumed is lost', () => {
    const ledger = new WorkLedger();
    const a = ledger.send();
    const b = ledger.send();
    const c = ledger.send();
    const d = ledger.send();
    ledger.consumed(a);
    ledger.receipted(a); // consumed before its receipt arrived
    ledger.receipted(b);
    ledger.consumed(b);
    ledger.receipted(c); // never consumed
    ledger.consumed(b); // a duplicate delivery
    void d; // never answered
    const t = ledger.totals();
    assert.equal(t.sent, 4);
    assert.equal(t.receiptedNotConsumed, 1);
    assert.equal(t.unanswered, 1);
    assert.equal(t.duplicates, 1);
  });
});

describe('slope', () => {
  it('is the least-squares slope, undefined without enough spread', () => {
    assert.equal(slope([[0, 1], [1, 3], [2, 5]]), 2);
    assert.equal(slope([[0, 5], [10, 5], [20, 5]]), 0);
    assert.equal(slope([[0, 1], [1, 2]]), undefined);
    assert.equal(slope([[3, 1], [3, 2], [3, 4]]), undefined);
  });
});
