// The RabbitMQ node every target of one bench run shares: a private throwaway node by default
// (test/harness/rabbitmq.ts, with rabbitmq_web_stomp), or an existing one given by its harness state
// (the smoke test uses the test run's node). Reads what the report needs: Erlang memory after a
// full GC, the queue count, the node's OS processes for CPU, its version.

import amqp from 'amqplib';
import { readFileSync } from 'node:fs';
import { startRabbitNode, nodeFromState, type RabbitNode, type RabbitNodeState } from '../harness/rabbitmq.js';
import { sleep } from './measure.js';

const GUEST_AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
/** Every Erlang process collected first, so the figure is live data and not GC timing. */
const MEMORY_EXPR = '[erlang:garbage_collect(P) || P <- erlang:processes()], erlang:memory(total).';

export interface BenchRabbit {
  readonly node: RabbitNode;
  readonly webStompUrl: string;
  /** Process group of the node's OS processes (beam.smp, epmd), when known. */
  readonly pgid: number | undefined;
  readonly private: boolean;
  version(): Promise<string>;
  /** erlang:memory(total) in bytes after a full GC of the node. */
  memoryBytes(): Promise<number>;
  queueCount(): Promise<number>;
  queueNames(): Promise<Set<string>>;
  /** Waits (bounded) until none of the queues that exist now and not in `before` is left. */
  waitForNewQueuesGone(before: ReadonlySet<string>, maxMs: number): Promise<void>;
  /** Declares the seed's `feed` topic exchange the way every other declaration of it does. */
  declareFeed(): Promise<void>;
  deleteQueue(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** `stateSource`: a JSON state or a file holding one; undefined starts a private node. */
export async function openBenchRabbit(stateSource: string | undefined): Promise<BenchRabbit> {
  let node: RabbitNode;
  let pgid: number | undefined;
  let isPrivate: boolean;
  if (stateSource === undefined) {
    const started = await startRabbitNode();
    node = started;
    pgid = started.state.pid;
    isPrivate = true;
  } else {
    const json = stateSource.trimStart().startsWith('{') ? stateSource : readFileSync(stateSource, 'utf8');
    const state = JSON.parse(json) as RabbitNodeState;
    node = nodeFromState(state, async () => {});
    pgid = state.pid;
    isPrivate = false;
  }
  const { webStompUrl, managementUrl } = node;
  if (webStompUrl === undefined || managementUrl === undefined) throw new Error('the RabbitMQ node needs Web-STOMP and management URLs');
  const api = async (path: string): Promise<unknown> => {
    const res = await fetch(`${managementUrl}${path}`, { headers: { authorization: GUEST_AUTH }, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`GET ${path} → ${res.status}`);
    return res.json();
  };
  const withChannel = async (fn: (ch: amqp.Channel) => Promise<unknown>): Promise<void> => {
    const connection = await amqp.connect(node.amqpUrl);
    try {
      await fn(await connection.createChannel());
    } finally {
      await connection.close().catch(() => {});
    }
  };
  const queueNames = async (): Promise<Set<string>> => new Set((await node.listQueues('/')).map((q) => q.name));
  return {
    node,
    webStompUrl,
    pgid,
    private: isPrivate,
    async version() {
      const overview = (await api('/api/overview')) as { rabbitmq_version?: string; erlang_version?: string };
      return `RabbitMQ ${overview.rabbitmq_version ?? '?'} on Erlang ${overview.erlang_version ?? '?'}`;
    },
    async memoryBytes() {
      const out = await node.rabbitmqctl('eval', MEMORY_EXPR);
      const bytes = Number(out.trim());
      if (!Number.isFinite(bytes)) throw new Error(`unexpected erlang:memory answer: ${out}`);
      return bytes;
    },
    queueCount: async () => (await queueNames()).size,
    queueNames,
    async waitForNewQueuesGone(before, maxMs) {
      // Only this run's queues are waited for: on a shared node other tests' queues come and go.
      const deadline = Date.now() + maxMs;
      const created = [...(await queueNames())].filter((n) => !before.has(n));
      while (created.length > 0 && Date.now() < deadline) {
        await sleep(250);
        const now = await queueNames();
        if (created.every((n) => !now.has(n))) return;
      }
    },
    declareFeed: () => withChannel((ch) => ch.assertExchange('feed', 'topic', { durable: true })),
    deleteQueue: (name) => withChannel((ch) => ch.deleteQueue(name)),
    stop: () => node.stop(),
  };
}
