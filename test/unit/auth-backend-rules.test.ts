// The auth backend's pure core: rules validation (every error names its entry), the decisions on
// the shipped default rules (the seed use case: user_x reads feed only with routing key user_x),
// regex-escaping of {username}, the protocol answers per path, and the environment configuration.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { hashSync } from 'bcryptjs';
import { MIN_SECRET_BYTES, readConfig } from '../../auth-backend/src/config.js';
import { decideResource, decideTopic, decideUser, decideVhost } from '../../auth-backend/src/decide.js';
import { evaluate, readParams } from '../../auth-backend/src/protocol.js';
import { escapeRegExp, expandPattern, loadRules, parseRules } from '../../auth-backend/src/rules.js';
import type { Rules } from '../../auth-backend/src/rules.js';

const RULES_FILE = fileURLToPath(new URL('../../auth-backend/rules.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'thumper-auth-rules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function defaultRules(): Rules {
  const loaded = loadRules(RULES_FILE);
  if (!loaded.ok) assert.fail(`the shipped rules must load: ${loaded.error}`);
  return loaded.value;
}
const rules = defaultRules();

// Cost 4: these hashes only need to be well formed, and fast.
const HASH = hashSync('pw', 4);

function minimal(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    vhosts: ['/'],
    users: [{ username: 'alice', password_hash: HASH, tags: [] }],
    permissions: [{ users: '*', vhost: '/', configure: '.*', write: '.*', read: '.*' }],
    ...overrides,
  };
}

function parseError(value: unknown): string {
  const result = parseRules(value, 'rules.json');
  if (result.ok) assert.fail('expected a rules error');
  return result.error;
}

function parsed(value: unknown): Rules {
  const result = parseRules(value, 'rules.json');
  if (!result.ok) assert.fail(`expected valid rules, got: ${result.error}`);
  return result.value;
}

describe('rules validation', () => {
  test('the shipped rules load, with the four seed users', () => {
    assert.deepEqual([...rules.users.keys()], ['user_x', 'user_y', 'guest1', 'publisher']);
    assert.deepEqual(rules.users.get('publisher')?.tags, ['publisher']);
    assert.equal(rules.maxCost, 10);
  });

  test('a password that is not a bcrypt hash is refused, naming the entry', () => {
    const users = [
      { username: 'a', password_hash: HASH },
      { username: 'b', password_hash: HASH },
      { username: 'c', password_hash: 'plain' },
    ];
    assert.equal(parseError(minimal({ users })), 'rules.json: users[2].password_hash: expected a bcrypt hash ($2a$, $2b$ or $2y$), got "plain"');
  });

  test('a bcrypt hash with an impossible cost or a wrong length is refused', () => {
    assert.match(parseError(minimal({ users: [{ username: 'a', password_hash: HASH.replace('$04$', '$03$') }] })), /users\[0\]\.password_hash: expected a bcrypt hash/);
    assert.match(parseError(minimal({ users: [{ username: 'a', password_hash: HASH.slice(0, -1) }] })), /users\[0\]\.password_hash: expected a bcrypt hash/);
  });

  test('$2a$ and $2y$ hashes are accepted', () => {
    for (const prefix of ['$2a$', '$2y$']) parsed(minimal({ users: [{ username: 'alice', password_hash: HASH.replace('$2b$', prefix) }] }));
  });

  test('an invalid regular expression is refused, naming the entry and the pattern', () => {
    const permissions = [
      { users: '*', vhost: '/', configure: '.*', write: '.*', read: '.*' },
      { users: '*', vhost: '/', configure: '.*', write: '.*', read: '(' },
    ];
    assert.match(parseError(minimal({ permissions })), /^rules\.json: permissions\[1\]\.read: invalid regular expression "\(": .+/);
  });

  test('an invalid topic pattern is refused too', () => {
    const topic_permissions = [{ users: '*', vhost: '/', exchange: 'feed', write: '[', read: '.*' }];
    assert.match(parseError(minimal({ topic_permissions })), /^rules\.json: topic_permissions\[0\]\.write: invalid regular expression "\[": /);
  });

  test('duplicate usernames are refused', () => {
    const users = [
      { username: 'alice', password_hash: HASH },
      { username: 'bob', password_hash: HASH },
      { username: 'alice', password_hash: HASH },
    ];
    assert.equal(parseError(minimal({ users })), 'rules.json: users[2].username: duplicate username "alice" (first at users[0])');
  });

  test('unknown keys are refused, at the top level and in entries', () => {
    assert.equal(parseError(minimal({ vhost: ['/'] })), 'rules.json: vhost: unknown key');
    const permissions = [{ users: '*', vhost: '/', configure: '.*', write: '.*', read: '.*', raed: '.*' }];
    assert.equal(parseError(minimal({ permissions })), 'rules.json: permissions[0].raed: unknown key');
  });

  test('a missing or mistyped field names its entry', () => {
    assert.equal(parseError(minimal({ users: [{ password_hash: HASH }] })), 'rules.json: users[0].username: missing (expected string)');
    const permissions = [{ users: 'alice', vhost: '/', configure: '.*', write: '.*', read: '.*' }];
    assert.equal(parseError(minimal({ permissions })), 'rules.json: permissions[0].users: expected "*" or a non-empty list of usernames, got "alice"');
    assert.equal(parseError(minimal({ vhosts: [] })), 'rules.json: vhosts: expected at least one vhost');
  });

  test('entries must name known users and listed vhosts', () => {
    const permissions = [{ users: ['alice', 'alcie'], vhost: '/', configure: '.*', write: '.*', read: '.*' }];
    assert.equal(parseError(minimal({ permissions })), 'rules.json: permissions[0].users[1]: unknown user "alcie"');
    const topic_permissions = [{ users: '*', vhost: 'prod', exchange: 'feed', write: '.*', read: '.*' }];
    assert.equal(parseError(minimal({ topic_permissions })), 'rules.json: topic_permissions[0].vhost: "prod" is not listed in vhosts');
  });

  test('a tag with a space is refused (tags are answered space-separated)', () => {
    const users = [{ username: 'alice', password_hash: HASH, tags: ['a b'] }];
    assert.equal(parseError(minimal({ users })), 'rules.json: users[0].tags[0]: expected a tag without spaces, got "a b"');
  });

  test('loadRules reports unreadable files and invalid JSON with the file name', () => {
    const missing = loadRules(join(dir, 'nope.json'));
    assert.ok(!missing.ok);
    assert.match(missing.error, /nope\.json: cannot read the rules file \(ENOENT\)/);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"vhosts": [');
    const result = loadRules(broken);
    assert.ok(!result.ok);
    assert.match(result.error, /broken\.json: not valid JSON: /);
  });
});

describe('users (default rules)', () => {
  test('right password: allow, with the user tags', async () => {
    assert.deepEqual(await decideUser(rules, 'user_x', 'user_x-secret'), { allow: true, tags: [] });
    assert.deepEqual(await decideUser(rules, 'guest1', 'guest1'), { allow: true, tags: [] });
    assert.deepEqual(await decideUser(rules, 'publisher', 'publisher-secret'), { allow: true, tags: ['publisher'] });
  });

  test('wrong password, another user password, unknown user: deny', async () => {
    assert.equal((await decideUser(rules, 'user_x', 'wrong')).allow, false);
    assert.equal((await decideUser(rules, 'user_x', 'user_y-secret')).allow, false);
    assert.equal((await decideUser(rules, 'user_x', '')).allow, false);
    assert.equal((await decideUser(rules, 'nobody', 'user_x-secret')).allow, false);
    assert.equal((await decideUser(rules, 'USER_X', 'user_x-secret')).allow, false);
  });
});

describe('vhosts (default rules)', () => {
  test('known users may use "/"; other vhosts and unknown users are denied', () => {
    for (const user of ['user_x', 'user_y', 'guest1', 'publisher']) assert.equal(decideVhost(rules, user, '/').allow, true, user);
    assert.equal(decideVhost(rules, 'user_x', 'other').allow, false);
    assert.equal(decideVhost(rules, 'nobody', '/').allow, false);
  });

  test('a vhost the user has no entry for is denied even though it exists', () => {
    const r = parsed(
      minimal({
        vhosts: ['/', 'prod'],
        users: [
          { username: 'alice', password_hash: HASH },
          { username: 'bob', password_hash: HASH },
        ],
        permissions: [{ users: ['alice'], vhost: 'prod', configure: '', write: '', read: '' }],
        topic_permissions: [{ users: ['bob'], vhost: '/', exchange: 'x', write: '', read: '' }],
      }),
    );
    assert.equal(decideVhost(r, 'alice', 'prod').allow, true);
    assert.equal(decideVhost(r, 'alice', '/').allow, false);
    assert.equal(decideVhost(r, 'bob', '/').allow, true, 'a topic permission entry counts');
    assert.equal(decideVhost(r, 'bob', 'prod').allow, false);
  });
});

const topic = (username: string, exchange: string, permission: 'read' | 'write', routingKey: string, vhost = '/') =>
  decideTopic(rules, { username, vhost, exchange, permission, routingKey }).allow;
const resource = (username: string, name: string, permission: 'configure' | 'write' | 'read', vhost = '/') =>
  decideResource(rules, { username, vhost, name, permission }).allow;

describe('topic permissions (default rules): the seed use case', () => {
  test('user_x reads feed with routing key user_x only', () => {
    assert.equal(topic('user_x', 'feed', 'read', 'user_x'), true);
    for (const rk of ['user_y', '#', '*', '', 'user_x.#', 'user_x.more', 'xuser_x', 'user_x*']) {
      assert.equal(topic('user_x', 'feed', 'read', rk), false, `routing key "${rk}"`);
    }
  });

  test('user_y is denied user_x routing key, allowed its own', () => {
    assert.equal(topic('user_y', 'feed', 'read', 'user_x'), false);
    assert.equal(topic('user_y', 'feed', 'read', 'user_y'), true);
  });

  test('nobody but publisher reads feed with a wildcard', () => {
    for (const user of ['user_x', 'user_y', 'guest1']) {
      assert.equal(topic(user, 'feed', 'read', '#'), false, user);
      assert.equal(topic(user, 'feed', 'read', '*'), false, user);
    }
    assert.equal(topic('publisher', 'feed', 'read', '#'), true);
    assert.equal(topic('publisher', 'feed', 'read', 'user_x'), true);
  });

  test('end users never publish to feed, with any routing key (empty included)', () => {
    for (const rk of ['', 'user_x', '#']) assert.equal(topic('user_x', 'feed', 'write', rk), false, `routing key "${rk}"`);
    assert.equal(topic('publisher', 'feed', 'write', 'user_y'), true);
  });

  test('users answer on replies with their own routing key only and never read replies', () => {
    assert.equal(topic('user_x', 'replies', 'write', 'user_x'), true);
    assert.equal(topic('user_x', 'replies', 'write', 'user_y'), false);
    assert.equal(topic('user_x', 'replies', 'write', ''), false);
    assert.equal(topic('user_x', 'replies', 'read', 'user_x'), false);
    assert.equal(topic('user_x', 'replies', 'read', '#'), false);
    assert.equal(topic('publisher', 'replies', 'read', '#'), true);
  });

  test('an exchange without topic permissions is allowed (RabbitMQ internal backend semantics)', () => {
    assert.equal(topic('user_x', 'amq.topic', 'read', '#'), true);
    assert.equal(topic('user_x', 'feed', 'read', '#', 'other-vhost'), true, 'entries are per vhost');
  });

  test('unknown users are denied even where no topic permission is defined', () => {
    assert.equal(topic('nobody', 'amq.topic', 'read', 'x'), false);
    assert.equal(topic('nobody', 'feed', 'read', 'nobody'), false);
  });
});

describe('resource permissions (default rules)', () => {
  test('STOMP subscription queues and temporary queues: configure, write, read', () => {
    for (const name of ['stomp-subscription-Abc_123-x', 'amq.gen-Zq9']) {
      for (const p of ['configure', 'write', 'read'] as const) assert.equal(resource('user_x', name, p), true, `${p} ${name}`);
    }
  });

  test('own queues (user_x.*) yes, other users queues no', () => {
    assert.equal(resource('user_x', 'user_x.inbox', 'configure'), true);
    assert.equal(resource('user_x', 'user_x.inbox', 'read'), true);
    assert.equal(resource('user_x', 'user_y.inbox', 'configure'), false);
    assert.equal(resource('user_x', 'user_y.inbox', 'read'), false);
    assert.equal(resource('user_x', 'user_xx.inbox', 'read'), false);
  });

  test('feed: read but not write or configure; replies: write but not read', () => {
    assert.equal(resource('user_x', 'feed', 'read'), true);
    assert.equal(resource('user_x', 'feed', 'write'), false);
    assert.equal(resource('user_x', 'feed', 'configure'), false);
    assert.equal(resource('user_x', 'replies', 'write'), true);
    assert.equal(resource('user_x', 'replies', 'read'), false);
  });

  test('patterns are used as written: a name containing an allowed one is not allowed', () => {
    assert.equal(resource('user_x', 'feedback', 'read'), false);
    assert.equal(resource('user_x', 'x-stomp-subscription-1', 'read'), false);
    assert.equal(resource('user_x', 'amq.default', 'write'), false);
  });

  test('publisher may do anything: the "*" entry does not take its own away', () => {
    for (const name of ['feed', 'replies', 'anything', 'amq.default']) {
      for (const p of ['configure', 'write', 'read'] as const) assert.equal(resource('publisher', name, p), true, `${p} ${name}`);
    }
  });

  test('unknown users and other vhosts are denied', () => {
    assert.equal(resource('nobody', 'stomp-subscription-1', 'read'), false);
    assert.equal(resource('user_x', 'stomp-subscription-1', 'read', 'other'), false);
  });
});

describe('pattern templates', () => {
  test('{username} and {vhost} expand regex-escaped; an empty pattern means ^$', () => {
    assert.equal(expandPattern('^{username}@{vhost}$', { username: 'a.b', vhost: '/v*' }), '^a\\.b@\\/v\\*$');
    assert.equal(expandPattern('', { username: 'a', vhost: '/' }), '^$');
    const special = '\\^$.*+?()[]{}|/-';
    assert.equal(new RegExp(`^${escapeRegExp(special)}$`).test(special), true);
  });

  test('a username like a.b or .* cannot widen a pattern', () => {
    const users = ['a.b', '.*', 'a', '(?:)|'].map((username) => ({ username, password_hash: HASH }));
    const r = parsed(
      minimal({
        users,
        permissions: [{ users: '*', vhost: '/', configure: '^{username}\\..*$', write: '^{username}$', read: '^{username}$' }],
        topic_permissions: [{ users: '*', vhost: '/', exchange: 'feed', write: '(?!)', read: '^{username}$' }],
      }),
    );
    const read = (username: string, routingKey: string) => decideTopic(r, { username, vhost: '/', exchange: 'feed', permission: 'read', routingKey }).allow;
    assert.equal(read('a.b', 'a.b'), true);
    assert.equal(read('a.b', 'aXb'), false);
    assert.equal(read('.*', '.*'), true);
    assert.equal(read('.*', 'user_x'), false);
    assert.equal(read('.*', ''), false);
    assert.equal(read('(?:)|', 'anything'), false);
    const res = (username: string, name: string, permission: 'configure' | 'write') => decideResource(r, { username, vhost: '/', name, permission }).allow;
    assert.equal(res('.*', 'anything', 'write'), false);
    assert.equal(res('.*', '.*.q', 'configure'), true);
    assert.equal(res('.*', 'x.q', 'configure'), false);
  });

  test('an empty pattern grants only the empty name, as in RabbitMQ', () => {
    const r = parsed(minimal({ permissions: [{ users: '*', vhost: '/', configure: '', write: '', read: '.*' }] }));
    assert.equal(decideResource(r, { username: 'alice', vhost: '/', name: '', permission: 'write' }).allow, true);
    assert.equal(decideResource(r, { username: 'alice', vhost: '/', name: 'q', permission: 'write' }).allow, false);
  });

  test('access is an OR over applicable entries, and entries for other users do not apply', () => {
    const r = parsed(
      minimal({
        users: [
          { username: 'alice', password_hash: HASH },
          { username: 'bob', password_hash: HASH },
        ],
        permissions: [
          { users: '*', vhost: '/', configure: '^a$', write: '^a$', read: '^a$' },
          { users: ['bob'], vhost: '/', configure: '^b$', write: '^b$', read: '^b$' },
        ],
        topic_permissions: [{ users: ['bob'], vhost: '/', exchange: 't', write: '^b$', read: '^b$' }],
      }),
    );
    const res = (username: string, name: string) => decideResource(r, { username, vhost: '/', name, permission: 'read' }).allow;
    assert.deepEqual([res('alice', 'a'), res('alice', 'b'), res('bob', 'a'), res('bob', 'b')], [true, false, true, true]);
    const top = (username: string, routingKey: string) => decideTopic(r, { username, vhost: '/', exchange: 't', permission: 'read', routingKey }).allow;
    assert.equal(top('bob', 'x'), false);
    assert.equal(top('alice', 'x'), true, 'no topic entry applies to alice');
  });
});

describe('protocol answers', () => {
  const params = (pairs: Record<string, string>) => new Map(Object.entries(pairs));

  test('user path: allow with tags, deny on a wrong password or without one', async () => {
    assert.deepEqual(await evaluate(rules, 'user', params({ username: 'publisher', password: 'publisher-secret', vhost: '/' })), {
      status: 200,
      answer: 'allow publisher',
    });
    assert.deepEqual(await evaluate(rules, 'user', params({ username: 'user_x', password: 'user_x-secret' })), { status: 200, answer: 'allow' });
    assert.equal((await evaluate(rules, 'user', params({ username: 'user_x', password: 'x' }))).answer, 'deny');
    assert.equal((await evaluate(rules, 'user', params({ username: 'user_x' }))).answer, 'deny');
  });

  test('missing parameters and values outside the protocol: 400', async () => {
    assert.deepEqual(await evaluate(rules, 'vhost', params({ username: 'user_x' })), { status: 400, answer: 'missing parameter: vhost' });
    assert.deepEqual(await evaluate(rules, 'topic', params({ username: 'user_x', vhost: '/' })), {
      status: 400,
      answer: 'missing parameters: resource, name, permission, routing_key',
    });
    const bad = { username: 'user_x', vhost: '/', resource: 'queue', name: 'q', permission: 'delete' };
    assert.equal((await evaluate(rules, 'resource', params(bad))).status, 400);
    assert.equal((await evaluate(rules, 'resource', params({ ...bad, permission: 'read', resource: 'topic' }))).status, 400);
    const topicBad = { username: 'user_x', vhost: '/', resource: 'exchange', name: 'feed', permission: 'read', routing_key: 'user_x' };
    assert.equal((await evaluate(rules, 'topic', params(topicBad))).status, 400);
  });

  test('an empty routing key is a value, not a missing parameter', async () => {
    const q = { username: 'user_x', vhost: '/', resource: 'topic', name: 'feed', permission: 'read', routing_key: '' };
    assert.deepEqual(await evaluate(rules, 'topic', params(q)), { status: 200, answer: 'deny', reason: 'topic read pattern does not match the routing key' });
  });

  test('a parameter given twice is refused', () => {
    assert.deepEqual(readParams({ username: ['a', 'b'] }), { ok: false, error: 'parameter "username" given more than once' });
    const ok = readParams({ b: '1', a: '2' });
    assert.ok(ok.ok);
    assert.deepEqual([...ok.value.keys()], ['b', 'a']);
  });
});

describe('environment configuration', () => {
  const SECRET = 's'.repeat(MIN_SECRET_BYTES);
  const noFile = (): string => assert.fail('no file expected');

  test('defaults', () => {
    const c = readConfig({ AUTH_BACKEND_JWT_SECRET: SECRET }, noFile);
    assert.ok(c.ok);
    assert.equal(c.value.host, '0.0.0.0');
    assert.equal(c.value.port, 8000);
    assert.equal(c.value.rulesFile, RULES_FILE);
    assert.equal(c.value.jwtIssuer, 'thumper-auth-backend');
    assert.equal(c.value.jwtAudience, 'thumper');
    assert.equal(c.value.jwtTtlSeconds, 3600);
  });

  test('the JWT secret is required and must be at least 32 bytes', () => {
    const missing = readConfig({}, noFile);
    assert.ok(!missing.ok);
    assert.match(missing.error, /AUTH_BACKEND_JWT_SECRET is required/);
    const short = readConfig({ AUTH_BACKEND_JWT_SECRET: 's'.repeat(MIN_SECRET_BYTES - 1) }, noFile);
    assert.ok(!short.ok);
    assert.match(short.error, /at least 32 bytes, got 31/);
  });

  test('the secret may come from a file, trailing newline removed; not both', () => {
    const c = readConfig({ AUTH_BACKEND_JWT_SECRET_FILE: '/run/secret' }, () => `${SECRET}\n`);
    assert.ok(c.ok);
    assert.equal(c.value.jwtSecret, SECRET);
    const both = readConfig({ AUTH_BACKEND_JWT_SECRET: SECRET, AUTH_BACKEND_JWT_SECRET_FILE: '/run/secret' }, () => SECRET);
    assert.ok(!both.ok);
  });

  test('bad numbers name the variable', () => {
    const c = readConfig({ AUTH_BACKEND_JWT_SECRET: SECRET, AUTH_BACKEND_PORT: '80x' }, noFile);
    assert.ok(!c.ok);
    assert.equal(c.error, 'AUTH_BACKEND_PORT: expected an integer from 0 to 65535, got "80x"');
  });
});
