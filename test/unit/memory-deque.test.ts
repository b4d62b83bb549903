// The ring buffer under every memory-engine queue, checked against a plain array model.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Deque } from '../../broker/src/engine/memory/deque.js';

type Op = { op: 'push'; v: number } | { op: 'shift' } | { op: 'insert'; at: number; v: number };

describe('deque', () => {
  it('push/shift/peek keep FIFO order across growth and wrap-around', () => {
    const d = new Deque<number>();
    for (let i = 0; i < 10; i++) d.push(i);
    for (let i = 0; i < 7; i++) assert.equal(d.shift(), i);
    for (let i = 10; i < 40; i++) d.push(i);
    assert.equal(d.length, 33);
    assert.equal(d.peek(), 7);
    assert.deepEqual([...d], Array.from({ length: 33 }, (_, i) => i + 7));
    assert.deepEqual(d.drain().length, 33);
    assert.equal(d.length, 0);
    assert.equal(d.shift(), undefined);
  });

  it('insertAt puts the item at that index, near either end', () => {
    const d = new Deque<string>();
    for (const s of ['a', 'c', 'd', 'e']) d.push(s);
    d.insertAt(1, 'b');
    d.insertAt(5, 'f');
    d.insertAt(0, '_');
    assert.deepEqual([...d], ['_', 'a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('behaves like an array under random operations', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('push' as const), v: fc.integer() }),
      fc.record({ op: fc.constant('shift' as const) }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(40), v: fc.integer() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const d = new Deque<number>();
        const model: number[] = [];
        for (const o of ops) {
          if (o.op === 'push') {
            d.push(o.v);
            model.push(o.v);
          } else if (o.op === 'shift') {
            assert.equal(d.shift(), model.shift());
          } else {
            const at = Math.min(o.at, model.length);
            d.insertAt(at, o.v);
            model.splice(at, 0, o.v);
          }
          assert.equal(d.length, model.length);
        }
        assert.deepEqual([...d], model);
      }),
      { numRuns: 300 },
    );
  });
});
