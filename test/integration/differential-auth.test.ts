// Differential tests, part 6: authentication and authorization. The proof that an auth service
// written for RabbitMQ works unchanged behind Thumper: the reference auth service (auth-backend/,
// the rabbitmq-auth-backend-http protocol, its shipped rules.json) answers both RabbitMQ's own STOMP
// plugin (the test node asks it for every user its internal database lacks, test/harness/rabbitmq.ts)
// and Thumper (THUMPER_AUTH_BACKENDS=http, decision cache off). Each scenario runs the same STOMP
// script on both and compares (a) the frames the client observes and (b) the requests the auth
// service received, path and parameters in order (reference §5.1, §5.3).
// RabbitMQ is reached over TCP: its fatal access_refused ERROR is lost on Web-STOMP 3.10.8
// (rabbitmq-server #6737), and these scenarios are mostly fatal errors. Thumper is reached on /ws.
// Left to another test: `stomp-subscription-` queues named through /queue, /amq/queue or
// x-queue-name, which Thumper refuses on purpose and RabbitMQ allows.

import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import type { DecisionEvent } from '../../auth-backend/src/protocol.js';
import { claimAuthBackendPort, useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { connectTcp, connectWs, isMessage, login, normalizeAll, withDeadline } from '../helpers/stomp-script.js';
import type { NormalizedFrame, StompConn } from '../helpers/stomp-script.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const RULES_FILE = fileURLToPath(new URL('../../auth-backend/rules.json', import.meta.url));

/** The shipped rules' users (auth-backend/rules.json). */
const USERS = {
  user_x: 'user_x-secret',
  user_y: 'user_y-secret',
  publisher: 'publisher-secret',
} as const;
type User = keyof typeof USERS;

// A vhost that exists on the node but that no rule lets anyone use, and one that does not exist.
const FORBIDDEN_VHOST = 'nope';
const MISSING_VHOST = 'no-such-vhost';

type SideName = 'rabbitmq' | 'thumper';

interface AuthRequest {
  readonly path: string;
  /** In the order sent: the protocol fixes it (reference §5.1). */
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** What the service answered (`allow`, `allow <tags>`, `deny`). */
  readonly answer: string;
}

interface Observation {
  /** Per connection, in the order opened: its frames, normalized. */
  readonly connections: ReadonlyArray<{ readonly frames: NormalizedFrame[]; readonly closed: boolean }>;
  readonly requests: readonly AuthRequest[];
}

interface Side {
  readonly name: SideName;
  /** A connection to this side's STOMP endpoint, closed when the scenario ends. */
  open(): Promise<StompConn>;
  /** open() + CONNECT as `user` (STOMP 1.2, vhost '/'); fails on ERROR. */
  session(user: User): Promise<StompConn>;
}

interface Rig {
  readonly rabbit: RabbitNode;
  readonly thumper: ThumperServer;
  readonly amqp: ChannelModel;
  /** Every request the auth service answered since the last take(). */
  take(): AuthRequest[];
}

// Generated names differ per run; the shape of a request must not.
const GENERATED = [
  [/stomp-subscription-[A-Za-z0-9_-]{22}/g, 'stomp-subscription-*'],
  [/amq\.gen-[A-Za-z0-9_-]+/g, 'amq.gen-*'],
] as const;

function normalizeValue(value: string): string {
  return GENERATED.reduce((text, [pattern, placeholder]) => text.replace(pattern, placeholder), value);
}

function toRequest(event: DecisionEvent): AuthRequest {
  return {
    path: event.path,
    params: Object.entries(event.params).map(([k, v]) => [k, normalizeValue(v)] as const),
    answer: event.answer,
  };
}

let rig: Rig | undefined;
let skipReason = '';
// Undone in reverse order after the file, also when before() failed half-way.
const teardown: Array<() => Promise<unknown>> = [];

before(async () => {
  const rabbit = await useRabbit();
  teardown.push(() => rabbit.stop());
  const port = rabbit.authBackendPort;
  if (port === undefined || rabbit.stompPort === undefined) {
    skipReason =
      'the RabbitMQ node was not started by test/harness/rabbitmq.ts ($AMQP_URL or an old state file): ' +
      'only that harness configures rabbitmq_auth_backend_http, so there is no RabbitMQ side to compare with';
    return;
  }
  let decisions: AuthRequest[] = [];
  const auth = await claimAuthBackendPort(() =>
    startAuthBackend({
      host: '127.0.0.1',
      port,
      rulesFile: RULES_FILE,
      jwtSecret: randomBytes(32).toString('hex'),
      onDecision: (event) => decisions.push(toRequest(event)),
    }),
  );
  teardown.push(() => auth.close());
  const thumper = await startThumper({
    THUMPER_ENGINE: 'amqp',
    THUMPER_AMQP_URL: rabbit.amqpUrl,
    THUMPER_AUTH_BACKENDS: 'http',
    THUMPER_AUTH_HTTP_BASE_URL: `http://127.0.0.1:${port}/auth`,
    // Every check must reach the service, as it does from RabbitMQ without rabbitmq_auth_backend_cache.
    THUMPER_AUTH_CACHE_ALLOW_TTL_MS: '0',
    THUMPER_AUTH_CACHE_DENY_TTL_MS: '0',
  });
  teardown.push(() => thumper.stop());
  const model = await amqp.connect(rabbit.amqpUrl);
  teardown.push(() => model.close().catch(() => undefined));
  const ch = await model.createChannel();
  await ch.assertExchange('feed', 'topic', { durable: true });
  await ch.assertExchange('replies', 'topic', { durable: true });
  await ch.close();
  // A leftover from an interrupted run is fine: it only has to exist.
  if (!(await rabbit.rabbitmqctl('list_vhosts', '--quiet')).split('\n').includes(FORBIDDEN_VHOST)) {
    await rabbit.rabbitmqctl('add_vhost', FORBIDDEN_VHOST);
  }
  teardown.push(() => rabbit.rabbitmqctl('delete_vhost', FORBIDDEN_VHOST).catch(() => ''));
  rig = {
    rabbit,
    thumper,
    amqp: model,
    take() {
      const taken = decisions;
      decisions = [];
      return taken;
    },
  };
});

after(async () => {
  for (const undo of teardown.reverse()) await undo();
});

function useRig(t: TestContext): Rig | undefined {
  if (rig === undefined) t.skip(skipReason || 'the auth rig did not start');
  return rig;
}

/** Runs `scenario` on one side: its connections' frames and the auth requests it caused. */
async function observe(r: Rig, name: SideName, scenario: (side: Side) => Promise<void>): Promise<Observation> {
  const conns: StompConn[] = [];
  const open = async (): Promise<StompConn> => {
    const conn = name === 'rabbitmq' ? await connectTcp(r.rabbit.stompPort ?? 0) : await connectWs(r.thumper.wsUrl);
    conns.push(conn);
    return conn;
  };
  const side: Side = {
    name,
    open,
    async session(user) {
      const conn = await open();
      await login(conn, { login: user, passcode: USERS[user] });
      return conn;
    },
  };
  r.take();
  try {
    await scenario(side);
    // Taken before this side closes its connections: `closed` is what the server did.
    return {
      connections: conns.map((c) => ({ frames: normalizeAll(c.frames), closed: c.isClosed })),
      requests: r.take(),
    };
  } catch (err) {
    throw new Error(`[${name}] ${(err as Error).message}`, { cause: err });
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
}

async function both(r: Rig, scenario: (side: Side) => Promise<void>): Promise<Record<SideName, Observation>> {
  const rabbitmq = await observe(r, 'rabbitmq', scenario);
  const thumper = await observe(r, 'thumper', scenario);
  return { rabbitmq, thumper };
}

/**
 * both(), then Thumper's observation must equal RabbitMQ's after the known differences
 * (expectedOfThumper) are applied to RabbitMQ's. Returns RabbitMQ's, unchanged.
 */
async function compare(r: Rig, scenario: (side: Side) => Promise<void>): Promise<Observation> {
  const { rabbitmq, thumper } = await both(r, scenario);
  assert.deepEqual(thumper, expectedOfThumper(rabbitmq), 'Thumper (actual) differs from RabbitMQ (expected): frames or auth requests');
  return rabbitmq;
}

const isDenied = (q: AuthRequest): boolean => q.answer === 'deny';
const param = (q: AuthRequest | undefined, name: string): string | undefined => q?.params.find(([k]) => k === name)?.[1];

/**
 * What Thumper is expected to show, given what RabbitMQ 3.10.8 showed. Two deliberate differences,
 * each applied only where it occurs and pinned by the tests below that assert RabbitMQ's side:
 *
 * 1. ACCESS_REFUSED wording: RabbitMQ 3.10.8 writes `access to exchange 'feed' … refused`; Thumper
 *    names the permission, `write access to exchange 'feed' … refused`, as RabbitMQ itself does
 *    in later releases (rabbit_access_control.erl on rabbitmq-server main:
 *    "~s access to ~ts refused for user '~ts'", and "~s access to topic '~ts' in exchange ~ts …").
 *    The permission is the one of the request the service denied.
 * 2. A refused /exchange or /topic SUBSCRIBE: RabbitMQ declares the subscription queue, fails at
 *    the bind, then deletes the queue, which costs one more `configure` request on it (reference
 *    §5.3: "a failing bind adds queue Q configure (cleanup delete)"). Thumper asks every check of
 *    the plan before touching the broker, so nothing was declared and there is nothing to delete.
 */
function expectedOfThumper(rabbitmq: Observation): Observation {
  const denied = rabbitmq.requests.findLast(isDenied);
  const permission = param(denied, 'permission');
  const connections = rabbitmq.connections.map((c) => ({
    ...c,
    frames: c.frames.map((f) =>
      f.command === 'ERROR' && header(f, 'message') === 'access_refused' && permission !== undefined
        ? { ...f, body: f.body.replace(/^ACCESS_REFUSED - access to /, `ACCESS_REFUSED - ${permission} access to `) }
        : f,
    ),
  }));
  const deniedAt = denied === undefined ? -1 : rabbitmq.requests.lastIndexOf(denied);
  const cleanup = rabbitmq.requests[deniedAt + 1];
  const isCleanup =
    cleanup !== undefined &&
    deniedAt + 2 === rabbitmq.requests.length &&
    cleanup.path === 'resource' &&
    param(cleanup, 'name') === 'stomp-subscription-*' &&
    param(cleanup, 'permission') === 'configure';
  return { connections, requests: isCleanup ? rabbitmq.requests.slice(0, -1) : rabbitmq.requests };
}

/** Waits for the frame a refused operation causes, then for the close it brings (if any). */
async function refused(conn: StompConn): Promise<void> {
  await conn.next((f) => f.command === 'ERROR');
  await conn.waitClosed().catch(() => undefined);
}

/** CONNECT that may be refused: the frames record the outcome. */
async function tryLogin(conn: StompConn, user: string, passcode: string, host = '/'): Promise<void> {
  await login(conn, { login: user, passcode, host }).catch(() => undefined);
}

const lastFrame = (o: Observation, connection = 0): NormalizedFrame | undefined => o.connections[connection]?.frames.at(-1);
const header = (f: NormalizedFrame | undefined, name: string): string | undefined => f?.headers.find(([k]) => k === name)?.[1];

/**
 * One request in one line, for the RabbitMQ-side pins: `resource queue q configure → allow`. The
 * constant parameters (username user_x, vhost '/', tags '', topic variable_map) are left out unless
 * they differ; the comparison with Thumper covers every parameter anyway.
 */
function brief(q: AuthRequest): string {
  const p = (name: string): string => param(q, name) ?? '';
  const tags = p('tags') === '' ? '' : ` tags=${p('tags')}`;
  switch (q.path) {
    case 'user':
      return `user ${p('username')} → ${q.answer}`;
    case 'vhost':
      return `vhost ${p('username')} ${p('vhost')} ip=${p('ip')} tags=${p('tags')} → ${q.answer}`;
    case 'resource':
      return `resource ${p('resource')} ${p('name')} ${p('permission')}${tags} → ${q.answer}`;
    default:
      return `topic ${p('name')} ${p('permission')} rk=${p('routing_key')}${tags} → ${q.answer}`;
  }
}

// ---------------------------------------------------------------------------------------------
// CONNECT (reference §2.3, §5.3: user, then vhost)

const CONNECT_X = ['user user_x → allow', 'vhost user_x / ip=127.0.0.1 tags= → allow'];

test('CONNECT with the right password: user then vhost request, CONNECTED', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    await side.session('user_x');
  });
  assert.equal(lastFrame(o)?.command, 'CONNECTED');
  // The full parameter lists once, in protocol order (reference §5.1); later tests use brief().
  assert.deepEqual(o.requests, [
    { path: 'user', params: [['username', 'user_x'], ['password', '[redacted]'], ['vhost', '/']], answer: 'allow' },
    { path: 'vhost', params: [['username', 'user_x'], ['vhost', '/'], ['ip', '127.0.0.1'], ['tags', '']], answer: 'allow' },
  ]);
});

