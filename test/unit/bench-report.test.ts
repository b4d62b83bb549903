// The bench's table (test/bench/report.ts): medians per target, ratios to Web-STOMP, and the
// target metrics' ratio round by round, paired by round so one slow round shows as itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatScenario, type RunRecord } from '../bench/report.js';

const run = (target: RunRecord['target'], round: number, rate: number, error?: string): RunRecord => ({
  scenario: 'reconnect',
  target,
  round,
  metrics: { connect_subscribe_per_s: rate },
  notes: [],
  ...(error === undefined ? {} : { error }),
});

test('the table shows medians and their ratio, and each round’s ratio beneath it', () => {
  const records = [run('thumper-amqp', 1, 1500), run('web-stomp', 1, 500), run('thumper-amqp', 2, 1200), run('web-stomp', 2, 400), run('thumper-amqp', 3, 1300), run('web-stomp', 3, 520)];
  const table = formatScenario('reconnect', 'reconnect', records, ['thumper-amqp', 'web-stomp']);
  assert.match(table, /\| connect\+subscribe\/s ↑ \|\s+1,300 \|\s+500 \|\s+2\.60× \|/);
  assert.match(table, /^- per round, amqp \/ web-stomp, connect\+subscribe\/s: 3\.00×, 3\.00×, 2\.50×$/m);
});

test('a round that failed on either side is left out of the per-round ratios', () => {
  const records = [run('thumper-amqp', 1, 1500), run('web-stomp', 1, 500), run('thumper-amqp', 2, 1200), run('web-stomp', 2, 0, 'boom'), run('thumper-amqp', 3, 1300), run('web-stomp', 3, 520)];
  const table = formatScenario('reconnect', 'reconnect', records, ['thumper-amqp', 'web-stomp']);
  assert.match(table, /^- per round, amqp \/ web-stomp, connect\+subscribe\/s: 3\.00×, 2\.50×$/m);
  assert.match(table, /^- web-stomp round 2 failed: boom$/m);
});

test('one round, or no Web-STOMP column, prints no per-round line', () => {
  const one = formatScenario('reconnect', 'reconnect', [run('thumper-amqp', 1, 1500), run('web-stomp', 1, 500)], ['thumper-amqp', 'web-stomp']);
  assert.doesNotMatch(one, /per round/);
  const alone = formatScenario('reconnect', 'reconnect', [run('thumper-amqp', 1, 1500), run('thumper-amqp', 2, 1400)], ['thumper-amqp']);
  assert.doesNotMatch(alone, /per round/);
});
