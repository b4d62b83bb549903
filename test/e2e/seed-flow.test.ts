// The product's promise end to end, with real client libraries: browsers (here @stomp/stompjs v7 over
// the `ws` package) subscribe to their own routing key of the `feed` exchange through Thumper, a
// backend publishes over AMQP, each user gets exactly their messages in every open tab, and a
// browser can publish back to a backend consumer. Run once with Thumper bridged to RabbitMQ and once
// against the embedded engine (where a third STOMP client plays the backend).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { Client } from '@stomp/stompjs';
import type { IMessage, IStompSocket, StompHeaders } from '@stomp/stompjs';
import amqp from 'amqplib';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';
import { sleep, withDeadline } from '../helpers/stomp-script.js';

const DEADLINE_MS = 5000;

interface Browser {
  readonly client: Client;
  /** Every MESSAGE received, in order. */
  readonly received: IMessage[];
  subscribe(destination: string): Promise<void>;
  publish(destination: string, body: string, headers?: StompHeaders): Promise<void>;
  /** Waits (bounded) until `pred` holds for some received message. */
  waitFor(pred: (m: IMessage) => boolean): Promise<IMessage>;
  stop(): Promise<void>;
}

let receiptSeq = 0;

/** A stompjs Client as a browser tab would use it, connected to `url`. */
async function openBrowser(url: string): Promise<Browser> {
  const received: IMessage[] = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']) as unknown as IStompSocket,
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
    debug: () => {},
  });
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      client.onConnect = () => resolve();
      client.onStompError = (frame) => reject(new Error(`STOMP ERROR ${frame.headers['message'] ?? ''}: ${frame.body}`));
      client.onWebSocketError = () => reject(new Error(`WebSocket error on ${url}`));
      client.activate();
    }),
    DEADLINE_MS,
    `stompjs could not connect to ${url}`,
  );
  const withReceipt = (send: (receipt: string) => void): Promise<void> => {
    const receipt = `rcpt-${++receiptSeq}`;
    return withDeadline(
      new Promise<void>((resolve) => {
        client.watchForReceipt(receipt, () => resolve());
        send(receipt);
      }),
      DEADLINE_MS,
      `no RECEIPT ${receipt}`,
    );
  };
  return {
    client,
    received,
    subscribe: (destination) => withReceipt((receipt) => client.subscribe(destination, (m) => received.push(m), { receipt })),
    publish: (destination, body, headers = {}) => withReceipt((receipt) => client.publish({ destination, body, headers: { ...headers, receipt } })),
    async waitFor(pred) {
      for (let i = 0; i < DEADLINE_MS / 20; i++) {
        const found = received.find(pred);
        if (found) return found;
        await sleep(20);
      }
      throw new Error(`no matching message within ${DEADLINE_MS} ms; received: ${received.map((m) => m.body).join(' | ')}`);
    },
    stop: () => withDeadline(client.deactivate(), DEADLINE_MS, 'stompjs deactivate'),
  };
}

/** Messages of this run (the node may be shared with other test files using the same keys). */
const ofRun = (run: string) => (m: IMessage) => m.headers['x-run'] === run;

interface Tabs {
  readonly x1: Browser;
  readonly x2: Browser;
  readonly y: Browser;
}

async function openTabs(url: string): Promise<Tabs> {
  const [x1, x2, y] = await Promise.all([openBrowser(url), openBrowser(url), openBrowser(url)]);
  await x1.subscribe('/exchange/feed/user_x');
  await x2.subscribe('/exchange/feed/user_x');
  await y.subscribe('/exchange/feed/user_y');
  return { x1, x2, y };
}

async function closeTabs(tabs: Tabs | undefined): Promise<void> {
  if (!tabs) return;
  await Promise.allSettled([tabs.x1.stop(), tabs.x2.stop(), tabs.y.stop()]);
}

/** user_x's message reaches both user_x tabs, and user_y's tab sees only its own message. */
async function assertPerUserFanOut(tabs: Tabs, run: string, publish: (key: string, text: string) => Promise<void>): Promise<void> {
  await publish('user_x', `for x ${run}`);
  for (const tab of [tabs.x1, tabs.x2]) {
    const m = await tab.waitFor((msg) => ofRun(run)(msg) && msg.body === `for x ${run}`);
    assert.equal(m.headers['destination'], '/exchange/feed/user_x');
    assert.equal(m.headers['content-type'], 'application/json');
    assert.equal(m.headers['subscription'] !== undefined, true);
  }
  // Absence, proven by order: user_y's own message, published after user_x's, must be the only
  // message of this run user_y ever sees.
  await publish('user_y', `for y ${run}`);
  await tabs.y.waitFor((msg) => ofRun(run)(msg) && msg.body === `for y ${run}`);
  assert.deepEqual(tabs.y.received.filter(ofRun(run)).map((m) => m.body), [`for y ${run}`]);
  // And the user_x tabs got exactly their one message (publishing for y reached neither).
  await tabs.x1.publish('/exchange/feed/user_x', `sync ${run}`, { 'x-run': run });
  await tabs.x1.waitFor((msg) => msg.body === `sync ${run}`);
  await tabs.x2.waitFor((msg) => msg.body === `sync ${run}`);
  for (const tab of [tabs.x1, tabs.x2]) {
    assert.deepEqual(tab.received.filter(ofRun(run)).map((m) => m.body), [`for x ${run}`, `sync ${run}`]);
  }
}

