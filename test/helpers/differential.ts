// Shared machinery of the differential tests: one RabbitMQ node, RabbitMQ's own Web-STOMP on it, and
// a Thumper gateway bridged to the same node. A scenario is written once against a `Side` and run
// on both, one after the other, each with its own random run suffix so the two runs never see each
// other's queues; names are made comparable again by aliasing the suffix to `RUN`.

import { randomBytes, createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { useRabbit } from '../harness/rabbitmq.js';
import type { QueueInfo, RabbitNode } from '../harness/rabbitmq.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { after, before } from 'node:test';
import type { TestContext } from 'node:test';
import { connectTcp, connectWs, isMessageFor, login, normalizeAll } from './stomp-script.js';
import type { NormalizedFrame, NormalizeOptions, StompConn, StompLogin, WsConnOptions } from './stomp-script.js';
import { startThumper } from './thumper-server.js';
import type { ThumperServer } from './thumper-server.js';


export interface Side {
  readonly name: Endpoint;
  readonly wsUrl: string;
  /** Random, unique per run and side: put it in every queue, key and id a scenario creates. */
  readonly run: string;
  readonly amqpUrl: string;
  /** A WebSocket to this side's endpoint, closed when the scenario ends. */
  open(options?: WsConnOptions): Promise<StompConn>;
  /** open() + CONNECT (guest/guest, STOMP 1.2 unless told). */
  session(options?: StompLogin & WsConnOptions): Promise<StompConn>;
  /** Frames normalized, with this run's suffix replaced by `RUN`. */
  norm(frames: readonly Frame[], options?: NormalizeOptions): NormalizedFrame[];
  /** Replaces this run's suffix by `RUN` in any text. */
  alias(text: string): string;
  /** Runs `fn` on a fresh AMQP channel of the shared test connection. */
  withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T>;
  /** Deletes these queues (over AMQP) when the scenario ends. */
  cleanupQueue(...names: string[]): void;
  /** The queue's properties as RabbitMQ reports them (undefined: no such queue). */
  queueInfo(name: string): Promise<QueueInfo | undefined>;
  /** Names of the queues bound to `exchange` with `routingKey` (management API). */
  queuesBoundTo(exchange: string, routingKey: string): Promise<string[]>;
}

export interface Differential {
  readonly rabbit: RabbitNode;
  readonly thumper: ThumperServer;
  /** Runs the scenario once on one endpoint, with a fresh run suffix; closes its connections after. */
  run<T>(endpoint: Endpoint, scenario: (side: Side) => Promise<T>): Promise<T>;
  /** Runs the scenario on RabbitMQ's Web-STOMP, then on Thumper. */
  both<T>(scenario: (side: Side) => Promise<T>): Promise<{ rabbitmq: T; thumper: T }>;
  /** both(), then deepEqual(thumper, rabbitmq). Returns both (equal) observations. */
  compare<T>(scenario: (side: Side) => Promise<T>, message?: string): Promise<{ rabbitmq: T; thumper: T }>;
  stop(): Promise<void>;
}

/**
 * `rabbitmq`: RabbitMQ's Web-STOMP; `rabbitmq-tcp`: RabbitMQ's STOMP plugin over TCP (for the fatal
 * errors whose ERROR Web-STOMP 3.10.8 loses, rabbitmq-server #6737); `thumper`: Thumper's /ws.
 */
export type Endpoint = 'rabbitmq' | 'rabbitmq-tcp' | 'thumper';

/** Undefined when the node has no Web-STOMP or STOMP listener (an external node without them). */
export async function startDifferential(thumperEnv: Record<string, string> = {}): Promise<Differential | undefined> {
  const rabbit = await useRabbit();
  if (rabbit.webStompUrl === undefined || rabbit.stompPort === undefined || rabbit.managementUrl === undefined) {
    await rabbit.stop();
    return undefined;
  }
  const webStompUrl = rabbit.webStompUrl;
  const stompPort = rabbit.stompPort;
  const managementUrl = rabbit.managementUrl;
  const thumper = await startThumper({ THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl, ...thumperEnv });
  const model: ChannelModel = await amqp.connect(rabbit.amqpUrl);

  const makeSide = (name: Endpoint, wsUrl: string, tcpPort?: number): { side: Side; finish(): Promise<void> } => {
    const run = `${name === 'thumper' ? 't' : 'r'}${randomBytes(4).toString('hex')}`;
    const conns: StompConn[] = [];
    const queues = new Set<string>();
    const open = async (options: WsConnOptions = {}): Promise<StompConn> => {
      const conn = tcpPort === undefined ? await connectWs(wsUrl, options) : await connectTcp(tcpPort, options);
      conns.push(conn);
      return conn;
    };
    const withChannel = async <T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> => {
      const ch = await model.createChannel();
      ch.on('error', () => {});
      try {
        return await fn(ch);
      } finally {
        await ch.close().catch(() => {});
      }
    };
    const side: Side = {
      name,
      wsUrl,
      run,
      amqpUrl: rabbit.amqpUrl,
      open,
      async session(options = {}) {
        const conn = await open(options);
        await login(conn, options);
        return conn;
      },
      norm: (frames, options = {}) => normalizeAll(frames, { ...options, aliases: { ...options.aliases, [run]: 'RUN' } }),
      alias: (text) => text.split(run).join('RUN'),
      withChannel,
      cleanupQueue: (...names) => names.forEach((n) => queues.add(n)),
      queueInfo: async (queueName) => (await rabbit.listQueues('/')).find((q) => q.name === queueName),
      queuesBoundTo: (exchange, routingKey) => queuesBoundTo(managementUrl, exchange, routingKey),
    };
    const finish = async (): Promise<void> => {
      await Promise.all(conns.map((c) => c.close()));
      for (const q of queues) await withChannel((ch) => ch.deleteQueue(q)).catch(() => {});
    };
    return { side, finish };
  };

  const run = async <T>(endpoint: Endpoint, scenario: (side: Side) => Promise<T>): Promise<T> => {
    const { side, finish } =
      endpoint === 'thumper'
        ? makeSide(endpoint, thumper.wsUrl)
        : endpoint === 'rabbitmq'
          ? makeSide(endpoint, webStompUrl)
          : makeSide(endpoint, `tcp://127.0.0.1:${stompPort}`, stompPort);
    try {
      return await scenario(side);
    } catch (err) {
      throw new Error(`[${endpoint}] ${(err as Error).message}`, { cause: err });
    } finally {
      await finish();
    }
  };

  const both = async <T>(scenario: (side: Side) => Promise<T>): Promise<{ rabbitmq: T; thumper: T }> => {
    const rabbitmq = await run('rabbitmq', scenario);
    const thumperResult = await run('thumper', scenario);
    return { rabbitmq, thumper: thumperResult };
  };

  return {
    rabbit,
    thumper,
    run,
    both,
    async compare(scenario, message) {
      const result = await both(scenario);
      assert.deepEqual(result.thumper, result.rabbitmq, message ?? 'Thumper (actual) differs from RabbitMQ Web-STOMP (expected)');
      return result;
    },
    async stop() {
      await thumper.stop();
      await model.close().catch(() => {});
      await rabbit.stop();
    },
  };
}

async function queuesBoundTo(managementUrl: string, exchange: string, routingKey: string): Promise<string[]> {
  const url = new URL(`/api/exchanges/${encodeURIComponent('/')}/${encodeURIComponent(exchange)}/bindings/source`, managementUrl);
  const res = await fetch(url, {
    headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET ${url.pathname} → ${res.status} ${await res.text()}`);
  const bindings = (await res.json()) as Array<{ destination: string; destination_type: string; routing_key: string }>;
  return bindings.filter((b) => b.destination_type === 'queue' && b.routing_key === routingKey).map((b) => b.destination);
}

/** The queue properties a differential test compares (the name is compared separately). */
export function queueShape(q: QueueInfo | undefined): Omit<QueueInfo, 'name'> | undefined {
  if (q === undefined) return undefined;
  return { durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive, arguments: q.arguments };
}

/**
 * RabbitMQ's durable subscription queue name (reference §1.4), computed independently of Thumper:
 * `stomp-subscription-` + base64url(MD5(term_to_binary({Name, Id}))) with both as Erlang strings.
 */
export function durableSubscriptionQueue(name: string, id: string): string {
  const erlString = (s: string): Buffer => {
    const bytes = Buffer.from(s, 'latin1');
    if (bytes.length === 0) return Buffer.from([0x6a]);
    const head = Buffer.from([0x6b, bytes.length >> 8, bytes.length & 0xff]);
    return Buffer.concat([head, bytes]);
  };
  const etf = Buffer.concat([Buffer.from([0x83, 0x68, 0x02]), erlString(name), erlString(id)]);
  return `stomp-subscription-${createHash('md5').update(etf).digest('base64url')}`;
}

/**
 * Registers this test file's before/after hooks (one differential rig per file) and returns the
 * accessor each test calls: the rig, or a skip when the node lacks RabbitMQ's STOMP listeners.
 */
/** `thumperEnv`: extra THUMPER_* settings for the Thumper side. */
export function useDifferential(thumperEnv: Record<string, string> = {}): (t: TestContext) => Differential | undefined {
  let diff: Differential | undefined;
  before(async () => {
    diff = await startDifferential(thumperEnv);
  });
  after(async () => {
    await diff?.stop();
  });
  return (t) => {
    if (diff === undefined) t.skip('the RabbitMQ node has no Web-STOMP/STOMP/management listener');
    return diff;
  };
}

/** The next `count` MESSAGE frames of one subscription. */
export async function messages(conn: StompConn, subscription: string, count: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < count; i++) out.push(await conn.next(isMessageFor(subscription)));
  return out;
}
