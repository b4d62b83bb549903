// The auth backend over real HTTP on 127.0.0.1: the four protocol paths by GET and POST with
// RabbitMQ's own form encoding and parameter order (reference §5.1), 400 on missing parameters,
// /login (good, bad, rate limited) and its JWT, hardened headers, the onDecision hook, logs free of
// secrets, and the real entry point (exit 2 on bad configuration, SIGTERM).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { hashSync } from 'bcryptjs';
import jwt from 'jsonwebtoken';
import pino from 'pino';
import type { DecisionEvent } from '../../auth-backend/src/protocol.js';
import { parseRules } from '../../auth-backend/src/rules.js';
import type { Rules } from '../../auth-backend/src/rules.js';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import type { RunningAuthBackend } from '../../auth-backend/src/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULES_FILE = join(ROOT, 'auth-backend/rules.json');
const SECRET = 'integration-test-secret-0123456789abcdef';
const SPECIAL_PASSWORD = 's3cr et&=';
const dir = mkdtempSync(join(tmpdir(), 'thumper-auth-backend-'));

/** The default rules plus a user whose password needs escaping, as RabbitMQ would send it. */
function testRules(): Rules {
  const raw = JSON.parse(readFileSync(RULES_FILE, 'utf8')) as { users: unknown[] };
  raw.users.push({ username: 'special', password_hash: hashSync(SPECIAL_PASSWORD, 4), tags: ['a', 'b'] });
  const parsed = parseRules(raw, 'test-rules');
  if (!parsed.ok) assert.fail(parsed.error);
  return parsed.value;
}

/**
 * RabbitMQ's encoding (reference §5.1): form style, space as `+`, every reserved byte as %XX,
 * including the `*` and `'()!` that encodeURIComponent leaves alone.
 */
function rabbitForm(pairs: ReadonlyArray<readonly [string, string]>): string {
  const enc = (s: string): string =>
    encodeURIComponent(s)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, '+');
  return pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
}

type Pairs = ReadonlyArray<readonly [string, string]>;
const userAsk = (username: string, password: string): Pairs => [
  ['username', username],
  ['password', password],
  ['vhost', '/'],
];
const vhostAsk = (username: string, vhost = '/'): Pairs => [
  ['username', username],
  ['vhost', vhost],
  ['ip', '127.0.0.1'],
  ['tags', ''],
];
const resourceAsk = (username: string, resource: 'exchange' | 'queue', name: string, permission: string): Pairs => [
  ['username', username],
  ['vhost', '/'],
  ['resource', resource],
  ['name', name],
  ['permission', permission],
  ['tags', ''],
];
const topicAsk = (username: string, name: string, permission: string, routingKey: string): Pairs => [
  ['username', username],
  ['vhost', '/'],
  ['resource', 'topic'],
  ['name', name],
  ['permission', permission],
  ['tags', ''],
  ['routing_key', routingKey],
  ['variable_map.username', username],
  ['variable_map.vhost', '/'],
];

let backend: RunningAuthBackend;
const decisions: DecisionEvent[] = [];
const logChunks: string[] = [];

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logChunks.push(chunk.toString());
      done();
    },
  });
  backend = await startAuthBackend({
    host: '127.0.0.1',
    port: 0,
    rules: testRules(),
    jwtSecret: SECRET,
    log: pino({ level: 'debug' }, sink),
    onDecision: (event) => decisions.push(event),
  });
});
after(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
}

