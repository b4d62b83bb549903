// The test node harness itself: a node answers AMQP, the management API and RabbitMQ's own STOMP
// plugin, so every other integration test can rely on all three, and asks the HTTP auth service on
// its reserved port for users it does not know. A private node survives SIGKILL with its persistent
// messages, and a private two-node cluster keeps serving on one member while the other is dead.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { createServer } from 'node:http';
import { claimAuthBackendPort, startRabbitNode, useRabbit, type RabbitNode } from '../harness/rabbitmq.js';
import { startRabbitCluster, type ClusterNode } from '../harness/rabbitmq-cluster.js';
import { groupPids, isAlive } from '../harness/rabbitmq-process.js';
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

// ---------------------------------------------------------------------------------------------
// Private nodes that are killed and restarted (never the shared node above)

const PRIVATE = { timeout: 240_000 };

/** The beam's OS pid as the node itself reports it (not taken from the harness's bookkeeping). */
async function beamPid(node: Pick<RabbitNode, 'rabbitmqctl'>): Promise<number> {
  const out = await node.rabbitmqctl('eval', 'list_to_integer(os:getpid()).');
  return Number(out.trim());
}

async function runningNodes(node: ClusterNode): Promise<string[]> {
  const status = JSON.parse(await node.rabbitmqctl('cluster_status', '--formatter', 'json')) as { running_nodes: string[] };
  return status.running_nodes.slice().sort();
}

async function publishConfirmed(url: string, queue: string, body: string): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true });
    // A confirm for a persistent message on a durable queue comes once it is on disk.
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

async function getOne(url: string, queue: string): Promise<amqp.GetMessage | false> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    return await ch.get(queue, { noAck: true });
  } finally {
    await conn.close();
  }
}

function refusesAmqp(url: string): Promise<boolean> {
  return amqp.connect(url).then(
    async (conn) => {
      await conn.close();
      return false;
    },
    () => true,
  );
}

describe('a private node killed with SIGKILL', PRIVATE, () => {
  test('keeps a persistent message in a durable queue across kill and restart; stop leaves no process and no data dir', async () => {
    const node = await startRabbitNode();
    try {
      const queue = `harness-durable-${randomBytes(4).toString('hex')}`;
      await publishConfirmed(node.amqpUrl, queue, 'survives');
      const before = await beamPid(node);
      const dataDir = node.state.dataDir;
      // Without it the queue's declaration can still be in Mnesia's unwritten log: once in CI the
      // confirmed message came back with no queue to hold it (NOT_FOUND after the restart).
      await node.syncMetadata();

      await node.kill();
      assert.equal(isAlive(before), false, 'the beam is gone after kill()');
      assert.deepEqual(groupPids(node.state.pid), [], 'so is every process of its group (its epmd too)');
      assert.ok(existsSync(dataDir), 'kill() keeps the data dir');
      assert.equal(await refusesAmqp(node.amqpUrl), true, 'nothing answers AMQP while it is dead');

      await node.restart();
      assert.equal(node.state.dataDir, dataDir);
      assert.notEqual(await beamPid(node), before, 'a new beam');
      const msg = await getOne(node.amqpUrl, queue);
      assert.ok(msg !== false, 'the message is in the queue after the restart');
      assert.equal(msg.content.toString(), 'survives');
      assert.equal(msg.properties.deliveryMode, 2);

      const pids = [...groupPids(node.state.pid), await beamPid(node)];
      assert.ok(pids.length >= 3, `leader, epmd and beam at least: ${pids.join(', ')}`);
      await node.stop();
      assert.deepEqual(pids.filter(isAlive), [], 'no process left after stop()');
      assert.equal(existsSync(dataDir), false, 'no data dir left after stop()');
    } finally {
      await node.stop();
    }
  });
});

describe('a private two-node cluster', PRIVATE, () => {
  test('forms, shares queues, serves on B while A is dead, takes A back; stop leaves nothing', async () => {
    const cluster = await startRabbitCluster(2);
    try {
      const [a, b] = cluster.nodes;
      assert.ok(a !== undefined && b !== undefined);
      const both = [a.nodeName, b.nodeName].sort();
      assert.match(a.nodeName, /^thumper-[0-9a-f]+-a@localhost$/);
      assert.deepEqual(await runningNodes(a), both);
      assert.deepEqual(await runningNodes(b), both);

      const onA = `harness-on-a-${randomBytes(4).toString('hex')}`;
      const connA = await amqp.connect(a.amqpUrl);
      try {
        await (await connA.createChannel()).assertQueue(onA, { durable: true });
      } finally {
        await connA.close();
      }
      const connB = await amqp.connect(b.amqpUrl);
      try {
        const ok = await (await connB.createChannel()).checkQueue(onA);
        assert.equal(ok.queue, onA, 'a queue declared on A is visible from B');
      } finally {
        await connB.close();
      }

      const beamA = await beamPid(a);
      await a.kill();
      assert.equal(isAlive(beamA), false);
      assert.equal(isAlive(cluster.epmdPid), true, 'the shared epmd outlives A');
      assert.equal(await refusesAmqp(a.amqpUrl), true);
      assert.deepEqual(await runningNodes(b), [b.nodeName]);
      const onB = `harness-on-b-${randomBytes(4).toString('hex')}`;
      await publishConfirmed(b.amqpUrl, onB, 'while A is dead');
      const msg = await getOne(b.amqpUrl, onB);
      assert.ok(msg !== false);
      assert.equal(msg.content.toString(), 'while A is dead');

      await a.restart();
      assert.deepEqual(await runningNodes(a), both);
      assert.deepEqual(await runningNodes(b), both);

      const dataDirs = cluster.nodes.map((n) => n.state.dataDir);
      const pids = [cluster.epmdPid, ...cluster.nodes.flatMap((n) => groupPids(n.state.pid)), await beamPid(a), await beamPid(b)];
      await cluster.stop();
      assert.deepEqual(pids.filter(isAlive), [], 'no process left after stop()');
      assert.deepEqual(dataDirs.filter((d) => existsSync(d)), [], 'no data dir left after stop()');
    } finally {
      await cluster.stop();
    }
  });
});
