// The SockJS endpoint over real HTTP on 127.0.0.1 (port 0), mounted on the shared HTTP server, with
// the real STOMP session over the embedded engine: sockjs-client in Node over each transport it
// can drive (websocket, xhr-streaming, xhr-polling, eventsource), stompjs 2.3.3 on top of it,
// STOMP heart-beats over SockJS, and raw HTTP for the endpoints Node clients cannot open
// (/info, the iframe page, htmlfile, jsonp) and for the transport's own edges (limits, close,
// back-pressure, shutdown).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type { RawData } from 'ws';
import { allowAllAuthorizer } from '../../broker/src/auth/allow-all.js';
import { MemoryEngine } from '../../broker/src/engine/memory/memory-engine.js';
import type { CloseReason } from '../../broker/src/errors.js';
import { closeServer, createHttpServer, listen } from '../../broker/src/server/http-server.js';
import type { SessionOptions } from '../../broker/src/session/options.js';
import { startSession } from '../../broker/src/session/session.js';
import { createSockjsServer } from '../../broker/src/transport/sockjs-server.js';
import type { SockjsConnectionInfo, SockjsServer, SockjsServerOptions } from '../../broker/src/transport/sockjs-server.js';
import type { SockjsTransport } from '../../broker/src/transport/sockjs-transport.js';
import { silentLog, TEST_SESSION_OPTIONS } from '../helpers/session-fixture.js';

const TIMEOUT = { timeout: 20000 };
const require = createRequire(import.meta.url);