// Bad CONNECT is not fatal (reference §2.3): the same socket may CONNECT again, and does here.
for (const [label, user, passcode] of [
  ['a wrong password', 'user_x', 'not-the-secret'],
  ['an unknown user', 'nobody', 'whatever'],
] as const) {
  test(`CONNECT with ${label}: Bad CONNECT, the socket stays usable`, async (t) => {
    const r = useRig(t);
    if (!r) return;
    const o = await compare(r, async (side) => {
      const conn = await side.open();
      await tryLogin(conn, user, passcode);
      await tryLogin(conn, 'user_x', USERS.user_x);
    });
    assert.deepEqual(
      o.connections[0]?.frames.map((f) => [f.command, header(f, 'message') ?? '', f.body]),
      [
        ['ERROR', 'Bad CONNECT', `Access refused for user '${user}'\n`],
        ['CONNECTED', '', ''],
      ],
    );
    assert.deepEqual(o.requests.map(brief), [`user ${user} → deny`, ...CONNECT_X]);
  });
}

test(`CONNECT to a vhost the user may not use (host:${FORBIDDEN_VHOST}, which exists on the node)`, async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    const conn = await side.open();
    await tryLogin(conn, 'user_x', USERS.user_x, FORBIDDEN_VHOST);
  });
  assert.equal(lastFrame(o)?.body, `Virtual host '${FORBIDDEN_VHOST}' access denied`);
  assert.deepEqual(o.requests.map(brief), ['user user_x → allow', `vhost user_x ${FORBIDDEN_VHOST} ip=127.0.0.1 tags= → deny`]);
});

