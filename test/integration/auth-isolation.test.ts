// Per-user isolation, tested as attacks: each is denied with a clear ERROR and no message leaks.
// Thumper runs with the HTTP auth backend and the reference auth service (auth-backend/) loaded
// with its shipped rules.json (user_x, user_y, publisher), once in front of RabbitMQ and once with
// the embedded engine: the isolation must hold on both. user_y owns a live subscription, a durable
// subscription and a durable queue, each holding or receiving messages; user_x attacks them, each
// attack on a fresh connection, and every frame every attacker receives is kept. Afterwards the
// backend publishes again and only the rightful owners receive. The decision cache is shown to
// turn 10,000 SENDs and 50 reconnects into one backend call per distinct check.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import type { RunningAuthBackend } from '../../auth-backend/src/server.js';
import type { DecisionEvent, ProtocolPath } from '../../auth-backend/src/protocol.js';
import { subscriptionQueueName } from '../../broker/src/destination/queue-name.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { connectWs, describeFrame, isMessage, login } from '../helpers/stomp-script.js';
import type { HeaderInput, StompConn } from '../helpers/stomp-script.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const RULES_FILE = fileURLToPath(new URL('../../auth-backend/rules.json', import.meta.url));
const PASSWORDS = { user_x: 'user_x-secret', user_y: 'user_y-secret', publisher: 'publisher-secret' } as const;
type User = keyof typeof PASSWORDS;
type EngineKind = 'amqp' | 'memory';

const SUITE = { timeout: 240_000 };
/** The cache proof pipelines 10,000 frames: its receipt may take longer than the default wait. */
const BULK_DEADLINE_MS = 90_000;
const BULK_SENDS = 10_000;
const RECONNECTS = 50;

/** How the backend (not a STOMP end user) puts messages in: amqplib as guest, or STOMP as publisher. */
interface Feeder {
  publish(exchange: string, routingKey: string, body: string): Promise<void>;
  toQueue(queue: string, body: string): Promise<void>;
  close(): Promise<void>;
}

interface Rig {
  readonly thumper: ThumperServer;
  readonly auth: RunningAuthBackend;
  /** Every protocol request the auth service answered, in order. */
  readonly decisions: DecisionEvent[];
  /** A WebSocket to Thumper, closed by close(). */
  open(): Promise<StompConn>;
  /** open() + CONNECT as `user` with their password. */
  session(user: User): Promise<StompConn>;
  close(): Promise<void>;
}

async function startRig(engineEnv: Record<string, string>, extraEnv: Record<string, string> = {}): Promise<Rig> {
  const decisions: DecisionEvent[] = [];
  const auth = await startAuthBackend({
    host: '127.0.0.1',
    port: 0,
    rulesFile: RULES_FILE,
    jwtSecret: randomBytes(32).toString('hex'),
    onDecision: (event) => decisions.push(event),
  });
  let thumper: ThumperServer;
  try {
    thumper = await startThumper({
      ...engineEnv,
      THUMPER_AUTH_BACKENDS: 'http',
      THUMPER_AUTH_HTTP_BASE_URL: `${auth.url}/auth`,
      ...extraEnv,
    });
  } catch (err) {
    await auth.close();
    throw err;
  }
  const conns: StompConn[] = [];
  const open = async (): Promise<StompConn> => {
    const conn = await connectWs(thumper.wsUrl);
    conns.push(conn);
    return conn;
  };
  return {
    thumper,
    auth,
    decisions,
    open,
    async session(user) {
      const conn = await open();
      await login(conn, { login: user, passcode: PASSWORDS[user] });
      return conn;
    },
    async close() {
      await Promise.all(conns.map((c) => c.close()));
      await thumper.stop();
      await auth.close();
    },
  };
}

async function amqpFeeder(amqpUrl: string): Promise<Feeder & { readonly model: ChannelModel; readonly channel: ConfirmChannel }> {
  const model = await amqp.connect(amqpUrl);
  const channel = await model.createConfirmChannel();
  return {
    model,
    channel,
    async publish(exchange, routingKey, body) {
      channel.publish(exchange, routingKey, Buffer.from(body));
      await channel.waitForConfirms();
    },
    async toQueue(queue, body) {
      channel.sendToQueue(queue, Buffer.from(body));
      await channel.waitForConfirms();
    },
    async close() {
      await model.close().catch(() => {});
    },
  };
}

