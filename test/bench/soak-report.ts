// The soak's report, pure: the table of samples, least-squares slopes over the second half of the
// run (per 10 minutes), and the verdict with one line per check. Markdown, for stdout and docs/.

import type { SoakOptions } from './soak-args.js';
import type { WorkTotals } from './soak-ledger.js';
import type { WitnessResult } from './soak-traffic.js';

export interface SoakSample {
  /** Seconds since the load started. */
  readonly t: number;
  /** The sample taken after the load stopped and settled: shown, left out of the slopes. */
  readonly final: boolean;
  readonly rssMiB: number | undefined;
  readonly heapMiB: number | undefined;
  readonly fds: number | undefined;
  /** Thumper's own count of open client connections. */
  readonly sessions: number | undefined;
  readonly rabbitMemMiB: number | undefined;
  readonly queues: number | undefined;
  readonly connections: number | undefined;
  readonly channels: number | undefined;
  /** Connected clients as the soak counts them. */
  readonly clients: number;
  /** MESSAGE frames received per second since the previous sample. */
  readonly msgsPerSec: number;
  /** Cumulative: work-SEND receipts, ERRORs answered to bad input, unexpected errors, messages lost. */
  readonly receipts: number;
  readonly errors: number;
  readonly unexpected: number;
  readonly lost: number;
}

export interface SoakOutcome {
  readonly options: SoakOptions;
  readonly startedAt: string;
  readonly versions: string;
  /** Seconds of load actually run (shorter when Thumper died). */
  readonly loadSeconds: number;
  readonly samples: readonly SoakSample[];
  readonly witnesses: readonly WitnessResult[];
  readonly work: WorkTotals;
  readonly sent: { readonly feed: number; readonly news: number; readonly work: number };
  readonly connects: number;
  readonly messages: number;
  readonly churnerGaps: number;
  readonly churnerDisorder: number;
  readonly badInput: { readonly tried: number; readonly answered: number; readonly failures: readonly string[] };
  readonly unexpected: number;
  readonly unexpectedExamples: readonly string[];
  /** Set when Thumper exited before the end of the load. */
  readonly thumperDied: string | undefined;
  readonly settled: boolean;
}

/** Least-squares slope of y over x; undefined with fewer than 3 points or no spread in x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number | undefined {
  if (points.length < 3) return undefined;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? undefined : sxy / sxx;
}

/** Shortest second half whose slope the verdict judges: shorter halves are dominated by warm-up. */
export const MIN_JUDGED_HALF_SECONDS = 300;

type Status = 'pass' | 'FAIL' | 'not judged';
interface Check {
  readonly name: string;
  readonly observed: string;
  readonly limit: string;
  readonly status: Status;
}

type SeriesKey = 'rssMiB' | 'fds' | 'queues' | 'channels' | 'heapMiB' | 'rabbitMemMiB' | 'sessions';

/** Slope per 10 minutes of one series over the samples in the second half of the load. */
export function secondHalfSlope(samples: readonly SoakSample[], loadSeconds: number, key: SeriesKey): number | undefined {
  const points: Array<[number, number]> = [];
  for (const s of samples) {
    const y = s[key];
    if (!s.final && s.t >= loadSeconds / 2 && y !== undefined) points.push([s.t / 600, y]);
  }
  return slope(points);
}

export function verdict(outcome: SoakOutcome): Check[] {
  const { options: o, samples, loadSeconds } = outcome;
  const checks: Check[] = [];
  const add = (name: string, observed: string, limit: string, ok: boolean | undefined): void => {
    checks.push({ name, observed, limit, status: ok === undefined ? 'not judged' : ok ? 'pass' : 'FAIL' });
  };
  add('Thumper stayed up', outcome.thumperDied ?? 'yes', 'up until the end', outcome.thumperDied === undefined);
  const lost = outcome.witnesses.reduce((s, w) => s + w.feedLost + w.newsLost, 0);
  add('messages the witnesses missed', String(lost), '0', lost === 0);
  const dropped = outcome.witnesses.filter((w) => w.lostConnection !== undefined).length;
  add('witnesses whose connection ended', String(dropped), '0', dropped === 0);
  add('receipted work SENDs never consumed', String(outcome.work.receiptedNotConsumed), '0', outcome.work.receiptedNotConsumed === 0);
  add('work SENDs with neither RECEIPT nor ERROR', String(outcome.work.unanswered), '0', outcome.work.unanswered === 0);
  add('churning clients: gaps in their streams', String(outcome.churnerGaps), '0', outcome.churnerGaps === 0);
  add('bad input answered with ERROR', `${outcome.badInput.answered} of ${outcome.badInput.tried}`, 'all', outcome.badInput.answered === outcome.badInput.tried);
  add('unexpected errors and closes', String(outcome.unexpected), '0', outcome.unexpected === 0);
  const halfSeconds = loadSeconds / 2;
  const judged = halfSeconds >= MIN_JUDGED_HALF_SECONDS;
  const flat = (name: string, key: SeriesKey, limit: number, unit: string): void => {
    const s = secondHalfSlope(samples, loadSeconds, key);
    const observed = s === undefined ? 'n/a' : `${s >= 0 ? '+' : ''}${s.toFixed(2)} ${unit}`;
    add(`${name} slope, second half, per 10 min`, observed, `≤ ${limit} ${unit}`, judged && s !== undefined ? s <= limit : undefined);
  };
  flat('Thumper RSS', 'rssMiB', o.maxRssSlopeMiB, 'MiB');
  flat('Thumper open fds', 'fds', o.maxFdSlope, 'fds');
  flat('RabbitMQ queues', 'queues', o.maxQueueSlope, 'queues');
  flat('RabbitMQ channels', 'channels', o.maxChannelSlope, 'channels');
  return checks;
}

