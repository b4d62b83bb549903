// Losing RabbitMQ under live STOMP sessions (amqp.onConnectionLoss). Each test runs its own private
// node or cluster (never the shared dev node): a node is killed with SIGKILL and restarted on its
// data, or a cluster member is killed and Thumper moves to the other URL. With `restore` the same
// STOMP connections keep their subscriptions, un-acked messages come again with redelivered:true,
// every SEND that got a RECEIPT is in RabbitMQ afterwards and a SEND in flight gets an ERROR; with
// `close` every session gets the ERROR telling the client to reconnect.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import pino from 'pino';
import { startRabbitNode, useRabbit, type PrivateRabbitNode, type RabbitNode } from '../harness/rabbitmq.js';
import { startRabbitCluster, type RabbitCluster } from '../harness/rabbitmq-cluster.js';
import { connectWs, isError, isMessageFor, isReceipt, login, sleep } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';
import { getHeader, type Frame } from '../../broker/src/stomp/frame.js';
import { CONNECTION_LOST_DETAIL } from '../../broker/src/engine/amqp/amqp-errors.js';
import { AmqpEngine, type AmqpEngineOptions } from '../../broker/src/engine/amqp/amqp-engine.js';
import { EngineError, type EngineSession } from '../../broker/src/engine/engine.js';
import type { Delivery } from '../../broker/src/engine/message.js';
import type { StompError } from '../../broker/src/errors.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const SUITE = { timeout: 300_000 };
const run = randomBytes(4).toString('hex');

function thumperEnv(urls: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    THUMPER_ENGINE: 'amqp',
    THUMPER_AMQP_URL: urls,
    THUMPER_AMQP_RECONNECT_INITIAL_MS: '50',
    THUMPER_AMQP_RECONNECT_MAX_MS: '500',
    THUMPER_AMQP_HEARTBEAT_SECONDS: '5',
    THUMPER_AMQP_RESTORE_TIMEOUT_MS: '120000',
    ...extra,
  };
}

async function client(gateway: ThumperServer, conns: StompConn[]): Promise<StompConn> {
  const conn = await connectWs(gateway.wsUrl);
  conns.push(conn);
  // No heart-beats: the test holds connections idle across a broker restart.
  await login(conn, { heartBeat: '0,0' });
  return conn;
}

/** Declares through amqplib straight to `url` (a queue declared so lives on that node). */
async function withChannel<T>(url: string, fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    return await fn(ch);
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Takes every message out of `queue` (bounded), returning the bodies. */
async function drain(url: string, queue: string): Promise<string[]> {
  return withChannel(url, async (ch) => {
    const bodies: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const msg = await ch.get(queue, { noAck: true });
      if (msg === false) break;
      bodies.push(msg.content.toString());
    }
    return bodies;
  });
}

/**
 * Publishes `body-n` through `sender` every 250 ms until `receiver` gets one on `subscription`
 * (bounded): a restored subscription queue only takes what is published after its restore.
 */
async function deliveredAgain(sender: StompConn, destination: string, receiver: StompConn, subscription: string): Promise<Frame> {
  for (let i = 0; i < 120; i++) {
    sender.send('SEND', { destination }, `after-restore-${i}`);
    const got = receiver.untaken().find(isMessageFor(subscription));
    if (got !== undefined) return receiver.waitFor((f) => f === got);
    await sleep(250);
  }
  return receiver.waitFor(isMessageFor(subscription), 1000);
}

/** A connection named by Thumper (connection_name "Thumper …") to `node`'s AMQP port. */
async function thumperConnectedTo(node: { amqpUrl: string; rabbitmqctl(...args: string[]): Promise<string> }): Promise<boolean> {
  const port = new URL(node.amqpUrl).port;
  const rows = await node.rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'port', 'client_properties');
  return rows.split('\n').some((row) => row.startsWith(`${port}\t`) && row.includes('Thumper'));
}