describe('seed flow through Thumper bridged to RabbitMQ', () => {
  let rabbit: RabbitNode;
  let thumper: ThumperServer;
  let amqpConn: ChannelModel;
  let tabs: Tabs | undefined;

  before(async () => {
    rabbit = await useRabbit();
    thumper = await startThumper({ THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl });
    amqpConn = await amqp.connect(rabbit.amqpUrl);
    const ch = await amqpConn.createChannel();
    ch.on('error', () => {});
    try {
      await ch.assertExchange('feed', 'topic', { durable: true });
      await ch.close();
    } catch {
      // Declared by another test file with other flags: it exists, which is all this test needs.
      const check = await amqpConn.createChannel();
      await check.checkExchange('feed');
      await check.close();
    }
  });

  after(async () => {
    await closeTabs(tabs);
    await amqpConn?.close().catch(() => {});
    await thumper?.stop();
    await rabbit?.stop();
  });

  test('backend publishes over AMQP; each user gets their own messages in every tab; a tab publishes back', async () => {
    const run = randomBytes(4).toString('hex');
    tabs = await openTabs(thumper.wsUrl);
    const ch = await amqpConn.createConfirmChannel();
    await assertPerUserFanOut(tabs, run, async (key, text) => {
      ch.publish('feed', key, Buffer.from(text), { contentType: 'application/json', headers: { 'x-run': run } });
      await ch.waitForConfirms();
    });

    // A backend consumer bound on feed/user_y receives what the browser sends there.
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, 'feed', 'user_y');
    const got: ConsumeMessage[] = [];
    await ch.consume(queue, (m) => {
      if (m) got.push(m);
    }, { noAck: true });
    await tabs.x1.publish('/exchange/feed/user_y', `reply ${run}`, { 'content-type': 'text/plain', 'x-run': run });
    for (let i = 0; i < DEADLINE_MS / 20 && !got.some((m) => m.content.toString() === `reply ${run}`); i++) await sleep(20);
    const reply = got.find((m) => m.content.toString() === `reply ${run}`);
    assert.ok(reply, `the AMQP consumer did not get the browser message within ${DEADLINE_MS} ms`);
    assert.equal(reply.fields.exchange, 'feed');
    assert.equal(reply.fields.routingKey, 'user_y');
    assert.equal(reply.properties.contentType, 'text/plain');
    assert.equal(reply.properties.headers?.['x-run'], run);
    // user_y's tab sees it too.
    await tabs.y.waitFor((m) => m.body === `reply ${run}`);
    await ch.close();
  });
});

describe('seed flow on the embedded engine', () => {
  let thumper: ThumperServer;
  let backend: Browser | undefined;
  let tabs: Tabs | undefined;

  before(async () => {
    // The embedded engine declares `feed` (topic) by default.
    thumper = await startThumper({ THUMPER_ENGINE: 'memory' });
  });

  after(async () => {
    await closeTabs(tabs);
    await backend?.stop().catch(() => {});
    await thumper?.stop();
  });

  test('a STOMP backend publishes; each user gets their own messages in every tab; a tab publishes back', async () => {
    const run = randomBytes(4).toString('hex');
    tabs = await openTabs(thumper.wsUrl);
    backend = await openBrowser(thumper.wsUrl);
    await backend.subscribe('/exchange/feed/user_y');
    const publisher = backend;
    await assertPerUserFanOut(tabs, run, (key, text) =>
      publisher.publish(`/exchange/feed/${key}`, text, { 'content-type': 'application/json', 'x-run': run }),
    );
    await tabs.x1.publish('/exchange/feed/user_y', `reply ${run}`, { 'content-type': 'text/plain', 'x-run': run });
    const reply = await backend.waitFor((m) => m.body === `reply ${run}`);
    assert.equal(reply.headers['destination'], '/exchange/feed/user_y');
    assert.equal(reply.headers['content-type'], 'text/plain');
    assert.equal(reply.headers['x-run'], run);
    await tabs.y.waitFor((m) => m.body === `reply ${run}`);
  });
});