const fmt = (n: number | undefined, digits = 0): string => (n === undefined ? '–' : n.toFixed(digits));
const clock = (t: number): string => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;

export function renderReport(outcome: SoakOutcome): { markdown: string; passed: boolean } {
  const { options: o } = outcome;
  const checks = verdict(outcome);
  const passed = checks.every((c) => c.status !== 'FAIL');
  const lines: string[] = [];
  lines.push(`# Soak run: ${passed ? 'PASS' : 'FAIL'}`, '');
  lines.push(`Started ${outcome.startedAt}; ${(outcome.loadSeconds / 60).toFixed(1)} of ${o.minutes} minutes of load, a sample every ${o.sampleSeconds} s. ${outcome.versions}.`, '');
  lines.push(
    `Load: ${o.clients} churning clients (every 20th SockJS xhr-streaming, the next raw TCP, the rest WebSocket) on ` +
      `/exchange/feed/user_i and /topic/news; ${o.witnesses} witnesses that never churn; AMQP publishes ${o.feedRate}/s to feed and ` +
      `${o.newsRate}/s to amq.topic news; ${o.workRate} SENDs/s with receipts to /queue/soak-work, drained by a client-individual-ack ` +
      `consumer; ${o.churn} clients/s replaced (half DISCONNECT, half dropped); ${o.badEvery > 0 ? `a bad-input connection every ${o.badEvery} s` : 'no bad input'}; ` +
      'heart-beats 10000,10000; everything on 127.0.0.1.',
    '',
  );
  lines.push('## Samples', '');
  lines.push('| time | RSS MiB | heap MiB | fds | sessions | RabbitMQ mem MiB | queues | connections | channels | clients | msgs/s | receipts | errors | unexpected | lost |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of outcome.samples) {
    lines.push(
      `| ${s.final ? 'end' : clock(s.t)} | ${fmt(s.rssMiB, 1)} | ${fmt(s.heapMiB, 1)} | ${fmt(s.fds)} | ${fmt(s.sessions)} | ${fmt(s.rabbitMemMiB, 1)} | ${fmt(s.queues)} | ` +
        `${fmt(s.connections)} | ${fmt(s.channels)} | ${s.clients} | ${s.msgsPerSec.toFixed(0)} | ${s.receipts} | ${s.errors} | ${s.unexpected} | ${s.lost} |`,
    );
  }
  lines.push('', '"errors" are the ERRORs bad input was answered with (expected); "lost" counts gaps seen so far in witness and churner streams (the witnesses\' tail is checked at the end). The "end" row is taken after the load stopped and the work queue drained; slopes leave it out.', '');
  lines.push('## Verdict', '');
  if (outcome.loadSeconds / 2 < MIN_JUDGED_HALF_SECONDS) lines.push(`Slopes are shown but not judged: the second half is shorter than ${MIN_JUDGED_HALF_SECONDS / 60} minutes.`, '');
  lines.push('| check | observed | limit | result |', '|---|---:|---:|---|');
  for (const c of checks) lines.push(`| ${c.name} | ${c.observed} | ${c.limit} | ${c.status} |`);
  lines.push('', '## Totals', '');
  const w = outcome.work;
  const other = (key: 'heapMiB' | 'rabbitMemMiB' | 'sessions', unit: string): string => {
    const s = secondHalfSlope(outcome.samples, outcome.loadSeconds, key);
    return s === undefined ? 'n/a' : `${s >= 0 ? '+' : ''}${s.toFixed(2)} ${unit}/10 min`;
  };
  lines.push(
    `- Published over AMQP: ${outcome.sent.feed} feed, ${outcome.sent.news} news. MESSAGE frames received: ${outcome.messages}. Client connections opened: ${outcome.connects}.`,
    `- Work queue: ${w.sent} SENDs, ${w.receipted} receipted, ${w.abandoned} abandoned by churn before their receipt, ${w.consumed} consumed (${w.unreceiptedConsumed} of them unreceipted), ${w.duplicates} redelivered, ${w.receiptedNotConsumed} receipted and never consumed.`,
    `- Witnesses: ${outcome.witnesses.map((x) => `${x.kind} ${x.feedReceived}+${x.newsReceived}${x.feedLost + x.newsLost > 0 ? ` (lost ${x.feedLost + x.newsLost})` : ''}`).join(', ')}.`,
    `- Churning clients: ${outcome.churnerGaps} messages missing inside a stream, ${outcome.churnerDisorder} out of order.`,
    `- Second-half slopes not judged: heap ${other('heapMiB', 'MiB')}, RabbitMQ memory ${other('rabbitMemMiB', 'MiB')}, sessions ${other('sessions', '')}.`,
    `- Settled after the load (witnesses complete, work queue drained): ${outcome.settled ? 'yes' : 'no'}.`,
  );
  if (outcome.unexpectedExamples.length > 0) lines.push(`- Unexpected (first ${outcome.unexpectedExamples.length}): ${outcome.unexpectedExamples.map((e) => `\`${e}\``).join('; ')}`);
  if (outcome.badInput.failures.length > 0) lines.push(`- Bad input not answered with ERROR: ${outcome.badInput.failures.map((e) => `\`${e}\``).join('; ')}`);
  lines.push('');
  return { markdown: lines.join('\n'), passed };
}