// Deliberate difference: RabbitMQ asks no backend at all for a vhost that does not exist on the
// node: its STOMP plugin logs in over a direct connection, and rabbit_direct:connect checks the
// vhost's connection limit before authenticating, which fails with no_such_vhost (observed on
// 3.10.8: zero requests). Thumper cannot know which vhosts exist without asking the broker, so it
// asks the auth service first (user, then vhost), which denies a vhost it does not list. The client
// sees the same ERROR either way; the service sees two more requests from Thumper.
test(`CONNECT to a vhost that does not exist (host:${MISSING_VHOST}): same ERROR, Thumper also asks the vhost path`, async (t) => {
  const r = useRig(t);
  if (!r) return;
  const { rabbitmq, thumper } = await both(r, async (side) => {
    const conn = await side.open();
    await tryLogin(conn, 'user_x', USERS.user_x, MISSING_VHOST);
  });
  assert.deepEqual(thumper.connections, rabbitmq.connections);
  assert.equal(lastFrame(rabbitmq)?.body, `Virtual host '${MISSING_VHOST}' access denied`);
  assert.deepEqual(rabbitmq.requests.map(brief), []);
  assert.deepEqual(thumper.requests.map(brief), ['user user_x → allow', `vhost user_x ${MISSING_VHOST} ip=127.0.0.1 tags= → deny`]);
});

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE to the feed: only one's own routing key (topic permission read, reference §5.3)

