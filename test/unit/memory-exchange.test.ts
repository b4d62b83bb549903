// Memory engine exchanges: how each type turns a routing key into queue names.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Exchange } from '../../broker/src/engine/memory/exchange.js';

function routed(exchange: Exchange, key: string): string[] {
  const into = new Set<string>();
  exchange.route(key, into);
  return [...into].sort();
}

describe('memory exchange', () => {
  it('direct: exact key equality only', () => {
    const ex = new Exchange('d', 'direct');
    ex.bind('q1', 'k');
    ex.bind('q2', 'k');
    ex.bind('q3', 'other');
    assert.deepEqual(routed(ex, 'k'), ['q1', 'q2']);
    assert.deepEqual(routed(ex, 'K'), []);
    assert.deepEqual(routed(ex, 'k.x'), []);
  });

  it('fanout: every bound queue whatever the key', () => {
    const ex = new Exchange('f', 'fanout');
    ex.bind('q1', 'a');
    ex.bind('q2', '');
    assert.deepEqual(routed(ex, 'zzz'), ['q1', 'q2']);
    assert.deepEqual(routed(ex, ''), ['q1', 'q2']);
  });

  it('topic: exact and wildcard bindings, one copy per queue however many bindings match', () => {
    const ex = new Exchange('t', 'topic');
    ex.bind('q1', 'a.b');
    ex.bind('q1', 'a.*');
    ex.bind('q1', '#');
    ex.bind('q2', 'a.#');
    ex.bind('q3', 'x.*');
    assert.deepEqual(routed(ex, 'a.b'), ['q1', 'q2']);
    assert.deepEqual(routed(ex, 'x.y'), ['q1', 'q3']);
    assert.deepEqual(routed(ex, 'x'), ['q1']);
  });

  it('binding twice is one binding; unbindQueue removes every binding of that queue only', () => {
    const ex = new Exchange('t', 'topic');
    ex.bind('q1', 'a.*');
    ex.bind('q1', 'a.*');
    ex.bind('q1', 'b');
    ex.bind('q2', 'a.*');
    assert.equal(ex.bindingCount(), 3);
    ex.unbindQueue('q1');
    assert.equal(ex.bindingCount(), 1);
    assert.deepEqual(routed(ex, 'a.z'), ['q2']);
    assert.deepEqual(routed(ex, 'b'), []);
    ex.unbindQueue('q2');
    assert.equal(ex.bindingCount(), 0);
  });
});