/** The parts of sockjs-client's SockJS object these tests use. */
interface SockJsSocket {
  readonly readyState: number;
  readonly transport?: string;
  onopen: (() => void) | null;
  onmessage: ((e: { data: string }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  addEventListener(type: 'message', listener: (e: { data: string }) => void): void;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
const SockJS = require('sockjs-client') as new (url: string, reserved: null, options: { transports: string[] }) => SockJsSocket;

/** stompjs 2.3.3 (no typings): the client as `Stomp.over` returns it. */
interface StompjsFrame {
  readonly command: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}
interface StompjsClient {
  heartbeat: { outgoing: number; incoming: number };
  debug: ((message: string) => void) | null;
  connect(headers: Record<string, string>, onConnect: (frame: StompjsFrame) => void, onError: (error: StompjsFrame | string) => void): void;
  subscribe(destination: string, callback: (frame: StompjsFrame) => void, headers?: Record<string, string>): { id: string };
  send(destination: string, headers: Record<string, string>, body: string): void;
  disconnect(callback: () => void): void;
}
const Stomp = require('stompjs') as { over(socket: SockJsSocket): StompjsClient };

// ---------------------------------------------------------------------------------------------
// Server fixture

interface ServerConn {
  readonly transport: SockjsTransport;
  readonly info: SockjsConnectionInfo;
  /** Record mode: what the fake session saw. */
  readonly chunks: Buffer[];
  closeCalls: number;
  drains: number;
  /** Session mode: resolves with the reason the STOMP session ended. */
  readonly ended: Promise<CloseReason>;
}

interface Fixture {
  readonly port: number;
  /** http://127.0.0.1:<port>/stomp */
  readonly base: string;
  readonly engine: MemoryEngine;
  readonly sockjs: SockjsServer;
  readonly conns: ServerConn[];
  nextConnection(): Promise<ServerConn>;
  stop(): Promise<void>;
}

interface FixtureOptions extends Partial<Omit<SockjsServerOptions, 'onConnection' | 'log'>> {
  /** true: no STOMP session, the fixture records what the transport delivers. */
  readonly record?: boolean;
  readonly session?: Partial<SessionOptions>;
  readonly log?: Logger;
}

const fixtures: Fixture[] = [];
after(async () => {
  for (const f of fixtures) await f.stop();
});

async function startFixture(options: FixtureOptions = {}): Promise<Fixture> {
  const { record = false, session = {}, log = silentLog, ...sockjsOptions } = options;
  const engine = new MemoryEngine({ vhosts: ['/'], exchanges: [], maxQueueMessages: 10_000 }, silentLog);
  await engine.start();
  const authorizer = allowAllAuthorizer();
  const sessionOptions = { ...TEST_SESSION_OPTIONS, ...session };
  const conns: ServerConn[] = [];
  const waiters: Array<(c: ServerConn) => void> = [];
  let taken = 0;
  const sockjs = createSockjsServer({
    disconnectDelayMs: 300,
    ...sockjsOptions,
    log,
    onConnection(transport, info) {
      let resolveEnded: (r: CloseReason) => void = () => {};
      const conn: ServerConn = {
        transport,
        info,
        chunks: [],
        closeCalls: 0,
        drains: 0,
        ended: new Promise((resolve) => {
          resolveEnded = resolve;
        }),
      };
      if (record) {
        transport.setHandlers({
          data: (chunk) => conn.chunks.push(chunk),
          close: () => {
            conn.closeCalls += 1;
          },
          drain: () => {
            conn.drains += 1;
          },
        });
      } else {
        startSession({ transport, engine, authorizer, options: sessionOptions, log: silentLog, onEnd: (reason) => resolveEnded(reason) });
      }
      conns.push(conn);
      const waiter = waiters.shift();
      if (waiter) {
        taken += 1;
        waiter(conn);
      }
    },
  });
  const http: Server = createHttpServer({
    wsPath: '/ws',
    isReady: () => true,
    onUpgrade: (_req, socket) => socket.destroy(),
    mounts: [sockjs.mount],
  });
  const { port } = await listen(http, '127.0.0.1', 0);
  let stopped = false;
  const fixture: Fixture = {
    port,
    base: `http://127.0.0.1:${port}/stomp`,
    engine,
    sockjs,
    conns,
    nextConnection: () =>
      new Promise((resolve) => {
        if (taken < conns.length) resolve(conns[taken++]!);
        else waiters.push(resolve);
      }),
    async stop() {
      if (stopped) return;
      stopped = true;
      sockjs.close();
      for (const t of sockjs.transports) t.terminate();
      await Promise.all([...sockjs.transports].map((t) => t.closed));
      http.closeAllConnections();
      await closeServer(http);
      await engine.stop();
    },
  };
  fixtures.push(fixture);
  return fixture;
}

// ---------------------------------------------------------------------------------------------
// STOMP over a SockJS message: exactly one frame (or one heart-beat EOL) per message.

interface TextFrame {
  readonly command: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

function frameText(command: string, headers: Record<string, string> = {}, body = ''): string {
  return `${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}\n`).join('')}\n${body}\0`;
}

/** Parses one SockJS message as one STOMP frame; fails if it holds less or more than one. */
function parseOneFrame(text: string): TextFrame {
  assert.ok(text.endsWith('\0'), `message is not one whole frame: ${JSON.stringify(text)}`);
  const split = text.indexOf('\n\n');
  assert.ok(split > 0, `no header end in ${JSON.stringify(text)}`);
  const [command = '', ...lines] = text.slice(0, split).split('\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    if (!(name in headers)) headers[name] = line.slice(colon + 1);
  }
  const body = text.slice(split + 2, -1);
  if (headers['content-length'] === undefined) assert.ok(!body.includes('\0'), `more than one frame in ${JSON.stringify(text)}`);
  return { command, headers, body };
}

/** sockjs-client in Node over one chosen transport, collecting frames and heart-beat EOLs. */
class SockClient {
  readonly sock: SockJsSocket;
  readonly frames: TextFrame[] = [];
  eols = 0;
  isOpen = false;
  isClosed = false;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #taken = 0;
  #wake: Array<() => void> = [];

  constructor(url: string, transport: string) {
    this.sock = new SockJS(url, null, { transports: [transport] });
    let resolveOpened: () => void = () => {};
    let rejectOpened: (e: Error) => void = () => {};
    let resolveClosed: (info: { code: number; reason: string }) => void = () => {};
    this.opened = new Promise((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      resolveClosed = resolve;
    });
    this.sock.onopen = () => {
      this.isOpen = true;
      resolveOpened();
    };
    this.sock.onclose = (e) => {
      if (!this.isOpen) rejectOpened(new Error(`SockJS closed before open: ${e.code} ${e.reason}`));
      this.isOpen = false;
      this.isClosed = true;
      resolveClosed({ code: e.code, reason: e.reason });
      this.#notify();
    };
    this.sock.onmessage = (e) => {
      if (e.data === '\n') this.eols += 1;
      else this.frames.push(parseOneFrame(e.data));
      this.#notify();
    };
  }

  send(command: string, headers: Record<string, string> = {}, body = ''): void {
    this.sock.send(frameText(command, headers, body));
  }

  /** The next frame not yet taken (heart-beat EOLs are counted, not returned). */
  async nextFrame(): Promise<TextFrame> {
    await this.until(() => this.#taken < this.frames.length, 'a frame');
    return this.frames[this.#taken++]!;
  }

  async until(cond: () => boolean, what: string): Promise<void> {
    while (!cond()) {
      if (this.isClosed) throw new Error(`SockJS closed while waiting for ${what}`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  close(): void {
    this.sock.close();
  }

  #notify(): void {
    for (const w of this.#wake.splice(0)) w();
  }
}

async function openClient(url: string, transport: string): Promise<SockClient> {
  const client = new SockClient(url, transport);
  await client.opened;
  assert.equal(client.sock.transport, transport);
  return client;
}

async function connectStomp(client: SockClient, headers: Record<string, string> = {}): Promise<TextFrame> {
  client.send('CONNECT', { 'accept-version': '1.2', host: '/', ...headers });
  const connected = await client.nextFrame();
  assert.equal(connected.command, 'CONNECTED', connected.headers['message']);
  return connected;
}

/** Sends with a receipt and waits for it (failing on an ERROR). */
async function requestReceipt(client: SockClient, command: string, headers: Record<string, string>, body = ''): Promise<void> {
  const receipt = `r-${Math.random().toString(36).slice(2)}`;
  client.send(command, { ...headers, receipt }, body);
  const reply = await client.nextFrame();
  assert.equal(reply.command, 'RECEIPT', `${command}: ${reply.headers['message'] ?? ''} ${reply.body}`);
  assert.equal(reply.headers['receipt-id'], receipt);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

interface HttpReply {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

function httpRequest(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A streaming GET: its text so far, and a wait for what should arrive next. */
interface Stream {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  text(): string;
  waitFor(needle: string): Promise<void>;
  destroy(): void;
}

async function openStream(port: number, path: string, method = 'GET'): Promise<Stream> {
  const req = request({ host: '127.0.0.1', port, method, path, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  let ended = false;
  const wake: Array<() => void> = [];
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
    for (const w of wake.splice(0)) w();
  });
  res.on('close', () => {
    ended = true;
    for (const w of wake.splice(0)) w();
  });
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    text: () => text,
    async waitFor(needle) {
      while (!text.includes(needle)) {
        if (ended) throw new Error(`stream ended before ${JSON.stringify(needle)}; got ${JSON.stringify(text)}`);
        await new Promise<void>((resolve) => wake.push(resolve));
      }
    },
    destroy: () => req.destroy(),
  };
}

/** xhr_send: one or more SockJS messages into a session. */
function xhrSend(port: number, session: string, messages: string[]): Promise<HttpReply> {
  return httpRequest(port, 'POST', `/stomp/000/${session}/xhr_send`, JSON.stringify(messages), { 'Content-Type': 'text/plain' });
}

/** SockJS `a[...]` array frames found in a stream, in order, as their messages. */
function arrayFrameMessages(frames: string[]): string[] {
  return frames.filter((f) => f.startsWith('a')).flatMap((f) => JSON.parse(f.slice(1)) as string[]);
}

let uniq = 0;
function sessionId(): string {
  uniq += 1;
  return `s${uniq}x${Math.random().toString(36).slice(2, 8)}`;
}

// ---------------------------------------------------------------------------------------------

const NODE_TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'] as const;

describe('STOMP over each SockJS transport sockjs-client can drive from Node', () => {
  for (const transport of NODE_TRANSPORTS) {
    test(`${transport}: CONNECT, SUBSCRIBE, SEND, MESSAGE, DISCONNECT`, TIMEOUT, async () => {
      const fx = await startFixture();
      const client = await openClient(fx.base, transport);
      const conn = await fx.nextConnection();
      assert.equal(conn.transport.kind, 'sockjs');
      assert.equal(conn.info.protocol, transport);
      assert.equal(conn.transport.remoteAddress, '127.0.0.1');
      assert.deepEqual(conn.transport.offeredVersions, []);

      const connected = await connectStomp(client, { 'heart-beat': '0,0' });
      assert.equal(connected.headers['version'], '1.2');
      assert.equal(connected.headers['heart-beat'], '0,0');
      const queue = `/queue/q-${transport}`;
      await requestReceipt(client, 'SUBSCRIBE', { id: 'sub-1', destination: queue, ack: 'client-individual' });
      client.send('SEND', { destination: queue, 'content-type': 'text/plain' }, 'héllo ✓ over SockJS');
      const message = await client.nextFrame();
      assert.equal(message.command, 'MESSAGE');
      assert.equal(message.headers['subscription'], 'sub-1');
      assert.equal(message.headers['destination'], queue);
      assert.equal(message.body, 'héllo ✓ over SockJS');
      assert.equal(message.headers['content-length'], String(Buffer.byteLength('héllo ✓ over SockJS')));
      await requestReceipt(client, 'ACK', { id: message.headers['ack']! });

      await requestReceipt(client, 'DISCONNECT', {});
      assert.equal(await conn.ended, 'client-disconnect');
      const closed = await client.closed;
      assert.equal(closed.code, 1000);
      await conn.transport.closed;
      assert.equal(fx.sockjs.connectionCount, 0);
    });
  }

  test('stompjs 2.3.3 Stomp.over(SockJS) subscribes, sends and receives, with heart-beats both ways', TIMEOUT, async () => {
    const fx = await startFixture();
    const sock = new SockJS(fx.base, null, { transports: ['xhr-streaming'] });
    let serverEols = 0;
    sock.addEventListener('message', (e) => {
      if (e.data === '\n') serverEols += 1;
    });
    const client = Stomp.over(sock);
    client.debug = null;
    client.heartbeat = { outgoing: 1000, incoming: 1000 };
    const connected = await new Promise<StompjsFrame>((resolve, reject) =>
      client.connect({ login: 'guest', passcode: 'guest', host: '/' }, resolve, (e) => reject(new Error(typeof e === 'string' ? e : e.headers['message']))),
    );
    assert.equal(connected.headers['version'], '1.1', 'stompjs 2.3.3 offers 1.1,1.0');
    assert.equal(connected.headers['heart-beat'], '1000,1000');
    const received = new Promise<StompjsFrame>((resolve) => client.subscribe('/queue/stompjs', resolve));
    // The SUBSCRIBE is handled before the SEND: the session runs frames in arrival order.
    client.send('/queue/stompjs', { 'content-type': 'text/plain' }, 'from stompjs');
    const message = await received;
    assert.equal(message.body, 'from stompjs');
    assert.equal(message.headers['destination'], '/queue/stompjs');
    // Several server heart-beats later the session is still up: stompjs's own EOLs kept it alive.
    const conn = await fx.nextConnection();
    for (let i = 0; i < 200 && serverEols < 6; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(serverEols >= 6, `only ${serverEols} server heart-beats arrived`);
    assert.equal(fx.sockjs.connectionCount, 1);
    await new Promise<void>((resolve) => client.disconnect(resolve));
    // stompjs closes right after writing DISCONNECT: over xhr-streaming the stream may end first.
    assert.ok(['client-disconnect', 'client-gone'].includes(await conn.ended));
    await conn.transport.closed;
    assert.equal(fx.sockjs.connectionCount, 0);
  });
});

describe('STOMP heart-beats over SockJS (RabbitMQ disabled them, reference §7)', { concurrency: true }, () => {
  test('xhr-polling: server EOLs arrive as messages, client EOLs keep the session alive, silence ends it with ERROR', TIMEOUT, async () => {
    const fx = await startFixture();
    const client = await openClient(fx.base, 'xhr-polling');
    const conn = await fx.nextConnection();
    const connected = await connectStomp(client, { 'heart-beat': '1000,1000' });
    assert.equal(connected.headers['heart-beat'], '1000,1000');
    // Beat for longer than the 2 s the server tolerates: only our EOLs can keep it open that long.
    const beater = setInterval(() => client.sock.send('\n'), 300);
    try {
      await client.until(() => client.eols >= 8, '8 server heart-beats');
    } finally {
      clearInterval(beater);
    }
    assert.equal(client.frames.length, 1, 'nothing but CONNECTED and EOLs while beating');
    assert.equal(client.isClosed, false);
    const error = await client.nextFrame();
    assert.equal(error.command, 'ERROR');
    assert.equal(error.headers['message'], 'Heart-beat timeout');
    assert.deepEqual(await client.closed, { code: 1000, reason: 'Heart-beat timeout' });
    assert.equal(await conn.ended, 'heartbeat-timeout');
  });

  for (const transport of ['websocket', 'xhr-streaming', 'eventsource'] as const) {
    test(`${transport}: server EOLs arrive; a client that never beats is closed with the Heart-beat timeout ERROR`, TIMEOUT, async () => {
      const fx = await startFixture();
      const client = await openClient(fx.base, transport);
      const conn = await fx.nextConnection();
      await connectStomp(client, { 'heart-beat': '1000,1000' });
      const error = await client.nextFrame();
      assert.equal(error.command, 'ERROR');
      assert.equal(error.headers['message'], 'Heart-beat timeout');
      assert.ok(client.eols >= 2, `server heart-beats before the timeout: ${client.eols}`);
      assert.deepEqual(await client.closed, { code: 1000, reason: 'Heart-beat timeout' });
      assert.equal(await conn.ended, 'heartbeat-timeout');
    });
  }
});

describe('sessions', () => {
  test('two SockJS sessions are two STOMP sessions', TIMEOUT, async () => {
    const fx = await startFixture();
    const a = await openClient(fx.base, 'websocket');
    const b = await openClient(fx.base, 'xhr-streaming');
    const ca = await connectStomp(a);
    const cb = await connectStomp(b);
    assert.notEqual(ca.headers['session'], cb.headers['session']);
    assert.equal(fx.sockjs.connectionCount, 2);
    assert.equal(fx.engine.stats().sessions, 2);
    await requestReceipt(a, 'SUBSCRIBE', { id: '0', destination: '/queue/shared' });
    b.send('SEND', { destination: '/queue/shared' }, 'from b');
    const message = await a.nextFrame();
    assert.equal(message.body, 'from b');
    assert.equal(b.frames.length, 1, 'b only got its CONNECTED');
    a.close();
    b.close();
  });

  test('the STOMP session ends, and its engine resources go, when the SockJS session closes', TIMEOUT, async () => {
    const fx = await startFixture();
    for (const transport of ['xhr-streaming', 'websocket'] as const) {
      const client = await openClient(fx.base, transport);
      const conn = await fx.nextConnection();
      await connectStomp(client);
      await requestReceipt(client, 'SUBSCRIBE', { id: '0', destination: '/topic/news' });
      assert.deepEqual(fx.engine.stats(), { sessions: 1, queues: 1 }, 'one session, one subscription queue');
      client.close();
      assert.equal(await conn.ended, 'client-gone');
      for (let i = 0; i < 100 && fx.engine.stats().sessions > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(fx.engine.stats(), { sessions: 0, queues: 0 }, `${transport}: released`);
      assert.equal(fx.sockjs.connectionCount, 0);
    }
  });

  test('the access_token query parameter becomes the bearer token, and is not logged', TIMEOUT, async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const fx = await startFixture({ record: true, log: pino({ level: 'debug' }, sink) });
    const client = await openClient(`${fx.base}?access_token=tok-123.abc`, 'xhr-polling');
    const conn = await fx.nextConnection();
    assert.equal(conn.transport.bearerToken, 'tok-123.abc');
    client.close();
    await conn.transport.closed;
    assert.ok(lines.some((l) => l.includes('access_token=[redacted]')), 'sockjs request lines reach the log');
    assert.ok(!lines.some((l) => l.includes('tok-123')), 'the token never reaches the log');
  });
});

describe('raw HTTP: the endpoints browsers use', () => {
  test('GET /stomp/info: JSON with websocket, cookie_needed, origins, entropy; not cached', TIMEOUT, async () => {
    const fx = await startFixture();
    const res = await httpRequest(fx.port, 'GET', '/stomp/info');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.match(String(res.headers['cache-control']), /no-store/);
    const info = JSON.parse(res.body) as Record<string, unknown>;
    assert.equal(info['websocket'], true);
    assert.equal(info['cookie_needed'], false);
    assert.deepEqual(info['origins'], ['*:*']);
    assert.equal(typeof info['entropy'], 'number');
  });

  test('jsessionid: cookie_needed in /info and a JSESSIONID cookie for sticky load balancers', TIMEOUT, async () => {
    const fx = await startFixture({ jsessionid: true });
    const info = JSON.parse((await httpRequest(fx.port, 'GET', '/stomp/info')).body) as Record<string, unknown>;
    assert.equal(info['cookie_needed'], true);
    const first = await httpRequest(fx.port, 'POST', `/stomp/000/${sessionId()}/xhr`);
    assert.equal(first.body, 'o\n');
    assert.deepEqual(first.headers['set-cookie'], ['JSESSIONID=dummy; path=/']);
    const pinned = await httpRequest(fx.port, 'POST', `/stomp/000/${sessionId()}/xhr`, undefined, { Cookie: 'JSESSIONID=node-2' });
    assert.deepEqual(pinned.headers['set-cookie'], ['JSESSIONID=node-2; path=/']);
  });

  test('websocket: false removes the websocket transport', TIMEOUT, async () => {
    const fx = await startFixture({ websocket: false });
    const info = JSON.parse((await httpRequest(fx.port, 'GET', '/stomp/info')).body) as Record<string, unknown>;
    assert.equal(info['websocket'], false);
    const ws = new WebSocket(`ws://127.0.0.1:${fx.port}/stomp/000/${sessionId()}/websocket`);
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
    res.resume();
    assert.equal(res.statusCode, 404);
  });