/** The checks of a SUBSCRIBE to /exchange/feed/<key> up to the topic check (reference §5.3). */
const subscribeFeed = (key: string, topicAnswer: 'allow' | 'deny'): string[] => [
  'resource queue stomp-subscription-* configure → allow',
  'resource queue stomp-subscription-* read → allow',
  'resource queue stomp-subscription-* write → allow',
  'resource exchange feed read → allow',
  `topic feed read rk=${key} → ${topicAnswer}`,
];
// RabbitMQ's clean-up delete of the subscription queue after a refused bind (expectedOfThumper, 2).
const CLEANUP = 'resource queue stomp-subscription-* configure → allow';

test('user_x SUBSCRIBE /exchange/feed/user_x (allowed): RECEIPT, then a message published over AMQP arrives', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    const conn = await side.session('user_x');
    await conn.request('SUBSCRIBE', { id: 'mine', destination: '/exchange/feed/user_x' });
    const ch = await r.amqp.createConfirmChannel();
    try {
      ch.publish('feed', 'user_x', Buffer.from('for user_x via AMQP'));
      await ch.waitForConfirms();
    } finally {
      await ch.close();
    }
    await conn.next(isMessage);
  });
  assert.deepEqual(
    o.connections[0]?.frames.map((f) => f.command),
    ['CONNECTED', 'RECEIPT', 'MESSAGE'],
  );
  assert.equal(lastFrame(o)?.body, 'for user_x via AMQP');
  assert.deepEqual(o.requests.map(brief), [...CONNECT_X, ...subscribeFeed('user_x', 'allow')]);
  // One topic request in full: the variable_map parameters come last (reference §5.1).
  assert.deepEqual(o.requests.at(-1)?.params, [
    ['username', 'user_x'],
    ['vhost', '/'],
    ['resource', 'topic'],
    ['name', 'feed'],
    ['permission', 'read'],
    ['tags', ''],
    ['routing_key', 'user_x'],
    ['variable_map.username', 'user_x'],
    ['variable_map.vhost', '/'],
  ]);
});

