// Configuration: defaults, environment and file precedence, validation messages that name the key,
// the docs table kept in step with the schema, and the logger's redaction.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { DEFAULT_DECODER_LIMITS } from '../../broker/src/stomp/decoder.js';
import { CONFIG_ENV_KEYS, describeConfigKeys, loadConfig, THUMPER_VERSION, toSessionOptions } from '../../broker/src/server/config.js';
import type { Config } from '../../broker/src/server/config.js';
import { convertEnvValue, envNameFor, unknownEnvVars } from '../../broker/src/server/config-env.js';
import { createLogger, formatPlainLine, redactUrlPasswords, withoutPassword } from '../../broker/src/server/logger.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'thumper-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
function writeConfig(content: unknown): string {
  fileCount += 1;
  const file = join(dir, `config-${fileCount}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function load(env: Record<string, string> = {}, argv: string[] = []): Config {
  const result = loadConfig({ argv, env });
  if (!result.ok) assert.fail(`expected a valid config, got: ${result.error}`);
  return result.value;
}

function loadError(env: Record<string, string> = {}, argv: string[] = []): string {
  const result = loadConfig({ argv, env });
  if (result.ok) assert.fail('expected a configuration error');
  return result.error;
}

describe('defaults', () => {
  test('every key has the documented default', () => {
    const c = load();
    assert.deepEqual(c.http, { host: '0.0.0.0', port: 15674 });
    assert.deepEqual(c.ws, {
      path: '/ws',
      allowedOrigins: [],
      pingIntervalMs: 30000,
      maxPayloadBytes: 4 * 1024 * 1024 + 4096,
      perMessageDeflate: false,
    });
    assert.equal(c.engine, 'memory');
    assert.deepEqual(c.amqp, {
      urls: [],
      channelsPerConnection: 500,
      heartbeatSeconds: 30,
      reconnectInitialMs: 500,
      reconnectMaxMs: 30000,
      onConnectionLoss: 'restore',
      restoreTimeoutMs: 30000,
      blockedPublishTimeoutMs: 10000,
      sharedSubscriptions: true,
      sharedUnbindDelayMs: 10000,
      exchangeTypes: [],
    });
    assert.deepEqual(c.memory, { vhosts: ['/'], exchanges: [{ name: 'feed', type: 'topic' }, { name: 'replies', type: 'topic' }], maxQueueMessages: 100000 });
    assert.deepEqual(c.stomp, {
      defaultVhost: '/',
      defaultTopicExchange: 'amq.topic',
      serverName: `Thumper/${THUMPER_VERSION}`,
      maxFrameBytes: 4 * 1024 * 1024,
      maxFrameBytesBeforeConnect: 64 * 1024,
      maxHeaders: 100,
      maxHeaderLineBytes: 64 * 1024,
      loginTimeoutMs: 10000,
      heartBeatMinSendMs: 1000,
      heartBeatMinReceiveMs: 1000,
      heartBeatTolerance: 2,
      maxSubscriptions: 1000,
      maxTransactions: 16,
      maxTransactionFrames: 1024,
      maxOutboundBytes: 4 * 1024 * 1024,
      maxOutboundFrames: 10000,
      maxInboxFrames: 64,
      maxInboxBytes: 1024 * 1024,
      maxTransactionBytes: 16 * 1024 * 1024,
    });
    assert.deepEqual(c.limits, { maxConnectionsPerAddress: 1000 });
    assert.deepEqual(c.log, { level: 'info', pretty: false });
  });

  test('the version comes from package.json', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(THUMPER_VERSION, pkg.version);
  });

  test('toSessionOptions carries the stomp section over', () => {
    const options = toSessionOptions(load({ THUMPER_STOMP_MAX_HEADERS: '7', THUMPER_STOMP_HEART_BEAT_MIN_SEND_MS: '2500' }));
    assert.deepEqual(options.decoder, { ...DEFAULT_DECODER_LIMITS, maxHeaders: 7 });
    assert.deepEqual(options.heartBeat, { minSendMs: 2500, minReceiveMs: 1000, tolerance: 2 });
    assert.equal(options.serverName, `Thumper/${THUMPER_VERSION}`);
    assert.equal(options.defaultTopicExchange, 'amq.topic');
    assert.equal(options.maxTransactionFrames, 1024);
  });
});

describe('environment', () => {
  test('THUMPER_* variables override defaults, typed per key', () => {
    const c = load({
      THUMPER_HTTP_PORT: '8080',
      THUMPER_HTTP_HOST: ' 127.0.0.1 ',
      THUMPER_WS_ALLOWED_ORIGINS: 'https://A.example.com, https://b.example.com/',
      THUMPER_WS_PER_MESSAGE_DEFLATE: 'yes',
      THUMPER_STOMP_HEART_BEAT_TOLERANCE: '1.5',
      THUMPER_MEMORY_EXCHANGES: 'feed:topic,logs:fanout@/staging',
      THUMPER_LOG_LEVEL: 'debug',
    });
    assert.equal(c.http.port, 8080);
    assert.equal(c.http.host, '127.0.0.1');
    assert.deepEqual(c.ws.allowedOrigins, ['https://a.example.com', 'https://b.example.com']);
    assert.equal(c.ws.perMessageDeflate, true);
    assert.equal(c.stomp.heartBeatTolerance, 1.5);
    assert.deepEqual(c.memory.exchanges, [
      { name: 'feed', type: 'topic' },
      { name: 'logs', type: 'fanout', vhost: '/staging' },
    ]);
    assert.equal(c.log.level, 'debug');
  });

  test('a blank variable counts as unset', () => {
    assert.equal(load({ THUMPER_HTTP_PORT: '  ' }).http.port, 15674);
  });

  test('ws.maxPayloadBytes follows stomp.maxFrameBytes unless set', () => {
    assert.equal(load({ THUMPER_STOMP_MAX_FRAME_BYTES: '100000' }).ws.maxPayloadBytes, 104096);
    assert.equal(load({ THUMPER_STOMP_MAX_FRAME_BYTES: '100000', THUMPER_WS_MAX_PAYLOAD_BYTES: '5000' }).ws.maxPayloadBytes, 5000);
  });

  test('env names are the key in upper snake case', () => {
    assert.equal(envNameFor('http.port'), 'THUMPER_HTTP_PORT');
    assert.equal(envNameFor('stomp.heartBeatMinSendMs'), 'THUMPER_STOMP_HEART_BEAT_MIN_SEND_MS');
    assert.equal(envNameFor('engine'), 'THUMPER_ENGINE');
    const names = CONFIG_ENV_KEYS.map((k) => k.env);
    assert.equal(new Set(names).size, names.length, 'env names are unique');
  });

  test('values that do not fit the kind are passed through for the schema to reject', () => {
    assert.equal(convertEnvValue('int', '12x'), '12x');
    assert.equal(convertEnvValue('int', '0x10'), '0x10');
    assert.equal(convertEnvValue('number', '2.5'), 2.5);
    assert.equal(convertEnvValue('boolean', 'OFF'), false);
    assert.deepEqual(convertEnvValue('list', 'a, ,b'), ['a', 'b']);
    assert.equal(convertEnvValue('exchanges', 'feed:queue'), 'feed:queue');
    assert.deepEqual(convertEnvValue('exchanges', '[{"name":"x","type":"direct"}]'), [{ name: 'x', type: 'direct' }]);
  });

  test('unknown THUMPER_* variables are reported for a warning', () => {
    assert.deepEqual(unknownEnvVars(CONFIG_ENV_KEYS, { THUMPER_HTTP_PROT: '1', THUMPER_HTTP_PORT: '1', THUMPER_CONFIG: 'x', HOME: '/' }), ['THUMPER_HTTP_PROT']);
  });
});

const HTTP_AUTH = { THUMPER_AUTH_BACKENDS: 'http', THUMPER_AUTH_HTTP_BASE_URL: 'http://auth:8000/auth' };
const JWT_KEYS = { THUMPER_AUTH_JWT_ALGORITHMS: 'HS256,HS512', THUMPER_AUTH_JWT_SECRET: 'x'.repeat(32) };
const JWT = { THUMPER_AUTH_BACKENDS: 'jwt', ...JWT_KEYS };

describe('AMQP URL and engine', () => {
  test('AMQP_URL is the fallback for THUMPER_AMQP_URL', () => {
    assert.deepEqual(load({ AMQP_URL: 'amqp://u:p@rabbit:5672', ...HTTP_AUTH }).amqp.urls, ['amqp://u:p@rabbit:5672']);
    const both = load({ AMQP_URL: 'amqp://fallback', THUMPER_AMQP_URL: 'amqp://a, amqps://b:5671', ...HTTP_AUTH });
    assert.deepEqual(both.amqp.urls, ['amqp://a', 'amqps://b:5671']);
  });

  test('the engine is amqp when a URL is given, else memory; an explicit choice wins', () => {
    assert.equal(load().engine, 'memory');
    assert.equal(load({ THUMPER_AMQP_URL: 'amqp://localhost', ...HTTP_AUTH }).engine, 'amqp');
    assert.equal(load({ AMQP_URL: 'amqp://localhost', ...HTTP_AUTH }).engine, 'amqp');
    assert.equal(load({ AMQP_URL: 'amqp://localhost', THUMPER_ENGINE: 'memory' }).engine, 'memory');
  });

  test('engine amqp without a URL is an error naming the variable', () => {
    const error = loadError({ THUMPER_ENGINE: 'amqp' });
    assert.match(error, /^Invalid configuration: THUMPER_ENGINE \(engine\): engine "amqp" needs an AMQP URL/);
  });

  test('a rejected URL is echoed without its password', () => {
    const error = loadError({ THUMPER_AMQP_URL: 'http://user:s3cret@rabbit' });
    assert.match(error, /THUMPER_AMQP_URL \(amqp\.urls\): expected a list of amqp:\/\/ or amqps:\/\/ URLs/);
    assert.ok(!error.includes('s3cret'), error);
  });
});

describe('auth', () => {
  const AMQP = { THUMPER_AMQP_URL: 'amqp://localhost' };

  test('the embedded engine defaults to allow-all; the RabbitMQ engine refuses to run without auth', () => {
    assert.deepEqual(load().auth.backends, ['allow-all']);
    assert.match(loadError(AMQP), /^Invalid configuration: auth\.backends: engine "amqp" needs an auth backend: set THUMPER_AUTH_BACKENDS/);
  });

  test('allow-all is refused in front of RabbitMQ, even when asked for', () => {
    assert.match(loadError({ ...AMQP, THUMPER_AUTH_BACKENDS: 'allow-all' }), /THUMPER_AUTH_BACKENDS \(auth\.backends\): allow-all is only for the embedded engine/);
    assert.match(loadError({ ...AMQP, ...JWT, THUMPER_AUTH_BACKENDS: 'jwt,allow-all' }), /allow-all is only for the embedded engine/);
  });

  test('auth.http.baseUrl fills the four paths; an explicit path wins', () => {
    const http = load({ ...AMQP, THUMPER_AUTH_BACKENDS: 'http', THUMPER_AUTH_HTTP_BASE_URL: 'http://auth:8000/auth/', THUMPER_AUTH_HTTP_TOPIC_PATH: 'https://other/t' }).auth.http;
    assert.deepEqual(
      { u: http?.userPath, v: http?.vhostPath, r: http?.resourcePath, t: http?.topicPath, m: http?.method },
      { u: 'http://auth:8000/auth/user', v: 'http://auth:8000/auth/vhost', r: 'http://auth:8000/auth/resource', t: 'https://other/t', m: 'get' },
    );
  });

  test('the http backend without URLs names what is missing', () => {
    const error = loadError({ ...AMQP, THUMPER_AUTH_BACKENDS: 'http', THUMPER_AUTH_HTTP_USER_PATH: 'http://a/u' });
    assert.match(error, /needs auth\.http\.baseUrl or auth\.http\.vhostPath, auth\.http\.resourcePath, auth\.http\.topicPath$/);
  });

  test('jwt needs an explicit algorithm list and a key', () => {
    assert.match(loadError({ ...AMQP, THUMPER_AUTH_BACKENDS: 'jwt', THUMPER_AUTH_JWT_SECRET: 'x'.repeat(32) }), /auth\.jwt\.algorithms: the jwt backend needs an explicit list of algorithms/);
    assert.match(loadError({ ...AMQP, THUMPER_AUTH_BACKENDS: 'jwt', THUMPER_AUTH_JWT_ALGORITHMS: 'HS256' }), /needs auth\.jwt\.secret \(HS\*\) or auth\.jwt\.publicKeyFile/);
    assert.match(loadError({ ...AMQP, THUMPER_AUTH_BACKENDS: 'jwt', THUMPER_AUTH_JWT_ALGORITHMS: 'none', THUMPER_AUTH_JWT_SECRET: 'x'.repeat(32) }), /THUMPER_AUTH_JWT_ALGORITHMS \(auth\.jwt\.algorithms\): expected a list of HS256/);
    assert.deepEqual(load({ ...AMQP, ...JWT }).auth.jwt.algorithms, ['HS256', 'HS512']);
  });

  test('jwt authentication with http authorization is allowed; jwt authorization needs jwt-only clients', () => {
    const both = load({ ...AMQP, ...JWT, THUMPER_AUTH_AUTHZ: 'http', THUMPER_AUTH_HTTP_BASE_URL: 'http://auth/auth' });
    assert.equal(both.auth.authz, 'http');
    assert.equal(both.auth.http?.userPath, 'http://auth/auth/user');
    assert.match(loadError({ ...AMQP, ...HTTP_AUTH, THUMPER_AUTH_AUTHZ: 'jwt', ...JWT_KEYS }), /auth\.authz\): jwt authorization needs every client to bring a token/);
  });
});

describe('config file', () => {
  test('the file sets keys, the environment wins over it', () => {
    const file = writeConfig({ http: { host: '127.0.0.1', port: 1000 }, stomp: { maxFrameBytes: 8192 } });
    const c = load({ THUMPER_HTTP_PORT: '2000' }, ['--config', file]);
    assert.equal(c.http.host, '127.0.0.1');
    assert.equal(c.http.port, 2000);
    assert.equal(c.ws.maxPayloadBytes, 8192 + 4096);
  });

  test('THUMPER_CONFIG names the file; --config wins over it', () => {
    const a = writeConfig({ http: { port: 1111 } });
    const b = writeConfig({ http: { port: 2222 } });
    assert.equal(load({ THUMPER_CONFIG: a }).http.port, 1111);
    assert.equal(load({ THUMPER_CONFIG: a }, [`--config=${b}`]).http.port, 2222);
  });

  test('unknown keys are errors with their path', () => {
    const file = writeConfig({ http: { prot: 1 }, colour: 'blue' });
    const error = loadError({}, ['--config', file]);
    assert.match(error, /unknown key "http\.prot"/);
    assert.match(error, /unknown key "colour"/);
    assert.match(error, /known keys in http: host, port/);
  });

  test('a section that is not an object is named', () => {
    const error = loadError({}, ['--config', writeConfig({ http: 5 })]);
    assert.match(error, /Invalid configuration: http \(in .*\): expected an object with keys host, port, got 5/);
  });

  test('unreadable, non-JSON and non-object files are errors naming the file', () => {
    const missing = join(dir, 'missing.json');
    assert.match(loadError({}, ['--config', missing]), new RegExp(`cannot read config file ${missing}`));
    assert.match(loadError({}, ['--config', writeConfig('{ nope')]), /is not valid JSON/);
    assert.match(loadError({}, ['--config', writeConfig('[1]')]), /must hold a JSON object/);
  });

  test('an unknown command-line argument is an error', () => {
    assert.match(loadError({}, ['--port', '1']), /^Invalid command line: .*--port/);
  });
});

describe('validation errors name their key', () => {
  test('the exact message for a bad port', () => {
    assert.equal(
      loadError({ THUMPER_HTTP_PORT: 'abc' }),
      'Invalid configuration: THUMPER_HTTP_PORT (http.port): expected an integer from 0 to 65535, got "abc"',
    );
    assert.match(loadError({ THUMPER_HTTP_PORT: '70000' }), /THUMPER_HTTP_PORT \(http\.port\): expected an integer from 0 to 65535, got "70000"/);
  });

  test('every key, set to an object in the file, is named with the file and its expected form', () => {
    for (const { key, expected } of describeConfigKeys()) {
      const nested: Record<string, unknown> = {};
      const parts = key.split('.');
      let node = nested;
      for (const part of parts.slice(0, -1)) node = (node[part] = {}) as Record<string, unknown>;
      node[parts.at(-1) ?? key] = { bogus: true };
      const file = writeConfig(nested);
      const error = loadError({}, ['--config', file]);
      assert.ok(error.includes(`Invalid configuration: ${key} (in ${file}): expected ${expected}, got {"bogus":true}`), `${key}: ${error}`);
    }
  });

  test('every key given a bad environment value is named with its variable', () => {
    const badValue: Record<string, string> = { int: 'abc', number: 'abc', boolean: 'maybe', list: ',', exchanges: 'feed:queue' };
    const badString: Record<string, string> = {
      engine: 'kafka',
      'log.level': 'loud',
      'ws.path': 'ws',
      'auth.authz': 'anyone',
      'auth.http.method': 'put',
      'auth.http.baseUrl': 'ftp://auth',
      'auth.http.userPath': 'auth/user',
      'auth.http.vhostPath': 'auth/vhost',
      'auth.http.resourcePath': 'auth/resource',
      'auth.http.topicPath': 'auth/topic',
    };
    let checked = 0;
    for (const { key, env, kind } of CONFIG_ENV_KEYS) {
      const raw = kind === 'string' ? badString[key] : badValue[kind];
      if (raw === undefined) continue; // free-form strings: any non-blank text is valid
      if (key === 'ws.allowedOrigins' || key === 'amqp.urls' || key === 'auth.jwt.algorithms') continue; // an empty list is valid
      const error = loadError({ [env]: raw });
      assert.ok(error.startsWith(`Invalid configuration: ${env} (${key}): expected `), `${key}: ${error}`);
      assert.ok(error.endsWith(`got ${JSON.stringify(raw)}`), `${key}: ${error}`);
      checked += 1;
    }
    assert.ok(checked >= 25, `checked ${checked} keys`);
  });

  test('related keys are checked against each other', () => {
    assert.match(
      loadError({ THUMPER_AMQP_RECONNECT_INITIAL_MS: '60000' }),
      /THUMPER_AMQP_RECONNECT_INITIAL_MS \(amqp\.reconnectInitialMs\): expected at most amqp\.reconnectMaxMs \(30000\), got 60000/,
    );
    assert.equal(load({ THUMPER_STOMP_MAX_FRAME_BYTES: '1000' }).stomp.maxFrameBytesBeforeConnect, 1000, 'capped by maxFrameBytes');
  });
});

describe('docs/configuration.md', () => {
  test('the table lists every key with its variable and default', () => {
    const docs = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of docs.split('\n')) {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, ''));
      if (cells.length === 4 && cells[0] !== undefined && cells[1]?.startsWith('THUMPER_')) rows.set(cells[0], cells);
    }
    const keys = describeConfigKeys();
    assert.deepEqual([...rows.keys()].sort(), keys.map((k) => k.key).sort());
    for (const k of keys) {
      const [, env, def] = rows.get(k.key) ?? [];
      assert.equal(env, k.env, `${k.key} env`);
      assert.equal(def, k.default, `${k.key} default`);
    }
  });
});

describe('logger', () => {
  function capture(pretty = false): { log: ReturnType<typeof createLogger>; lines: string[] } {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
        done();
      },
    });
    return { log: createLogger({ level: 'info', pretty }, sink), lines };
  }

  test('passcodes, authorization headers and URL passwords are redacted', () => {
    const { log, lines } = capture();
    log.info({ passcode: 'p1', frame: { passcode: 'p2' }, headers: { authorization: 'Basic p3' } }, 'connect');
    log.info({ headers: [['login', 'u'], ['passcode', 'p4']] }, 'frame');
    log.info({ url: 'amqp://user:p5@rabbit:5672/' }, 'dialing amqp://user:p6@rabbit');
    const text = lines.join('\n');
    for (const secret of ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.ok(text.includes('amqp://user:***@rabbit'), text);
    assert.ok(text.includes('"login"'), text);
  });

  test('pretty is a level-and-message line', () => {
    const { log, lines } = capture(true);
    log.warn({ remote: '127.0.0.1:5000' }, 'hello');
    assert.deepEqual(lines, ['WARN  hello remote=127.0.0.1:5000']);
    assert.equal(formatPlainLine('not json'), 'not json');
  });

  test('URL helpers', () => {
    assert.equal(redactUrlPasswords('a amqps://u:x@h b'), 'a amqps://u:***@h b');
    assert.deepEqual(withoutPassword('amqp://user:pw@host:5672'), { url: 'amqp://user@host:5672', hadPassword: true });
    assert.deepEqual(withoutPassword('amqp://host'), { url: 'amqp://host', hadPassword: false });
  });
});
