// The rabbitmq-auth-backend-http client against a real node:http server on 127.0.0.1 that records
// what it receives: the exact queries and bodies of the four paths (GET and POST), answer parsing,
// every failure mapped to `unavailable` without hanging or leaking the password, keep-alive reuse
// and the one retry on a reset reused socket, and the decision cache in front of it.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { Principal } from '../../broker/src/auth/authorizer.js';
import { DecisionCache } from '../../broker/src/auth/decision-cache.js';
import { createHttpAuthenticator, createHttpAuthority } from '../../broker/src/auth/http-auth.js';
import { createHttpBackend, formEncode, parseAnswer } from '../../broker/src/auth/http-backend.js';
import type { HttpBackend, HttpBackendOptions } from '../../broker/src/auth/http-backend.js';

const TIMEOUT = { timeout: 20_000 };
const PASSWORD = 's3cr et&=';

interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** 1-based index of the server-side connection it came on. */
  readonly connection: number;
  /** 1-based position of this request on its connection (2+ = the client reused the socket). */
  readonly onConnection: number;
}

type Responder = (request: Recorded, raw: IncomingMessage, res: ServerResponse) => void;

interface FakeAuthServer {
  readonly requests: Recorded[];
  readonly connections: () => number;
  readonly url: (path: string) => string;
  respond(responder: Responder): void;
  stop(): Promise<void>;
}

const allowAll: Responder = (_r, _raw, res) => res.end('allow');

async function startAuthServer(): Promise<FakeAuthServer> {
  const requests: Recorded[] = [];
  const connectionIds = new WeakMap<Socket, { id: number; served: number }>();
  let connections = 0;
  let responder: Responder = allowAll;
  const server: Server = createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => chunks.push(chunk));
    raw.on('end', () => {
      const conn = connectionIds.get(raw.socket) ?? { id: 0, served: 0 };
      conn.served++;
      const recorded: Recorded = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        headers: raw.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        connection: conn.id,
        onConnection: conn.served,
      };
      requests.push(recorded);
      responder(recorded, raw, res);
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    connectionIds.set(socket, { id: connections, served: 0 });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    requests,
    connections: () => connections,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    respond(next) {
      responder = next;
    },
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A pino logger whose lines we can read back. */
function capturingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
  return { log, lines };
}

function backendFor(server: FakeAuthServer, overrides: Partial<HttpBackendOptions> = {}): HttpBackend {
  return createHttpBackend({
    userPath: server.url('/auth/user'),
    vhostPath: server.url('/auth/vhost'),
    resourcePath: server.url('/auth/resource'),
    topicPath: server.url('/auth/topic'),
    method: 'get',
    requestTimeoutMs: 5000,
    connectTimeoutMs: 5000,
    maxSockets: 4,
    log: pino({ level: 'silent' }),
    ...overrides,
  });
}

/** Runs `body` against a fresh server and backend, and tears both down even if it fails. */
async function withBackend(
  overrides: Partial<HttpBackendOptions>,
  body: (server: FakeAuthServer, backend: HttpBackend) => Promise<void>,
): Promise<void> {
  const server = await startAuthServer();
  const backend = backendFor(server, overrides);
  try {
    await body(server, backend);
  } finally {
    backend.close();
    await server.stop();
  }
}

const alice: Principal = { username: 'alice', vhost: '/', tags: ['management'], authenticatedBy: 'http' };

describe('form encoding (rabbit_http_util:quote_plus)', () => {
  test("RabbitMQ's own vectors and the reserved characters encodeURIComponent leaves alone", () => {
    assert.equal(formEncode('s3cr et&='), 's3cr+et%26%3D');
    assert.equal(formEncode('p.*'), 'p.%2A');
    assert.equal(formEncode("!'()"), '%21%27%28%29');
    assert.equal(formEncode('a-b_c.d~e'), 'a-b_c.d~e');
    assert.equal(formEncode('/ +#?%'), '%2F+%2B%23%3F%25');
    assert.equal(formEncode('é€'), '%C3%A9%E2%82%AC');
    assert.equal(formEncode(''), '');
  });
});

