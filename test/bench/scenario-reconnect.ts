// Reconnect: N connections subscribed to their own /exchange/feed/user_i drop at once (sockets
// terminated, as a lost network or a restarted proxy does) and come back `RECONNECT_DELAY_MS` later
// with the same subscriptions, `--in-flight` at a time: the storm a gateway meets after a network
// blip, and every time many pages reload. Measures how fast they are all back (connect+subscribe)
// and the two waits, as the connections scenario does. Before they come back, the node has
// finished the clean-up the drop set off (Web-STOMP's queues deleted), so each server meets the
// storm on a quiet node.

import { sleep } from './measure.js';
import { closeAll, connectStorm, openClients, openWarmup, type Scenario, type ScenarioContext, type ScenarioResult } from './scenario.js';

/** stomp.js waits 5 s before reconnecting by default; mobile clients back off similarly. */
const RECONNECT_DELAY_MS = 2000;

export const reconnect: Scenario = async (ctx) => {
  const key = (i: number): string => `/exchange/feed/${ctx.runId}_user_${i}`;
  // At least one: the shared queue must exist before the drop (see below).
  const warmup = await openWarmup(ctx, ctx.sizes.connections, 1);
  try {
    return await dropAndReturn(ctx, key);
  } finally {
    closeAll(warmup);
  }
};

async function dropAndReturn(ctx: ScenarioContext, key: (i: number) => string): Promise<ScenarioResult> {
  const { connections: count, inFlight, timeoutMs } = ctx.sizes;
  // After the warm-up: Thumper's shared queue is not new, so waiting for new queues to go waits
  // for Web-STOMP's per-subscription queues only.
  const queuesBefore = await ctx.rabbit.queueNames();
  const first = await openClients(
    ctx,
    count,
    async (client, i) => {
      await client.subscribe(key(i), 'feed', `sub${i}`);
    },
    inFlight,
  );
  closeAll(first.clients);
  if (first.failures.length > 0) throw new Error(`first connections failed: ${first.failures[0]!.message}`);
  ctx.progress(`${count} connections dropped; back in ${RECONNECT_DELAY_MS} ms`);
  const dropped = performance.now();
  await ctx.rabbit.waitForNewQueuesGone(queuesBefore, timeoutMs);
  const cleanupMs = performance.now() - dropped;
  await sleep(Math.max(0, RECONNECT_DELAY_MS - cleanupMs));

  const { clients, failures, metrics } = await connectStorm(ctx, count, key);
  closeAll(clients);
  await ctx.rabbit.waitForNewQueuesGone(queuesBefore, timeoutMs);
  return {
    metrics,
    notes: [
      `the drop's clean-up took ${(cleanupMs / 1000).toFixed(1)} s before the clients came back`,
      ...(failures.length > 0 ? [`first failure: ${failures[0]!.message}`] : []),
    ],
  };
}
