// The auth chain: authenticators in order (undefined = not mine), the vhost step by the chosen
// authority, topic checks skipped only on exchanges known not to be topic exchanges, fail closed.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { allow, deny, unavailable } from '../../broker/src/auth/authorizer.js';
import type { AuthBackendName, Authenticator, Authority, ConnectRequest, Principal } from '../../broker/src/auth/authorizer.js';
import { createAuthChain, type AuthzChoice } from '../../broker/src/auth/chain.js';
import type { PermissionCheck } from '../../broker/src/destination/types.js';
import { BUILT_IN_EXCHANGE_TYPES } from '../../broker/src/engine/engine.js';

const log = pino({ level: 'silent' });
const REQ: ConnectRequest = { login: 'user_x', passcode: 'pw', vhost: '/', remoteAddress: '127.0.0.1' };

function authenticator(name: AuthBackendName, answer: 'pass' | 'allow' | 'deny' | 'unavailable', calls: string[]): Authenticator {
  return {
    name,
    async authenticate(req) {
      calls.push(`authn:${name}`);
      if (answer === 'pass') return undefined;
      if (answer === 'deny') return deny(`Access refused for user '${req.login}'\n`);
      if (answer === 'unavailable') return unavailable('Authentication service unavailable');
      return { ok: true, value: { username: req.login ?? '', vhost: req.vhost, tags: [], authenticatedBy: name } };
    },
  };
}

function authority(name: AuthBackendName, calls: string[], refuse: (c: PermissionCheck) => boolean = () => false, vhostOk = true): Authority {
  return {
    name,
    async checkVhost(p: Principal, ip: string) {
      calls.push(`vhost:${name}:${p.vhost}:${ip}`);
      return vhostOk ? allow : deny(`Virtual host '${p.vhost}' access denied`);
    },
    async authorize(_p, check) {
      calls.push(`authz:${name}:${check.resource}:${check.name}`);
      return refuse(check) ? deny('') : allow;
    },
  };
}

function chain(authns: Authenticator[], authorities: Authority[], authz: AuthzChoice = 'same', types: ReadonlyMap<string, string> = BUILT_IN_EXCHANGE_TYPES) {
  return createAuthChain({
    authenticators: authns,
    authorities: new Map(authorities.map((a) => [a.name, a])),
    authz,
    exchangeType: (_v, name) => types.get(name),
    log,
  });
}

describe('auth chain: authentication', () => {
  it('asks authenticators in order; undefined passes to the next; then the vhost step', async () => {
    const calls: string[] = [];
    const c = chain([authenticator('jwt', 'pass', calls), authenticator('http', 'allow', calls)], [authority('http', calls)]);
    const d = await c.authenticate(REQ);
    assert.ok(d.ok);
    assert.equal(d.value.authenticatedBy, 'http');
    assert.deepEqual(calls, ['authn:jwt', 'authn:http', 'vhost:http:/:127.0.0.1']);
  });

  it('a deny ends the search: a rejected token is never retried as a password', async () => {
    const calls: string[] = [];
    const c = chain([authenticator('jwt', 'deny', calls), authenticator('http', 'allow', calls)], [authority('http', calls), authority('jwt', calls)]);
    const d = await c.authenticate(REQ);
    assert.equal(d.ok, false);
    assert.deepEqual(calls, ['authn:jwt']);
  });

  it('unavailable is passed on as unavailable (worded by the backend), never as an allow', async () => {
    const calls: string[] = [];
    const d = await chain([authenticator('http', 'unavailable', calls)], [authority('http', calls)]).authenticate(REQ);
    assert.deepEqual(d, { ok: false, reason: 'Authentication service unavailable', unavailable: true });
  });

  it('a vhost refusal is the CONNECT refusal', async () => {
    const calls: string[] = [];
    const d = await chain([authenticator('http', 'allow', calls)], [authority('http', calls, undefined, false)]).authenticate({ ...REQ, vhost: 'nope' });
    assert.deepEqual(d, { ok: false, reason: "Virtual host 'nope' access denied" });
  });

  it('authz "http": a JWT-authenticated principal is authorized by the HTTP backend', async () => {
    const calls: string[] = [];
    const c = chain([authenticator('jwt', 'allow', calls)], [authority('http', calls), authority('jwt', calls)], 'http');
    const d = await c.authenticate(REQ);
    assert.ok(d.ok);
    await c.authorize(d.value, { resource: 'exchange', name: 'feed', permission: 'read' });
    assert.deepEqual(calls, ['authn:jwt', 'vhost:http:/:127.0.0.1', 'authz:http:exchange:feed']);
  });

  it('no authenticator takes the credentials: refused, saying which kinds are accepted', async () => {
    const calls: string[] = [];
    const d = await chain([authenticator('jwt', 'pass', calls)], [authority('jwt', calls)]).authenticate(REQ);
    assert.equal(d.ok, false);
    assert.match(d.ok ? '' : d.reason, /no credentials this server accepts \(jwt\)/);
  });

  for (const [field, value] of [['login', 'user_x\nuser_y'], ['passcode', 'a\u0000b'], ['login', 'x\r'], ['passcode', '\u007f']] as const) {
    it(`control characters in ${field} (${JSON.stringify(value)}) are refused before any backend is asked`, async () => {
      const calls: string[] = [];
      const d = await chain([authenticator('http', 'allow', calls)], [authority('http', calls)]).authenticate({ ...REQ, [field]: value });
      assert.equal(d.ok, false);
      assert.deepEqual(calls, []);
    });
  }
});

describe('auth chain: topic checks', () => {
  const principal: Principal = { username: 'user_x', vhost: '/', tags: [], authenticatedBy: 'http' };
  const topic = (name: string, always?: true): PermissionCheck =>
    always ? { resource: 'topic', name, permission: 'read', routingKey: 'k', always } : { resource: 'topic', name, permission: 'read', routingKey: 'k' };
  const types = new Map([...BUILT_IN_EXCHANGE_TYPES, ['feed', 'topic'], ['jobs', 'direct']]);

  it('skipped on exchanges known not to be topic exchanges (RabbitMQ checks topic exchanges only)', async () => {
    const calls: string[] = [];
    const c = chain([], [authority('http', calls, () => true)], 'same', types);
    for (const name of ['amq.direct', 'amq.fanout', 'amq.headers', 'amq.default', 'jobs']) {
      assert.deepEqual(await c.authorize(principal, topic(name)), allow, name);
    }
    assert.deepEqual(calls, []);
  });

  it('made on topic exchanges and on exchanges of unknown type (fail closed)', async () => {
    const calls: string[] = [];
    const c = chain([], [authority('http', calls, () => true)], 'same', types);
    for (const name of ['amq.topic', 'feed', 'never-heard-of']) {
      const d = await c.authorize(principal, topic(name));
      assert.equal(d.ok, false, name);
    }
    assert.deepEqual(calls, ['authz:http:topic:amq.topic', 'authz:http:topic:feed', 'authz:http:topic:never-heard-of']);
  });

  it("STOMP's own /topic check (always) is made whatever the exchange's type", async () => {
    const calls: string[] = [];
    const c = chain([], [authority('http', calls, () => true)], 'same', types);
    assert.equal((await c.authorize(principal, topic('jobs', true))).ok, false);
    assert.deepEqual(calls, ['authz:http:topic:jobs']);
  });
});
