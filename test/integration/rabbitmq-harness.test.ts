// The test node harness itself: a node answers AMQP, the management API and RabbitMQ's own STOMP
// plugin, so every other integration test can rely on all three, and asks the HTTP auth service on
// its reserved port for users it does not know.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { createServer } from 'node:http';
import { claimAuthBackendPort, useRabbit, type RabbitNode } from '../harness/rabbitmq.js';
import { connectTcp, login } from '../helpers/stomp-script.js';

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

// The node also asks an HTTP auth service (rabbitmq_auth_backend_http, after the internal backend) on
// its own reserved loopback port. A recording server on that port proves the plugin is enabled, the
// paths point there, and guest stays with the internal backend.
test('the HTTP auth backend: enabled, on its reserved port, asked only for users the internal database lacks', async (t) => {
  const port = rabbit.authBackendPort;
  const stompPort = rabbit.stompPort;
  if (port === undefined || stompPort === undefined) {
    t.skip('a node this harness did not start ($AMQP_URL): its auth backends are not configured here');
    return;
  }
  const others = [rabbit.stompPort, ...[rabbit.amqpUrl, rabbit.webStompUrl, rabbit.managementUrl].map((u) => (u === undefined ? undefined : Number(new URL(u).port)))];
  assert.ok(port > 0 && !others.includes(port), `authBackendPort ${port} is its own port (others: ${others.join(', ')})`);

  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    // Everything allowed: the CONNECT must succeed only because this server said so.
    res.writeHead(200, { 'content-type': 'text/plain' }).end('allow');
  });
  await claimAuthBackendPort(
    () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
  );
  try {
    const guest = await connectTcp(stompPort);
    await login(guest);
    await guest.close();
    assert.deepEqual(requests, [], 'guest is answered by the internal backend');

    const user = await connectTcp(stompPort);
    const connected = await login(user, { login: 'harness_user', passcode: 'pw' });
    await user.close();
    assert.equal(connected.command, 'CONNECTED');
    assert.deepEqual(requests, [
      '/auth/user?username=harness_user&password=pw&vhost=%2F',
      '/auth/vhost?username=harness_user&vhost=%2F&ip=127.0.0.1&tags=',
    ]);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
