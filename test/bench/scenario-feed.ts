// Per-user feed, the seed use case: U users, each one connection subscribed to
// /exchange/feed/user_i, and a backend publishing R messages/s in total, round-robin over the users,
// for D seconds. Measures delivery latency at that fixed rate and loss.

import { LatencyRecorder, bodyTimestamp, settle, sleep, timestampedBody } from './measure.js';
import { closeAll, cpuWindow, openClients, type Scenario } from './scenario.js';

const TICK_MS = 5;
const MAX_SAMPLES = 5_000_000;

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
    const warmup = Math.min(users, 200);
    for (let i = 0; i < warmup; i++) await publisher.publish(routes[i]!, Buffer.from('warmup'));
    await publisher.flush();
    await settle(() => warm >= warmup, () => warm, settleMs, timeoutMs);

    const cpu = cpuWindow(ctx);
    const start = performance.now();
    // Paced: each tick publishes what the schedule owes; a late tick catches up, never more than a
    // second's worth at once. Bounded by the message count and by the duration plus the settle time.
    const hardStop = start + duration * 1000 + timeoutMs;
    let sent = 0;
    while (sent < total && performance.now() < hardStop) {
      const owed = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      const burstEnd = Math.min(owed, sent + Math.max(1, rate));
      for (; sent < burstEnd; sent++) await publisher.publish(routes[sent % users]!, timestampedBody(bodyBytes, performance.now(), sent));
      await sleep(TICK_MS);
    }
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
