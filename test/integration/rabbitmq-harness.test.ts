// The test node harness itself: a node answers AMQP, the management API and RabbitMQ's own STOMP
// plugin, so every other integration test can rely on all three.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { useRabbit, type RabbitNode } from '../harness/rabbitmq.js';

let rabbit: RabbitNode;

before(async () => {
  rabbit = await useRabbit();
});

after(async () => {
  await rabbit.stop();
});

test('a queue declared over AMQP shows up in the management API with its properties', async () => {
  const name = `harness-${randomBytes(4).toString('hex')}`;
  const conn = await amqp.connect(rabbit.amqpUrl);
  try {
    const ch = await conn.createChannel();
    await ch.assertQueue(name, { durable: false, autoDelete: false, arguments: { 'x-max-length': 7 } });
    const queues = await rabbit.listQueues('/');
    const found = queues.find((q) => q.name === name);
    assert.ok(found, `${name} not in ${queues.map((q) => q.name).join(', ')}`);
    assert.equal(found.durable, false);
    assert.equal(found.auto_delete, false);
    assert.equal(found.exclusive, false);
    assert.deepEqual(found.arguments, { 'x-max-length': 7 });
    await ch.deleteQueue(name);
    const after = await rabbit.listQueues('/');
    assert.equal(after.find((q) => q.name === name), undefined);
  } finally {
    await conn.close();
  }
});

test("RabbitMQ's STOMP plugin answers CONNECT with CONNECTED", async (t) => {
  if (rabbit.stompPort === undefined) {
    t.skip('this node has no STOMP port (set STOMP_PORT)');
    return;
  }
  const port = rabbit.stompPort;
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete frame after 10 s; got ${JSON.stringify(text)}`));
    }, 10_000);
    socket.on('connect', () => {
      socket.write('CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0');
    });
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\0')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  assert.match(reply, /^CONNECTED\n/);
  assert.match(reply, /\nversion:1\.2\n/);
});

test('rabbitmqctl reaches the node', async () => {
  const out = await rabbit.rabbitmqctl('list_vhosts', '--quiet');
  assert.match(out, /^\/$/m);
});