describe('requests as RabbitMQ sends them', TIMEOUT, () => {
  test('GET: the four paths, parameters in order, tags and variable_map', async () => {
    await withBackend({}, async (server, backend) => {
      await backend.user('alice', PASSWORD, '/');
      await backend.vhost('alice', '/', '127.0.0.1', ['management', 'monitoring']);
      await backend.resource('alice', '/', 'queue', 'p.*', 'configure', []);
      await backend.resource('alice', 'dev', 'exchange', 'amq.default', 'write', ['management']);
      await backend.topic('alice', '/', 'amq.topic', 'write', ['administrator'], 'a.b.#');
      await backend.vhost('bob', '/', '::1', []);
      assert.deepEqual(
        server.requests.map((r) => `${r.method} ${r.url}`),
        [
          'GET /auth/user?username=alice&password=s3cr+et%26%3D&vhost=%2F',
          'GET /auth/vhost?username=alice&vhost=%2F&ip=127.0.0.1&tags=management+monitoring',
          'GET /auth/resource?username=alice&vhost=%2F&resource=queue&name=p.%2A&permission=configure&tags=',
          'GET /auth/resource?username=alice&vhost=dev&resource=exchange&name=amq.default&permission=write&tags=management',
          'GET /auth/topic?username=alice&vhost=%2F&resource=topic&name=amq.topic&permission=write&tags=administrator' +
            '&routing_key=a.b.%23&variable_map.username=alice&variable_map.vhost=%2F',
          'GET /auth/vhost?username=bob&vhost=%2F&ip=%3A%3A1&tags=',
        ],
      );
      for (const r of server.requests) {
        assert.equal(r.body, '');
        assert.equal(r.headers['content-type'], undefined);
        assert.equal(r.headers.host, new URL(server.url('/')).host, 'Host: host:port');
      }
    });
  });

  test('POST: the same strings as form bodies, the configured URL untouched', async () => {
    await withBackend({ method: 'post' }, async (server, backend) => {
      await backend.user('alice', PASSWORD, '/');
      await backend.vhost('alice', '/', '127.0.0.1', ['management']);
      await backend.resource('alice', '/', 'exchange', 'x y', 'read', []);
      await backend.topic('alice', 'v', 'ex', 'read', [], '');
      assert.deepEqual(
        server.requests.map((r) => [r.method, r.url, r.body]),
        [
          ['POST', '/auth/user', 'username=alice&password=s3cr+et%26%3D&vhost=%2F'],
          ['POST', '/auth/vhost', 'username=alice&vhost=%2F&ip=127.0.0.1&tags=management'],
          ['POST', '/auth/resource', 'username=alice&vhost=%2F&resource=exchange&name=x+y&permission=read&tags='],
          [
            'POST',
            '/auth/topic',
            'username=alice&vhost=v&resource=topic&name=ex&permission=read&tags=&routing_key=' +
              '&variable_map.username=alice&variable_map.vhost=v',
          ],
        ],
      );
      for (const r of server.requests) {
        assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded');
        assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
      }
    });
  });

  test('GET joins an existing query in the configured URL with &', async () => {
    const server = await startAuthServer();
    const backend = backendFor(server, { userPath: server.url('/auth/user?realm=stomp'), method: 'get' });
    try {
      await backend.user('alice', 'pw', '/');
      assert.equal(server.requests[0]?.url, '/auth/user?realm=stomp&username=alice&password=pw&vhost=%2F');
    } finally {
      backend.close();
      await server.stop();
    }
  });

  test('a path that is not an http(s) URL is a configuration error', () => {
    const log = pino({ level: 'silent' });
    const base = { vhostPath: 'http://127.0.0.1:1/v', resourcePath: 'http://127.0.0.1:1/r', topicPath: 'http://127.0.0.1:1/t' };
    const options = { ...base, method: 'get', requestTimeoutMs: 1, connectTimeoutMs: 1, maxSockets: 1, log } as const;
    assert.throws(() => createHttpBackend({ ...options, userPath: 'ftp://127.0.0.1/u' }), /http:\/\/ or https:\/\//);
    assert.throws(() => createHttpBackend({ ...options, userPath: 'not a url' }), /not a URL/);
  });
});

describe('answers', TIMEOUT, () => {
  test('parseAnswer: allow, tags, case, whitespace, deny with a reason', () => {
    assert.deepEqual(parseAnswer('vhost', 'allow'), { kind: 'allow', tags: [] });
    assert.deepEqual(parseAnswer('resource', 'ALLOW'), { kind: 'allow', tags: [] });
    assert.deepEqual(parseAnswer('topic', ' allow\r\n'), { kind: 'allow', tags: [] });
    assert.deepEqual(parseAnswer('user', 'allow  Management\tmonitoring\n'), { kind: 'allow', tags: ['management', 'monitoring'] });
    assert.deepEqual(parseAnswer('user', 'deny'), { kind: 'deny' });
    assert.deepEqual(parseAnswer('resource', 'Deny not in business hours'), { kind: 'deny' });
    assert.deepEqual(parseAnswer('vhost', 'allow management'), { kind: 'unavailable', detail: 'unexpected answer "allow management"' });
    assert.deepEqual(parseAnswer('user', 'allowed'), { kind: 'unavailable', detail: 'unexpected answer "allowed"' });
    assert.deepEqual(parseAnswer('user', ''), { kind: 'unavailable', detail: 'unexpected answer ""' });
  });

  test('over HTTP: 200 and 201 bodies, lenient whitespace, tags only on the user path', async () => {
    await withBackend({}, async (server, backend) => {
      const answers: Record<string, string> = {
        '/auth/user': 'allow  Management monitoring\n',
        '/auth/vhost': 'allow\n',
        '/auth/resource': 'ALLOW',
        '/auth/topic': 'deny reason given by 4.3',
      };
      server.respond((r, _raw, res) => {
        const path = r.url.split('?')[0] ?? '';
        res.statusCode = path === '/auth/vhost' ? 201 : 200;
        res.end(answers[path]);
      });
      assert.deepEqual(await backend.user('alice', 'pw', '/'), { kind: 'allow', tags: ['management', 'monitoring'] });
      assert.deepEqual(await backend.vhost('alice', '/', '127.0.0.1', []), { kind: 'allow', tags: [] });
      assert.deepEqual(await backend.resource('alice', '/', 'queue', 'q', 'read', []), { kind: 'allow', tags: [] });
      assert.deepEqual(await backend.topic('alice', '/', 'amq.topic', 'read', [], 'k'), { kind: 'deny' });
      server.respond((_r, _raw, res) => res.end('deny'));
      assert.deepEqual(await backend.user('alice', 'pw', '/'), { kind: 'deny' });
    });
  });
});

describe('failures are unavailable, promptly and without secrets', TIMEOUT, () => {
  const assertNoPassword = (text: string): void => {
    assert.ok(!text.includes(PASSWORD), `leaked the password: ${text}`);
    assert.ok(!text.includes(formEncode(PASSWORD)), `leaked the encoded password: ${text}`);
  };
  const assertNoSecret = (text: string): void => {
    assertNoPassword(text);
    assert.ok(!text.includes('password='), `leaked the query: ${text}`);
  };

  test('HTTP 500 and 302 (not followed); logged at error level without the password', async () => {
    const { log, lines } = capturingLog();
    await withBackend({ log }, async (server, backend) => {
      server.respond((_r, _raw, res) => {
        res.statusCode = 500;
        res.end('allow');
      });
      const answer = await backend.user('alice', PASSWORD, '/');
      assert.deepEqual(answer, { kind: 'unavailable', detail: 'user path: HTTP 500' });
      server.respond((_r, _raw, res) => {
        res.writeHead(302, { location: server.url('/elsewhere') });
        res.end();
      });
      assert.deepEqual(await backend.user('alice', PASSWORD, '/'), { kind: 'unavailable', detail: 'user path: HTTP 302' });
      assert.equal(server.requests.length, 2, 'the redirect was not followed');
    });
    assert.equal(lines.length, 2);
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: number; detail: string; user: string; authPath: string };
      assert.equal(entry.level, 50);
      assert.equal(entry.user, 'alice');
      assert.equal(entry.authPath, 'user');
      assertNoSecret(line);
    }
  });

  test('garbage answers, including one echoing the query back', async () => {
    const { log, lines } = capturingLog();
    await withBackend({ log }, async (server, backend) => {
      server.respond((_r, _raw, res) => res.end('maybe'));
      assert.deepEqual(await backend.resource('alice', '/', 'queue', 'q', 'read', []), {
        kind: 'unavailable',
        detail: 'resource path: unexpected answer "maybe"',
      });
      server.respond((r, _raw, res) => res.end(`echo ${r.url} ${PASSWORD}`));
      const answer = await backend.user('alice', PASSWORD, '/');
      assert.equal(answer.kind, 'unavailable');
      assert.match(answer.kind === 'unavailable' ? answer.detail : '', /^user path: unexpected answer "echo /);
      // Whatever the backend echoes, the password itself is cut out of the snippet.
      assert.match(JSON.stringify(answer), /password=\*\*\*/);
      assertNoPassword(JSON.stringify(answer));
    });
    assert.equal(lines.length, 2);
    for (const line of lines) assertNoPassword(line);
  });

  test('a body over the size limit', async () => {
    await withBackend({}, async (server, backend) => {
      server.respond((_r, _raw, res) => res.end(`allow ${'x'.repeat(64 * 1024)}`));
      assert.deepEqual(await backend.user('alice', PASSWORD, '/'), {
        kind: 'unavailable',
        detail: 'user path: answer longer than 4096 bytes',
      });
    });
  });

  test('connection refused (a closed port)', async () => {
    const server = await startAuthServer();
    const backend = backendFor(server);
    await server.stop();
    try {
      assert.deepEqual(await backend.vhost('alice', '/', '127.0.0.1', []), {
        kind: 'unavailable',
        detail: 'vhost path: connection refused',
      });
    } finally {
      backend.close();
    }
  });

  test('a server slower than requestTimeoutMs: aborted, and its socket closed', async () => {
    await withBackend({ requestTimeoutMs: 200 }, async (server, backend) => {
      const socketClosed: Promise<unknown>[] = [];
      server.respond((_r, raw) => socketClosed.push(once(raw.socket, 'close'))); // never answers
      const answer = await backend.user('alice', PASSWORD, '/');
      assert.deepEqual(answer, { kind: 'unavailable', detail: 'user path: timed out after 200 ms' });
      assert.equal(socketClosed.length, 1);
      await socketClosed[0];
      server.respond(allowAll);
      assert.deepEqual(await backend.user('alice', PASSWORD, '/'), { kind: 'allow', tags: [] });
    });
  });

  test('after close(), calls answer unavailable without a request', async () => {
    await withBackend({}, async (server, backend) => {
      backend.close();
      assert.deepEqual(await backend.topic('alice', '/', 'x', 'write', [], 'k'), {
        kind: 'unavailable',
        detail: 'topic path: backend closed',
      });
      assert.equal(server.requests.length, 0);
    });
  });
});

