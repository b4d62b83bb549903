// JWT authentication end to end: the reference auth service (auth-backend/) issues an HS256 token at
// POST /login, Thumper verifies it (THUMPER_AUTH_BACKENDS=jwt,http) and asks the same service what
// the token's subject may do (THUMPER_AUTH_AUTHZ=http). The token arrives as the CONNECT passcode,
// as `Authorization: Bearer` on the WebSocket upgrade or as `?access_token=`; forged, unsigned,
// expired and misaddressed tokens are refused at CONNECT; a token that expires mid-session ends
// the session. Then THUMPER_AUTH_BACKENDS=jwt alone, where the token's scopes are the permissions.
// Run in front of RabbitMQ and with the embedded engine.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import jwt from 'jsonwebtoken';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import type { RunningAuthBackend } from '../../auth-backend/src/server.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { DEFAULT_DEADLINE_MS, connectWs, describeFrame, login, withDeadline } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const RULES_FILE = fileURLToPath(new URL('../../auth-backend/rules.json', import.meta.url));
const ISSUER = 'thumper-auth-backend';
const AUDIENCE = 'thumper';
const SUITE = { timeout: 120_000 };
/** The mid-session expiry test waits for a token that lives two to three seconds. */
const EXPIRY_DEADLINE_MS = 15_000;
const SCOPES_X = [
  'rabbitmq.read:%2F/feed/user_x',
  'rabbitmq.configure:%2F/stomp-subscription-*',
  'rabbitmq.write:%2F/stomp-subscription-*',
  'rabbitmq.read:%2F/stomp-subscription-*',
].join(' ');

type EngineKind = 'amqp' | 'memory';

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const bodyOf = (frame: Frame): string => frame.body.toString('utf8');
const messageWithBody =
  (body: string) =>
  (f: Frame): boolean =>
    f.command === 'MESSAGE' && bodyOf(f) === body;

interface TokenOptions {
  readonly secret: string;
  readonly subject?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Absolute `exp`, epoch seconds; default one hour from now. */
  readonly exp?: number;
  readonly scope?: string;
}

function signToken(o: TokenOptions): string {
  const claims: Record<string, unknown> = { exp: o.exp ?? nowSeconds() + 3600 };
  if (o.scope !== undefined) claims['scope'] = o.scope;
  return jwt.sign(claims, o.secret, {
    algorithm: 'HS256',
    subject: o.subject ?? 'user_x',
    issuer: o.issuer ?? ISSUER,
    audience: o.audience ?? AUDIENCE,
  });
}