async function ask(method: 'GET' | 'POST', path: string, pairs: Pairs, base = backend.url): Promise<Answer> {
  const form = rabbitForm(pairs);
  const res =
    method === 'GET'
      ? await fetch(`${base}/auth/${path}?${form}`)
      : await fetch(`${base}/auth/${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe('protocol paths, GET and POST', () => {
  for (const method of ['GET', 'POST'] as const) {
    test(`${method} /auth/user: allow, allow with tags, deny`, async () => {
      const ok = await ask(method, 'user', userAsk('user_x', 'user_x-secret'));
      assert.equal(ok.status, 200);
      assert.equal(ok.body, 'allow');
      assert.match(ok.headers.get('content-type') ?? '', /^text\/plain/);
      assert.equal((await ask(method, 'user', userAsk('publisher', 'publisher-secret'))).body, 'allow publisher');
      assert.equal((await ask(method, 'user', userAsk('user_x', 'user_y-secret'))).body, 'deny');
      assert.equal((await ask(method, 'user', userAsk('nobody', 'x'))).body, 'deny');
    });

    test(`${method} /auth/user: a password with space, & and = arrives intact`, async () => {
      assert.equal(rabbitForm([['password', SPECIAL_PASSWORD]]), 'password=s3cr+et%26%3D');
      assert.equal((await ask(method, 'user', userAsk('special', SPECIAL_PASSWORD))).body, 'allow a b');
      assert.equal((await ask(method, 'user', userAsk('special', 's3cr'))).body, 'deny');
    });

    test(`${method} /auth/vhost`, async () => {
      assert.equal((await ask(method, 'vhost', vhostAsk('user_x'))).body, 'allow');
      assert.equal((await ask(method, 'vhost', vhostAsk('user_x', 'other'))).body, 'deny');
      assert.equal((await ask(method, 'vhost', vhostAsk('nobody'))).body, 'deny');
    });

    test(`${method} /auth/resource`, async () => {
      assert.equal((await ask(method, 'resource', resourceAsk('user_x', 'queue', 'stomp-subscription-AbC', 'configure'))).body, 'allow');
      assert.equal((await ask(method, 'resource', resourceAsk('user_x', 'exchange', 'feed', 'read'))).body, 'allow');
      assert.equal((await ask(method, 'resource', resourceAsk('user_x', 'exchange', 'feed', 'write'))).body, 'deny');
      assert.equal((await ask(method, 'resource', resourceAsk('user_x', 'exchange', 'amq.default', 'write'))).body, 'deny');
      assert.equal((await ask(method, 'resource', resourceAsk('publisher', 'exchange', 'feed', 'write'))).body, 'allow');
    });

    test(`${method} /auth/topic: user_x reads feed with routing key user_x only`, async () => {
      assert.equal((await ask(method, 'topic', topicAsk('user_x', 'feed', 'read', 'user_x'))).body, 'allow');
      for (const rk of ['user_y', '#', '*', '', 'user_x.#']) {
        assert.equal((await ask(method, 'topic', topicAsk('user_x', 'feed', 'read', rk))).body, 'deny', `routing key "${rk}"`);
      }
      assert.equal((await ask(method, 'topic', topicAsk('user_y', 'feed', 'read', 'user_x'))).body, 'deny');
      assert.equal((await ask(method, 'topic', topicAsk('publisher', 'feed', 'read', '#'))).body, 'allow');
      assert.equal((await ask(method, 'topic', topicAsk('user_x', 'replies', 'write', 'user_x'))).body, 'allow');
    });

    test(`${method}: a missing parameter is 400 on every path`, async () => {
      const cases: Array<[string, Pairs]> = [
        ['user', [['password', 'x']]],
        ['vhost', [['username', 'user_x']]],
        ['resource', resourceAsk('user_x', 'queue', 'q', 'read').filter(([k]) => k !== 'name')],
        ['topic', topicAsk('user_x', 'feed', 'read', 'user_x').filter(([k]) => k !== 'routing_key')],
      ];
      for (const [path, pairs] of cases) {
        const res = await ask(method, path, pairs);
        assert.equal(res.status, 400, path);
        assert.match(res.body, /^missing parameter/, path);
      }
    });
  }

  test('a parameter given twice is 400, not whichever value a parser keeps', async () => {
    const res = await ask('GET', 'user', [...userAsk('nobody', 'x'), ['username', 'user_x']]);
    assert.equal(res.status, 400);
  });

  test('POST without a form body is 400', async () => {
    const res = await fetch(`${backend.url}/auth/vhost`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"user_x","vhost":"/"}' });
    assert.equal(res.status, 400);
  });

  test('a body over 8 KiB is refused with 413', async () => {
    const res = await ask('POST', 'user', [...userAsk('user_x', 'user_x-secret'), ['padding', 'x'.repeat(9000)]]);
    assert.equal(res.status, 413);
    assert.doesNotMatch(res.body, /at |node_modules/, 'no stack trace');
  });
});

describe('onDecision', () => {
  test('receives the parameters in the order sent, password redacted, and the answer', async () => {
    decisions.length = 0;
    await ask('POST', 'user', userAsk('user_x', 'user_x-secret'));
    await ask('GET', 'topic', topicAsk('user_x', 'feed', 'read', '#'));
    await ask('GET', 'vhost', [['username', 'user_x']]);
    assert.equal(decisions.length, 3);
    const [user, topic, bad] = decisions;
    assert.equal(user?.path, 'user');
    assert.deepEqual(Object.entries(user?.params ?? {}), [
      ['username', 'user_x'],
      ['password', '[redacted]'],
      ['vhost', '/'],
    ]);
    assert.equal(user?.answer, 'allow');
    assert.equal(topic?.path, 'topic');
    assert.deepEqual(Object.entries(topic?.params ?? {}), topicAsk('user_x', 'feed', 'read', '#'));
    assert.equal(topic?.answer, 'deny');
    assert.deepEqual({ path: bad?.path, status: bad?.status, answer: bad?.answer }, { path: 'vhost', status: 400, answer: 'missing parameter: vhost' });
  });
});

async function login(body: string, contentType: string, base = backend.url): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const jsonLogin = (username: string, password: string, base?: string) => login(JSON.stringify({ username, password }), 'application/json', base);

describe('/login', () => {
  test('good credentials (JSON): a Bearer HS256 JWT that verifies with the secret', async () => {
    const { status, json } = await jsonLogin('user_x', 'user_x-secret');
    assert.equal(status, 200);
    assert.equal(json['token_type'], 'Bearer');
    assert.equal(json['expires_in'], 3600);
    const token = json['token'];
    assert.equal(typeof token, 'string');
    const claims = jwt.verify(token as string, SECRET, { algorithms: ['HS256'], issuer: 'thumper-auth-backend', audience: 'thumper' });
    assert.ok(typeof claims === 'object');
    assert.equal(claims.sub, 'user_x');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3600);
    assert.equal(jwt.decode(token as string, { complete: true })?.header.alg, 'HS256');
    assert.throws(() => jwt.verify(token as string, `${SECRET}x`), /invalid signature/);
  });

  test('good credentials (form)', async () => {
    const { status, json } = await login(rabbitForm([['username', 'guest1'], ['password', 'guest1']]), 'application/x-www-form-urlencoded');
    assert.equal(status, 200);
    const claims = jwt.verify(json['token'] as string, SECRET, { algorithms: ['HS256'] });
    assert.ok(typeof claims === 'object');
    assert.equal(claims.sub, 'guest1');
  });

  test('wrong password and unknown user get the same 401', async () => {
    const wrong = await jsonLogin('user_y', 'nope');
    const unknown = await jsonLogin('nobody', 'nope');
    assert.deepEqual(wrong, { status: 401, json: { error: 'invalid credentials' } });
    assert.deepEqual(unknown, wrong);
  });

  test('missing fields: 400', async () => {
    assert.equal((await login('{"username":"user_x"}', 'application/json')).status, 400);
    assert.equal((await login('{"username":"user_x","password":7}', 'application/json')).status, 400);
  });

  test('attempts are limited per IP and username: 429 with a JSON error, other usernames unaffected', async () => {
    const limited = await startAuthBackend({ host: '127.0.0.1', port: 0, rulesFile: RULES_FILE, jwtSecret: SECRET, loginRateLimit: { perUser: 2 } });
    try {
      assert.equal((await jsonLogin('user_x', 'bad', limited.url)).status, 401);
      assert.equal((await jsonLogin('user_x', 'bad', limited.url)).status, 401);
      const third = await jsonLogin('user_x', 'user_x-secret', limited.url);
      assert.equal(third.status, 429);
      assert.equal(typeof third.json['error'], 'string');
      assert.equal((await jsonLogin('user_y', 'user_y-secret', limited.url)).status, 200);
    } finally {
      await limited.close();
    }
  });

  test('the per-IP limit catches many usernames from one address', async () => {
    const limited = await startAuthBackend({ host: '127.0.0.1', port: 0, rulesFile: RULES_FILE, jwtSecret: SECRET, loginRateLimit: { perIp: 3 } });
    try {
      const statuses: number[] = [];
      for (const user of ['a', 'b', 'c', 'd']) statuses.push((await jsonLogin(user, 'x', limited.url)).status);
      assert.deepEqual(statuses, [401, 401, 401, 429]);
    } finally {
      await limited.close();
    }
  });
});

describe('hardening', () => {
  test('/healthz answers 200', async () => {
    const res = await fetch(`${backend.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('helmet headers, no x-powered-by, no caching', async () => {
    const res = await ask('GET', 'vhost', vhostAsk('user_x'));
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(res.headers.get('content-security-policy'));
    assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.equal(res.headers.get('x-powered-by'), null);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('etag'), null);
  });

  test('unknown paths: 404', async () => {
    assert.equal((await fetch(`${backend.url}/auth/nothing`)).status, 404);
    assert.equal((await fetch(`${backend.url}/`)).status, 404);
  });

  test('the logs (at debug) hold no password and no token', async () => {
    await ask('GET', 'user', userAsk('user_y', 'user_y-secret'));
    await ask('GET', 'user', userAsk('user_y', 'wrong-guess-secret'));
    const { json } = await jsonLogin('user_y', 'user_y-secret');
    await jsonLogin('user_y', 'another-wrong-secret');
    const logs = logChunks.join('');
    assert.match(logs, /"msg":"denied"/, 'denials are logged');
    assert.match(logs, /"msg":"request"/, 'requests are logged');
    for (const secret of ['user_y-secret', 'wrong-guess-secret', 'another-wrong-secret', json['token'] as string]) {
      assert.equal(logs.includes(secret), false, `log contains ${secret.slice(0, 12)}…`);
    }
  });
});

