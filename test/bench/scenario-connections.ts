// Connections: N idle connections, each subscribed to its own /exchange/feed/user_i (the seed's
// shape), opened `--in-flight` at a time (64 unless told). Measures the connect+subscribe rate (CONNECT → CONNECTED, SUBSCRIBE →
// RECEIPT), the memory each one costs (Thumper RSS growth plus RabbitMQ's Erlang memory growth after
// a full GC, over N), the RabbitMQ queues they created, and how many are still open after the hold.
// Below a server's saturation the rate is set by how long each client waits, so the two waits are reported
// apart: WebSocket open → CONNECTED, and SUBSCRIBE → RECEIPT (where a server's bind or queue is).

import { settle, sleep, sampleProcess } from './measure.js';
import { closeAll, connectStorm, openWarmup, type Scenario } from './scenario.js';

/** Let the last connections' buffers and timers settle before memory is read. */
const QUIET_MS = 2000;

export const connections: Scenario = async (ctx) => {
  const { connections: count, hold, timeoutMs } = ctx.sizes;
  const pid = ctx.target.thumperPid;
  const rss = (): number => (pid === undefined ? 0 : sampleProcess(pid).rssBytes);
  const warmup = await openWarmup(ctx, count);
  const rssBefore = rss();
  const memBefore = await ctx.rabbit.memoryBytes();
  const queuesBefore = await ctx.rabbit.queueNames();

  const { clients, failures, elapsedS: elapsed, metrics: storm } = await connectStorm(ctx, count, (i) => `/exchange/feed/user_${i}`);
  const ok = count - failures.length;
  try {
    ctx.progress(`${ok} of ${count} connected and subscribed in ${elapsed.toFixed(1)} s`);
    await sleep(QUIET_MS);
    const rssAfter = rss();
    const memAfter = await ctx.rabbit.memoryBytes();
    const queuesAfter = await ctx.rabbit.queueNames();
    if (hold > 0) {
      ctx.progress(`holding ${ok} connections for ${hold} s`);
      // Ends early only if every connection is gone.
      await settle(() => clients.every((c) => !c.isOpen), () => 0, hold * 1000, hold * 1000 + 1000, 250);
    }
    const held = clients.filter((c) => c.isOpen).length;
    const perConn = (bytes: number): number => (ok > 0 ? bytes / ok / 1024 : Number.NaN);
    const thumperPer = pid === undefined ? 0 : perConn(rssAfter - rssBefore);
    const rabbitPer = perConn(memAfter - memBefore);
    return {
      metrics: {
        ...storm,
        connections_held: held,
        thumper_rss_per_conn_kb: thumperPer,
        rabbit_mem_per_conn_kb: rabbitPer,
        total_mem_per_conn_kb: thumperPer + rabbitPer,
        queues_created: [...queuesAfter].filter((n) => !queuesBefore.has(n)).length,
        thumper_rss_mb: pid === undefined ? Number.NaN : rssAfter / 1024 / 1024,
      },
      notes: failures.length > 0 ? [`first failure: ${failures[0]!.message}`] : [],
    };
  } finally {
    closeAll(clients);
    closeAll(warmup);
    // Closed sockets free their queues asynchronously; the next run must start from a quiet node.
    await ctx.rabbit.waitForNewQueuesGone(queuesBefore, timeoutMs);
  }
};