for (const [destination, key] of [
  ['/exchange/feed/user_y', 'user_y'],
  ['/exchange/feed/#', '#'],
  ['/exchange/feed/*', '*'],
  ['/exchange/feed', ''],
] as const) {
  test(`user_x SUBSCRIBE ${destination} (denied at the topic check): access_refused, connection closed`, async (t) => {
    const r = useRig(t);
    if (!r) return;
    const o = await compare(r, async (side) => {
      const conn = await side.session('user_x');
      conn.send('SUBSCRIBE', { id: 'other', destination });
      await refused(conn);
    });
    assert.equal(header(lastFrame(o), 'message'), 'access_refused');
    assert.equal(lastFrame(o)?.body, `ACCESS_REFUSED - access to topic '${key}' in exchange 'feed' in vhost '/' refused for user 'user_x'`);
    assert.equal(o.connections[0]?.closed, true);
    assert.deepEqual(o.requests.map(brief), [...CONNECT_X, ...subscribeFeed(key, 'deny'), CLEANUP]);
  });
}

test('user_x SUBSCRIBE /topic/# (denied: no read on amq.topic)', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    const conn = await side.session('user_x');
    conn.send('SUBSCRIBE', { id: 'all', destination: '/topic/#' });
    await refused(conn);
  });
  assert.equal(lastFrame(o)?.body, "ACCESS_REFUSED - access to exchange 'amq.topic' in vhost '/' refused for user 'user_x'");
  assert.equal(o.connections[0]?.closed, true);
  // STOMP's own topic check comes first and passes: the rules set no topic permission on amq.topic.
  assert.deepEqual(o.requests.map(brief), [
    ...CONNECT_X,
    'topic amq.topic read rk=# → allow',
    'resource queue stomp-subscription-* configure → allow',
    'resource queue stomp-subscription-* read → allow',
    'resource queue stomp-subscription-* write → allow',
    'resource exchange amq.topic read → deny',
    CLEANUP,
  ]);
});

// ---------------------------------------------------------------------------------------------
// SEND: write on the exchange, then topic write on topic exchanges

test('user_x SEND /exchange/feed/user_y (denied: end users may not write to feed)', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    const conn = await side.session('user_x');
    // No receipt: Thumper adds receipt-id to an ERROR (STOMP 1.2 §ERROR), RabbitMQ 3.10.8 does not.
    conn.send('SEND', { destination: '/exchange/feed/user_y' }, 'forged');
    await refused(conn);
  });
  assert.equal(lastFrame(o)?.body, "ACCESS_REFUSED - access to exchange 'feed' in vhost '/' refused for user 'user_x'");
  assert.equal(o.connections[0]?.closed, true);
  assert.deepEqual(o.requests.map(brief), [...CONNECT_X, 'resource exchange feed write → deny']);
});

test('user_x SEND /exchange/replies/user_x (allowed, with receipt): the reply reaches the exchange', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const received: string[] = [];
  const o = await compare(r, async (side) => {
    const tap = await tapExchange(r.amqp, 'replies', 'user_x');
    try {
      const conn = await side.session('user_x');
      await conn.request('SEND', { destination: '/exchange/replies/user_x' }, `reply from ${side.name}`);
      received.push(await tap.next());
    } finally {
      await tap.close();
    }
  });
  assert.deepEqual(received, ['reply from rabbitmq', 'reply from thumper']);
  assert.equal(lastFrame(o)?.command, 'RECEIPT');
  assert.deepEqual(o.requests.map(brief), [...CONNECT_X, 'resource exchange replies write → allow', 'topic replies write rk=user_x → allow']);
});