describe('entry point (auth-backend/src/main.ts)', () => {
  const children: Array<ReturnType<typeof spawn>> = [];
  after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  function run(env: Record<string, string>) {
    const clean: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUTH_BACKEND_') && k !== 'LOG_LEVEL') clean[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', 'auth-backend/src/main.ts'], { cwd: ROOT, env: { ...clean, ...env }, stdio: 'pipe' });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr }));
    return { child, exited };
  }

  test('no JWT secret: exit 2 with a message naming the variable', { timeout: 30000 }, async () => {
    const { code, stderr } = await run({ AUTH_BACKEND_PORT: '0', AUTH_BACKEND_HOST: '127.0.0.1' }).exited;
    assert.equal(code, 2);
    assert.match(stderr, /AUTH_BACKEND_JWT_SECRET is required/);
  });

  test('a short JWT secret: exit 2', { timeout: 30000 }, async () => {
    const { code, stderr } = await run({ AUTH_BACKEND_PORT: '0', AUTH_BACKEND_JWT_SECRET: 'short' }).exited;
    assert.equal(code, 2);
    assert.match(stderr, /at least 32 bytes/);
  });

  test('invalid rules: exit 2 with the offending entry', { timeout: 30000 }, async () => {
    const file = join(dir, 'bad-rules.json');
    writeFileSync(file, JSON.stringify({ vhosts: ['/'], users: [{ username: 'u', password_hash: 'plain' }], permissions: [] }));
    const { code, stderr } = await run({ AUTH_BACKEND_PORT: '0', AUTH_BACKEND_JWT_SECRET: SECRET, AUTH_BACKEND_RULES: file }).exited;
    assert.equal(code, 2);
    assert.match(stderr, /bad-rules\.json: users\[0\]\.password_hash: expected a bcrypt hash/);
  });

  test('starts with the shipped rules, answers, and exits 0 on SIGTERM', { timeout: 30000 }, async () => {
    const { child, exited } = run({ AUTH_BACKEND_HOST: '127.0.0.1', AUTH_BACKEND_PORT: '0', AUTH_BACKEND_JWT_SECRET: SECRET });
    assert.ok(child.stdout);
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as { url?: string };
      if (entry.url !== undefined) {
        url = entry.url;
        break;
      }
    }
    assert.match(url ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await ask('POST', 'user', userAsk('guest1', 'guest1'), url)).body, 'allow');
    child.kill('SIGTERM');
    assert.equal((await exited).code, 0);
  });
});
