// Dead peers (issue 6, item 5), against RabbitMQ through the amqp engine: a client that goes silent
// with the socket still open, a peer behind a half-open TCP connection (a user-space proxy that
// stops forwarding in both directions and never closes its socket towards Thumper), and a
// WebSocket client that stops answering pings. Each victim holds a /topic and an /exchange
// subscription (auto-delete queues) and a client-ack subscription on a durable /queue with one
// un-acked message. When Thumper detects the dead peer, the subscription queues are gone, the
// durable queue has no consumer and its message is ready again, redelivered to the next consumer.
// Where nothing can detect the peer (no heart-beats, raw TCP, the peer's kernel still answering),
// the test shows the session stays, and is released as soon as the socket really closes.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { WebSocket } from 'ws';
import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { connectTcp, connectWs, describeFrame, isMessageFor, login, sleep, withDeadline } from '../helpers/stomp-script.js';
import type { FramePredicate, HeaderInput, StompConn } from '../helpers/stomp-script.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const SUITE = { timeout: 240_000 };
const RUN = randomBytes(4).toString('hex');
const FEED_EXCHANGE = `dead-peers-feed-${RUN}`;
const WS_PING_INTERVAL_MS = 500;
const TCP_KEEP_ALIVE_MS = 1000;
const HEART_BEAT_TOLERANCE = 2;
/** Detection needs at most tolerance + 1 receive intervals of 1 s (or two ping intervals); the rest is margin. */
const DETECTION_DEADLINE_MS = 15_000;
const RELEASE_DEADLINE_MS = 15_000;

/** The part of a STOMP client the scripts below use; StompConn has it, and so has PinglessWs. */
type Client = Pick<StompConn, 'send' | 'next'>;

/**
 * A WebSocket STOMP client whose `ws` does not answer pings (autoPong: false): a process that is
 * stuck, or a browser tab frozen in the background. Frames are decoded with Thumper's decoder.
 */