describe('keep-alive', TIMEOUT, () => {
  test('sequential calls reuse one socket', async () => {
    await withBackend({ maxSockets: 1 }, async (server, backend) => {
      for (let i = 0; i < 50; i++) assert.equal((await backend.resource('alice', '/', 'queue', `q${i}`, 'read', [])).kind, 'allow');
      assert.equal(server.requests.length, 50);
      assert.equal(server.connections(), 1);
    });
  });

  test('concurrent calls never open more than maxSockets sockets', async () => {
    await withBackend({ maxSockets: 2 }, async (server, backend) => {
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => backend.resource('alice', '/', 'queue', `q${i}`, 'read', [])));
      assert.ok(answers.every((a) => a.kind === 'allow'));
      assert.equal(server.requests.length, 40);
      assert.ok(server.connections() <= 2, `${server.connections()} connections`);
    });
  });

  test('a reused socket reset before any answer byte is retried once on a new socket', async () => {
    await withBackend({ maxSockets: 1 }, async (server, backend) => {
      let resets = 1;
      server.respond((r, raw, res) => {
        if (r.onConnection >= 2 && resets > 0) {
          resets--;
          raw.socket.destroy();
          return;
        }
        res.end('allow');
      });
      assert.deepEqual(await backend.user('alice', 'pw', '/'), { kind: 'allow', tags: [] });
      assert.deepEqual(await backend.user('alice', 'pw', '/'), { kind: 'allow', tags: [] });
      assert.deepEqual(
        server.requests.map((r) => [r.connection, r.onConnection]),
        [
          [1, 1],
          [1, 2],
          [2, 1],
        ],
      );
    });
  });

  test('a reset on a fresh socket is not retried', async () => {
    await withBackend({}, async (server, backend) => {
      server.respond((_r, raw) => raw.socket.destroy());
      assert.deepEqual(await backend.user('alice', 'pw', '/'), { kind: 'unavailable', detail: 'user path: connection reset' });
      assert.equal(server.requests.length, 1);
    });
  });

  test('a reused socket reset twice in a row is retried only once', async () => {
    await withBackend({ maxSockets: 1 }, async (server, backend) => {
      await backend.user('alice', 'pw', '/');
      // The retry goes out on a new socket, which the server also resets on its first request.
      server.respond((_r, raw) => raw.socket.destroy());
      assert.deepEqual(await backend.user('alice', 'pw', '/'), { kind: 'unavailable', detail: 'user path: connection reset' });
      assert.equal(server.requests.length, 3);
    });
  });

  test('a reused socket closed after the answer began is not retried', async () => {
    await withBackend({ maxSockets: 1 }, async (server, backend) => {
      server.respond((r, raw, res) => {
        if (r.onConnection === 1) {
          res.end('allow');
          return;
        }
        res.writeHead(200, { 'content-length': '5' });
        res.write('al', () => raw.socket.destroy());
      });
      assert.equal((await backend.user('alice', 'pw', '/')).kind, 'allow');
      const answer = await backend.user('alice', 'pw', '/');
      assert.deepEqual(answer, { kind: 'unavailable', detail: 'user path: connection closed during the answer' });
      assert.equal(server.requests.length, 2);
    });
  });
});