  test('the iframe page loads the configured sockjs-client', TIMEOUT, async () => {
    const fx = await startFixture();
    for (const path of ['/stomp/iframe.html', '/stomp/iframe-1.6.1.html']) {
      const res = await httpRequest(fx.port, 'GET', path);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.ok(res.body.includes('<script src="/vendor/sockjs.min.js"></script>'), res.body);
      assert.ok(res.body.includes('SockJS.bootstrap_iframe()'));
    }
    const custom = await startFixture({ sockjsClientUrl: 'https://cdn.example/sockjs.min.js' });
    assert.ok((await httpRequest(custom.port, 'GET', '/stomp/iframe.html')).body.includes('src="https://cdn.example/sockjs.min.js"'));
  });

  test('the welcome page, 404 under the prefix, and paths outside it left to the server', TIMEOUT, async () => {
    const fx = await startFixture();
    for (const path of ['/stomp', '/stomp/']) assert.deepEqual(await httpRequest(fx.port, 'GET', path).then((r) => [r.status, r.body]), [200, 'Welcome to SockJS!\n']);
    assert.equal((await httpRequest(fx.port, 'GET', '/stomp/nothing/here')).status, 404);
    assert.equal((await httpRequest(fx.port, 'GET', '/stompish')).status, 404);
    assert.equal((await httpRequest(fx.port, 'GET', '/healthz')).status, 200);
  });