class PinglessWs implements Client {
  readonly #ws: WebSocket;
  readonly #decoder = new StompDecoder({ maxFrameBytes: 1024 * 1024 });
  readonly #frames: Frame[] = [];
  readonly closed: Promise<number>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#decoder.setVersion('1.2');
    this.#decoder.setAuthenticated();
    ws.on('message', (data: Buffer) => {
      for (const event of this.#decoder.push(Buffer.from(data)).events) if (event.type === 'frame') this.#frames.push(event.frame);
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
  }

  static async open(url: string): Promise<PinglessWs> {
    const ws = new WebSocket(url, ['v12.stomp'], { autoPong: false });
    ws.binaryType = 'nodebuffer';
    const conn = new PinglessWs(ws);
    await withDeadline(once(ws, 'open'), 5000, 'WebSocket did not open');
    return conn;
  }

  send(command: string, headers: HeaderInput = [], body: string | Buffer = ''): void {
    const lines = (Array.isArray(headers) ? headers : Object.entries(headers)) as Array<readonly [string, string]>;
    this.#ws.send(`${command}\n${lines.map(([k, v]) => `${k}:${v}\n`).join('')}\n${body.toString()}\0`);
  }

  async next(pred: FramePredicate = () => true, deadlineMs = 5000): Promise<Frame> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const index = this.#frames.findIndex(pred);
      if (index >= 0) return this.#frames.splice(index, 1)[0]!;
      if (Date.now() > until) throw new Error(`no matching frame within ${deadlineMs} ms; got ${this.#frames.map(describeFrame).join(' | ')}`);
      await sleep(20);
    }
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

/**
 * One client connection through a user-space TCP proxy. blackHole() stops forwarding both ways;
 * bytes Thumper sends are then read and kept (so the test sees what Thumper said), the socket
 * towards Thumper is never ended, and a FIN from Thumper is not answered: to Thumper the peer is
 * half-open, while the proxy's kernel keeps ACKing, as a peer's kernel does when its process hangs.
 */
interface HalfOpenProxy {
  readonly port: number;
  blackHole(): void;
  /** What Thumper sent after blackHole(). */
  discarded(): string;
  /** Thumper ended its side (FIN), which the proxy does not answer. */
  readonly thumperEnded: Promise<void>;
  /** The peer finally vanishes for good: resets the socket towards Thumper. */
  resetUpstream(): void;
  stop(): Promise<void>;
}

async function startHalfOpenProxy(targetPort: number): Promise<HalfOpenProxy> {
  let forwarding = true;
  const discarded: Buffer[] = [];
  let upstream: Socket | undefined;
  let client: Socket | undefined;
  let markEnded!: () => void;
  const thumperEnded = new Promise<void>((resolve) => (markEnded = resolve));
  const server: Server = createNetServer({ allowHalfOpen: true }, (accepted) => {
    if (client) {
      accepted.destroy(); // one connection per proxy
      return;
    }
    client = accepted;
    const up = netConnect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    upstream = up;
    accepted.on('error', () => {});
    up.on('error', () => {});
    accepted.on('data', (chunk: Buffer) => {
      if (forwarding) up.write(chunk);
    });
    up.on('data', (chunk: Buffer) => {
      if (forwarding) accepted.write(chunk);
      else discarded.push(chunk);
    });
    accepted.on('end', () => {
      if (forwarding) up.end();
    });
    up.on('end', () => {
      markEnded();
      if (forwarding) accepted.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    blackHole() {
      forwarding = false;
    },
    discarded: () => Buffer.concat(discarded).toString('utf8'),
    thumperEnded,
    resetUpstream() {
      upstream?.resetAndDestroy();
    },
    async stop() {
      upstream?.destroy();
      client?.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

describe('dead peers: detected, and their RabbitMQ queues and consumers released', SUITE, () => {
  let rabbit: RabbitNode;
  let thumper: ThumperServer;
  let amqpModel: ChannelModel;
  let feeder: Channel;
  const cleanups: Array<() => Promise<unknown>> = [];
  const durableQueues: string[] = [];

  before(async () => {
    rabbit = await useRabbit();
    thumper = await startThumper({
      THUMPER_ENGINE: 'amqp',
      THUMPER_AMQP_URL: rabbit.amqpUrl,
      THUMPER_WS_PING_INTERVAL_MS: String(WS_PING_INTERVAL_MS),
      THUMPER_TCP_KEEP_ALIVE_MS: String(TCP_KEEP_ALIVE_MS),
      THUMPER_STOMP_HEART_BEAT_TOLERANCE: String(HEART_BEAT_TOLERANCE),
    });
    amqpModel = await amqp.connect(rabbit.amqpUrl);
    feeder = await amqpModel.createChannel();
    await feeder.assertExchange(FEED_EXCHANGE, 'topic', { durable: false, autoDelete: false });
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    for (const name of durableQueues) await feeder?.deleteQueue(name).catch(() => {});
    await feeder?.deleteExchange(FEED_EXCHANGE).catch(() => {});
    await amqpModel?.close().catch(() => {});
    await thumper?.stop();
    await rabbit?.stop();
  });

  /** Consumers and ready messages of a queue, or undefined when it does not exist (checked over AMQP: exact, not sampled). */
  const queueState = async (name: string): Promise<{ consumers: number; ready: number } | undefined> => {
    const channel = await amqpModel.createChannel();
    channel.on('error', () => {});
    try {
      const q = await channel.checkQueue(name);
      await channel.close();
      return { consumers: q.consumerCount, ready: q.messageCount };
    } catch (e) {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    }
  };

  /** The queue bound to `exchange` with `routingKey` (a subscription queue: its name is random). */
  const boundQueue = async (exchange: string, routingKey: string): Promise<string> => {
    const url = new URL(`/api/exchanges/%2F/${encodeURIComponent(exchange)}/bindings/source`, rabbit.managementUrl);
    const res = await fetch(url, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(res.status, 200, `GET ${url.pathname}`);
    const bindings = (await res.json()) as Array<{ destination: string; routing_key: string }>;
    const found = bindings.filter((b) => b.routing_key === routingKey).map((b) => b.destination);
    assert.equal(found.length, 1, `one queue bound to ${exchange} with ${routingKey}: ${found.join(', ')}`);
    return found[0]!;
  };

  /** Polls `check` (bounded in count and time) until it returns true. */
  const eventually = async (what: string, check: () => Promise<boolean>, deadlineMs = RELEASE_DEADLINE_MS): Promise<void> => {
    const until = Date.now() + deadlineMs;
    for (let i = 0; i < 1000; i++) {
      if (await check()) return;
      if (Date.now() > until) break;
      await sleep(100);
    }
    assert.fail(`${what}: not within ${deadlineMs} ms`);
  };

  /** thumper_sessions_closed_total for one close reason: which mechanism ended a session. */
  const closedFor = async (reason: string): Promise<number> => {
    const text = await (await fetch(`${thumper.httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const line = text.split('\n').find((l) => l.startsWith(`thumper_sessions_closed_total{reason="${reason}"} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };

  interface Armed {
    readonly topicQueue: string;
    readonly exchangeQueue: string;
    readonly durableQueue: string;
  }

  /** CONNECT, three subscriptions, one un-acked message on the durable queue; resources checked. */
  const arm = async (conn: Client, tag: string, heartBeat: string): Promise<Armed> => {
    conn.send('CONNECT', [['accept-version', '1.2'], ['host', '/'], ['login', 'guest'], ['passcode', 'guest'], ['heart-beat', heartBeat]]);
    const connected = await conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
    assert.equal(connected.command, 'CONNECTED', describeFrame(connected));
    const durableQueue = `dead-peers-${tag}`;
    durableQueues.push(durableQueue);
    const subscriptions = [
      ['t', `/topic/dead-peers-${tag}`, 'auto'],
      ['e', `/exchange/${FEED_EXCHANGE}/${tag}`, 'auto'],
      ['q', `/queue/${durableQueue}`, 'client'],
    ] as const;
    for (const [id, destination, ack] of subscriptions) {
      conn.send('SUBSCRIBE', [['id', id], ['destination', destination], ['ack', ack], ['receipt', `sub-${id}`]]);
      const reply = await conn.next((f) => f.command === 'ERROR' || (f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === `sub-${id}`));
      assert.equal(reply.command, 'RECEIPT', describeFrame(reply));
    }
    feeder.sendToQueue(durableQueue, Buffer.from(`held-${tag}`));
    const held = await conn.next(isMessageFor('q'));
    assert.equal(held.body.toString(), `held-${tag}`);
    const armed = {
      topicQueue: await boundQueue('amq.topic', `dead-peers-${tag}`),
      exchangeQueue: await boundQueue(FEED_EXCHANGE, tag),
      durableQueue,
    };
    assert.ok(await queueState(armed.topicQueue), 'the /topic subscription queue exists');
    assert.ok(await queueState(armed.exchangeQueue), 'the /exchange subscription queue exists');
    assert.deepEqual(await queueState(durableQueue), { consumers: 1, ready: 0 }, 'one consumer, the message un-acked');
    return armed;
  };

  /** The session's RabbitMQ resources are released, and the held message goes to the next consumer. */
  const expectReleased = async (armed: Armed, tag: string): Promise<void> => {
    await eventually('subscription queues deleted, durable queue without consumer and its message ready', async () => {
      const [topic, exchange, durable] = await Promise.all([
        queueState(armed.topicQueue),
        queueState(armed.exchangeQueue),
        queueState(armed.durableQueue),
      ]);
      return topic === undefined && exchange === undefined && durable?.consumers === 0 && durable.ready === 1;
    });
    const next = await connectWs(thumper.wsUrl);
    cleanups.push(() => next.close());
    await login(next);
    next.send('SUBSCRIBE', [['id', 'again'], ['destination', `/queue/${armed.durableQueue}`], ['ack', 'client']]);
    const again = await next.next(isMessageFor('again'));
    assert.equal(again.body.toString(), `held-${tag}`);
    assert.equal(getHeader(again, 'redelivered'), 'true');
    await next.request('ACK', [['id', getHeader(again, 'ack') ?? '']]);
    await next.close();
  };

  /** The session is still there: its queues exist and the durable one still has its consumer. */
  const expectStillHeld = async (armed: Armed): Promise<void> => {
    assert.ok(await queueState(armed.topicQueue), 'the /topic subscription queue is still there');
    assert.ok(await queueState(armed.exchangeQueue), 'the /exchange subscription queue is still there');
    assert.deepEqual(await queueState(armed.durableQueue), { consumers: 1, ready: 0 });
  };

  describe('missed heart-beats: a client that goes silent with its socket open', () => {
    test('raw TCP, heart-beat:1000,1000: ERROR "Heart-beat timeout", closed, released', async () => {
      const tag = `tcp-silent-${RUN}`;
      const conn = await connectTcp(thumper.tcpPort!);
      cleanups.push(() => conn.close());
      const armed = await arm(conn, tag, '1000,1000');
      // From here the client sends nothing (no heart-beat EOLs); it still reads.
      const error = await conn.next((f) => f.command === 'ERROR', DETECTION_DEADLINE_MS);
      assert.equal(getHeader(error, 'message'), 'Heart-beat timeout');
      assert.match(error.body.toString(), /^No heart-beat from the client for \d+ ms$/);
      await conn.waitClosed(DETECTION_DEADLINE_MS);
      assert.ok(conn.heartbeats > 0, 'Thumper kept sending its own heart-beats');
      await expectReleased(armed, tag);
    });

    test('WebSocket, heart-beat:1000,1000, pings still answered by the client library: closed by the heart-beat check, released', async () => {
      const tag = `ws-silent-${RUN}`;
      const conn = await connectWs(thumper.wsUrl);
      cleanups.push(() => conn.close());
      const armed = await arm(conn, tag, '1000,1000');
      const error = await conn.next((f) => f.command === 'ERROR', DETECTION_DEADLINE_MS);
      assert.equal(getHeader(error, 'message'), 'Heart-beat timeout');
      const closed = await conn.waitClosed(DETECTION_DEADLINE_MS);
      assert.equal(closed.code, 1000);
      await expectReleased(armed, tag);
    });
  });

  describe('half-open TCP: the peer vanishes without FIN or RST', () => {
    test('with heart-beats: detected by the missed heart-beats, released', async () => {
      const tag = `half-open-hb-${RUN}`;
      const proxy = await startHalfOpenProxy(thumper.tcpPort!);
      cleanups.push(() => proxy.stop());
      const conn = await connectTcp(proxy.port);
      cleanups.push(() => conn.close());
      const armed = await arm(conn, tag, '1000,1000');
      const heartBeatClosesBefore = await closedFor('heartbeat-timeout');
      proxy.blackHole();
      await withDeadline(proxy.thumperEnded, DETECTION_DEADLINE_MS, 'Thumper did not end the half-open connection');
      assert.match(proxy.discarded(), /message:Heart-beat timeout/);
      assert.equal(await closedFor('heartbeat-timeout'), heartBeatClosesBefore + 1);
      await expectReleased(armed, tag);
    });

    test('without heart-beats (0,0): TCP keepalive cannot tell (the peer kernel answers), the session stays until the socket really goes', async () => {
      const tag = `half-open-no-hb-${RUN}`;
      const proxy = await startHalfOpenProxy(thumper.tcpPort!);
      cleanups.push(() => proxy.stop());
      const conn = await connectTcp(proxy.port);
      cleanups.push(() => conn.close());
      const armed = await arm(conn, tag, '0,0');
      proxy.blackHole();
      // Three keepalive idle times: the kernel probes the peer, and the peer's kernel ACKs them.
      await sleep(3 * TCP_KEEP_ALIVE_MS);
      await expectStillHeld(armed);
      assert.equal(proxy.discarded(), '', 'Thumper said nothing: it has no reason to think the peer gone');
      // When the connection finally breaks (here a reset), everything is released at once.
      proxy.resetUpstream();
      await expectReleased(armed, tag);
    });

    test('WebSocket without heart-beats: the ping sweep detects it, released', async () => {
      const tag = `half-open-ws-${RUN}`;
      const proxy = await startHalfOpenProxy(thumper.port);
      cleanups.push(() => proxy.stop());
      const conn = await connectWs(`ws://127.0.0.1:${proxy.port}/ws`);
      cleanups.push(() => conn.close());
      const armed = await arm(conn, tag, '0,0');
      proxy.blackHole();
      // terminate(): Thumper closes the socket without a closing handshake; its kernel sends the FIN.
      await withDeadline(proxy.thumperEnded, DETECTION_DEADLINE_MS, 'Thumper kept the half-open WebSocket');
      assert.equal(proxy.discarded().includes('ERROR'), false, 'no STOMP ERROR: the ping sweep closes below STOMP');
      await expectReleased(armed, tag);
    });
  });

  describe('WebSocket: a client that stops answering pings', () => {
    test('heart-beat:0,0 and no pongs: terminated after the ping interval, released', async () => {
      const tag = `ws-no-pong-${RUN}`;
      const conn = await PinglessWs.open(thumper.wsUrl);
      cleanups.push(async () => conn.terminate());
      const armed = await arm(conn, tag, '0,0');
      const code = await withDeadline(conn.closed, DETECTION_DEADLINE_MS, 'a client that answers no ping was kept');
      // terminate(): no closing handshake, so the client sees an abnormal closure.
      assert.equal(code, 1006);
      await expectReleased(armed, tag);
    });

    test('a client that answers no ping but keeps sending frames stays connected', async () => {
      const tag = `ws-no-pong-busy-${RUN}`;
      const conn = await PinglessWs.open(thumper.wsUrl);
      cleanups.push(async () => conn.terminate());
      const armed = await arm(conn, tag, '0,0');
      let closed = false;
      void conn.closed.then(() => (closed = true));
      // Any inbound message proves the peer alive: a SEND every 100 ms over six ping intervals.
      for (let i = 0; i < (6 * WS_PING_INTERVAL_MS) / 100; i++) {
        conn.send('SEND', [['destination', `/topic/dead-peers-busy-${tag}`]], `beat ${i}`);
        await sleep(100);
      }
      assert.equal(closed, false);
      await expectStillHeld(armed);
      conn.terminate();
      await expectReleased(armed, tag);
    });
  });
});