/** Polls `cond` every 100 ms, at most `ms`. */
async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  for (let i = 0; i < Math.ceil(ms / 100); i++) {
    if (await cond()) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('RabbitMQ killed and restarted under live sessions (one private node)', SUITE, () => {
  let node: PrivateRabbitNode;
  const conns: StompConn[] = [];
  const gateways: ThumperServer[] = [];

  before(async () => {
    node = await startRabbitNode();
    await withChannel(node.amqpUrl, async (ch) => {
      await ch.assertExchange('feed', 'topic', { durable: true });
    });
  });

  after(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    for (const g of gateways) await g.stop().catch(() => {});
    await node?.stop();
  });

  test('restore: the same connections keep every subscription; receipts mean stored; in-flight SENDs get an ERROR', async () => {
    const gateway = await startThumper(thumperEnv(node.amqpUrl, { THUMPER_AMQP_BLOCKED_PUBLISH_TIMEOUT_MS: '120000' }));
    gateways.push(gateway);
    const work = `fo-work-${run}`;
    const store = `fo-store-${run}`;
    const topic = `/topic/fo-news-${run}`;
    const feed = `/exchange/feed/fo-${run}`;

    const sub = await client(gateway, conns);
    await sub.request('SUBSCRIBE', { id: 't', destination: topic });
    await sub.request('SUBSCRIBE', { id: 'f', destination: feed });
    await sub.request('SUBSCRIBE', { id: 'q', destination: `/queue/${work}`, ack: 'client-individual' });
    const pub = await client(gateway, conns);
    await pub.request('SUBSCRIBE', { id: 'store-declare', destination: `/queue/${store}` });
    await pub.request('UNSUBSCRIBE', { id: 'store-declare' });

    // One un-acked client-mode delivery, and three SENDs with receipts before the crash.
    await pub.request('SEND', { destination: `/queue/${work}`, persistent: 'true' }, 'unacked-1');
    const first = await sub.waitFor(isMessageFor('q'), 10_000);
    assert.equal(first.body.toString(), 'unacked-1');
    assert.equal(getHeader(first, 'redelivered'), 'false');
    const receipted: string[] = [];
    for (const body of ['stored-1', 'stored-2', 'stored-3']) {
      await pub.request('SEND', { destination: `/queue/${store}`, persistent: 'true' }, body);
      receipted.push(body);
    }
    pub.send('SEND', { destination: topic }, 'before');
    assert.equal((await sub.waitFor(isMessageFor('t'), 10_000)).body.toString(), 'before');

    // A temporary queue is server-named: its session cannot be restored.
    const temp = await client(gateway, conns);
    await temp.request('SEND', { destination: `/queue/${store}`, 'reply-to': '/temp-queue/replies', persistent: 'true' }, 'stored-4');
    receipted.push('stored-4');

    // A SEND in flight at the crash: a memory alarm holds its publish (RabbitMQ blocks publishers).
    await node.rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
    await waitUntil('the alarm to block connections', async () =>
      (await node.rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'state')).includes('block'),
    );
    const inFlight = await client(gateway, conns);
    inFlight.send('SEND', { destination: `/queue/${store}`, persistent: 'true', receipt: 'in-flight' }, 'in-flight');
    await sleep(500);
    assert.equal(inFlight.untaken().filter((f) => f.command === 'RECEIPT').length, 0, 'held by the alarm');

    // The durable queue's declaration must not be lost with the kill (RabbitMQ's window, not Thumper's).
    await node.syncMetadata();
    await node.kill();
    const inFlightError = await inFlight.waitFor(isError, 30_000);
    assert.equal(getHeader(inFlightError, 'message'), 'Broker unavailable');
    const tempError = await temp.waitFor(isError, 30_000);
    assert.match(tempError.body.toString(), /server-named queue 'amq\.gen-[^']+'.*reconnect/);

    // Sent while RabbitMQ is down: waits for the restore, then is confirmed.
    pub.send('SEND', { destination: `/queue/${store}`, persistent: 'true', receipt: 'outage' }, 'during-outage');
    await node.restart();
    await pub.waitFor(isReceipt('outage'), 60_000);
    receipted.push('during-outage');

    // The same STOMP connections, no reconnect: each subscription delivers again.
    const again = await sub.waitFor(isMessageFor('q'), 60_000);
    assert.equal(again.body.toString(), 'unacked-1');
    assert.equal(getHeader(again, 'redelivered'), 'true');
    assert.match((await deliveredAgain(pub, topic, sub, 't')).body.toString(), /^after-restore-/);
    assert.match((await deliveredAgain(pub, feed, sub, 'f')).body.toString(), /^after-restore-/);
    // Acking the pre-crash copy is harmless (dropped: RabbitMQ already requeued it); the new one settles it.
    sub.send('ACK', { id: getHeader(first, 'ack') ?? '' });
    await sub.request('ACK', { id: getHeader(again, 'ack') ?? '' });
    assert.equal(sub.untaken().filter(isError).length, 0);
    assert.equal(pub.untaken().filter(isError).length, 0);
    assert.equal(sub.isClosed, false);

    // Every SEND that got a RECEIPT is in the durable queue.
    await sub.request('UNSUBSCRIBE', { id: 'q' });
    const stored = await drain(node.amqpUrl, store);
    for (const body of receipted) assert.ok(stored.includes(body), `${body} missing from ${JSON.stringify(stored)}`);
    const workLeft = await drain(node.amqpUrl, work);
    assert.deepEqual(workLeft, [], 'the redelivered message was acked once');

    // sub and pub were restored; temp (server-named queue) and inFlight (a SEND in flight) were not.
    const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    assert.match(metrics, /^thumper_amqp_session_restores_total\{result="restored"\} 2$/m);
    assert.match(metrics, /^thumper_amqp_session_restores_total\{result="failed"\} 2$/m);
    await gateway.stop();
  });

  test('close: every session gets the ERROR telling the client to reconnect', async () => {
    const gateway = await startThumper(thumperEnv(node.amqpUrl, { THUMPER_AMQP_ON_CONNECTION_LOSS: 'close' }));
    gateways.push(gateway);
    const a = await client(gateway, conns);
    await a.request('SUBSCRIBE', { id: 't', destination: `/topic/fo-close-${run}` });
    // b holds a channel (its SEND declared a queue); a only a shared subscription. A session that
    // holds nothing on RabbitMQ has nothing to lose and is not told.
    const b = await client(gateway, conns);
    await b.request('SEND', { destination: `/queue/fo-close-${run}` }, 'x');
    await node.kill();
    for (const c of [a, b]) {
      const error = await c.waitFor(isError, 30_000);
      assert.equal(getHeader(error, 'message'), 'Broker unavailable');
      assert.equal(error.body.toString(), CONNECTION_LOST_DETAIL);
      await c.waitClosed(10_000);
    }
    await node.restart();
    await gateway.stop();
  });
});

