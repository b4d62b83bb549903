// Topic matching: against what RabbitMQ 3.10.8 routed (a truth table captured from a real broker),
// named AMQP rules, and a property test against a plain backtracking reference.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  compileTopicPattern,
  matchTopicWords,
  splitTopicKey,
  topicMatches,
} from '../../broker/src/engine/memory/topic-matcher.js';

const KEYS = ['', 'a', 'b', 'a.b', 'a.b.c', 'a.a', 'a..b', '.', '..', 'a.', '.a', 'a.x.b', 'a.x.y.b', 'b.a', 'a.b.b', '#', '*', 'a#', 'a.*b', 'a.b.a', 'x.y.z'];

/** pattern → the KEYS it routed on RabbitMQ 3.10.8 (one queue per pattern on a topic exchange). */
const OBSERVED: Readonly<Record<string, readonly string[]>> = {
  '': [''],
  '#': KEYS,
  '*': ['a', 'b', '#', '*', 'a#'],
  'a': ['a'],
  'a.b': ['a.b'],
  'a.*': ['a.b', 'a.a', 'a.', 'a.*b'],
  '*.b': ['a.b'],
  'a.#': ['a', 'a.b', 'a.b.c', 'a.a', 'a..b', 'a.', 'a.x.b', 'a.x.y.b', 'a.b.b', 'a.*b', 'a.b.a'],
  '#.a': ['a', 'a.a', '.a', 'b.a', 'a.b.a'],
  '#.b': ['b', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.b.b'],
  'a.#.b': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.b.b'],
  '#.#': KEYS,
  '*.*': ['a.b', 'a.a', '.', 'a.', '.a', 'b.a', 'a.*b'],
  '*.#': ['a', 'b', 'a.b', 'a.b.c', 'a.a', 'a..b', '.', '..', 'a.', '.a', 'a.x.b', 'a.x.y.b', 'b.a', 'a.b.b', '#', '*', 'a#', 'a.*b', 'a.b.a', 'x.y.z'],
  '#.*': ['a', 'b', 'a.b', 'a.b.c', 'a.a', 'a..b', '.', '..', 'a.', '.a', 'a.x.b', 'a.x.y.b', 'b.a', 'a.b.b', '#', '*', 'a#', 'a.*b', 'a.b.a', 'x.y.z'],
  'a.*.#': ['a.b', 'a.b.c', 'a.a', 'a..b', 'a.', 'a.x.b', 'a.x.y.b', 'a.b.b', 'a.*b', 'a.b.a'],
  '#.a.#': ['a', 'a.b', 'a.b.c', 'a.a', 'a..b', 'a.', '.a', 'a.x.b', 'a.x.y.b', 'b.a', 'a.b.b', 'a.*b', 'a.b.a'],
  'a..b': ['a..b'],
  '.': ['.'],
  'a.': ['a.'],
  '.a': ['.a'],
  '*.': ['.', 'a.'],
  '.*': ['.', '.a'],
  '#.': ['.', '..', 'a.'],
  '.#': ['.', '..', '.a'],
  'a#': ['a#'],
  'a.*b': ['a.*b'],
  '**': [],
  'a.#.#.b': ['a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.b.b'],
  '#.#.b': ['b', 'a.b', 'a..b', 'a.x.b', 'a.x.y.b', 'a.b.b'],
  '*.#.*': ['a.b', 'a.b.c', 'a.a', 'a..b', '.', '..', 'a.', '.a', 'a.x.b', 'a.x.y.b', 'b.a', 'a.b.b', 'a.*b', 'a.b.a', 'x.y.z'],
  'a.*.*': ['a.b.c', 'a..b', 'a.x.b', 'a.b.b', 'a.b.a'],
};

/** The obvious recursive definition; exponential, fine for short inputs. */
function reference(pattern: readonly string[], key: readonly string[]): boolean {
  const [p, ...restP] = pattern;
  if (p === undefined) return key.length === 0;
  if (p === '#') return reference(restP, key) || (key.length > 0 && reference(pattern, key.slice(1)));
  const [k, ...restK] = key;
  if (k === undefined) return false;
  return (p === '*' || p === k) && reference(restP, restK);
}

describe('topic matcher', () => {
  it('routes exactly what RabbitMQ 3.10.8 routed for every pattern × key of the table', () => {
    for (const [pattern, routed] of Object.entries(OBSERVED)) {
      const got = KEYS.filter((key) => topicMatches(pattern, key));
      assert.deepEqual(got, [...routed], `pattern '${pattern}'`);
    }
  });

  it('`#` alone matches every key, including the empty one (zero words)', () => {
    for (const key of ['', 'a', 'a.b.c', '.', 'a..']) assert.equal(topicMatches('#', key), true, key);
  });

  it('`#.x` matches x preceded by zero or more words, nothing after it', () => {
    assert.equal(topicMatches('#.x', 'x'), true);
    assert.equal(topicMatches('#.x', 'a.b.x'), true);
    assert.equal(topicMatches('#.x', 'x.a'), false);
    assert.equal(topicMatches('#.x', 'ax'), false);
  });

  it('`a.#.b` matches a…b with zero or more words between', () => {
    assert.equal(topicMatches('a.#.b', 'a.b'), true);
    assert.equal(topicMatches('a.#.b', 'a.x.y.z.b'), true);
    assert.equal(topicMatches('a.#.b', 'a.b.c'), false);
    assert.equal(topicMatches('a.#.b', 'b.a.b'), false);
  });

  it('`*` is exactly one word, possibly empty, and never zero words', () => {
    assert.equal(topicMatches('*', 'a'), true);
    assert.equal(topicMatches('*', ''), false);
    assert.equal(topicMatches('*', 'a.b'), false);
    assert.equal(topicMatches('a.*.c', 'a..c'), true);
    assert.equal(topicMatches('*.*', '.'), true);
  });

  it('the empty routing key is zero words: only `` and `#`-only patterns match it', () => {
    assert.deepEqual(splitTopicKey(''), []);
    assert.equal(topicMatches('', ''), true);
    assert.equal(topicMatches('#.#', ''), true);
    assert.equal(topicMatches('#.*', ''), false);
    assert.equal(topicMatches('', '.'), false);
  });

  it('empty words are words: `a.` is two words and `..` three', () => {
    assert.deepEqual(splitTopicKey('a.'), ['a', '']);
    assert.deepEqual(splitTopicKey('..'), ['', '', '']);
    assert.equal(topicMatches('a.', 'a.'), true);
    assert.equal(topicMatches('a', 'a.'), false);
    assert.equal(topicMatches('#.', '..'), true);
  });

  it('wildcards only count as whole words: `a#`, `**`, `a.*b` are literal', () => {
    assert.equal(topicMatches('a#', 'a#'), true);
    assert.equal(topicMatches('a#', 'ab'), false);
    assert.equal(topicMatches('**', 'a'), false);
    assert.equal(topicMatches('a.*b', 'a.xb'), false);
    assert.equal(compileTopicPattern('a#.b').wildcard, false);
    assert.equal(compileTopicPattern('a.#').wildcard, true);
  });

  it('stays fast with many `#` (no exponential backtracking)', () => {
    const pattern = splitTopicKey(Array.from({ length: 40 }, () => '#').join('.') + '.z');
    const key = splitTopicKey(Array.from({ length: 200 }, () => 'a').join('.'));
    assert.equal(matchTopicWords(pattern, key), false);
  });

  it('agrees with the backtracking reference on random patterns and keys', () => {
    const word = fc.constantFrom('a', 'b', '', 'ab');
    const patternWord = fc.constantFrom('a', 'b', '', '*', '#');
    fc.assert(
      fc.property(fc.array(patternWord, { maxLength: 6 }), fc.array(word, { maxLength: 7 }), (p, k) => {
        // Rebuild through strings so splitting rules (empty key = zero words) apply as in routing.
        const pattern = splitTopicKey(p.join('.'));
        const key = splitTopicKey(k.join('.'));
        return matchTopicWords(pattern, key) === reference(pattern, key);
      }),
      { numRuns: 2000 },
    );
  });
});
