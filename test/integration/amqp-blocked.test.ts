// RabbitMQ's resource alarms (connection.blocked) on a private node, never the shared dev node: a
// SEND waits within amqp.blockedPublishTimeoutMs, then gets a clear ERROR naming the alarm; once
// the alarm is lifted SENDs are confirmed again, and subscriptions kept delivering meanwhile.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRabbitNode, type PrivateRabbitNode } from '../harness/rabbitmq.js';
import { connectWs, isError, isMessageFor, isReceipt, login, sleep } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';
import { getHeader } from '../../broker/src/stomp/frame.js';

const SUITE = { timeout: 180_000 };
const run = randomBytes(4).toString('hex');

describe('connection.blocked (memory alarm on a private node)', SUITE, () => {
  let node: PrivateRabbitNode;
  let gateway: ThumperServer;
  const conns: StompConn[] = [];

  async function client(): Promise<StompConn> {
    const conn = await connectWs(gateway.wsUrl);
    conns.push(conn);
    await login(conn);
    return conn;
  }

  async function connectionStates(): Promise<string> {
    return node.rabbitmqctl('list_connections', '--quiet', '--no-table-headers', 'state');
  }

  /** Polls until some connection's state matches (bounded). */
  async function waitForState(pattern: RegExp, what: string): Promise<void> {
    for (let i = 0; i < 300; i++) {
      if (pattern.test(await connectionStates())) return;
      await sleep(100);
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  before(async () => {
    node = await startRabbitNode();
    gateway = await startThumper({
      THUMPER_ENGINE: 'amqp',
      THUMPER_AMQP_URL: node.amqpUrl,
      THUMPER_AMQP_BLOCKED_PUBLISH_TIMEOUT_MS: '1500',
    });
  });

  after(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    await gateway?.stop();
    await node?.stop();
  });

  test('a SEND waits, then gets an ERROR naming the alarm; after the alarm, SENDs are confirmed again', async () => {
    const queue = `blocked-${run}`;
    const consumer = await client();
    await consumer.request('SUBSCRIBE', { id: 'q', destination: `/queue/${queue}` });
    const before = await client();
    await before.request('SEND', { destination: `/queue/${queue}` }, 'before-alarm');
    assert.equal((await consumer.waitFor(isMessageFor('q'), 10_000)).body.toString(), 'before-alarm');

    await node.rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
    try {
      await waitForState(/block/, 'RabbitMQ to block publishers');
      const sender = await client();
      sender.send('SEND', { destination: `/queue/${queue}`, receipt: 'r1' }, 'during-alarm');
      // Held, not refused at once: no answer while well inside the bound.
      await sleep(500);
      assert.deepEqual(sender.untaken().map((f) => f.command), []);
      const error = await sender.waitFor(isError, 30_000);
      assert.equal(getHeader(error, 'message'), 'Broker unavailable');
      assert.equal(getHeader(error, 'receipt-id'), 'r1');
      assert.match(error.body.toString(), /^RabbitMQ is refusing publishes \(resource alarm: [^)]*memory[^)]*\); try again later/);
      assert.equal(sender.untaken().filter(isReceipt('r1')).length, 0);
    } finally {
      await node.rabbitmqctl('set_vm_memory_high_watermark', '0.4');
    }

    await waitForState(/^(?!.*block)/s, 'RabbitMQ to unblock');
    const after = await client();
    await after.request('SEND', { destination: `/queue/${queue}` }, 'after-alarm');
    // Delivery kept working for the subscriber on the same pooled connection.
    const got = await consumer.waitFor((f) => isMessageFor('q')(f) && f.body.toString() === 'after-alarm', 10_000);
    assert.equal(got.body.toString(), 'after-alarm');
    assert.equal(consumer.untaken().filter(isError).length, 0);
  });
});
