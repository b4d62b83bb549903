// Queue throughput with receipts: one STOMP producer SENDs M messages to /queue/<name>, each with a
// receipt, at most WINDOW awaiting their RECEIPT; one consumer is subscribed to the queue. Measures
// receipted SENDs per second, the receipt round trip, delivery latency and loss. The same STOMP
// client does it on every target; the queue is deleted afterwards on RabbitMQ.

import { BenchClient } from './stomp-ws-client.js';
import { LatencyRecorder, bodyTimestamp, settle, timestampedBody } from './measure.js';
import { cpuWindow, type Scenario } from './scenario.js';

const WINDOW = 64;

export const queue: Scenario = async (ctx) => {
  const { queueMessages: total, bodyBytes, settleMs, timeoutMs } = ctx.sizes;
  const name = `bench-${ctx.runId}`;
  const destination = `/queue/${name}`;
  const receiptLatency = new LatencyRecorder(total);
  const deliveryLatency = new LatencyRecorder(total);
  let received = 0;

  const consumer = await BenchClient.connect(ctx.target.wsUrl, ctx.target.credentials, timeoutMs);
  let producer: BenchClient | undefined;
  try {
    consumer.onMessage = (frame) => {
      const sent = bodyTimestamp(frame.body);
      if (Number.isNaN(sent)) return;
      received++;
      deliveryLatency.record(performance.now() - sent);
    };
    await consumer.subscribe(destination, 'q', 'sub');
    producer = await BenchClient.connect(ctx.target.wsUrl, ctx.target.credentials, timeoutMs);
    const client = producer;
    ctx.progress(`sending ${total} messages with receipts to ${destination}`);

    const cpu = cpuWindow(ctx);
    const start = performance.now();
    let inFlight = 0;
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let lastReceipt = start;
    for (let seq = 0; seq < total && failure === undefined; seq++) {
      const sentAt = performance.now();
      inFlight++;
      client.send(destination, timestampedBody(bodyBytes, sentAt, seq), `r${seq}`)!.then(
        () => {
          lastReceipt = performance.now();
          receiptLatency.record(lastReceipt - sentAt);
          inFlight--;
          wake?.();
        },
        (err: Error) => {
          failure ??= err;
          inFlight--;
          wake?.();
        },
      );
      while (inFlight >= WINDOW && failure === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
    await settle(() => inFlight === 0 || failure !== undefined, () => receiptLatency.count, settleMs, timeoutMs);
    if (failure !== undefined) throw failure;
    const receipted = receiptLatency.count;
    await settle(() => received >= total, () => received, settleMs, timeoutMs);
    const usage = cpu();
    const [r50, r99] = receiptLatency.percentiles([50, 99]);
    const [p50, p95, p99, max] = deliveryLatency.percentiles([50, 95, 99, 100]);
    return {
      metrics: {
        receipts_per_s: receipted / (Math.max(lastReceipt - start, 1e-3) / 1000),
        receipt_p50_ms: r50!,
        receipt_p99_ms: r99!,
        latency_p50_ms: p50!,
        latency_p95_ms: p95!,
        latency_p99_ms: p99!,
        latency_max_ms: max!,
        delivered: received,
        expected: total,
        lost: total - received,
        ...usage,
      },
      notes: [`window: ${WINDOW} receipts outstanding`],
    };
  } finally {
    producer?.close();
    consumer.close();
    if (ctx.target.usesRabbit) await ctx.rabbit.deleteQueue(name).catch(() => {});
  }
};
