// Per-user feed, the seed use case: U users, each one connection subscribed to
// /exchange/feed/user_i, and a backend publishing R messages/s in total, round-robin over the users,
// for D seconds. Measures delivery latency at that fixed rate and loss, after a warm-up of the same
// traffic (WARMUP_S at the same rate, not measured): the first seconds of a run carry start-up
// transients on both servers (a fresh publisher connection, Thumper's JIT), and the target is the
// latency of a running feed.

import { LatencyRecorder, bodyTimestamp, settle, sleep, timestampedBody } from './measure.js';
import { closeAll, cpuWindow, openClients, type Scenario } from './scenario.js';

const TICK_MS = 5;
const MAX_SAMPLES = 5_000_000;
const WARMUP_S = 2;
const WARMUP_BODY = Buffer.from('warmup');

export const feed: Scenario = async (ctx) => {
  const { users, rate, duration, bodyBytes, settleMs, timeoutMs } = ctx.sizes;
  const total = Math.max(1, Math.round(rate * duration));
  const routes = Array.from({ length: users }, (_, i) => ({ exchange: 'feed', routingKey: `user_${i}`, destination: `/exchange/feed/user_${i}` }));
  const latency = new LatencyRecorder(Math.min(total, MAX_SAMPLES));
  let received = 0;
  let warm = 0;

  const { clients, failures } = await openClients(ctx, users, async (client, i) => {
    client.onMessage = (frame) => {
      const sent = bodyTimestamp(frame.body);
      if (Number.isNaN(sent)) {
        warm++;
        return;
      }
      received++;
      latency.record(performance.now() - sent);
    };
    await client.subscribe(routes[i]!.destination, `feed${i}`, `sub${i}`);
  });
  const publisher = await ctx.target.publisher();
  try {
    if (failures.length > 0) throw new Error(`${failures.length} of ${users} users failed: ${failures[0]!.message}`);
    ctx.progress(`${users} users subscribed; publishing ${total} messages at ${rate}/s`);
    const paced = (count: number, seconds: number, body: (i: number) => Buffer): Promise<number> =>
      publishPaced(count, rate, seconds * 1000 + timeoutMs, (i) => publisher.publish(routes[i % users]!, body(i)));
    // At least one message per user, so every subscriber's path is warm too.
    const warmup = Math.max(users, Math.round(rate * Math.min(WARMUP_S, duration)));
    const warmSent = await paced(warmup, warmup / rate, () => WARMUP_BODY);
    await publisher.flush();
    await settle(() => warm >= warmSent, () => warm, settleMs, timeoutMs);

    const cpu = cpuWindow(ctx);
    const start = performance.now();
    const sent = await paced(total, duration, (i) => timestampedBody(bodyBytes, performance.now(), i));
    await publisher.flush();
    const publishedMs = performance.now() - start;
    await settle(() => received >= total, () => received, settleMs, timeoutMs);
    const usage = cpu();
    const [p50, p95, p99, max] = latency.percentiles([50, 95, 99, 100]);
    return {
      metrics: {
        publish_per_s: sent / (publishedMs / 1000),
        latency_p50_ms: p50!,
        latency_p95_ms: p95!,
        latency_p99_ms: p99!,
        latency_max_ms: max!,
        delivered: received,
        expected: sent,
        lost: sent - received,
        ...usage,
      },
      notes: [`publisher: ${publisher.kind}`],
    };
  } finally {
    await publisher.close();
    closeAll(clients);
  }
};

/**
 * Publishes `count` messages at `rate`/s: each tick publishes what the schedule owes; a late tick
 * catches up, never more than a second's worth at once. Bounded by the count and by `maxMs`.
 * Returns how many were published.
 */
async function publishPaced(count: number, rate: number, maxMs: number, publish: (i: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  const hardStop = start + maxMs;
  let sent = 0;
  while (sent < count && performance.now() < hardStop) {
    const owed = Math.min(count, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    const burstEnd = Math.min(owed, sent + Math.max(1, rate));
    for (; sent < burstEnd; sent++) await publish(sent);
    await sleep(TICK_MS);
  }
  return sent;
}
