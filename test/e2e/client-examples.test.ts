// Every example in client-examples/ is run as its users would run it (a child process with
// arguments and environment), against RabbitMQ and Thumper wired as in production (auth-backend's
// shipped rules, THUMPER_AUTH_BACKENDS=jwt,http): the amqplib publisher reaches a STOMP subscriber;
// the stompit subscriber receives over TCP and reports ERROR frames; the stompjs client logs in with
// a JWT from POST /login and its reply reaches an AMQP consumer; the JDK-only JVM client receives
// and replies (and, against a scripted server, copes with frames split across WebSocket messages).
// stompit and the JVM client also run unchanged against RabbitMQ's own STOMP plugins. The Android
// and iOS clients cannot be built here: the exact text frames they send (test/fixtures/wire/*.json,
// checked against their sources) are replayed byte for byte with the same subprotocol header, and
// Thumper's answers are the ones the apps wait for.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import bcrypt from 'bcryptjs';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { WebSocket, WebSocketServer } from 'ws';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import type { RunningAuthBackend } from '../../auth-backend/src/server.js';
import type { DecisionEvent } from '../../auth-backend/src/protocol.js';
import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { connectWs, describeFrame, login, sleep, withDeadline } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RULES_FILE = join(ROOT, 'auth-backend/rules.json');
const ISSUER = 'thumper-auth-backend';
const AUDIENCE = 'thumper';
const SUITE = { timeout: 240_000 };
/** An example's start-up (tsx compiling, a JVM booting) up to its "subscribed" line. */
const READY_DEADLINE_MS = 30_000;
/** From the last publish to the example's exit. */
const EXIT_DEADLINE_MS = 20_000;
const DEADLINE_MS = 5000;
/** Thumper sends a heart-beat within sendMs (10 s here) of silence. */
const SERVER_HEART_BEAT_DEADLINE_MS = 15_000;

const bodyOf = (f: Frame): string => f.body.toString('utf8');

// -------------------------------------------------------------------------------------------------
// Examples as child processes

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Example {
  stdout(): string;
  stderr(): string;
  /** Waits (bounded) for a stdout line matching `pattern`; fails early if the example exits. */
  waitForLine(pattern: RegExp, deadlineMs?: number): Promise<string>;
  /** Waits (bounded) for the exit; killed and failed past the deadline. */
  waitExit(deadlineMs?: number): Promise<Exit>;
  /** Stdout and stderr, for failure messages. */
  output(): string;
}

const running = new Set<ChildProcess>();

function startExample(name: string, command: string, args: readonly string[], env: Record<string, string>): Example {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // Set by node --test for its own children; an example is not one.
  delete childEnv['NODE_TEST_CONTEXT'];
  const child = spawn(command, args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  let exit: Exit | undefined;
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', (e) => {
      err += `\n(spawn failed: ${e.message})`;
      exit = { code: null, signal: null };
      running.delete(child);
      resolve(exit);
    });
    child.once('close', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      resolve(exit);
    });
  });
  const output = (): string => `--- ${name} stdout ---\n${out}--- ${name} stderr ---\n${err}`;
  return {
    stdout: () => out,
    stderr: () => err,
    output,
    async waitForLine(pattern, deadlineMs = READY_DEADLINE_MS) {
      for (let waited = 0; waited <= deadlineMs; waited += 20) {
        const line = out.split('\n').find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (exit) break;
        await sleep(20);
      }
      throw new Error(`${name}: no line matching ${String(pattern)} (${exit ? `exited with ${exit.code ?? exit.signal}` : `within ${deadlineMs} ms`})\n${output()}`);
    },
    async waitExit(deadlineMs = EXIT_DEADLINE_MS) {
      try {
        return await withDeadline(exited, deadlineMs, `${name} did not exit`);
      } catch (e) {
        child.kill('SIGKILL');
        throw new Error(`${(e as Error).message}\n${output()}`);
      }
    },
  };
}

/** `node --import tsx <file> …args`, from the repository root, as the READMEs say. */
function startNodeExample(file: string, args: readonly string[], env: Record<string, string>): Example {
  return startExample(file, process.execPath, ['--import', 'tsx', join(ROOT, file), ...args], env);
}

