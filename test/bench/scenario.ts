// What a scenario gets (one target, its clients' credentials, the node, the sizes) and gives back
// (named numbers), the metric catalogue the report prints, and the shared client chores: connect
// many, close many, and the CPU window around a measured phase.

import { BenchClient, type Credentials } from './stomp-ws-client.js';
import type { Publisher } from './publisher.js';
import { LatencyRecorder, runPool, sampleProcess, sampleProcessGroup } from './measure.js';
import type { Sizes } from './args.js';
import type { BenchRabbit } from './bench-rabbit.js';

export const TARGETS = ['thumper-amqp', 'thumper-memory', 'web-stomp'] as const;
export type TargetName = (typeof TARGETS)[number];
export const SCENARIOS = ['fanout', 'feed', 'connections', 'reconnect', 'queue'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Target {
  readonly name: TargetName;
  readonly wsUrl: string;
  readonly credentials: Credentials;
  /** The Thumper process, when the target is Thumper. */
  readonly thumperPid: number | undefined;
  /** True when RabbitMQ carries the messages (Web-STOMP, Thumper's AMQP engine). */
  readonly usesRabbit: boolean;
  /** The backend publisher for fan-out and feed. */
  publisher(): Promise<Publisher>;
}

export interface ScenarioContext {
  readonly target: Target;
  readonly rabbit: BenchRabbit;
  readonly sizes: Sizes;
  /** Unique per scenario run: names topics and queues so runs never see each other's messages. */
  readonly runId: string;
  progress(message: string): void;
}

export type Metrics = Record<string, number>;

export interface ScenarioResult {
  readonly metrics: Metrics;
  readonly notes: string[];
}

export type Scenario = (ctx: ScenarioContext) => Promise<ScenarioResult>;

export interface MetricInfo {
  readonly label: string;
  readonly better: 'higher' | 'lower' | undefined;
  /** Digits after the point in the table. */
  readonly digits: number;
}

const m = (label: string, better: MetricInfo['better'], digits = 0): MetricInfo => ({ label, better, digits });

/** Every metric a scenario may report, in table order. Unknown keys print with their raw name. */
export const METRICS: Record<string, MetricInfo> = {
  deliveries_per_s: m('deliveries/s', 'higher'),
  publish_per_s: m('published/s', 'higher'),
  receipts_per_s: m('SENDs with RECEIPT/s', 'higher'),
  connect_subscribe_per_s: m('connect+subscribe/s', 'higher'),
  connect_p50_ms: m('connect p50: WebSocket open → CONNECTED (ms)', 'lower', 1),
  connect_p99_ms: m('connect p99 (ms)', 'lower', 1),
  subscribe_p50_ms: m('subscribe p50: SUBSCRIBE → RECEIPT (ms)', 'lower', 1),
  subscribe_p99_ms: m('subscribe p99 (ms)', 'lower', 1),
  latency_p50_ms: m('latency p50 (ms)', 'lower', 2),
  latency_p95_ms: m('latency p95 (ms)', 'lower', 2),
  latency_p99_ms: m('latency p99 (ms)', 'lower', 2),
  latency_max_ms: m('latency max (ms)', 'lower', 2),
  receipt_p50_ms: m('receipt p50 (ms)', 'lower', 2),
  receipt_p99_ms: m('receipt p99 (ms)', 'lower', 2),
  delivered: m('delivered', 'higher'),
  expected: m('expected', undefined),
  lost: m('lost', 'lower'),
  connections_ok: m('connections subscribed', 'higher'),
  connections_failed: m('connections failed', 'lower'),
  connections_held: m('connections still open after hold', 'higher'),
  thumper_rss_per_conn_kb: m('Thumper RSS per connection (KiB)', 'lower', 1),
  rabbit_mem_per_conn_kb: m('RabbitMQ memory per connection (KiB)', 'lower', 1),
  total_mem_per_conn_kb: m('memory per connection, total (KiB)', 'lower', 1),
  queues_created: m('RabbitMQ queues created', 'lower'),
  thumper_rss_mb: m('Thumper RSS at end (MiB)', 'lower', 1),
  thumper_cpu_s: m('Thumper CPU (s)', 'lower', 2),
  rabbit_cpu_s: m('RabbitMQ CPU (s)', 'lower', 2),
  server_cpu_s: m('server CPU, Thumper + RabbitMQ (s)', 'lower', 2),
  loadgen_cpu_s: m('load generator CPU (s)', 'lower', 2),
  deliveries_per_server_cpu_s: m('deliveries per server CPU-second', 'higher'),
};

/**
 * Opens `count` clients with at most `concurrency` handshakes in flight; `setup` runs per client
 * (e.g. subscribe). `connectTimes` gets each client's WebSocket open → CONNECTED in ms.
 */
export async function openClients(
  ctx: ScenarioContext,
  count: number,
  setup: (client: BenchClient, i: number) => Promise<void>,
  concurrency = 64,
  connectTimes?: LatencyRecorder,
): Promise<{ clients: BenchClient[]; failures: Error[] }> {
  const clients: BenchClient[] = [];
  const failures = await runPool(count, concurrency, async (i) => {
    const started = performance.now();
    const client = await BenchClient.connect(ctx.target.wsUrl, ctx.target.credentials, ctx.sizes.timeoutMs);
    connectTimes?.record(performance.now() - started);
    clients.push(client);
    await setup(client, i);
  });
  return { clients, failures };
}

/**
 * Warm-up connections (`--warmup`, at most as many as measured), kept open by the caller and not
 * counted: code paths and lazily built structures (Thumper's shared queue among them) are in place
 * on both servers before the first reading. 50 by default: more warms V8's JIT further (Thumper's
 * CPU per connection falls until about the 2,500th), but the warm-up connections stay open, and
 * standing connections cost Web-STOMP CPU while it is measured (docs/benchmarks.md, Fairness).
 */
export async function openWarmup(ctx: ScenarioContext, measured: number, atLeast = 0): Promise<BenchClient[]> {
  const warmup = await openClients(ctx, Math.max(atLeast, warmupCount(ctx.sizes, measured)), async (client, i) => {
    await client.subscribe(`/exchange/feed/warmup_${i}`, 'feed', `sub${i}`);
  });
  if (warmup.failures.length > 0) {
    closeAll(warmup.clients);
    throw new Error(`warm-up connections failed: ${warmup.failures[0]!.message}`);
  }
  return warmup.clients;
}

/**
 * The measured phase of the connection scenarios: `count` clients open `--in-flight` at a time,
 * each subscribing to `destination(i)` with a receipt. Gives the clients (open) and the rate, the
 * two waits per client (WebSocket open → CONNECTED, SUBSCRIBE → RECEIPT) and the CPU used.
 */
export async function connectStorm(
  ctx: ScenarioContext,
  count: number,
  destination: (i: number) => string,
): Promise<{ clients: BenchClient[]; failures: Error[]; elapsedS: number; metrics: Metrics }> {
  const connectTimes = new LatencyRecorder(count);
  const subscribeTimes = new LatencyRecorder(count);
  const cpu = cpuWindow(ctx);
  const start = performance.now();
  const { clients, failures } = await openClients(
    ctx,
    count,
    async (client, i) => {
      const sent = performance.now();
      await client.subscribe(destination(i), 'feed', `sub${i}`);
      subscribeTimes.record(performance.now() - sent);
    },
    ctx.sizes.inFlight,
    connectTimes,
  );
  const elapsed = (performance.now() - start) / 1000;
  const usage = cpu();
  const ok = count - failures.length;
  const [connectP50, connectP99] = connectTimes.percentiles([50, 99]);
  const [subscribeP50, subscribeP99] = subscribeTimes.percentiles([50, 99]);
  return {
    clients,
    failures,
    elapsedS: elapsed,
    metrics: {
      connect_subscribe_per_s: ok / elapsed,
      connect_p50_ms: connectP50!,
      connect_p99_ms: connectP99!,
      subscribe_p50_ms: subscribeP50!,
      subscribe_p99_ms: subscribeP99!,
      connections_ok: ok,
      connections_failed: failures.length,
      ...usage,
    },
  };
}

export function warmupCount(sizes: Sizes, measured: number): number {
  return Math.min(sizes.warmup, measured);
}

export function closeAll(clients: readonly BenchClient[]): void {
  for (const c of clients) c.close();
}

/** CPU seconds of Thumper, the RabbitMQ node and this process between start() and the returned stop(). */
export function cpuWindow(ctx: ScenarioContext): () => Metrics {
  const pid = ctx.target.thumperPid;
  const thumper0 = pid === undefined ? 0 : sampleProcess(pid).cpuSeconds;
  const rabbit0 = ctx.rabbit.pgid === undefined ? 0 : sampleProcessGroup(ctx.rabbit.pgid).cpuSeconds;
  const self0 = process.cpuUsage();
  return () => {
    const thumper = pid === undefined ? 0 : sampleProcess(pid).cpuSeconds - thumper0;
    const rabbit = ctx.rabbit.pgid === undefined ? Number.NaN : sampleProcessGroup(ctx.rabbit.pgid).cpuSeconds - rabbit0;
    const self = process.cpuUsage(self0);
    return {
      thumper_cpu_s: thumper,
      rabbit_cpu_s: rabbit,
      server_cpu_s: thumper + rabbit,
      loadgen_cpu_s: (self.user + self.system) / 1e6,
    };
  };
}