describe('the decision cache in front of the backend', TIMEOUT, () => {
  const cacheOptions = { allowTtlMs: 60_000, denyTtlMs: 5_000, maxEntries: 1000 };

  test('10,000 sequential identical authorize calls make one request', async () => {
    await withBackend({}, async (server, backend) => {
      const authority = createHttpAuthority(backend, new DecisionCache(cacheOptions));
      const check = { resource: 'exchange', name: 'amq.default', permission: 'write' } as const;
      for (let i = 0; i < 10_000; i++) assert.equal((await authority.authorize(alice, check)).ok, true);
      assert.equal(server.requests.length, 1);
      assert.equal(
        server.requests[0]?.url,
        '/auth/resource?username=alice&vhost=%2F&resource=exchange&name=amq.default&permission=write&tags=management',
      );
    });
  });

  test('1,000 concurrent identical checks make one request; another routing key is another', async () => {
    await withBackend({}, async (server, backend) => {
      const cache = new DecisionCache(cacheOptions);
      const authority = createHttpAuthority(backend, cache);
      const check = { resource: 'topic', name: 'amq.topic', permission: 'read', routingKey: 'a.b' } as const;
      const decisions = await Promise.all(Array.from({ length: 1000 }, () => authority.authorize({ ...alice }, check)));
      assert.ok(decisions.every((d) => d.ok));
      assert.equal(server.requests.length, 1);
      assert.match(server.requests[0]?.url ?? '', /^\/auth\/topic\?.*&routing_key=a.b&/);
      assert.deepEqual(cache.stats(), { hits: 0, misses: 1, coalesced: 999, size: 1 });
      await authority.authorize(alice, { ...check, routingKey: 'a.c' });
      assert.equal(server.requests.length, 2);
    });
  });

  test('a deny is cached for denyTtlMs only, and refused with an empty reason', async () => {
    await withBackend({}, async (server, backend) => {
      let time = 0;
      const authority = createHttpAuthority(backend, new DecisionCache({ ...cacheOptions, now: () => time }));
      server.respond((_r, _raw, res) => res.end('deny'));
      const check = { resource: 'queue', name: 'q', permission: 'configure' } as const;
      assert.deepEqual(await authority.authorize(alice, check), { ok: false, reason: '' });
      time += 4_999;
      assert.deepEqual(await authority.authorize(alice, check), { ok: false, reason: '' });
      assert.equal(server.requests.length, 1);
      time += 1;
      await authority.authorize(alice, check);
      assert.equal(server.requests.length, 2);
    });
  });

  test('unavailable is never cached and worded apart', async () => {
    await withBackend({}, async (server, backend) => {
      const authority = createHttpAuthority(backend, new DecisionCache(cacheOptions));
      server.respond((_r, _raw, res) => {
        res.statusCode = 503;
        res.end();
      });
      const check = { resource: 'queue', name: 'q', permission: 'read' } as const;
      const expected = { ok: false, reason: 'auth service unavailable', unavailable: true };
      assert.deepEqual(await authority.authorize(alice, check), expected);
      assert.deepEqual(await authority.authorize(alice, check), expected);
      assert.equal(server.requests.length, 2);
    });
  });

  test('checkVhost: allow, deny and unavailable wording', async () => {
    await withBackend({}, async (server, backend) => {
      const authority = createHttpAuthority(backend, new DecisionCache(cacheOptions));
      assert.deepEqual(await authority.checkVhost(alice, '127.0.0.1'), { ok: true, value: true });
      assert.equal(server.requests[0]?.url, '/auth/vhost?username=alice&vhost=%2F&ip=127.0.0.1&tags=management');
      server.respond((_r, _raw, res) => res.end('deny'));
      assert.deepEqual(await authority.checkVhost({ ...alice, vhost: 'prod' }, '127.0.0.1'), {
        ok: false,
        reason: "Virtual host 'prod' access denied",
      });
      server.respond((_r, _raw, res) => res.end('what'));
      assert.deepEqual(await authority.checkVhost({ ...alice, vhost: 'dev' }, '::1'), {
        ok: false,
        reason: "Authentication service unavailable: could not check virtual host 'dev'",
        unavailable: true,
      });
    });
  });

  test('authenticate: principal from the user answer; a different password is a miss', async () => {
    await withBackend({}, async (server, backend) => {
      const authenticator = createHttpAuthenticator(backend, new DecisionCache(cacheOptions));
      server.respond((_r, _raw, res) => res.end('allow management'));
      const request = { login: 'alice', passcode: PASSWORD, vhost: '/', remoteAddress: '127.0.0.1' };
      const expected = { ok: true, value: { username: 'alice', vhost: '/', tags: ['management'], authenticatedBy: 'http' } };
      assert.deepEqual(await authenticator.authenticate(request), expected);
      assert.deepEqual(await authenticator.authenticate({ ...request, remoteAddress: '127.0.0.2' }), expected);
      assert.equal(server.requests.length, 1, 'the client address is not part of the user key');
      await authenticator.authenticate({ ...request, passcode: 'other' });
      assert.equal(server.requests.length, 2);
      await authenticator.authenticate({ ...request, vhost: 'dev' });
      assert.equal(server.requests.length, 3);
      await authenticator.authenticate(request);
      assert.equal(server.requests.length, 3);
    });
  });

  test('authenticate: deny, unavailable and a missing login', async () => {
    await withBackend({}, async (server, backend) => {
      const authenticator = createHttpAuthenticator(backend, new DecisionCache(cacheOptions));
      const request = { login: 'mallory', passcode: 'guess', vhost: '/', remoteAddress: '127.0.0.1' };
      server.respond((_r, _raw, res) => res.end('deny'));
      assert.deepEqual(await authenticator.authenticate(request), { ok: false, reason: "Access refused for user 'mallory'\n" });
      server.respond((_r, _raw, res) => res.end('?'));
      assert.deepEqual(await authenticator.authenticate({ ...request, login: 'bob' }), {
        ok: false,
        reason: "Authentication service unavailable: could not check user 'bob'",
        unavailable: true,
      });
      const before = server.requests.length;
      assert.deepEqual(await authenticator.authenticate({ ...request, login: undefined }), {
        ok: false,
        reason: "Access refused for user ''\n",
      });
      assert.equal(server.requests.length, before);
    });
  });
});