async function assertExitedOk(example: Example, deadlineMs = EXIT_DEADLINE_MS): Promise<void> {
  const exit = await example.waitExit(deadlineMs);
  assert.equal(exit.code, 0, `expected exit code 0, got ${exit.code ?? exit.signal}\n${example.output()}`);
}

/** The first stdout line matching `pattern`, or a failure showing the output. */
function lineOf(example: Example, pattern: RegExp): string {
  const line = example.stdout().split('\n').find((l) => pattern.test(l));
  assert.ok(line !== undefined, `no stdout line matching ${String(pattern)}\n${example.output()}`);
  return line;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// -------------------------------------------------------------------------------------------------
// The JDK

const execFileAsync = promisify(execFile);

/** Compiles the JVM example into a temporary directory; undefined when there is no javac. */
async function compileJvmExample(): Promise<string | undefined> {
  try {
    await execFileAsync('javac', ['-version'], { timeout: 30_000 });
  } catch {
    return undefined;
  }
  const out = await mkdtemp(join(tmpdir(), 'thumper-jvm-example-'));
  await execFileAsync('javac', ['-Xlint:all', '-Werror', '-d', out, join(ROOT, 'client-examples/jvm/StompClient.java')], { timeout: 120_000 });
  return out;
}

// -------------------------------------------------------------------------------------------------
// AMQP side: the backend that publishes to feed and reads replies

interface Backend {
  publish(user: string, text: string): Promise<void>;
  /** A queue bound to replies/<user>; waitFor resolves with the first message whose body is `body`. */
  listenReplies(user: string): Promise<{ waitFor(body: string): Promise<ConsumeMessage>; close(): Promise<void> }>;
  close(): Promise<void>;
}

async function startBackend(amqpUrl: string): Promise<Backend> {
  const model: ChannelModel = await amqp.connect(amqpUrl);
  const confirm: ConfirmChannel = await model.createConfirmChannel();
  await confirm.assertExchange('feed', 'topic', { durable: true });
  await confirm.assertExchange('replies', 'topic', { durable: true });
  return {
    async publish(user, text) {
      confirm.publish('feed', user, Buffer.from(text, 'utf8'), { persistent: true, contentType: 'text/plain' });
      await confirm.waitForConfirms();
    },
    async listenReplies(user) {
      const ch: Channel = await model.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
      await ch.bindQueue(queue, 'replies', user);
      const got: ConsumeMessage[] = [];
      await ch.consume(queue, (m) => {
        if (m) got.push(m);
      }, { noAck: true });
      return {
        async waitFor(body) {
          for (let waited = 0; waited <= DEADLINE_MS; waited += 20) {
            const m = got.find((msg) => msg.content.toString('utf8') === body);
            if (m) return m;
            await sleep(20);
          }
          throw new Error(`no reply ${JSON.stringify(body)} on replies/${user} within ${DEADLINE_MS} ms; got: ${got.map((m) => m.content.toString()).join(' | ')}`);
        },
        close: () => ch.close().catch(() => {}),
      };
    },
    close: () => model.close().catch(() => {}),
  };
}

// -------------------------------------------------------------------------------------------------
// Wire replay for the mobile apps

interface WireFixture {
  readonly source: string;
  readonly language: 'kotlin' | 'swift';
  readonly subprotocolHeader: string;
  readonly frames: {
    readonly connect: string;
    readonly subscribe: string;
    readonly ack: string;
    readonly reply: string;
    readonly heartBeat: string;
    readonly disconnect: string;
  };
}

async function loadFixture(name: string): Promise<WireFixture> {
  return JSON.parse(await readFile(join(ROOT, 'test/fixtures/wire', `${name}.json`), 'utf8')) as WireFixture;
}

/** `{name}` placeholders filled in, as the app fills them in. */
function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {${name}}`);
    return value;
  });
}

/** How a frame template is written as a string literal in each app's source. */
const SOURCE_LITERAL = {
  kotlin: (template: string): string =>
    '"' + template.replace(/\n/g, '\\n').replace(/\0/g, '\\u0000').replace(/\{(\w+)\}/g, '${$1}') + '"',
  swift: (template: string): string =>
    '"' + template.replace(/\n/g, '\\n').replace(/\0/g, '\\0').replace(/\{(\w+)\}/g, '\\($1)') + '"',
} as const;

/** How each app sets the subprotocol header. */
const SOURCE_SUBPROTOCOL = {
  kotlin: (header: string): string => `.header("Sec-WebSocket-Protocol", "${header}")`,
  swift: (header: string): string => `setValue("${header}", forHTTPHeaderField: "Sec-WebSocket-Protocol")`,
} as const;

/** A `ws` client that sends an exact Sec-WebSocket-Protocol header and exact text messages. */
class WireConn {
  readonly frames: Frame[] = [];
  heartbeats = 0;
  binaryMessages = 0;
  readonly closed: Promise<void>;
  readonly #ws: WebSocket;
  readonly #taken = new Set<number>();
  readonly #decoder = new StompDecoder({ maxFrameBytes: 1024 * 1024 });
  #isClosed = false;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#decoder.setVersion('1.2');
    this.#decoder.setAuthenticated();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binaryMessages++;
      for (const event of this.#decoder.push(data).events) {
        if (event.type === 'heartbeat') this.heartbeats++;
        // Bodies may be views of the chunk: keep a copy.
        else this.frames.push({ ...event.frame, body: Buffer.from(event.frame.body) });
      }
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', () => {
        this.#isClosed = true;
        resolve();
      });
    });
  }

  /**
   * Opens `url` offering `offered` (so `ws` checks the server's choice) but writes the header
   * exactly as `header`: `ws` itself would join the offer with ',' and no space.
   */
  static async open(url: string, header: string, offered: string[]): Promise<WireConn> {
    const ws = new WebSocket(url, offered, {
      finishRequest: (req) => {
        req.setHeader('Sec-WebSocket-Protocol', header);
        req.end();
      },
    });
    const conn = new WireConn(ws);
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      DEADLINE_MS,
      `WebSocket ${url} did not open`,
    );
    return conn;
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  /** One WebSocket text message holding exactly these characters (UTF-8 on the wire). */
  sendText(text: string): void {
    this.#ws.send(text, { binary: false });
  }

  async next(pred: (f: Frame) => boolean, what: string, deadlineMs = DEADLINE_MS): Promise<Frame> {
    for (let waited = 0; waited <= deadlineMs; waited += 10) {
      const index = this.frames.findIndex((f, i) => !this.#taken.has(i) && pred(f));
      if (index >= 0) {
        this.#taken.add(index);
        return this.frames[index]!;
      }
      if (this.#isClosed) break;
      await sleep(10);
    }
    throw new Error(`no ${what} (${this.#isClosed ? 'closed' : `within ${deadlineMs} ms`}); frames: ${this.frames.map(describeFrame).join(' | ')}`);
  }

  async waitHeartbeat(deadlineMs: number): Promise<void> {
    const before = this.heartbeats;
    for (let waited = 0; waited <= deadlineMs && this.heartbeats === before; waited += 50) await sleep(50);
    assert.ok(this.heartbeats > before, `no heart-beat from Thumper within ${deadlineMs} ms`);
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#ws.close(1000);
    await withDeadline(this.closed, 2000, 'close').catch(() => this.#ws.terminate());
  }
}

// -------------------------------------------------------------------------------------------------

describe('client examples against Thumper bridged to RabbitMQ, auth by auth-backend', SUITE, () => {
  const secret = randomBytes(32).toString('hex');
  const run = randomBytes(4).toString('hex');
  // A user of this run only, with user_x's rights (the rules grant by {username}): other test files
  // share the RabbitMQ node and publish to feed/user_x meanwhile, and the examples count whatever
  // arrives on their feed.
  const USER = `user_${run}`;
  const PASSWORD = `${USER}-secret`;
  let rulesDir: string | undefined;
  const decisions: DecisionEvent[] = [];
  let rabbit: RabbitNode;
  let auth: RunningAuthBackend;
  let thumper: ThumperServer;
  let backend: Backend;
  let jvmClasses: string | undefined;
  const conns: Array<StompConn | WireConn> = [];

  before(async () => {
    rabbit = await useRabbit();
    rulesDir = await mkdtemp(join(tmpdir(), 'thumper-example-rules-'));
    const rules = JSON.parse(await readFile(RULES_FILE, 'utf8')) as { users: unknown[] };
    rules.users.push({ username: USER, password_hash: bcrypt.hashSync(PASSWORD, 4), tags: [] });
    const rulesFile = join(rulesDir, 'rules.json');
    await writeFile(rulesFile, JSON.stringify(rules));
    auth = await startAuthBackend({
      host: '127.0.0.1',
      port: 0,
      rulesFile,
      jwtSecret: secret,
      onDecision: (event) => decisions.push(event),
    });
    thumper = await startThumper({
      THUMPER_ENGINE: 'amqp',
      THUMPER_AMQP_URL: rabbit.amqpUrl,
      THUMPER_AUTH_BACKENDS: 'jwt,http',
      THUMPER_AUTH_AUTHZ: 'http',
      THUMPER_AUTH_HTTP_BASE_URL: `${auth.url}/auth`,
      THUMPER_AUTH_JWT_ALGORITHMS: 'HS256',
      THUMPER_AUTH_JWT_SECRET: secret,
      THUMPER_AUTH_JWT_ISSUER: ISSUER,
      THUMPER_AUTH_JWT_AUDIENCE: AUDIENCE,
      // Every login reaches auth-backend, so the JWT test can tell a token from a password.
      THUMPER_AUTH_CACHE_ALLOW_TTL_MS: '0',
      THUMPER_AUTH_CACHE_DENY_TTL_MS: '0',
    });
    backend = await startBackend(rabbit.amqpUrl);
    jvmClasses = await compileJvmExample();
  });

  after(async () => {
    for (const child of running) child.kill('SIGKILL');
    await Promise.allSettled(conns.map((c) => c.close()));
    await backend?.close();
    await thumper?.stop();
    await auth?.close();
    await rabbit?.stop();
    if (jvmClasses !== undefined) await rm(jvmClasses, { recursive: true, force: true });
    if (rulesDir !== undefined) await rm(rulesDir, { recursive: true, force: true });
  });

  test('node-publisher: its message, persistent and confirmed, reaches the user’s STOMP subscriber', async () => {
    const conn = await connectWs(thumper.wsUrl);
    conns.push(conn);
    await login(conn, { login: USER, passcode: PASSWORD });
    await conn.request('SUBSCRIBE', { id: 'feed', destination: `/exchange/feed/${USER}`, ack: 'auto' });

    const text = `hello from the publisher ${run}`;
    const publisher = startNodeExample('client-examples/node-publisher/publish.ts', [USER, text], { AMQP_URL: rabbit.amqpUrl });
    await assertExitedOk(publisher, READY_DEADLINE_MS);
    const line = lineOf(publisher, /^published /);
    assert.match(line, new RegExp(`^published ${escapeRegExp(JSON.stringify(text))} to exchange feed, routing key ${USER} \\(message-id [0-9a-f-]{36}, persistent, confirmed by amqp://`));
    const redacted = new URL(rabbit.amqpUrl);
    if (redacted.password !== '') redacted.password = '***';
    assert.ok(line.endsWith(`confirmed by ${redacted.toString()})`), `the URL is printed without its password: ${line}`);

    const message = await conn.next((f) => f.command === 'MESSAGE' && bodyOf(f) === text);
    assert.equal(getHeader(message, 'destination'), `/exchange/feed/${USER}`);
    assert.equal(getHeader(message, 'persistent'), 'true');
    assert.equal(getHeader(message, 'content-type'), 'text/plain');
    // The AMQP message-id property arrives as `amqp-message-id` (STOMP's own message-id is the delivery's).
    assert.equal(getHeader(message, 'amqp-message-id'), /message-id ([0-9a-f-]{36})/.exec(line)?.[1]);
    await conn.close();
  });

  test('node-publisher: without a user it prints its usage and exits 2', async () => {
    const publisher = startNodeExample('client-examples/node-publisher/publish.ts', [], { AMQP_URL: rabbit.amqpUrl, FEED_USER: '' });
    const exit = await publisher.waitExit(READY_DEADLINE_MS);
    assert.equal(exit.code, 2, publisher.output());
    assert.match(publisher.stderr(), /^usage: publish\.ts <user>/);
  });

  test('node-stompit over TCP: receives and ACKs two published messages, then disconnects', async () => {
    const tcpPort = thumper.tcpPort;
    assert.ok(tcpPort !== undefined, 'Thumper listens for STOMP over TCP');
    const subscriber = startNodeExample('client-examples/node-stompit/subscribe.ts', [USER, PASSWORD, '2'], {
      STOMP_HOST: '127.0.0.1',
      STOMP_PORT: String(tcpPort),
    });
    const connected = await subscriber.waitForLine(/^connected to /);
    assert.equal(connected, `connected to 127.0.0.1:${tcpPort} as ${USER} (STOMP 1.2, heart-beat 10000,10000)`);
    await subscriber.waitForLine(new RegExp(`^subscribed to /exchange/feed/${USER} \\(ack client-individual\\)`));
    await backend.publish(USER, `first ${run}`);
    await backend.publish(USER, `second ${run}`);
    await assertExitedOk(subscriber);
    assert.match(lineOf(subscriber, /^message 1\/2 /), new RegExp(`^message 1/2 on /exchange/feed/${USER} \\(message-id .+\\): first ${run}$`));
    assert.match(lineOf(subscriber, /^message 2\/2 /), new RegExp(`^message 2/2 on /exchange/feed/${USER} \\(message-id .+\\): second ${run}$`));
    lineOf(subscriber, /^received 2 message\(s\), disconnecting$/);
    // An ACK Thumper did not accept would have come back as an ERROR frame and exit code 1.
    assert.equal(subscriber.stderr(), '');
  });

  test('node-stompit over TCP: an ERROR frame is printed with its message and body, exit 1', async () => {
    const tcpPort = thumper.tcpPort;
    assert.ok(tcpPort !== undefined, 'Thumper listens for STOMP over TCP');
    const subscriber = startNodeExample('client-examples/node-stompit/subscribe.ts', [USER, 'wrong-password', '1'], {
      STOMP_HOST: '127.0.0.1',
      STOMP_PORT: String(tcpPort),
    });
    const exit = await subscriber.waitExit(READY_DEADLINE_MS);
    assert.equal(exit.code, 1, subscriber.output());
    // The `message` header, then the body (RabbitMQ's text).
    assert.equal(subscriber.stderr(), `ERROR from the server: Bad CONNECT\nAccess refused for user '${USER}'\n`, subscriber.output());
    assert.doesNotMatch(subscriber.output(), /wrong-password/, 'the passcode is never printed');
  });

  test('node-stompjs: logs in with a JWT from POST /login, receives its feed, its reply reaches an AMQP consumer', async () => {
    const replies = await backend.listenReplies(USER);
    try {
      const since = decisions.length;
      const client = startNodeExample('client-examples/node-stompjs/client.ts', [USER, PASSWORD, '1'], {
        THUMPER_WS_URL: thumper.wsUrl,
        AUTH_URL: auth.url,
      });
      const connected = await client.waitForLine(/^connected to /);
      assert.equal(connected, `connected to ${thumper.wsUrl} as ${USER} with a JWT (STOMP 1.2, heart-beat 10000,10000)`);
      await client.waitForLine(new RegExp(`^subscribed to /exchange/feed/${USER}$`));
      const text = `for the stompjs client ${run}`;
      await backend.publish(USER, text);
      await assertExitedOk(client);
      assert.equal(lineOf(client, /^message 1 /), `message 1 on /exchange/feed/${USER}: ${text}`);
      assert.equal(lineOf(client, /^replied /), `replied on /exchange/replies/${USER}: ${JSON.stringify(`re: ${text}`)} (RECEIPT reply-1)`);

      const reply = await replies.waitFor(`re: ${text}`);
      assert.equal(reply.fields.exchange, 'replies');
      assert.equal(reply.fields.routingKey, USER);
      assert.equal(reply.properties.contentType, 'text/plain');

      // The password went to POST /login only: Thumper verified the token itself (no user-path
      // request; the decision cache is off) and asked auth-backend what the user may do.
      const mine = decisions.slice(since).filter((d) => d.params['username'] === USER);
      assert.deepEqual(mine.filter((d) => d.path === 'user'), []);
      assert.ok(mine.some((d) => d.path === 'vhost' && d.answer === 'allow'), 'the vhost check went to auth-backend');
      assert.ok(mine.some((d) => d.path === 'topic' && d.params['name'] === 'replies' && d.params['routing_key'] === USER && d.answer === 'allow'));
    } finally {
      await replies.close();
    }
  });

  test('node-stompjs: a wrong password is refused by POST /login; exit 1 with the reason', async () => {
    const client = startNodeExample('client-examples/node-stompjs/client.ts', [USER, 'wrong-password', '1'], {
      THUMPER_WS_URL: thumper.wsUrl,
      AUTH_URL: auth.url,
    });
    const exit = await client.waitExit(READY_DEADLINE_MS);
    assert.equal(exit.code, 1, client.output());
    assert.equal(client.stderr().trimEnd(), `login at ${auth.url}/login refused: HTTP 401 invalid credentials`);
    assert.doesNotMatch(client.output(), /wrong-password/);
  });

  test('jvm: StompClient (JDK only) receives its feed and replies', async (t) => {
    if (jvmClasses === undefined) {
      t.skip('no javac on PATH: the JVM example was not compiled or run');
      return;
    }
    const replies = await backend.listenReplies(USER);
    try {
      const client = startExample('StompClient', 'java', ['-cp', jvmClasses, 'StompClient', thumper.wsUrl, USER, PASSWORD, '1'], {});
      const connected = await client.waitForLine(/^connected to /);
      assert.equal(connected, `connected to ${thumper.wsUrl} as ${USER} (STOMP 1.2, heart-beat 10000,10000)`);
      await client.waitForLine(new RegExp(`^subscribed to /exchange/feed/${USER}$`));
      const text = `for the JVM client ${run}`;
      await backend.publish(USER, text);
      await assertExitedOk(client);
      assert.equal(lineOf(client, /^message 1 /), `message 1 on /exchange/feed/${USER}: ${text}`);
      assert.equal(lineOf(client, /^replied /), `replied on /exchange/replies/${USER} (RECEIPT reply-1)`);
      lineOf(client, /^disconnected after 1 reply$/);
      const reply = await replies.waitFor(`re: ${text}`);
      assert.equal(reply.fields.routingKey, USER);
      assert.equal(reply.properties.contentType, 'text/plain');
    } finally {
      await replies.close();
    }
  });

  test('jvm: an ERROR frame (wrong password) is printed with its message and body, exit 1', async (t) => {
    if (jvmClasses === undefined) {
      t.skip('no javac on PATH: the JVM example was not compiled or run');
      return;
    }
    const client = startExample('StompClient', 'java', ['-cp', jvmClasses, 'StompClient', thumper.wsUrl, USER, 'wrong-password', '1'], {});
    const exit = await client.waitExit(READY_DEADLINE_MS);
    assert.equal(exit.code, 1, client.output());
    assert.equal(client.stderr(), `ERROR from the server: Bad CONNECT\nAccess refused for user '${USER}'\n`, client.output());
    assert.doesNotMatch(client.output(), /wrong-password/);
  });

  test('stompit and the JVM client run unchanged against RabbitMQ’s own STOMP and Web-STOMP plugins', async (t) => {
    const { stompPort, webStompUrl } = rabbit;
    if (stompPort === undefined || webStompUrl === undefined) {
      t.skip('this RabbitMQ node has no STOMP/Web-STOMP ports known to the harness');
      return;
    }
    // A user in RabbitMQ's own database (the plugins do not ask this test's auth-backend), of this
    // run only, like USER.
    const plugin = { user: `plugin_${run}`, password: `plugin-${run}-secret` };
    await rabbit.rabbitmqctl('add_user', plugin.user, plugin.password);
    try {
      await rabbit.rabbitmqctl('set_permissions', '-p', '/', plugin.user, '.*', '.*', '.*');
      const subscriber = startNodeExample('client-examples/node-stompit/subscribe.ts', [plugin.user, plugin.password, '1'], {
        STOMP_HOST: '127.0.0.1',
        STOMP_PORT: String(stompPort),
      });
      await subscriber.waitForLine(new RegExp(`^subscribed to /exchange/feed/${plugin.user} `));
      const jvm = jvmClasses === undefined
        ? undefined
        : startExample('StompClient', 'java', ['-cp', jvmClasses, 'StompClient', webStompUrl, plugin.user, plugin.password, '1'], {});
      await jvm?.waitForLine(new RegExp(`^subscribed to /exchange/feed/${plugin.user}$`));
      const text = `through RabbitMQ's plugins ${run}`;
      await backend.publish(plugin.user, text);
      await assertExitedOk(subscriber);
      assert.match(lineOf(subscriber, /^message 1\/1 /), new RegExp(`: ${escapeRegExp(text)}$`));
      if (jvm) {
        // Web-STOMP 3.x closes before the DISCONNECT's RECEIPT (reference §4); the client accepts either.
        await assertExitedOk(jvm);
        assert.equal(lineOf(jvm, /^message 1 /), `message 1 on /exchange/feed/${plugin.user}: ${text}`);
        lineOf(jvm, /^disconnected after 1 reply$/);
      }
    } finally {
      await rabbit.rabbitmqctl('delete_user', plugin.user).catch(() => '');
    }
  });

  for (const app of ['android', 'ios'] as const) {
    test(`${app}: the app's exact frames, replayed over WebSocket, get the answers the app waits for`, async () => {
      const fixture = await loadFixture(app);
      const { frames } = fixture;

      // The fixture is what the source sends: every frame is a literal in it, and so is the header.
      const source = await readFile(join(ROOT, fixture.source), 'utf8');
      for (const [name, template] of Object.entries(frames)) {
        const literal = SOURCE_LITERAL[fixture.language](template);
        assert.ok(source.includes(literal), `${fixture.source} no longer contains the ${name} frame ${literal}`);
      }
      assert.ok(source.includes(SOURCE_SUBPROTOCOL[fixture.language](fixture.subprotocolHeader)), `${fixture.source} no longer sets the subprotocol header`);

      const replies = await backend.listenReplies(USER);
      const conn = await WireConn.open(thumper.wsUrl, fixture.subprotocolHeader, fixture.subprotocolHeader.split(', '));
      conns.push(conn);
      try {
        assert.equal(conn.protocol, 'v12.stomp');
        const values = { user: USER, passcode: PASSWORD };

        conn.sendText(fill(frames.connect, values));
        const connected = await conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR', 'CONNECTED');
        assert.equal(connected.command, 'CONNECTED', describeFrame(connected));
        assert.equal(getHeader(connected, 'version'), '1.2');
        assert.equal(getHeader(connected, 'heart-beat'), '10000,10000');

        conn.sendText(fill(frames.subscribe, values));
        const subscribed = await conn.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR', 'RECEIPT subscribed');
        assert.equal(getHeader(subscribed, 'receipt-id'), 'subscribed', describeFrame(subscribed));

        const text = `for the ${app} app ${run}`;
        await backend.publish(USER, text);
        const message = await conn.next((f) => f.command === 'MESSAGE' && bodyOf(f) === text, 'MESSAGE');
        assert.equal(getHeader(message, 'destination'), `/exchange/feed/${USER}`);
        assert.equal(getHeader(message, 'subscription'), 'feed');
        const ack = getHeader(message, 'ack');
        assert.ok(ack !== undefined, `ack:client-individual messages carry an ack header: ${describeFrame(message)}`);
        // The app escapes the ack id before echoing it (STOMP 1.2 §Value Encoding).
        conn.sendText(fill(frames.ack, { ack: ack.replace(/\\/g, '\\\\').replace(/:/g, '\\c') }));
        conn.sendText(frames.heartBeat);

        const reply = `re: ${text}`;
        conn.sendText(fill(frames.reply, { ...values, receipt: 'reply-1', body: reply }));
        const confirmed = await conn.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR', 'RECEIPT reply-1');
        assert.equal(getHeader(confirmed, 'receipt-id'), 'reply-1', describeFrame(confirmed));
        const got = await replies.waitFor(reply);
        assert.equal(got.fields.routingKey, USER);
        assert.equal(got.properties.contentType, 'text/plain');

        // The apps watch for the server's heart-beats: one must come while the link is idle.
        await conn.waitHeartbeat(SERVER_HEART_BEAT_DEADLINE_MS);

        conn.sendText(frames.disconnect);
        const bye = await conn.next((f) => f.command === 'RECEIPT' || f.command === 'ERROR', 'RECEIPT disconnect');
        assert.equal(getHeader(bye, 'receipt-id'), 'disconnect', describeFrame(bye));
        await withDeadline(conn.closed, DEADLINE_MS, 'Thumper did not close after DISCONNECT');

        // Text bodies come back as text messages, which both apps read first.
        assert.equal(conn.binaryMessages, 0);
        assert.deepEqual(conn.frames.filter((f) => f.command === 'ERROR').map(describeFrame), []);
      } finally {
        await replies.close();
      }
    });
  }
});

// -------------------------------------------------------------------------------------------------

describe('jvm: StompClient’s decoder against a scripted server', SUITE, () => {
  let server: WebSocketServer;
  let url: string;
  let jvmClasses: string | undefined;
  /** Every frame the client sent, decoded. */
  const received: Frame[] = [];

  before(async () => {
    jvmClasses = await compileJvmExample();
    server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (offered) => (offered.has('v12.stomp') ? 'v12.stomp' : false),
    });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const address = server.address();
    assert.ok(typeof address === 'object' && address !== null);
    url = `ws://127.0.0.1:${address.port}/ws`;
    server.on('connection', (ws) => {
      const decoder = new StompDecoder({ maxFrameBytes: 1024 * 1024 });
      decoder.setVersion('1.2');
      decoder.setAuthenticated();
      ws.on('message', (data: Buffer) => {
        for (const event of decoder.push(data).events) {
          if (event.type !== 'frame') continue;
          const frame = { ...event.frame, body: Buffer.from(event.frame.body) };
          received.push(frame);
          for (const piece of scriptedAnswer(frame)) ws.send(piece);
          // As Thumper and RabbitMQ do: the socket closes right behind the DISCONNECT's RECEIPT.
          if (frame.command === 'DISCONNECT') ws.close(1000);
        }
      });
    });
  });

  after(async () => {
    for (const client of server?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (jvmClasses !== undefined) await rm(jvmClasses, { recursive: true, force: true });
  });

  const BODY = 'héllo\0wörld';

  /** What the scripted server answers, cut into WebSocket text messages at awkward places. */
  function scriptedAnswer(frame: Frame): string[] {
    switch (frame.command) {
      case 'CONNECT':
        // The command split across two messages, a heart-beat EOL glued after the frame.
        return ['CONN', 'ECTED\nversion:1.2\nheart-beat:0,0\nserver:scripted\n\n\0\n'];
      case 'SUBSCRIBE': {
        // EOL, RECEIPT and the first half of a MESSAGE in one message; a NUL inside the body,
        // which only content-length can delimit; an escaped colon in a header.
        const head = `MESSAGE\ndestination:/exchange/feed/user_x\nsubscription:feed\nmessage-id:m\\c1\ncontent-length:${Buffer.byteLength(BODY)}\n\n`;
        return [`\nRECEIPT\nreceipt-id:subscribed\n\n\0${head}hé`, 'llo\0wörld\0\r\n'];
      }
      case 'SEND':
        return [`RECEIPT\nreceipt-id:${getHeader(frame, 'receipt') ?? ''}\n\n\0`];
      case 'DISCONNECT':
        return [`RECEIPT\nreceipt-id:${getHeader(frame, 'receipt') ?? ''}\n\n\0`];
      default:
        return [];
    }
  }

  test('frames split across and packed into WebSocket messages, heart-beat EOLs, content-length bodies with NUL', async (t) => {
    if (jvmClasses === undefined) {
      t.skip('no javac on PATH: the JVM example was not compiled or run');
      return;
    }
    const client = startExample('StompClient', 'java', ['-cp', jvmClasses, 'StompClient', url, 'user_x', 'pass:word', '1'], {});
    await assertExitedOk(client, READY_DEADLINE_MS);
    assert.equal(lineOf(client, /^connected to /), `connected to ${url} as user_x (STOMP 1.2, heart-beat 0,0)`);
    lineOf(client, /^subscribed to \/exchange\/feed\/user_x$/);
    assert.equal(lineOf(client, /^message 1 /), `message 1 on /exchange/feed/user_x: ${BODY}`);

    assert.deepEqual(received.map((f) => f.command), ['CONNECT', 'SUBSCRIBE', 'SEND', 'DISCONNECT']);
    const [connect, subscribe, send] = received;
    assert.deepEqual(connect?.headers, [
      ['accept-version', '1.2'],
      ['host', '/'],
      ['login', 'user_x'],
      // CONNECT headers are not escaped (STOMP 1.2 §CONNECT), so the colon is sent as is.
      ['passcode', 'pass:word'],
      ['heart-beat', '10000,10000'],
    ]);
    assert.deepEqual(subscribe?.headers, [
      ['id', 'feed'],
      ['destination', '/exchange/feed/user_x'],
      ['ack', 'auto'],
      ['receipt', 'subscribed'],
    ]);
    assert.equal(getHeader(send!, 'destination'), '/exchange/replies/user_x');
    assert.equal(getHeader(send!, 'content-length'), String(Buffer.byteLength(`re: ${BODY}`)));
    assert.equal(bodyOf(send!), `re: ${BODY}`);
  });
});
