// The bench's output: the machine and versions, and per scenario one table with a row per metric,
// a column per target (the median over rounds) and ratio columns Thumper/Web-STOMP, then the
// target metrics' ratios round by round. Pure apart from reading /proc and git for the header.

import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { METRICS, type Metrics, type ScenarioName, type TargetName } from './scenario.js';

export interface RunRecord {
  readonly scenario: ScenarioName;
  readonly target: TargetName;
  readonly round: number;
  readonly metrics: Metrics;
  readonly notes: string[];
  /** Set when the run failed: the table shows "failed". */
  readonly error?: string;
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly rabbit: string;
  readonly thumperCommit: string;
  readonly fdLimits: string;
}

export function machineInfo(rabbit: string, fdLimits: string): MachineInfo {
  const cpuinfo = safeRead('/proc/cpuinfo');
  const meminfo = safeRead('/proc/meminfo');
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ramGiB: memKb / 1024 / 1024,
    kernel: safeRead('/proc/sys/kernel/osrelease').trim(),
    node: process.version,
    rabbit,
    thumperCommit: gitCommit(),
    fdLimits,
  };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

export function formatMachine(m: MachineInfo): string {
  return [
    `machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB.toFixed(1)} GiB RAM, Linux ${m.kernel}`,
    `versions: Node ${m.node}, ${m.rabbit}, Thumper ${m.thumperCommit}`,
    `open files (soft limit): ${m.fdLimits}`,
  ].join('\n');
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  return `${(a / b).toFixed(2)}×`;
}

/**
 * Per scenario, the metrics a target of issue 7 is about (for the queue, its headline; it has no
 * target). A median hides how far single rounds spread on a shared machine, so under each table
 * these get their ratio round by round.
 */
const ROUND_RATIO_METRICS: Record<ScenarioName, readonly string[]> = {
  fanout: ['deliveries_per_s'],
  feed: ['latency_p99_ms'],
  connections: ['connect_subscribe_per_s', 'total_mem_per_conn_kb'],
  reconnect: ['connect_subscribe_per_s'],
  queue: ['receipts_per_s'],
};

/** `- per round, amqp / web-stomp, connect+subscribe/s: 3.21×, 3.80×` for rounds both targets finished. */
function roundRatioLines(scenario: ScenarioName, records: readonly RunRecord[], ratioTargets: readonly TargetName[]): string[] {
  const lines: string[] = [];
  const base = new Map(records.filter((r) => r.target === 'web-stomp' && r.error === undefined).map((r) => [r.round, r.metrics]));
  for (const t of ratioTargets) {
    const mine = records.filter((r) => r.target === t && r.error === undefined && base.has(r.round)).sort((a, b) => a.round - b.round);
    if (mine.length < 2) continue;
    for (const key of ROUND_RATIO_METRICS[scenario]) {
      const ratios = mine.map((r) => ratio(r.metrics[key] ?? Number.NaN, base.get(r.round)![key] ?? Number.NaN));
      lines.push(`per round, ${t.replace('thumper-', '')} / web-stomp, ${METRICS[key]?.label ?? key}: ${ratios.join(', ')}`);
    }
  }
  return lines;
}

/** One scenario's table (Markdown, so docs/benchmarks.md can hold it as printed). */
export function formatScenario(scenario: ScenarioName, title: string, records: readonly RunRecord[], targets: readonly TargetName[]): string {
  const mine = records.filter((r) => r.scenario === scenario);
  const byTarget = new Map(targets.map((t) => [t, mine.filter((r) => r.target === t && r.error === undefined)]));
  const keys = Object.keys(METRICS).filter((k) => mine.some((r) => k in r.metrics));
  for (const r of mine) for (const k of Object.keys(r.metrics)) if (!keys.includes(k)) keys.push(k);
  const ratioTargets = targets.includes('web-stomp') ? targets.filter((t) => t !== 'web-stomp') : [];
  const header = ['metric', ...targets, ...ratioTargets.map((t) => `${t.replace('thumper-', '')} / web-stomp`)];
  const rows: string[][] = [];
  for (const key of keys) {
    const info = METRICS[key] ?? { label: key, better: undefined, digits: 2 };
    const medians = new Map(targets.map((t) => [t, median((byTarget.get(t) ?? []).map((r) => r.metrics[key] ?? Number.NaN))]));
    const arrow = info.better === 'higher' ? ' ↑' : info.better === 'lower' ? ' ↓' : '';
    rows.push([
      `${info.label}${arrow}`,
      ...targets.map((t) => ((byTarget.get(t) ?? []).length === 0 ? 'failed' : formatNumber(medians.get(t)!, info.digits))),
      ...ratioTargets.map((t) => ratio(medians.get(t)!, medians.get('web-stomp')!)),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const notes = [...new Set(mine.flatMap((r) => r.notes.map((n) => `${r.target}: ${n}`)))];
  const errors = mine.filter((r) => r.error !== undefined).map((r) => `${r.target} round ${r.round} failed: ${r.error}`);
  const perRound = roundRatioLines(scenario, mine, ratioTargets);
  return [`### ${title}`, '', line(header), rule, ...rows.map(line), '', ...[...perRound, ...notes, ...errors].map((n) => `- ${n}`)].join('\n');
}