test('user_x SEND /exchange/replies/user_y (denied: topic write only on its own key)', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    const conn = await side.session('user_x');
    conn.send('SEND', { destination: '/exchange/replies/user_y' }, 'not mine');
    await refused(conn);
  });
  assert.equal(lastFrame(o)?.body, "ACCESS_REFUSED - access to topic 'user_y' in exchange 'replies' in vhost '/' refused for user 'user_x'");
  assert.deepEqual(o.requests.map(brief), [...CONNECT_X, 'resource exchange replies write → allow', 'topic replies write rk=user_y → deny']);
});

test('publisher SEND /exchange/feed/user_x (allowed): user_x, subscribed, receives it', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const o = await compare(r, async (side) => {
    const reader = await side.session('user_x');
    await reader.request('SUBSCRIBE', { id: 'feed', destination: '/exchange/feed/user_x' });
    const publisher = await side.session('publisher');
    await publisher.request('SEND', { destination: '/exchange/feed/user_x' }, 'news for user_x');
    await reader.next(isMessage);
  });
  assert.equal(lastFrame(o, 0)?.body, 'news for user_x');
  assert.equal(lastFrame(o, 1)?.command, 'RECEIPT');
  // The user path's `allow publisher` becomes `tags` on every later request.
  assert.deepEqual(o.requests.map(brief), [
    ...CONNECT_X,
    ...subscribeFeed('user_x', 'allow'),
    'user publisher → allow publisher',
    'vhost publisher / ip=127.0.0.1 tags=publisher → allow',
    'resource exchange feed write tags=publisher → allow',
    'topic feed write rk=user_x tags=publisher → allow',
  ]);
});

// ---------------------------------------------------------------------------------------------
// /queue: configure (declare) and read on the queue (reference §5.3)

test('user_x SUBSCRIBE /queue/user_x.inbox (allowed) vs /queue/user_y.inbox (denied)', async (t) => {
  const r = useRig(t);
  if (!r) return;
  const cleanup = async (): Promise<void> => {
    const ch = await r.amqp.createChannel();
    await ch.deleteQueue('user_x.inbox');
    await ch.deleteQueue('user_y.inbox');
    await ch.close();
  };
  await cleanup();
  const o = await compare(r, async (side) => {
    try {
      const conn = await side.session('user_x');
      await conn.request('SUBSCRIBE', { id: 'own', destination: '/queue/user_x.inbox' });
      conn.send('SUBSCRIBE', { id: 'theirs', destination: '/queue/user_y.inbox' });
      await refused(conn);
    } finally {
      await cleanup();
    }
  });
  assert.deepEqual(
    o.connections[0]?.frames.map((f) => f.command),
    ['CONNECTED', 'RECEIPT', 'ERROR'],
  );
  assert.equal(lastFrame(o)?.body, "ACCESS_REFUSED - access to queue 'user_y.inbox' in vhost '/' refused for user 'user_x'");
  assert.deepEqual(o.requests.map(brief), [
    ...CONNECT_X,
    'resource queue user_x.inbox configure → allow',
    'resource queue user_x.inbox read → allow',
    'resource queue user_y.inbox configure → deny',
  ]);
});

// ---------------------------------------------------------------------------------------------

interface Tap {
  /** The next message's body. */
  next(): Promise<string>;
  close(): Promise<void>;
}

/** A private queue bound to `exchange` with `key`, read over AMQP as guest. */
async function tapExchange(model: ChannelModel, exchange: string, key: string): Promise<Tap> {
  const ch = await model.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  await ch.bindQueue(queue, exchange, key);
  const bodies: string[] = [];
  let wake: (() => void) | undefined;
  await ch.consume(
    queue,
    (msg) => {
      if (msg === null) return;
      bodies.push(msg.content.toString('utf8'));
      wake?.();
    },
    { noAck: true },
  );
  return {
    async next() {
      if (bodies.length === 0) await withDeadline(new Promise<void>((resolve) => (wake = resolve)), 5000, `no message on ${exchange}/${key}`);
      return bodies.shift() ?? '';
    },
    close: () => ch.close(),
  };
}
