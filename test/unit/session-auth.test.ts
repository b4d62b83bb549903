// What the session does with auth decisions: token expiry ends the session with an ERROR, the
// transport's bearer token reaches the authorizer, refusals are RabbitMQ's ACCESS_REFUSED, and
// subscription queues cannot be named directly (destination/subscription-queue-guard.ts).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allow, deny, type Authorizer, type ConnectRequest, type Principal } from '../../broker/src/auth/authorizer.js';
import type { PermissionCheck } from '../../broker/src/destination/types.js';
import { getHeader, type Frame } from '../../broker/src/stomp/frame.js';
import { rig, type Rig } from '../helpers/session-fixture.js';

const h = (f: Frame, name: string) => getHeader(f, name);
const isError = (f: Frame) => f.command === 'ERROR';

/** Records what it was asked; expiry and refusals are set per test. */
function scriptedAuthorizer(opts: { expiresInMs?: number; refuse?: (c: PermissionCheck) => boolean } = {}) {
  const requests: ConnectRequest[] = [];
  const checks: PermissionCheck[] = [];
  const authorizer: Authorizer = {
    name: 'scripted',
    async authenticate(req) {
      requests.push(req);
      const principal: Principal = {
        username: req.login ?? 'anon',
        vhost: req.vhost,
        tags: [],
        authenticatedBy: 'jwt',
        ...(opts.expiresInMs !== undefined ? { expiresAt: Date.now() + opts.expiresInMs } : {}),
      };
      return { ok: true, value: principal };
    },
    async authorize(_p, check) {
      checks.push(check);
      return opts.refuse?.(check) ? deny('') : allow;
    },
  };
  return { authorizer, requests, checks };
}

describe('session: token expiry', () => {
  it('at exp the client gets ERROR "token expired" and the connection closes', async () => {
    const r = await rig({}, scriptedAuthorizer({ expiresInMs: 150 }).authorizer);
    try {
      const c = await r.connected({ login: 'user_x' });
      assert.ok(c.frames.some((f) => f.command === 'CONNECTED'));
      const err = await c.waitFor(isError, 'ERROR at expiry');
      assert.equal(h(err, 'message'), 'token expired');
      assert.match(err.body.toString(), /expired at \d{4}-\d\d-\d\dT/);
      await c.waitForClose();
    } finally {
      await r.close();
    }
  });

  it('a session without expiry is not closed by the expiry watch', async () => {
    const r = await rig({}, scriptedAuthorizer().authorizer);
    try {
      const c = await r.connected({ login: 'user_x' });
      c.send('SUBSCRIBE', { id: 's', destination: '/queue/q-noexp', receipt: 'r1' });
      await c.waitFor((f) => f.command === 'RECEIPT');
      assert.equal(c.isClosed, false);
    } finally {
      await r.close();
    }
  });
});

