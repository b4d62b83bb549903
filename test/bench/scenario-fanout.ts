// Fan-out: S subscribers on one topic, M messages of 128 bytes from the backend publisher as fast as
// its confirm window allows. Measures deliveries/s (all deliveries over first publish → last
// delivery), the latency of every delivery, and loss after the settle time.

import { LatencyRecorder, bodyTimestamp, settle, timestampedBody } from './measure.js';
import { closeAll, cpuWindow, openClients, type Scenario } from './scenario.js';

const MAX_SAMPLES = 5_000_000;
const WARMUP_BODY = Buffer.from('warmup');

export const fanout: Scenario = async (ctx) => {
  const { subscribers, messages, bodyBytes, settleMs, timeoutMs } = ctx.sizes;
  const key = `bench.${ctx.runId}.fanout`;
  const route = { exchange: 'amq.topic', routingKey: key, destination: `/topic/${key}` };
  const expected = subscribers * messages;
  const latency = new LatencyRecorder(Math.min(expected, MAX_SAMPLES));
  let received = 0;
  let warm = 0;
  let lastDelivery = 0;

  const { clients, failures } = await openClients(ctx, subscribers, async (client, i) => {
    client.onMessage = (frame) => {
      const sent = bodyTimestamp(frame.body);
      if (Number.isNaN(sent)) {
        warm++;
        return;
      }
      lastDelivery = performance.now();
      received++;
      latency.record(lastDelivery - sent);
    };
    await client.subscribe(route.destination, `s${i}`, `sub${i}`);
  });
  const publisher = await ctx.target.publisher();
  try {
    if (failures.length > 0) throw new Error(`${failures.length} of ${subscribers} subscribers failed: ${failures[0]!.message}`);
    ctx.progress(`${subscribers} subscribed; warming up`);
    // Warm-up: JIT and every queue/binding path exercised before the clock starts.
    const warmup = Math.min(50, messages);
    for (let i = 0; i < warmup; i++) await publisher.publish(route, WARMUP_BODY);
    await publisher.flush();
    await settle(() => warm >= warmup * subscribers, () => warm, settleMs, timeoutMs);

    const cpu = cpuWindow(ctx);
    const start = performance.now();
    for (let seq = 0; seq < messages; seq++) await publisher.publish(route, timestampedBody(bodyBytes, performance.now(), seq));
    await publisher.flush();
    const published = performance.now();
    await settle(() => received >= expected, () => received, settleMs, timeoutMs + (messages * subscribers) / 100);
    const usage = cpu();
    const seconds = Math.max(lastDelivery - start, 1e-3) / 1000;
    const [p50, p95, p99, max] = latency.percentiles([50, 95, 99, 100]);
    return {
      metrics: {
        deliveries_per_s: received / seconds,
        publish_per_s: messages / ((published - start) / 1000),
        latency_p50_ms: p50!,
        latency_p95_ms: p95!,
        latency_p99_ms: p99!,
        latency_max_ms: max!,
        delivered: received,
        expected,
        lost: expected - received,
        ...usage,
        deliveries_per_server_cpu_s: usage['server_cpu_s']! > 0 ? received / usage['server_cpu_s']! : Number.NaN,
      },
      notes: [`publisher: ${publisher.kind}`],
    };
  } finally {
    await publisher.close();
    closeAll(clients);
  }
};
