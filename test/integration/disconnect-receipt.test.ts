// DISCONNECT with a receipt on the RabbitMQ engine: once the RECEIPT is in, the session's consumer
// is gone at the broker, so a message published the moment the RECEIPT arrives stays queued. When
// the RECEIPT was written before the channel closed, some of those went, auto-acked, to the closing
// consumer and were lost (seen as a flaky durable-subscription handover in multi-node.test.ts):
// about one round in 3 to 100 lost messages then, so 300 rounds (~5 s) catch it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { useRabbit, type RabbitNode } from '../harness/rabbitmq.js';
import { connectWs, isMessage, isReceipt, login } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';

const ROUNDS = 300;
const BURST = 20;

describe('DISCONNECT receipt (amqp engine)', { timeout: 120_000 }, () => {
  let rabbit: RabbitNode;
  let server: ThumperServer;
  let conn: ChannelModel;
  let ch: ConfirmChannel;
  const queues: string[] = [];

  before(async () => {
    rabbit = await useRabbit();
    server = await startThumper({ THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl });
    conn = await amqp.connect(rabbit.amqpUrl);
    ch = await conn.createConfirmChannel();
  });
  after(async () => {
    for (const queue of queues) await ch.deleteQueue(queue).catch(() => {});
    await conn.close();
    await server.stop();
    await rabbit.stop();
  });

  it('a message published as soon as the RECEIPT arrives is still in the queue, not lost to the closed consumer', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const queue = `disconnect-receipt-${process.pid}-${round}`;
      queues.push(queue);
      const client = await connectWs(server.wsUrl);
      await login(client, { heartBeat: '0,0' });
      await client.request('SUBSCRIBE', { id: 's', destination: `/queue/${queue}` });
      client.send('DISCONNECT', { receipt: 'bye' });
      await client.waitFor(isReceipt('bye'));
      // No await before the burst: it leaves while the session may still be closing.
      for (let i = 0; i < BURST; i++) ch.sendToQueue(queue, Buffer.from(`r${round}-${i}`));
      await ch.waitForConfirms();
      await client.waitClosed();
      assert.deepEqual(client.frames.filter(isMessage), [], `round ${round}: nothing is delivered after the RECEIPT`);
      assert.equal((await ch.checkQueue(queue)).messageCount, BURST, `round ${round}: every message published after the RECEIPT is still queued`);
    }
  });
});
