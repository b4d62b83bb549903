// Keeps the load generator (`npm run bench`, test/bench/run.ts) from rotting: one `--smoke` run of
// every scenario against every target, as its own process, on its own throwaway RabbitMQ node.
// It asserts only that each scenario produced a row of numbers per target — never a speed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN_DEADLINE_MS = 300_000;
const SCENARIOS = ['fanout', 'feed', 'connections', 'reconnect', 'queue'] as const;
const TARGETS = ['thumper-amqp', 'thumper-memory', 'web-stomp'] as const;
/** The metric each scenario must report as a finite number on every target. */
const HEADLINE: Record<(typeof SCENARIOS)[number], readonly string[]> = {
  fanout: ['deliveries_per_s', 'latency_p99_ms', 'lost'],
  feed: ['latency_p99_ms', 'lost'],
  connections: ['connect_subscribe_per_s', 'connect_p99_ms', 'subscribe_p99_ms', 'total_mem_per_conn_kb', 'queues_created'],
  reconnect: ['connect_subscribe_per_s', 'connect_p99_ms', 'subscribe_p99_ms'],
  queue: ['receipts_per_s', 'receipt_p99_ms', 'lost'],
};

interface Record_ {
  readonly scenario: string;
  readonly target: string;
  readonly metrics: Record<string, number | null>;
  readonly error?: string;
}

function runBench(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The child inherits no THUMPER_*/AMQP settings: the bench configures its own Thumper processes.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('THUMPER_') && k !== 'AMQP_URL'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_DEADLINE_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('npm run bench -- --smoke: every scenario gives a row of numbers for every target', { timeout: RUN_DEADLINE_MS + 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thumper-bench-smoke-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const jsonFile = join(dir, 'results.json');
  const { code, stdout, stderr } = await runBench(['--smoke', '--json', jsonFile]);
  assert.equal(code, 0, `bench exited with ${code}\n${stderr.slice(-4000)}`);

  const { records } = JSON.parse(await readFile(jsonFile, 'utf8')) as { records: Record_[] };
  for (const scenario of SCENARIOS) {
    assert.match(stdout, new RegExp(`### ${scenario} — `), `no table for ${scenario}`);
    for (const target of TARGETS) {
      const record = records.find((r) => r.scenario === scenario && r.target === target);
      assert.ok(record, `no result for ${scenario} on ${target}`);
      assert.equal(record.error, undefined, `${scenario} on ${target} failed: ${record.error}`);
      for (const metric of HEADLINE[scenario]) {
        const value = record.metrics[metric];
        assert.ok(typeof value === 'number' && Number.isFinite(value), `${scenario} on ${target}: ${metric} is ${String(value)}`);
      }
    }
  }
  // The machine and versions head the report.
  assert.match(stdout, /^machine: .+, \d+ cores, /m);
  assert.match(stdout, /^versions: Node v\d+.*RabbitMQ \d/m);
});
