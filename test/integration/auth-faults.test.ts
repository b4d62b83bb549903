// Auth service faults end to end (issue 6, item 3): a real gateway in front of RabbitMQ whose HTTP
// auth backend is a fault-injecting node:http server switched per phase: normal, down (closed
// port), slow (answers after twice the request timeout), reset before any answer byte, and garbage
// (random bytes, `allowx`, HTTP 500 saying allow, `allow` padded to 1 MB, a reset mid-answer, a
// never-ending chunked answer that starts with `allow`). For each fault: a new CONNECT and an
// uncached SUBSCRIBE and SEND of connected sessions get a clear ERROR, every client gets an answer
// (bounded waits), nothing the fault server says is taken as allow, and the server sees at most one
// retry per decision. Sessions connected before the fault keep what was granted while their cache
// entries live; after expiry their new checks deny during the fault and succeed after recovery.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { connectWs, describeFrame, isMessage, login, sleep } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';

const SUITE = { timeout: 180_000 };
const REQUEST_TIMEOUT_MS = 300;
const ALLOW_TTL_MS = 3000;
/**
 * Bound on every wait for an answer: a decision takes at most two attempts of REQUEST_TIMEOUT_MS
 * (one retry); the rest is margin for a loaded machine. Not a timing assertion: only "an answer came".
 */
const ANSWER_DEADLINE_MS = 2 * REQUEST_TIMEOUT_MS + 4000;
/** New CONNECTs per fault, concurrent, each with its own (uncached) user. */
const CONNECTS_PER_FAULT = 3;
const PASSWORD = 'pw-faults';
const RUN = randomBytes(4).toString('hex');

const FAULTS = [
  'down',
  'slow',
  'reset-before-answer',
  'random-bytes',
  'allowx',
  'http-500',
  'one-megabyte',
  'reset-mid-answer',
  'endless-chunked',
] as const;
type Fault = (typeof FAULTS)[number];
type Mode = 'normal' | Fault;

const FAULT_WHAT: Record<Fault, string> = {
  down: 'nothing listens on the port',
  slow: `answers allow after ${2 * REQUEST_TIMEOUT_MS} ms`,
  'reset-before-answer': 'resets the connection before any answer byte',
  'random-bytes': '200 with random bytes',
  allowx: '200 with `allowx`',
  'http-500': '500 whose body says allow',
  'one-megabyte': '200 with `allow` and 1 MB of spaces',
  'reset-mid-answer': '200 with content-length 5, `al`, then a reset',
  'endless-chunked': '200 chunked, `allow` then a space every 20 ms, never ending',
};

interface FaultServer {
  readonly url: string;
  /** Requests received (any mode), reset by the test per phase. */
  requests: number;
  setMode(mode: Mode): Promise<void>;
  stop(): Promise<void>;
}

/** Answers like auth-backend with a rule "every user with PASSWORD may do anything on /". */
function answerNormally(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname.split('/').pop();
  if (path === 'user') res.end(url.searchParams.get('password') === PASSWORD ? 'allow' : 'deny');
  else if (path === 'vhost') res.end(url.searchParams.get('vhost') === '/' ? 'allow' : 'deny');
  else res.end('allow');
}

/** Each endless answer is bounded too: at most this many chunks. */
const ENDLESS_MAX_CHUNKS = 3000;