function stompFeeder(conn: StompConn): Feeder {
  return {
    async publish(exchange, routingKey, body) {
      await conn.request('SEND', { destination: `/exchange/${exchange}/${routingKey}` }, body);
    },
    async toQueue(queue, body) {
      await conn.request('SEND', { destination: `/queue/${queue}` }, body);
    },
    close: () => conn.close(),
  };
}

const bodyOf = (frame: Frame): string => frame.body.toString('utf8');
const messageWithBody =
  (body: string) =>
  (f: Frame): boolean =>
    f.command === 'MESSAGE' && bodyOf(f) === body;

function assertError(frame: Frame, message: string, body: string): void {
  assert.equal(frame.command, 'ERROR', `expected ERROR, got ${describeFrame(frame)}`);
  assert.equal(getHeader(frame, 'message'), message, describeFrame(frame));
  assert.equal(bodyOf(frame), body, describeFrame(frame));
}

/** Waits until `conn` has received `n` frames matching `pred`, polling; bounded by the deadline. */
async function waitForCount(conn: StompConn, pred: (f: Frame) => boolean, n: number, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const count = conn.frames.filter(pred).length;
    if (count >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${count} of ${n} frames within ${deadlineMs} ms`);
    if (conn.isClosed) throw new Error(`connection closed after ${count} of ${n} frames`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function countByPath(events: readonly DecisionEvent[], username: string): Record<ProtocolPath, number> {
  const counts: Record<ProtocolPath, number> = { user: 0, vhost: 0, resource: 0, topic: 0 };
  for (const e of events) if (e.params['username'] === username) counts[e.path]++;
  return counts;
}

function isolationSuite(engine: EngineKind): void {
  describe(`per-user isolation on the ${engine} engine`, SUITE, () => {
    // A shared RabbitMQ node also serves other test files: names owned by this run carry its id.
    const run = randomBytes(4).toString('hex');
    const inbox = `user_y.inbox-${run}`;
    const durableId = `dur-y-${run}`;
    // What RabbitMQ's plugin (and Thumper) name the durable subscription's queue (reference §1.4).
    const durableQueue = subscriptionQueueName('user_y', durableId);
    const mark = (what: string): string => `${what} ${run}`;

    let rabbit: RabbitNode | undefined;
    let engineEnv: Record<string, string> = {};
    let rig: Rig;
    let feeder: Feeder;
    let amqpSide: Awaited<ReturnType<typeof amqpFeeder>> | undefined;
    /** user_y's live subscription `live` to /exchange/feed/user_y. */
    let victim: StompConn;
    /** user_x's own, legitimate subscription `own` to /exchange/feed/user_x. */
    let own: StompConn;
    /** Every connection an attack was made on, kept to prove none ever received a MESSAGE. */
    const attackers: Array<{ readonly name: string; readonly conn: StompConn }> = [];

    before(async () => {
      if (engine === 'amqp') {
        rabbit = await useRabbit();
        engineEnv = { THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl };
        amqpSide = await amqpFeeder(rabbit.amqpUrl);
        await amqpSide.channel.assertExchange('feed', 'topic', { durable: true });
        await amqpSide.channel.assertExchange('replies', 'topic', { durable: true });
      } else {
        engineEnv = { THUMPER_ENGINE: 'memory' };
      }
      rig = await startRig(engineEnv);
      feeder = amqpSide ?? stompFeeder(await rig.session('publisher'));

      // user_y's durable subscription, left without a consumer so that it holds what arrives.
      const durable = await rig.session('user_y');
      await durable.request('SUBSCRIBE', {
        destination: '/exchange/feed/user_y',
        id: durableId,
        durable: 'true',
        'auto-delete': 'false',
        ack: 'auto',
      });
      await durable.close();
      // user_y's durable queue, created by subscribing once.
      const queueOwner = await rig.session('user_y');
      await queueOwner.request('SUBSCRIBE', { destination: `/queue/${inbox}`, id: 'inbox' });
      await queueOwner.request('UNSUBSCRIBE', { id: 'inbox' });
      await queueOwner.close();

      victim = await rig.session('user_y');
      await victim.request('SUBSCRIBE', { destination: '/exchange/feed/user_y', id: 'live', ack: 'auto' });
      own = await rig.session('user_x');
      await own.request('SUBSCRIBE', { destination: '/exchange/feed/user_x', id: 'own', ack: 'auto' });

      // Messages waiting in user_y's queues while the attacks run: a wrongly granted consumer would get them.
      await feeder.publish('feed', 'user_y', mark('seed-y'));
      await feeder.toQueue(inbox, mark('seed-inbox'));
      await victim.waitFor(messageWithBody(mark('seed-y')));
    });

    after(async () => {
      await rig?.close();
      if (amqpSide) {
        await amqpSide.channel.deleteQueue(durableQueue).catch(() => {});
        await amqpSide.channel.deleteQueue(inbox).catch(() => {});
      }
      await feeder?.close();
      await rabbit?.stop();
    });

    /** Both bystanders, user_y and user_x's own other connection, still answer after an attack. */
    async function bystandersWork(): Promise<void> {
      assert.equal(victim.isClosed, false, 'user_y lost its connection');
      assert.equal(own.isClosed, false, "user_x's own connection was closed by another connection's attack");
      await victim.request('SEND', { destination: '/exchange/replies/user_y' }, 'still here');
      await own.request('SEND', { destination: '/exchange/replies/user_x' }, 'still here');
    }

    /** user_x logs in on a fresh connection, sends one frame; it must be refused fatally. */
    async function attack(name: string, command: 'SUBSCRIBE' | 'SEND', headers: Record<string, string>): Promise<Frame> {
      const conn = await rig.open();
      attackers.push({ name, conn });
      await login(conn, { login: 'user_x', passcode: PASSWORDS.user_x });
      conn.send(command, { ...headers, receipt: 'attack' }, command === 'SEND' ? mark('forged') : '');
      const reply = await conn.next((f) => f.command === 'ERROR' || f.command === 'RECEIPT' || f.command === 'MESSAGE');
      assert.equal(reply.command, 'ERROR', `${name} was not refused: ${describeFrame(reply)}`);
      // access_refused is a channel error: RabbitMQ closes the connection, and so does Thumper.
      await conn.waitClosed();
      await bystandersWork();
      return reply;
    }

    /** A CONNECT as user_x that must be refused: no CONNECTED, and nothing granted afterwards. */
    async function badConnect(name: string, headers: HeaderInput, raw = false): Promise<Frame> {
      const conn = await rig.open();
      attackers.push({ name, conn });
      if (raw) {
        // Header values already carry the STOMP escapes they mean to smuggle (`\n`, `\c`).
        const lines = (headers as ReadonlyArray<readonly [string, string]>).map(([k, v]) => `${k}:${v}\n`).join('');
        conn.sendRaw(`CONNECT\n${lines}\n\0`);
      } else {
        conn.send('CONNECT', headers);
      }
      const reply = await conn.next((f) => f.command === 'ERROR' || f.command === 'CONNECTED');
      assert.equal(reply.command, 'ERROR', `${name} was let in: ${describeFrame(reply)}`);
      if (!conn.isClosed) {
        // A refused CONNECT leaves the connection unauthenticated: a SUBSCRIBE must not work.
        conn.send('SUBSCRIBE', { destination: '/exchange/feed/user_y', id: 'after-refusal', receipt: 'after-refusal' });
        const next = await conn.next().catch(() => undefined);
        if (next !== undefined) {
          assert.equal(next.command, 'ERROR', `after a refused CONNECT: ${describeFrame(next)}`);
          assert.equal(getHeader(next, 'message'), 'Illegal command', describeFrame(next));
        }
      }
      await bystandersWork();
      return reply;
    }

    const refusedTopic = (key: string, exchange = 'feed', permission = 'read'): string =>
      `ACCESS_REFUSED - ${permission} access to topic '${key}' in exchange '${exchange}' in vhost '/' refused for user 'user_x'`;
    const refusedResource = (kind: 'queue' | 'exchange', name: string, permission: string): string =>
      `ACCESS_REFUSED - ${permission} access to ${kind} '${name}' in vhost '/' refused for user 'user_x'`;
    const subscriptionQueueRefused = (queue: string): string =>
      `ACCESS_REFUSED - queue '${queue}' in vhost '/' is a subscription queue: ` +
      'it is reached only through the /topic or /exchange destination it was created for';

    test('the legitimate side: user_x reads its own feed and answers on replies, the publisher gets it', async () => {
      await feeder.publish('feed', 'user_x', mark('seed-x'));
      const got = await own.waitFor(messageWithBody(mark('seed-x')));
      assert.equal(getHeader(got, 'destination'), '/exchange/feed/user_x');
      assert.equal(getHeader(got, 'subscription'), 'own');

      const publisher = await rig.session('publisher');
      await publisher.request('SUBSCRIBE', { destination: '/exchange/replies/#', id: 'replies', ack: 'auto' });
      const receipt = await own.request('SEND', { destination: '/exchange/replies/user_x' }, mark('reply-x'));
      assert.equal(receipt.command, 'RECEIPT');
      const reply = await publisher.waitFor(messageWithBody(mark('reply-x')));
      assert.equal(getHeader(reply, 'destination'), '/exchange/replies/user_x');
      await publisher.close();
    });

    if (engine === 'amqp') {
      test('the durable subscription queue has the name RabbitMQ derives', async () => {
        assert.ok(rabbit);
        const queues = await rabbit.listQueues();
        const found = queues.find((q) => q.name === durableQueue);
        assert.ok(found, `${durableQueue} not among ${queues.map((q) => q.name).join(', ')}`);
        assert.equal(found.durable, true);
        assert.equal(found.auto_delete, false);
      });
    }

    test('SUBSCRIBE /exchange/feed/user_y: another user’s routing key', async () => {
      assertError(await attack('feed/user_y', 'SUBSCRIBE', { destination: '/exchange/feed/user_y', id: 'a' }), 'access_refused', refusedTopic('user_y'));
    });

    test('SUBSCRIBE /exchange/feed/# and /exchange/feed/*: wildcards over everyone', async () => {
      assertError(await attack('feed/#', 'SUBSCRIBE', { destination: '/exchange/feed/#', id: 'a' }), 'access_refused', refusedTopic('#'));
      assertError(await attack('feed/*', 'SUBSCRIBE', { destination: '/exchange/feed/*', id: 'a' }), 'access_refused', refusedTopic('*'));
    });

    test('SUBSCRIBE /exchange/feed: no routing key at all', async () => {
      assertError(await attack('feed (no key)', 'SUBSCRIBE', { destination: '/exchange/feed', id: 'a' }), 'access_refused', refusedTopic(''));
    });

    test('SUBSCRIBE /topic/#: everything on amq.topic', async () => {
      // The rules set no topic permission on amq.topic, which RabbitMQ reads as "any routing key";
      // the read permission on the exchange itself is what refuses.
      const frame = await attack('/topic/#', 'SUBSCRIBE', { destination: '/topic/#', id: 'a' });
      assertError(frame, 'access_refused', refusedResource('exchange', 'amq.topic', 'read'));
    });

    test('SUBSCRIBE /amq/queue/<user_y’s durable subscription queue>', async () => {
      const frame = await attack('/amq/queue/durable', 'SUBSCRIBE', { destination: `/amq/queue/${durableQueue}`, id: 'a' });
      assertError(frame, 'access_refused', subscriptionQueueRefused(durableQueue));
    });

    test('SUBSCRIBE /queue/<user_y’s durable subscription queue>', async () => {
      const frame = await attack('/queue/durable', 'SUBSCRIBE', { destination: `/queue/${durableQueue}`, id: 'a' });
      assertError(frame, 'access_refused', subscriptionQueueRefused(durableQueue));
    });

    test('SUBSCRIBE /queue/user_y.inbox', async () => {
      const frame = await attack('/queue/inbox', 'SUBSCRIBE', { destination: `/queue/${inbox}`, id: 'a' });
      assertError(frame, 'access_refused', refusedResource('queue', inbox, 'configure'));
    });

    test('SUBSCRIBE /amq/queue/user_y.inbox', async () => {
      const frame = await attack('/amq/queue/inbox', 'SUBSCRIBE', { destination: `/amq/queue/${inbox}`, id: 'a' });
      assertError(frame, 'access_refused', refusedResource('queue', inbox, 'read'));
    });

    test('SUBSCRIBE /exchange/feed/user_x with x-queue-name: user_y’s durable subscription queue', async () => {
      const frame = await attack('x-queue-name durable', 'SUBSCRIBE', { destination: '/exchange/feed/user_x', id: 'a', 'x-queue-name': durableQueue });
      assertError(frame, 'access_refused', subscriptionQueueRefused(durableQueue));
    });

    test('SUBSCRIBE /exchange/feed/user_x with x-queue-name: user_y.inbox', async () => {
      const frame = await attack('x-queue-name inbox', 'SUBSCRIBE', { destination: '/exchange/feed/user_x', id: 'a', 'x-queue-name': inbox });
      assertError(frame, 'access_refused', refusedResource('queue', inbox, 'configure'));
    });

    test('SEND /exchange/feed/user_y: forging the backend’s messages', async () => {
      const frame = await attack('SEND feed/user_y', 'SEND', { destination: '/exchange/feed/user_y' });
      assertError(frame, 'access_refused', refusedResource('exchange', 'feed', 'write'));
    });

    test('SEND /exchange/replies/user_y: answering in another user’s name', async () => {
      const frame = await attack('SEND replies/user_y', 'SEND', { destination: '/exchange/replies/user_y' });
      assertError(frame, 'access_refused', refusedTopic('user_y', 'replies', 'write'));
    });

    test('SEND /amq/queue/<user_y’s durable subscription queue>: injecting into their subscription', async () => {
      const frame = await attack('SEND /amq/queue/durable', 'SEND', { destination: `/amq/queue/${durableQueue}` });
      assertError(frame, 'access_refused', subscriptionQueueRefused(durableQueue));
    });

    test('CONNECT host:nope: a virtual host user_x may not use', async () => {
      const frame = await badConnect('host:nope', { 'accept-version': '1.2', host: 'nope', login: 'user_x', passcode: PASSWORDS.user_x });
      assertError(frame, 'Bad CONNECT', "Virtual host 'nope' access denied");
    });

    test('CONNECT with a wrong password', async () => {
      const frame = await badConnect('wrong password', { 'accept-version': '1.2', host: '/', login: 'user_x', passcode: 'user_y-secret' });
      assertError(frame, 'Bad CONNECT', "Access refused for user 'user_x'\n");
    });

    test('CONNECT with a form-encoding injection in the passcode', async () => {
      const before = rig.decisions.length;
      const frame = await badConnect('passcode injection', {
        'accept-version': '1.2',
        host: '/',
        login: 'user_x',
        passcode: `${PASSWORDS.user_x}&username=publisher`,
      });
      assertError(frame, 'Bad CONNECT', "Access refused for user 'user_x'\n");
      // The auth service saw one user request, for user_x alone: the `&username=` stayed inside the password.
      const asked = rig.decisions.slice(before).filter((e) => e.path === 'user');
      assert.deepEqual(
        asked.map((e) => [e.params['username'], e.answer]),
        [['user_x', 'deny']],
      );
    });

    test('CONNECT with STOMP escapes in login and passcode', async () => {
      // `\n` decodes to a line feed: refused before any backend is asked.
      const newline = await badConnect(
        'login with \\n',
        [
          ['accept-version', '1.2'],
          ['host', '/'],
          ['login', 'user_x\\npublisher'],
          ['passcode', PASSWORDS.user_x],
        ],
        true,
      );
      assertError(newline, 'Bad CONNECT', 'Access refused: login and passcode must not contain control characters\n');
      const newlineInPasscode = await badConnect(
        'passcode with \\n',
        [
          ['accept-version', '1.2'],
          ['host', '/'],
          ['login', 'user_x'],
          ['passcode', `${PASSWORDS.user_x}\\npublisher`],
        ],
        true,
      );
      assertError(newlineInPasscode, 'Bad CONNECT', 'Access refused: login and passcode must not contain control characters\n');
      // `\c` decodes to a colon: the name is one opaque string, a user nobody has.
      const colon = await badConnect(
        'login with \\c',
        [
          ['accept-version', '1.2'],
          ['host', '/'],
          ['login', 'user_x\\cpublisher'],
          ['passcode', PASSWORDS.user_x],
        ],
        true,
      );
      assertError(colon, 'Bad CONNECT', "Access refused for user 'user_x:publisher'\n");
    });

    test('after the attacks: only the rightful owners receive, nothing leaked to any attacker', async () => {
      await feeder.publish('feed', 'user_y', mark('after-y'));
      await feeder.publish('feed', 'user_x', mark('after-x'));
      await victim.waitFor(messageWithBody(mark('after-y')));
      await own.waitFor(messageWithBody(mark('after-x')));

      const ours = (f: Frame): boolean => f.command === 'MESSAGE' && bodyOf(f).endsWith(run);
      assert.deepEqual(victim.frames.filter(ours).map(bodyOf), [mark('seed-y'), mark('after-y')]);
      assert.deepEqual(own.frames.filter(ours).map(bodyOf), [mark('seed-x'), mark('after-x')]);
      // Other test files may publish to feed/user_x on a shared node, but never to it under user_y's key.
      for (const m of own.frames.filter(isMessage)) assert.equal(getHeader(m, 'destination'), '/exchange/feed/user_x', describeFrame(m));

      assert.equal(attackers.length, 20, attackers.map((a) => a.name).join(', '));
      for (const { name, conn } of attackers) {
        const leaked = conn.frames.filter((f) => f.command === 'MESSAGE');
        assert.deepEqual(leaked.map(describeFrame), [], `attacker connection "${name}" received a MESSAGE`);
        assert.equal(
          conn.frames.some((f) => f.command === 'ERROR'),
          true,
          `attacker connection "${name}" got no ERROR`,
        );
      }

      // user_y's durable subscription still holds both its messages, in order, and nothing forged.
      const back = await rig.session('user_y');
      await back.request('SUBSCRIBE', {
        destination: '/exchange/feed/user_y',
        id: durableId,
        durable: 'true',
        'auto-delete': 'false',
        ack: 'auto',
      });
      await back.waitFor(messageWithBody(mark('after-y')));
      assert.deepEqual(back.frames.filter(ours).map(bodyOf), [mark('seed-y'), mark('after-y')]);
      // And user_y's queue still holds its message.
      await back.request('SUBSCRIBE', { destination: `/queue/${inbox}`, id: 'inbox', ack: 'auto' });
      const kept = await back.waitFor(messageWithBody(mark('seed-inbox')));
      assert.equal(getHeader(kept, 'subscription'), 'inbox');
      await back.close();
    });

    test('the decision cache: one backend call per distinct check', async (t) => {
      const cached = await startRig(engineEnv, { THUMPER_AUTH_CACHE_ALLOW_TTL_MS: '60000' });
      t.after(() => cached.close());

      for (let i = 0; i < RECONNECTS; i++) {
        const conn = await cached.open();
        await login(conn, { login: 'user_x', passcode: PASSWORDS.user_x });
        await conn.request('DISCONNECT');
        await conn.close();
      }
      // Exactly one user and one vhost request for 50 logins: every later one is served from the cache.
      assert.deepEqual(countByPath(cached.decisions, 'user_x'), { user: 1, vhost: 1, resource: 0, topic: 0 });

      // The publisher counts what arrives, to show every SEND was authorized and routed.
      const publisher = await cached.session('publisher');
      await publisher.request('SUBSCRIBE', { destination: '/exchange/replies/user_x', id: 'count', ack: 'auto' });
      const sender = await cached.session('user_x');
      for (let i = 1; i < BULK_SENDS; i++) sender.send('SEND', { destination: '/exchange/replies/user_x' }, `n${i}`);
      sender.send('SEND', { destination: '/exchange/replies/user_x', receipt: 'last' }, `n${BULK_SENDS}`);
      const last = await sender.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR', BULK_DEADLINE_MS);
      assert.equal(last.command, 'RECEIPT', describeFrame(last));
      assert.equal(getHeader(last, 'receipt-id'), 'last');
      await waitForCount(publisher, (f) => f.command === 'MESSAGE' && /^n\d+$/.test(bodyOf(f)), BULK_SENDS, BULK_DEADLINE_MS);

      // The "one backend call": exactly one `resource` request (exchange replies, write) and
      // exactly one `topic` request (replies, write, routing key user_x) for 10,000 SENDs; the one
      // CONNECT of this connection was already cached, so user and vhost stay at one each.
      const ofUserX = cached.decisions.filter((e) => e.params['username'] === 'user_x');
      assert.deepEqual(countByPath(cached.decisions, 'user_x'), { user: 1, vhost: 1, resource: 1, topic: 1 });
      const resource = ofUserX.find((e) => e.path === 'resource');
      assert.deepEqual([resource?.params['resource'], resource?.params['name'], resource?.params['permission'], resource?.answer], [
        'exchange',
        'replies',
        'write',
        'allow',
      ]);
      const topic = ofUserX.find((e) => e.path === 'topic');
      assert.deepEqual([topic?.params['name'], topic?.params['permission'], topic?.params['routing_key'], topic?.answer], [
        'replies',
        'write',
        'user_x',
        'allow',
      ]);
      assert.deepEqual(sender.frames.filter((f) => f.command === 'ERROR').map(describeFrame), []);
    });
  });
}

isolationSuite('amqp');
isolationSuite('memory');