/** An unsigned token: header {"alg":"none","typ":"JWT"}, a valid-looking payload, empty signature. */
function unsignedToken(subject: string): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: subject, iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 3600 })}.`;
}

async function fetchToken(authUrl: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${authUrl}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, `POST /login as ${username}: ${res.status} ${await res.clone().text()}`);
  const body = (await res.json()) as { token?: unknown };
  assert.equal(typeof body.token, 'string');
  return body.token as string;
}

interface Feeder {
  publish(routingKey: string, body: string): Promise<void>;
  close(): Promise<void>;
}

async function amqpFeeder(amqpUrl: string): Promise<Feeder & { readonly channel: ConfirmChannel; readonly model: ChannelModel }> {
  const model = await amqp.connect(amqpUrl);
  const channel = await model.createConfirmChannel();
  await channel.assertExchange('feed', 'topic', { durable: true });
  await channel.assertExchange('replies', 'topic', { durable: true });
  return {
    model,
    channel,
    async publish(routingKey, body) {
      channel.publish('feed', routingKey, Buffer.from(body));
      await channel.waitForConfirms();
    },
    async close() {
      await model.close().catch(() => {});
    },
  };
}

function stompFeeder(conn: StompConn): Feeder {
  return {
    async publish(routingKey, body) {
      await conn.request('SEND', { destination: `/exchange/feed/${routingKey}` }, body);
    },
    close: () => conn.close(),
  };
}

interface Rig {
  readonly thumper: ThumperServer;
  readonly wsUrl: string;
  /** A tracked connection, closed by close(). */
  open(url?: string, headers?: Record<string, string>): Promise<StompConn>;
  close(): Promise<void>;
}

async function startRig(env: Record<string, string>, auth?: RunningAuthBackend): Promise<Rig> {
  const thumper = await startThumper(env);
  const conns: StompConn[] = [];
  return {
    thumper,
    wsUrl: thumper.wsUrl,
    async open(url = thumper.wsUrl, headers?: Record<string, string>) {
      const conn = await connectWs(url, headers ? { headers } : {});
      conns.push(conn);
      return conn;
    },
    async close() {
      await Promise.all(conns.map((c) => c.close()));
      await thumper.stop();
      await auth?.close();
    },
  };
}

function assertError(frame: Frame, message: string, body: string): void {
  assert.equal(frame.command, 'ERROR', `expected ERROR, got ${describeFrame(frame)}`);
  assert.equal(getHeader(frame, 'message'), message, describeFrame(frame));
  assert.equal(bodyOf(frame), body, describeFrame(frame));
}

const refusedTopic = (user: string, key: string): string =>
  `ACCESS_REFUSED - read access to topic '${key}' in exchange 'feed' in vhost '/' refused for user '${user}'`;

/** CONNECT with `token` as passcode (and a login that means nothing); the reply frame. */
async function connectWithToken(conn: StompConn, token: string, loginName = 'anything'): Promise<Frame> {
  conn.send('CONNECT', { 'accept-version': '1.2', host: '/', login: loginName, passcode: token });
  return conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
}

function jwtSuite(engine: EngineKind): void {
  describe(`JWT on the ${engine} engine`, SUITE, () => {
    const secret = randomBytes(32).toString('hex');
    const run = randomBytes(4).toString('hex');
    const mark = (what: string): string => `${what} ${run}`;
    let rabbit: RabbitNode | undefined;
    let amqpSide: Awaited<ReturnType<typeof amqpFeeder>> | undefined;
    let engineEnv: Record<string, string> = {};
    let auth: RunningAuthBackend;
    let rig: Rig;
    let feeder: Feeder;
    let token: string;

    const jwtEnv = (): Record<string, string> => ({
      THUMPER_AUTH_JWT_ALGORITHMS: 'HS256',
      THUMPER_AUTH_JWT_SECRET: secret,
      THUMPER_AUTH_JWT_ISSUER: ISSUER,
      THUMPER_AUTH_JWT_AUDIENCE: AUDIENCE,
    });

    before(async () => {
      if (engine === 'amqp') {
        rabbit = await useRabbit();
        engineEnv = { THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl };
        amqpSide = await amqpFeeder(rabbit.amqpUrl);
      } else {
        engineEnv = { THUMPER_ENGINE: 'memory' };
      }
      auth = await startAuthBackend({ host: '127.0.0.1', port: 0, rulesFile: RULES_FILE, jwtSecret: secret });
      rig = await startRig(
        {
          ...engineEnv,
          ...jwtEnv(),
          THUMPER_AUTH_BACKENDS: 'jwt,http',
          THUMPER_AUTH_AUTHZ: 'http',
          THUMPER_AUTH_HTTP_BASE_URL: `${auth.url}/auth`,
        },
        auth,
      );
      if (amqpSide) {
        feeder = amqpSide;
      } else {
        const publisher = await rig.open();
        await login(publisher, { login: 'publisher', passcode: 'publisher-secret' });
        feeder = stompFeeder(publisher);
      }
      token = await fetchToken(auth.url, 'user_x', 'user_x-secret');
    });

    after(async () => {
      await rig?.close();
      await feeder?.close();
      await rabbit?.stop();
    });

    /** SUBSCRIBE feed/user_x works and a real message arrives; SUBSCRIBE feed/user_y is refused. */
    async function actsAsUserX(conn: StompConn, what: string): Promise<void> {
      conn.send('SUBSCRIBE', { destination: '/exchange/feed/user_x', id: 'own', ack: 'auto', receipt: 'own' });
      const receipt = await conn.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR');
      assert.equal(receipt.command, 'RECEIPT', `${what}: ${describeFrame(receipt)}`);
      await feeder.publish('user_x', mark(what));
      const got = await conn.next(messageWithBody(mark(what)));
      assert.equal(getHeader(got, 'destination'), '/exchange/feed/user_x');
      conn.send('SUBSCRIBE', { destination: '/exchange/feed/user_y', id: 'theirs', receipt: 'theirs' });
      const refused = await conn.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR');
      assertError(refused, 'access_refused', refusedTopic('user_x', 'user_y'));
      await withDeadline(conn.closed, DEFAULT_DEADLINE_MS, 'not closed');
    }

    test('a token from POST /login as the CONNECT passcode: CONNECTED, with user_x’s permissions', async () => {
      const conn = await rig.open();
      const reply = await connectWithToken(conn, token);
      assert.equal(reply.command, 'CONNECTED', describeFrame(reply));
      await actsAsUserX(conn, 'passcode');
    });

    test('a token as `Authorization: Bearer` on the upgrade, no login or passcode', async () => {
      const conn = await rig.open(rig.wsUrl, { Authorization: `Bearer ${token}` });
      conn.send('CONNECT', { 'accept-version': '1.2', host: '/' });
      const reply = await conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
      assert.equal(reply.command, 'CONNECTED', describeFrame(reply));
      await actsAsUserX(conn, 'bearer');
    });

    test('a token as `?access_token=` on the WebSocket URL, no login or passcode', async () => {
      const conn = await rig.open(`${rig.wsUrl}?access_token=${encodeURIComponent(token)}`);
      conn.send('CONNECT', { 'accept-version': '1.2', host: '/' });
      const reply = await conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
      assert.equal(reply.command, 'CONNECTED', describeFrame(reply));
      await actsAsUserX(conn, 'access_token');
    });

    test('a password login still works through the http authenticator', async () => {
      const conn = await rig.open();
      await login(conn, { login: 'publisher', passcode: 'publisher-secret' });
      // Only the publisher may read the whole feed.
      await conn.request('SUBSCRIBE', { destination: '/exchange/feed/#', id: 'all', ack: 'auto' });
      await feeder.publish('user_y', mark('for the publisher'));
      await conn.waitFor(messageWithBody(mark('for the publisher')));
      const wrong = await rig.open();
      wrong.send('CONNECT', { 'accept-version': '1.2', host: '/', login: 'publisher', passcode: 'user_x-secret' });
      assertError(await wrong.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR'), 'Bad CONNECT', "Access refused for user 'publisher'\n");
    });

    const attacks: ReadonlyArray<{ readonly name: string; readonly token: () => string; readonly body: string }> = [
      {
        name: 'a forged signature (a publisher token signed with another secret)',
        token: () => signToken({ secret: randomBytes(32).toString('hex'), subject: 'publisher' }),
        body: 'invalid token: bad signature',
      },
      { name: 'an `alg: none` token for publisher', token: () => unsignedToken('publisher'), body: 'invalid token: algorithm not allowed' },
      { name: 'an expired token', token: () => signToken({ secret, exp: nowSeconds() - 60 }), body: 'token expired' },
      { name: 'a token for another audience', token: () => signToken({ secret, audience: 'not-thumper' }), body: 'invalid token: wrong audience' },
      { name: 'a token from another issuer', token: () => signToken({ secret, issuer: 'someone-else' }), body: 'invalid token: wrong issuer' },
    ];

    for (const a of attacks) {
      test(`refused at CONNECT: ${a.name}`, async () => {
        // As the passcode: never retried as a password, so the login name is irrelevant.
        const asPasscode = await rig.open();
        const reply = await connectWithToken(asPasscode, a.token(), 'publisher');
        assertError(reply, 'Bad CONNECT', a.body);
        // As `Authorization: Bearer`, and as `?access_token=` (with a correct password beside it,
        // which must not rescue the connection).
        const asBearer = await rig.open(rig.wsUrl, { Authorization: `Bearer ${a.token()}` });
        asBearer.send('CONNECT', { 'accept-version': '1.2', host: '/' });
        assertError(await asBearer.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR'), 'Bad CONNECT', a.body);
        const asQuery = await rig.open(`${rig.wsUrl}?access_token=${encodeURIComponent(a.token())}`);
        asQuery.send('CONNECT', { 'accept-version': '1.2', host: '/', login: 'user_x', passcode: 'user_x-secret' });
        assertError(await asQuery.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR'), 'Bad CONNECT', a.body);
        for (const conn of [asPasscode, asBearer, asQuery]) {
          assert.deepEqual(
            conn.frames.filter((f) => f.command === 'CONNECTED' || f.command === 'MESSAGE').map(describeFrame),
            [],
          );
        }
      });
    }

    test('a token that expires during the session: ERROR `token expired`, then the socket closes', async () => {
      // Two to three seconds left (exp has one-second resolution): time enough to show the session works.
      const exp = nowSeconds() + 3;
      const conn = await rig.open();
      const reply = await connectWithToken(conn, signToken({ secret, exp }));
      assert.equal(reply.command, 'CONNECTED', describeFrame(reply));
      await conn.request('SUBSCRIBE', { destination: '/exchange/feed/user_x', id: 'own', ack: 'auto' });
      await feeder.publish('user_x', mark('before expiry'));
      await conn.waitFor(messageWithBody(mark('before expiry')));

      const expired = await conn.waitFor((f) => f.command === 'ERROR', EXPIRY_DEADLINE_MS);
      assertError(expired, 'token expired', `The access token expired at ${new Date(exp * 1000).toISOString()}; reconnect with a new one\n`);
      await conn.waitClosed();
    });

    test('THUMPER_AUTH_BACKENDS=jwt alone: the token’s scopes are the permissions', async (t) => {
      const scoped = await startRig({ ...engineEnv, ...jwtEnv(), THUMPER_AUTH_BACKENDS: 'jwt' });
      t.after(() => scoped.close());
      const publish = async (routingKey: string, body: string): Promise<void> => {
        if (amqpSide) {
          await amqpSide.publish(routingKey, body);
          return;
        }
        // Embedded engine: the backend publishes through Thumper too, with a token that may write feed.
        const publisher = await scoped.open();
        const ok = await connectWithToken(publisher, signToken({ secret, subject: 'publisher', scope: 'rabbitmq.write:%2F/feed/*' }));
        assert.equal(ok.command, 'CONNECTED', describeFrame(ok));
        await publisher.request('SEND', { destination: `/exchange/feed/${routingKey}` }, body);
        await publisher.close();
      };

      const scopedToken = signToken({ secret, scope: SCOPES_X });
      const conn = await scoped.open();
      const reply = await connectWithToken(conn, scopedToken);
      assert.equal(reply.command, 'CONNECTED', describeFrame(reply));
      await conn.request('SUBSCRIBE', { destination: '/exchange/feed/user_x', id: 'own', ack: 'auto' });
      await publish('user_x', mark('scoped'));
      const got = await conn.waitFor(messageWithBody(mark('scoped')));
      assert.equal(getHeader(got, 'destination'), '/exchange/feed/user_x');

      const other = await scoped.open();
      assert.equal((await connectWithToken(other, scopedToken)).command, 'CONNECTED');
      other.send('SUBSCRIBE', { destination: '/exchange/feed/user_y', id: 'theirs', receipt: 'theirs' });
      assertError(await other.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR'), 'access_refused', refusedTopic('user_x', 'user_y'));
      await other.waitClosed();

      // No password logins here: only tokens are accepted.
      const password = await scoped.open();
      password.send('CONNECT', { 'accept-version': '1.2', host: '/', login: 'user_x', passcode: 'user_x-secret' });
      assertError(
        await password.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR'),
        'Bad CONNECT',
        "Access refused for user 'user_x': no credentials this server accepts (jwt)\n",
      );
    });
  });
}

jwtSuite('amqp');
jwtSuite('memory');
