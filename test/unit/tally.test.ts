// Tally: plain-number counting that /metrics shows as an ordinary Prometheus counter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Tally } from '../../broker/src/server/tally.js';

test('labelled and unlabelled tallies read as counters at scrape time, totals only growing', async () => {
  const registry = new Registry();
  const frames = new Tally({ name: 't_frames_total', help: 'frames', labelName: 'command', registers: [registry] });
  const delivered = new Tally({ name: 't_delivered_total', help: 'delivered', registers: [registry] }).slot('');
  const message = frames.slot('MESSAGE');
  frames.slot('ERROR');
  message.n += 3;
  frames.add('RECEIPT', 2);
  delivered.n += 5;
  let text = await registry.metrics();
  assert.match(text, /^# TYPE t_frames_total counter$/m);
  assert.match(text, /^t_frames_total\{command="MESSAGE"\} 3$/m);
  assert.match(text, /^t_frames_total\{command="RECEIPT"\} 2$/m);
  assert.doesNotMatch(text, /command="ERROR"/, 'a slot never counted is not shown');
  assert.match(text, /^t_delivered_total 5$/m);
  message.n += 1;
  text = await registry.metrics();
  assert.match(text, /^t_frames_total\{command="MESSAGE"\} 4$/m, 'a second scrape shows the total, not the sum of totals');
});