describe('a two-node cluster loses the node Thumper uses', SUITE, () => {
  let cluster: RabbitCluster;
  const conns: StompConn[] = [];
  let gateway: ThumperServer | undefined;

  before(async () => {
    cluster = await startRabbitCluster(2);
  });

  after(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    await gateway?.stop().catch(() => {});
    await cluster?.stop();
  });

  test('subscriptions on queues B holds and /topic are restored on B; a durable classic queue homed on A fails clearly', async () => {
    const [a, b] = cluster.nodes;
    assert.ok(a !== undefined && b !== undefined);
    const onB = `fo-on-b-${run}`;
    const onA = `fo-on-a-${run}`;
    // Declared over a connection to B, so B is its home node (client-local leader locator).
    await withChannel(b.amqpUrl, async (ch) => {
      await ch.assertQueue(onB, { durable: true });
    });
    gateway = await startThumper(thumperEnv(`${a.amqpUrl},${b.amqpUrl}`));
    const sub = await client(gateway, conns);
    await sub.request('SUBSCRIBE', { id: 'b', destination: `/queue/${onB}`, ack: 'client' });
    await sub.request('SUBSCRIBE', { id: 't', destination: `/topic/fo-cluster-${run}` });
    // Declared through Thumper, which is connected to A: A is its home.
    const doomed = await client(gateway, conns);
    await doomed.request('SUBSCRIBE', { id: 'a', destination: `/queue/${onA}` });
    const pub = await client(gateway, conns);
    await pub.request('SEND', { destination: `/queue/${onB}` }, 'before');
    const held = await sub.waitFor(isMessageFor('b'), 10_000);
    assert.equal(held.body.toString(), 'before');
    assert.ok(await thumperConnectedTo(a), 'Thumper uses A');

    await a.kill();
    const error = await doomed.waitFor(isError, 60_000);
    assert.equal(getHeader(error, 'message'), 'Broker unavailable');
    const text = error.body.toString();
    assert.match(text, /could not restore the subscriptions/);
    assert.match(text, new RegExp(`NOT_FOUND - home node '${a.nodeName}' of durable queue '${onA}' in vhost '/' is down or inaccessible`));

    const again = await sub.waitFor(isMessageFor('b'), 60_000);
    assert.equal(again.body.toString(), 'before');
    assert.equal(getHeader(again, 'redelivered'), 'true');
    assert.match((await deliveredAgain(pub, `/queue/${onB}`, sub, 'b')).body.toString(), /^after-restore-/);
    assert.match((await deliveredAgain(pub, `/topic/fo-cluster-${run}`, sub, 't')).body.toString(), /^after-restore-/);
    assert.equal(sub.untaken().filter(isError).length, 0);
    assert.ok(await thumperConnectedTo(b), 'Thumper moved to B');
  });
});