describe('session: credentials from the transport', () => {
  it('the bearer token the transport received reaches the authorizer with the CONNECT headers', async () => {
    const s = scriptedAuthorizer();
    const r = await rig({}, s.authorizer);
    try {
      const c = r.client();
      c.transport.bearerToken = 'tok.en.value';
      c.send('CONNECT', { 'accept-version': '1.2', host: 'vh', login: 'u', passcode: 'p' });
      await c.waitFor((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
      assert.deepEqual(s.requests[0], { login: 'u', passcode: 'p', vhost: 'vh', remoteAddress: '127.0.0.1', bearerToken: 'tok.en.value' });
    } finally {
      await r.close();
    }
  });
});

describe('session: refusals', () => {
  let r: Rig;
  const s = scriptedAuthorizer({ refuse: (c) => c.resource === 'topic' && c.routingKey !== 'user_x' });
  before(async () => (r = await rig({}, s.authorizer)));
  after(() => r.close());

  it('a refused check is RabbitMQ\'s ACCESS_REFUSED naming the topic and routing key, then close', async () => {
    const c = await r.connected({ login: 'user_x' });
    c.send('SUBSCRIBE', { id: 's1', destination: '/exchange/feed/user_y' });
    const err = await c.waitFor(isError);
    assert.equal(h(err, 'message'), 'access_refused');
    assert.equal(err.body.toString(), "ACCESS_REFUSED - read access to topic 'user_y' in exchange 'feed' in vhost '/' refused for user 'user_x'");
    await c.waitForClose();
  });

  it('the same user may subscribe to their own routing key', async () => {
    const c = await r.connected({ login: 'user_x' });
    c.send('SUBSCRIBE', { id: 's1', destination: '/exchange/feed/user_x', receipt: 'ok' });
    await c.waitFor((f) => f.command === 'RECEIPT');
  });
});

describe('session: subscription queues are reached only through their destination', () => {
  let r: Rig;
  const s = scriptedAuthorizer();
  before(async () => (r = await rig({}, s.authorizer)));
  after(() => r.close());

  const attempts: Array<[string, string, Record<string, string>]> = [
    ['SUBSCRIBE', '/amq/queue/stomp-subscription-AAAAAAAAAAAAAAAAAAAAAA', { id: 'a' }],
    ['SUBSCRIBE', '/queue/stomp-subscription-AAAAAAAAAAAAAAAAAAAAAA', { id: 'a' }],
    ['SUBSCRIBE', '/exchange/feed/user_x', { id: 'a', 'x-queue-name': 'stomp-subscription-AAAAAAAAAAAAAAAAAAAAAA' }],
    ['SUBSCRIBE', '/topic/user_x', { id: 'a', 'x-queue-name': 'stomp-subscription-AAAAAAAAAAAAAAAAAAAAAA' }],
    ['SEND', '/amq/queue/stomp-subscription-AAAAAAAAAAAAAAAAAAAAAA', {}],
    ['SEND', '/queue/stomp-subscription-AAAAAAAAAAAAAAAAAAAAAA', {}],
  ];
  for (const [command, destination, headers] of attempts) {
    it(`${command} ${destination} ${headers['x-queue-name'] ? '(x-queue-name)' : ''}: ACCESS_REFUSED before any check`, async () => {
      const before = s.checks.length;
      const c = await r.connected({ login: 'user_x' });
      c.send(command, { destination, ...headers });
      const err = await c.waitFor(isError);
      assert.equal(h(err, 'message'), 'access_refused');
      assert.match(err.body.toString(), /is a subscription queue: it is reached only through the \/topic or \/exchange destination/);
      assert.equal(s.checks.length, before, 'refused before the authorizer was asked');
      await c.waitForClose();
    });
  }

  it('UNSUBSCRIBE durable with x-queue-name naming a subscription queue is refused (it would delete it)', async () => {
    const c = await r.connected({ login: 'user_x' });
    c.send('SUBSCRIBE', { id: 'd1', destination: '/topic/user_x', durable: 'true', 'auto-delete': 'false', receipt: 'r' });
    await c.waitFor((f) => f.command === 'RECEIPT');
    c.send('UNSUBSCRIBE', { id: 'd1', durable: 'true', 'x-queue-name': 'stomp-subscription-BBBBBBBBBBBBBBBBBBBBBB' });
    const err = await c.waitFor(isError);
    assert.equal(h(err, 'message'), 'access_refused');
  });

  it('other x-queue-name values and ordinary queues still work', async () => {
    const c = await r.connected({ login: 'user_x' });
    c.send('SUBSCRIBE', { id: 'a', destination: '/exchange/feed/user_x', 'x-queue-name': 'user_x.feed', receipt: 'r1' });
    c.send('SUBSCRIBE', { id: 'b', destination: '/queue/user_x.inbox', receipt: 'r2' });
    await c.waitFor((f) => f.command === 'RECEIPT' && h(f, 'receipt-id') === 'r2');
    assert.equal(c.frames.filter(isError).length, 0);
  });
});