function answerWithFault(mode: Fault, req: IncomingMessage, res: ServerResponse): void {
  switch (mode) {
    case 'down':
      res.end('allow'); // unreachable: the listener is closed in this mode
      return;
    case 'slow': {
      const timer = setTimeout(() => {
        if (!res.destroyed) res.end('allow');
      }, 2 * REQUEST_TIMEOUT_MS);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    case 'reset-before-answer':
      req.socket.resetAndDestroy();
      return;
    case 'random-bytes':
      res.end(Buffer.concat([Buffer.from([0xff]), randomBytes(64)]));
      return;
    case 'allowx':
      res.end('allowx');
      return;
    case 'http-500':
      res.statusCode = 500;
      res.end('allow');
      return;
    case 'one-megabyte':
      // Trimmed, this body is `allow`: only the size limit keeps it from granting.
      res.end(`allow${' '.repeat(1024 * 1024)}`);
      return;
    case 'reset-mid-answer':
      res.writeHead(200, { 'content-length': '5' });
      res.write('al', () => req.socket.resetAndDestroy());
      return;
    case 'endless-chunked': {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('allow');
      let chunks = 0;
      const timer = setInterval(() => {
        if (res.destroyed || ++chunks > ENDLESS_MAX_CHUNKS) {
          clearInterval(timer);
          res.destroy();
          return;
        }
        res.write(' ');
      }, 20);
      res.on('close', () => clearInterval(timer));
      return;
    }
  }
}

async function startFaultServer(): Promise<FaultServer> {
  let mode: Mode = 'normal';
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    state.requests++;
    // Writes to a peer that gave up (timeout, size limit) fail: that is the point, not an error.
    res.on('error', () => {});
    req.resume();
    req.on('end', () => {
      if (mode === 'normal') answerNormally(req, res);
      else answerWithFault(mode, req, res);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let listening = true;
  const closeListener = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
  };
  const state: FaultServer = {
    url: `http://127.0.0.1:${port}`,
    requests: 0,
    async setMode(next) {
      mode = next;
      if (next === 'down') {
        await closeListener();
      } else if (!listening) {
        // The same port again: Thumper's backend URL is fixed. A loopback port we just held is
        // free for us unless another process took it in these milliseconds; then the test says so.
        server.listen(port, '127.0.0.1');
        await once(server, 'listening');
        listening = true;
      }
    },
    stop: closeListener,
  };
  return state;
}

describe('auth service faults: deny clearly, never hang, keep what was granted', SUITE, () => {
  let rabbit: RabbitNode;
  let faults: FaultServer;
  let thumper: ThumperServer;
  let feederModel: ChannelModel;
  let feeder: ConfirmChannel;
  const conns: StompConn[] = [];

  before(async () => {
    rabbit = await useRabbit();
    faults = await startFaultServer();
    thumper = await startThumper({
      THUMPER_ENGINE: 'amqp',
      THUMPER_AMQP_URL: rabbit.amqpUrl,
      THUMPER_AUTH_BACKENDS: 'http',
      THUMPER_AUTH_HTTP_BASE_URL: `${faults.url}/auth`,
      THUMPER_AUTH_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      THUMPER_AUTH_HTTP_CONNECT_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      THUMPER_AUTH_CACHE_ALLOW_TTL_MS: String(ALLOW_TTL_MS),
    });
    feederModel = await amqp.connect(rabbit.amqpUrl);
    feeder = await feederModel.createConfirmChannel();
  });

  after(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await feederModel?.close().catch(() => {});
    await thumper?.stop();
    await faults?.stop();
    await rabbit?.stop();
  });

  const open = async (): Promise<StompConn> => {
    const conn = await connectWs(thumper.wsUrl);
    conns.push(conn);
    return conn;
  };
  const session = async (user: string): Promise<StompConn> => {
    const conn = await open();
    await login(conn, { login: user, passcode: PASSWORD });
    return conn;
  };
  /** The first RECEIPT or ERROR for `receipt`, within the answer deadline. */
  const answerTo = (conn: StompConn, receipt: string): Promise<Frame> =>
    conn.next((f) => f.command === 'ERROR' || (f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === receipt), ANSWER_DEADLINE_MS);
  const expectReceipt = async (conn: StompConn, receipt: string): Promise<void> => {
    const reply = await answerTo(conn, receipt);
    assert.equal(reply.command, 'RECEIPT', `expected RECEIPT ${receipt}, got ${describeFrame(reply)}`);
  };
  /** A subscription to a topic, in place once its RECEIPT came. */
  const subscribe = async (conn: StompConn, id: string, topic: string): Promise<void> => {
    conn.send('SUBSCRIBE', [['id', id], ['destination', `/topic/${topic}`], ['receipt', `sub-${id}`]]);
    await expectReceipt(conn, `sub-${id}`);
  };
  const sendAndReceive = async (conn: StompConn, id: string, topic: string, body: string): Promise<void> => {
    conn.send('SEND', [['destination', `/topic/${topic}`], ['receipt', `send-${body}`]], body);
    await expectReceipt(conn, `send-${body}`);
    const message = await conn.next((f) => isMessage(f) && getHeader(f, 'subscription') === id && f.body.toString() === body, ANSWER_DEADLINE_MS);
    assert.equal(message.body.toString(), body);
  };
  const publishFromBackend = async (topic: string, body: string): Promise<void> => {
    feeder.publish('amq.topic', topic, Buffer.from(body));
    await feeder.waitForConfirms();
  };

  /** A CONNECT that must be refused because the service cannot answer: ERROR, never CONNECTED. */
  const expectConnectUnavailable = async (user: string): Promise<void> => {
    const conn = await open();
    conn.send('CONNECT', [['accept-version', '1.2'], ['host', '/'], ['login', user], ['passcode', PASSWORD]]);
    const reply = await conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR', ANSWER_DEADLINE_MS);
    assert.equal(reply.command, 'ERROR', `CONNECT as ${user} during the fault: ${describeFrame(reply)}`);
    assert.equal(getHeader(reply, 'message'), 'Bad CONNECT');
    assert.equal(reply.body.toString(), `Authentication service unavailable: could not check user '${user}'`);
    await conn.close();
  };

  /** An uncached check of a connected session: ERROR naming the unavailable service, then closed. */
  const expectRefusedUnavailable = async (conn: StompConn, receipt: string, what: string, refusedBody: string): Promise<void> => {
    const reply = await answerTo(conn, receipt);
    assert.equal(reply.command, 'ERROR', `${what} during the fault: ${describeFrame(reply)}`);
    assert.equal(getHeader(reply, 'message'), 'access_refused');
    assert.match(reply.body.toString(), /^ACCESS_REFUSED - .* refused for user '[^']+': auth service unavailable$/);
    await conn.waitClosed(ANSWER_DEADLINE_MS);
    assert.equal(
      conn.frames.some((f) => (isMessage(f) && f.body.toString() === refusedBody) || (f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === receipt)),
      false,
      `${what}: nothing may be granted during the fault`,
    );
  };

  for (const fault of FAULTS) {
    test(`${fault} (${FAULT_WHAT[fault]})`, async (t) => {
      const tag = `${fault}-${RUN}`;
      await faults.setMode('normal');
      // Connected, subscribed and published before the fault: these grants are cached.
      const veteran = await session(`veteran-${tag}`);
      await subscribe(veteran, 'v', `granted-${tag}`);
      await sendAndReceive(veteran, 'v', `granted-${tag}`, `before-${tag}`);
      const subscriber = await session(`sub-prober-${tag}`);
      const sender = await session(`send-prober-${tag}`);

      await faults.setMode(fault);
      faults.requests = 0;
      // What was granted goes on, answered from the cache: the service is not even asked.
      await sendAndReceive(veteran, 'v', `granted-${tag}`, `during-${tag}`);
      await publishFromBackend(`granted-${tag}`, `fed-${tag}`);
      await veteran.next((f) => isMessage(f) && f.body.toString() === `fed-${tag}`, ANSWER_DEADLINE_MS);
      // So does logging in again with the same credentials (RabbitMQ's auth cache does the same).
      const returning = await session(`veteran-${tag}`);
      await returning.close();
      assert.equal(faults.requests, 0, 'cached grants must not reach the auth service');

      // Uncached decisions, all at once: each gets its own clear ERROR.
      subscriber.send('SUBSCRIBE', [['id', 'new'], ['destination', `/topic/new-${tag}`], ['receipt', 'sub-new']]);
      sender.send('SEND', [['destination', `/topic/new-${tag}`], ['receipt', 'send-new']], `refused-${tag}`);
      const users = Array.from({ length: CONNECTS_PER_FAULT }, (_, i) => `newcomer-${i}-${tag}`);
      await Promise.all([
        ...users.map((user) => expectConnectUnavailable(user)),
        expectRefusedUnavailable(subscriber, 'sub-new', 'SUBSCRIBE', `refused-${tag}`),
        expectRefusedUnavailable(sender, 'send-new', 'SEND', `refused-${tag}`),
      ]);

      // One request per decision, plus at most one retry: no storm.
      const decisions = CONNECTS_PER_FAULT + 2;
      t.diagnostic(`${faults.requests} requests reached the auth service for ${decisions} uncached decisions`);
      if (fault === 'down') assert.equal(faults.requests, 0);
      else assert.ok(faults.requests >= decisions && faults.requests <= 2 * decisions, `${faults.requests} requests for ${decisions} decisions`);

      // The veteran never noticed: its session is open and still served.
      assert.equal(veteran.isClosed, false);
      await faults.setMode('normal');
      await sendAndReceive(veteran, 'v', `granted-${tag}`, `after-${tag}`);
      const newcomer = await session(users[0]!);
      await subscribe(newcomer, 'n', `new-${tag}`);
      await Promise.all([veteran.close(), newcomer.close()]);
    });
  }

  test('after the cache entries expire, new checks deny during the fault and succeed after recovery', async () => {
    const tag = `expiry-${RUN}`;
    const topic = `expiring-${tag}`;
    await faults.setMode('normal');
    const a = await session(`a-${tag}`);
    const b = await session(`b-${tag}`);
    await subscribe(a, 'a', topic);
    await subscribe(b, 'b', topic);
    await sendAndReceive(a, 'a', topic, `warm-a-${tag}`);
    await sendAndReceive(b, 'b', topic, `warm-b-${tag}`);
    const warmedAt = Date.now();

    await faults.setMode('http-500');
    await sendAndReceive(a, 'a', topic, `cached-${tag}`);
    await b.next((f) => isMessage(f) && f.body.toString() === `cached-${tag}`, ANSWER_DEADLINE_MS);

    // Every entry made while warming is now older than its TTL.
    await sleep(warmedAt + ALLOW_TTL_MS + 300 - Date.now());
    // A subscription is not re-checked: what it was granted keeps arriving.
    await publishFromBackend(topic, `expired-fed-${tag}`);
    for (const conn of [a, b]) await conn.next((f) => isMessage(f) && f.body.toString() === `expired-fed-${tag}`, ANSWER_DEADLINE_MS);
    // A SEND is checked again, and the service cannot answer.
    faults.requests = 0;
    a.send('SEND', [['destination', `/topic/${topic}`], ['receipt', 'send-expired']], 'refused');
    await expectRefusedUnavailable(a, 'send-expired', 'SEND after expiry', 'refused');
    await expectConnectUnavailable(`a-${tag}`);
    assert.ok(faults.requests >= 2 && faults.requests <= 4, `${faults.requests} requests for 2 decisions`);
    // The other session, which asked nothing, is unaffected.
    await publishFromBackend(topic, `still-${tag}`);
    await b.next((f) => isMessage(f) && f.body.toString() === `still-${tag}`, ANSWER_DEADLINE_MS);
    assert.equal(b.untaken().some((f) => f.body.toString() === 'refused'), false, 'the refused SEND was not published');

    await faults.setMode('normal');
    await sendAndReceive(b, 'b', topic, `recovered-b-${tag}`);
    const again = await session(`a-${tag}`);
    await subscribe(again, 'a2', topic);
    await sendAndReceive(again, 'a2', topic, `recovered-a-${tag}`);
    await Promise.all([b.close(), again.close()]);
  });
});