// The engine itself across an outage it cannot see the end of: a TCP proxy in front of the shared
// dev node is cut and restored (the node itself is untouched), in a vhost of this run's own.
describe('AMQP engine sessions across a lost connection (a cut proxy, not a dead node)', SUITE, () => {
  const log = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
  let rabbit: RabbitNode;
  let proxy: TcpProxy;
  const vhost = `thumper-failover-${run}`;

  before(async () => {
    rabbit = await useRabbit();
    await rabbit.rabbitmqctl('add_vhost', vhost);
    await rabbit.rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    proxy = await startTcpProxy(Number(new URL(rabbit.amqpUrl).port));
  });

  after(async () => {
    await proxy?.stop();
    await rabbit?.rabbitmqctl('delete_vhost', vhost).catch(() => {});
    await rabbit?.stop();
  });

  function engine(overrides: Partial<AmqpEngineOptions> = {}): AmqpEngine {
    const viaProxy = new URL(rabbit.amqpUrl);
    viaProxy.port = String(proxy.port);
    return new AmqpEngine(
      {
        urls: [viaProxy.toString()],
        channelsPerConnection: 500,
        heartbeatSeconds: 5,
        connectionName: 'thumper-failover-test',
        reconnect: { initialMs: 20, maxMs: 200 },
        // These sessions are the channel-backed ones (a shared-subscription session opens its channel
        // only when a call needs one, and has nothing to restore before that).
        sharedSubscriptions: false,
        ...overrides,
      },
      log,
    );
  }

  async function open(e: AmqpEngine): Promise<{ s: EngineSession; closed: StompError[] }> {
    const closed: StompError[] = [];
    const s = await e.openSession({ vhost, username: 'tester', sessionId: 'failover', log }, { onClosed: (err) => closed.push(err), onCancelled: () => {} });
    return { s, closed };
  }

  /** Publishes straight to the node (not through the proxy) into `queue` in this vhost. */
  async function publishDirect(queue: string, body: string): Promise<void> {
    const url = new URL(rabbit.amqpUrl);
    url.pathname = `/${encodeURIComponent(vhost)}`;
    const conn = await amqp.connect(url.toString());
    try {
      const ch = await conn.createConfirmChannel();
      ch.sendToQueue(queue, Buffer.from(body));
      await ch.waitForConfirms();
    } finally {
      await conn.close().catch(() => {});
    }
  }

  test('calls made while restoring wait and run on the new channel; tags continue; old tags are dropped', async () => {
    const e = engine();
    await e.start();
    try {
      const { s, closed } = await open(e);
      const queue = `fo-engine-${run}`;
      await s.declareQueue({ name: queue, durable: true, autoDelete: false, exclusive: false, arguments: {} });
      const deliveries: Delivery[] = [];
      const tag = await s.consume(queue, { noAck: false, args: {} }, (d) => deliveries.push(d));
      await publishDirect(queue, 'one');
      await waitUntil('the first delivery', () => deliveries.length === 1);
      assert.equal(deliveries[0]?.deliveryTag, 1);

      await proxy.stop();
      await sleep(200);
      const declared = s.declareQueue({ name: `${queue}-late`, durable: false, autoDelete: false, exclusive: false, arguments: {} });
      // An ack of a delivery of the lost channel: dropped, RabbitMQ requeued it.
      s.ack(1, false);
      await proxy.restart();
      assert.equal(await declared, `${queue}-late`);

      // 'one' was never acked on a live channel: it comes again, redelivered, under a new tag.
      await waitUntil('the redelivery', () => deliveries.length === 2);
      const again = deliveries[1];
      assert.equal(again?.body.toString(), 'one');
      assert.equal(again?.redelivered, true);
      assert.equal(again?.consumerTag, tag, 'the same consumer tag on the new channel');
      assert.ok((again?.deliveryTag ?? 0) > 1, `tag ${again?.deliveryTag} continues the sequence`);
      s.ack(again?.deliveryTag ?? 0, false);
      await publishDirect(queue, 'two');
      await waitUntil('a new delivery', () => deliveries.length === 3);
      assert.equal(deliveries[2]?.redelivered, false);
      s.ack(deliveries[2]?.deliveryTag ?? 0, true);
      await s.deleteQueue(`${queue}-late`);
      await s.deleteQueue(queue);
      assert.deepEqual(closed, []);
      await s.close();
    } finally {
      await e.stop();
    }
  });

  test('not restored within amqp.restoreTimeoutMs: one onClosed saying so; calls waiting reject with it', async () => {
    const e = engine({ restoreTimeoutMs: 300 });
    await e.start();
    try {
      const { s, closed } = await open(e);
      await proxy.stop();
      await sleep(100);
      const waiting = s.setPrefetch(5).then(
        () => undefined,
        (err: unknown) => err,
      );
      await waitUntil('onClosed', () => closed.length === 1, 10_000);
      assert.equal(closed[0]?.code, 'ENGINE_UNAVAILABLE');
      assert.match(closed[0]?.detail ?? '', /could not restore the subscriptions \(not restored within 300 ms\); reconnect/);
      const err = await waiting;
      assert.ok(err instanceof EngineError);
      assert.equal(err.error.detail, closed[0]?.detail);
      await s.close();
      assert.equal(closed.length, 1);
    } finally {
      await proxy.restart();
      await e.stop();
    }
  });

  test('close() while restoring ends the session quietly; engine stop while restoring reports SERVER_SHUTDOWN', async () => {
    const e = engine();
    await e.start();
    try {
      const quiet = await open(e);
      const stopped = await open(e);
      await proxy.stop();
      await sleep(200);
      await quiet.s.close();
      assert.deepEqual(quiet.closed, []);
      await e.stop();
      assert.equal(stopped.closed.length, 1);
      assert.equal(stopped.closed[0]?.code, 'SERVER_SHUTDOWN');
    } finally {
      await proxy.restart();
      await e.stop();
    }
  });
});