  test('eventsource: text/event-stream, an open frame, then STOMP frames as data: events', TIMEOUT, async () => {
    const fx = await startFixture();
    const id = sessionId();
    const stream = await openStream(fx.port, `/stomp/000/${id}/eventsource`);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/event-stream');
    await stream.waitFor('data: o\r\n\r\n');
    assert.equal((await xhrSend(fx.port, id, [frameText('CONNECT', { 'accept-version': '1.2', host: '/' })])).status, 204);
    await stream.waitFor('data: a["CONNECTED');
    const events = stream.text().split('\r\n\r\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    // eventsource escapes %, CR, LF and NUL with %XX.
    const [connected] = arrayFrameMessages(events.map((e) => decodeURIComponent(e)));
    assert.equal(parseOneFrame(connected!).command, 'CONNECTED');
    stream.destroy();
  });

  test('htmlfile: text/html, an open frame, and message text that cannot close its <script>', TIMEOUT, async () => {
    const fx = await startFixture();
    const id = sessionId();
    const stream = await openStream(fx.port, `/stomp/000/${id}/htmlfile?c=_jp.a1`);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/html; charset=UTF-8');
    await stream.waitFor('p("o");');
    assert.ok(stream.text().includes('var c = parent._jp.a1;'));
    const evil = '</script><script>alert(document.domain)</script><!--';
    await xhrSend(fx.port, id, [
      frameText('CONNECT', { 'accept-version': '1.2', host: '/' }),
      frameText('SUBSCRIBE', { id: '0', destination: '/queue/html' }),
      frameText('SEND', { destination: '/queue/html' }, evil),
    ]);
    await stream.waitFor('MESSAGE');
    await stream.waitFor('</script>\r\n');
    const page = stream.text();
    assert.ok(!page.includes('<script>alert'), 'message text was written into the page as markup');
    assert.ok(!page.includes('<!--'), 'message text opened an HTML comment');
    const calls = [...page.matchAll(/<script>\np\((.*?)\);\n<\/script>\r\n/gs)].map((m) => JSON.parse(m[1]!) as string);
    assert.equal(calls[0], 'o');
    const messages = arrayFrameMessages(calls);
    const delivered = messages.map(parseOneFrame).find((f) => f.command === 'MESSAGE');
    assert.equal(delivered?.body, evil, 'the client still reads the exact text');
    stream.destroy();
  });

  test('jsonp: the callback wraps each frame; jsonp_send carries STOMP in', TIMEOUT, async () => {
    const fx = await startFixture();
    const id = sessionId();
    const open = await httpRequest(fx.port, 'GET', `/stomp/000/${id}/jsonp?c=cb_1`);
    assert.equal(open.status, 200);
    assert.equal(open.headers['content-type'], 'application/javascript; charset=UTF-8');
    assert.equal(open.headers['x-content-type-options'], 'nosniff');
    assert.equal(open.body, '/**/cb_1("o");\r\n');
    const form = `d=${encodeURIComponent(JSON.stringify([frameText('CONNECT', { 'accept-version': '1.2', host: '/' })]))}`;
    const sent = await httpRequest(fx.port, 'POST', `/stomp/000/${id}/jsonp_send`, form, { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.deepEqual([sent.status, sent.body], [200, 'ok']);
    const poll = await httpRequest(fx.port, 'GET', `/stomp/000/${id}/jsonp?c=cb_1`);
    const match = /^\/\*\*\/cb_1\((.*)\);\r\n$/s.exec(poll.body);
    assert.ok(match, poll.body);
    const [connected] = arrayFrameMessages([JSON.parse(match[1]!) as string]);
    assert.equal(parseOneFrame(connected!).command, 'CONNECTED');
    assert.equal((await httpRequest(fx.port, 'GET', `/stomp/000/${sessionId()}/jsonp?c=<x>`)).status, 500);
  });

  test('sockjs raw WebSocket at /stomp/websocket (RabbitMQ ≤ 3.6): text STOMP, binary STOMP in', TIMEOUT, async () => {
    const fx = await startFixture();
    const ws = new WebSocket(`ws://127.0.0.1:${fx.port}/stomp/websocket`);
    const messages: Array<{ data: string; binary: boolean }> = [];
    ws.on('message', (data: RawData, binary: boolean) => messages.push({ data: String(data), binary }));
    await once(ws, 'open');
    const conn = await fx.nextConnection();
    assert.equal(conn.info.protocol, 'websocket-raw');
    ws.send(frameText('CONNECT', { 'accept-version': '1.2', host: '/' }));
    ws.send(Buffer.from(frameText('SUBSCRIBE', { id: '0', destination: '/queue/raw', receipt: 'r1' })), { binary: true });
    for (let i = 0; i < 200 && messages.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(messages.map((m) => [parseOneFrame(m.data).command, m.binary]), [['CONNECTED', false], ['RECEIPT', false]]);
    ws.close();
    assert.equal(await conn.ended, 'client-gone');
  });
});

describe('the transport', () => {
  test('a body that is not valid UTF-8 reaches a SockJS client with replacement characters', TIMEOUT, async () => {
    const fx = await startFixture();
    const client = await openClient(fx.base, 'xhr-streaming');
    await connectStomp(client);
    await requestReceipt(client, 'SUBSCRIBE', { id: '0', destination: '/queue/bin' });
    // Only the raw WebSocket endpoint can carry non-UTF-8 bytes in.
    const ws = new WebSocket(`ws://127.0.0.1:${fx.port}/stomp/websocket`);
    await once(ws, 'open');
    ws.send(frameText('CONNECT', { 'accept-version': '1.2', host: '/' }));
    const head = Buffer.from('SEND\ndestination:/queue/bin\ncontent-length:4\n\n');
    ws.send(Buffer.concat([head, Buffer.from([0x41, 0xff, 0xfe, 0x42]), Buffer.from([0])]), { binary: true });
    const message = await client.nextFrame();
    assert.equal(message.command, 'MESSAGE');
    assert.equal(message.body, 'A\ufffd\ufffdB');
    assert.equal(message.headers['content-length'], '4', 'the header still counts the original bytes');
    ws.close();
    client.close();
  });

  test('a message over maxMessageBytes closes the session with 1009', TIMEOUT, async () => {
    const fx = await startFixture({ maxMessageBytes: 1024 });
    const client = await openClient(fx.base, 'websocket');
    const conn = await fx.nextConnection();
    client.sock.send('x'.repeat(1025));
    assert.deepEqual(await client.closed, { code: 1009, reason: 'Message too big' });
    assert.equal(await conn.ended, 'client-gone');
  });

  test('a send body over the limit is refused with 413 before sockjs buffers it', TIMEOUT, async () => {
    const fx = await startFixture({ record: true, maxMessageBytes: 1024 });
    const id = sessionId();
    assert.equal((await httpRequest(fx.port, 'POST', `/stomp/000/${id}/xhr`)).body, 'o\n');
    const conn = await fx.nextConnection();
    const limit = 1024 * 6 + 64 * 1024;
    const big = JSON.stringify(['y'.repeat(limit)]);
    assert.equal((await xhrSend(fx.port, id, JSON.parse(big) as string[])).status, 413);
    // Chunked, so no length is declared: the request is dropped once the body passes the limit.
    const chunked = request({ host: '127.0.0.1', port: fx.port, method: 'POST', path: `/stomp/000/${id}/xhr_send`, agent: false, headers: { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' } });
    let answered = false;
    chunked.on('response', () => (answered = true));
    chunked.on('error', () => {});
    const dropped = new Promise((resolve) => chunked.on('close', resolve));
    const piece = 'z'.repeat(16 * 1024);
    chunked.write('["');
    for (let written = 0; written <= limit; written += piece.length) chunked.write(piece);
    chunked.end('"]');
    await dropped;
    assert.equal(answered, false);
    assert.equal((await xhrSend(fx.port, id, ['small'])).status, 204);
    assert.deepEqual(conn.chunks.map(String), ['small']);
  });

  test('a message that is not a string is a framing error (1007)', TIMEOUT, async () => {
    const fx = await startFixture({ record: true });
    const ws = new WebSocket(`ws://127.0.0.1:${fx.port}/stomp/000/${sessionId()}/websocket`);
    const frames: string[] = [];
    ws.on('message', (data: RawData) => frames.push(String(data)));
    await once(ws, 'open');
    const conn = await fx.nextConnection();
    ws.send('[{"not":"a string"}]');
    await conn.transport.closed;
    for (let i = 0; i < 100 && frames.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(frames, ['o', 'c[1007,"SockJS messages must be strings"]']);
    assert.equal(conn.chunks.length, 0);
    assert.equal(conn.closeCalls, 1);
    ws.terminate();
  });

  test('close() delivers what was sent before the close frame, even across polls', TIMEOUT, async () => {
    const fx = await startFixture({ record: true });
    const id = sessionId();
    await httpRequest(fx.port, 'POST', `/stomp/000/${id}/xhr`);
    const conn = await fx.nextConnection();
    conn.transport.send(Buffer.from('ERROR\nmessage:bye\n\n\0'));
    conn.transport.close(1001, 'server shutting down');
    conn.transport.close(1000, 'twice');
    assert.equal((await httpRequest(fx.port, 'POST', `/stomp/000/${id}/xhr`)).body, 'a["ERROR\\nmessage:bye\\n\\n\\u0000"]\n');
    assert.equal((await httpRequest(fx.port, 'POST', `/stomp/000/${id}/xhr`)).body, 'c[1001,"server shutting down"]\n');
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
    assert.equal(conn.transport.send(Buffer.from('late')), true, 'sends after close are dropped quietly');
  });

  test('terminate() ends a session at once, attached or between polls', TIMEOUT, async () => {
    const fx = await startFixture({ record: true, disconnectDelayMs: 60_000 });
    const between = sessionId();
    await httpRequest(fx.port, 'POST', `/stomp/000/${between}/xhr`);
    const polling = await fx.nextConnection();
    polling.transport.terminate();
    await polling.transport.closed;
    assert.equal(polling.closeCalls, 1);

    const stream = await openStream(fx.port, `/stomp/000/${sessionId()}/xhr_streaming`, 'POST');
    const streaming = await fx.nextConnection();
    await stream.waitFor('o\n');
    streaming.transport.close(1000, 'closing');
    streaming.transport.terminate();
    await streaming.transport.closed;
    assert.equal(streaming.closeCalls, 1);
    assert.equal(fx.sockjs.connectionCount, 0);
  });

  test('send() reports back-pressure while a poller is away, and drain follows its next poll', TIMEOUT, async () => {
    const fx = await startFixture({ record: true, highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024 });
    const id = sessionId();
    await httpRequest(fx.port, 'POST', `/stomp/000/${id}/xhr`);
    const conn = await fx.nextConnection();
    const frame = Buffer.alloc(20 * 1024, 0x61);
    let accepted = true;
    let sends = 0;
    while (accepted && sends < 100) {
      accepted = conn.transport.send(frame);
      sends += 1;
    }
    assert.equal(accepted, false, `send() never reported back-pressure after ${sends} frames`);
    assert.ok(conn.transport.bufferedBytes() >= 64 * 1024);
    assert.equal(conn.drains, 0);
    const poll = await httpRequest(fx.port, 'POST', `/stomp/000/${id}/xhr`);
    assert.equal(arrayFrameMessages([poll.body.trimEnd()]).length, sends);
    for (let i = 0; i < 100 && conn.drains === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(conn.drains, 1);
    assert.ok(conn.transport.bufferedBytes() < 16 * 1024);
  });
});

describe('close(): no new sessions', () => {
  test('/info and new sessions get 503; a live polling session keeps working', TIMEOUT, async () => {
    const fx = await startFixture();
    const live = await openClient(fx.base, 'xhr-polling');
    await connectStomp(live);
    await requestReceipt(live, 'SUBSCRIBE', { id: '0', destination: '/queue/after-close' });
    fx.sockjs.close();

    assert.equal((await httpRequest(fx.port, 'GET', '/stomp/info')).status, 503);
    assert.equal((await httpRequest(fx.port, 'POST', `/stomp/000/${sessionId()}/xhr`)).status, 503);
    assert.equal((await httpRequest(fx.port, 'GET', `/stomp/000/${sessionId()}/eventsource`)).status, 503);
    const ws = new WebSocket(`ws://127.0.0.1:${fx.port}/stomp/000/${sessionId()}/websocket`);
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
    res.resume();
    assert.equal(res.statusCode, 503);
    const refused = new SockClient(fx.base, 'xhr-streaming');
    await assert.rejects(refused.opened);

    live.send('SEND', { destination: '/queue/after-close' }, 'still here');
    assert.equal((await live.nextFrame()).body, 'still here');
    assert.equal(fx.sockjs.connectionCount, 1);
    live.close();
  });
});
