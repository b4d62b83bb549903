// The WebSocket endpoint over real sockets on 127.0.0.1 (port 0), with a fake session that records
// what the transport hands it: upgrade rules (path, Origin, subprotocols), the HTTP routes sharing
// the server, message types in and out, close flushing, ping/pong dead-peer detection, drain.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { get, request } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { ClientOptions, RawData } from 'ws';
import { closeServer, createHttpServer, listen } from '../../broker/src/server/http-server.js';
import { createLogger } from '../../broker/src/server/logger.js';
import type { ConnectionInfo, WsServerOptions } from '../../broker/src/transport/ws-server.js';
import { createWsServer } from '../../broker/src/transport/ws-server.js';
import type { WsTransport } from '../../broker/src/transport/ws-transport.js';

const TIMEOUT = { timeout: 15000 };

/** What the fake session saw on one connection. */
interface Conn {
  readonly transport: WsTransport;
  readonly info: ConnectionInfo;
  readonly chunks: Buffer[];
  closeCalls: number;
  drains: number;
  /** Resolves with the next chunk (or the one already waiting). */
  nextChunk(): Promise<Buffer>;
  nextDrain(): Promise<void>;
}

interface TestServer {
  readonly port: number;
  readonly url: string;
  nextConnection(): Promise<Conn>;
  setReady(ready: boolean): void;
  stop(): Promise<void>;
}

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function startServer(options: Partial<Omit<WsServerOptions, 'onConnection' | 'log'>> = {}): Promise<TestServer> {
  const pending: Conn[] = [];
  const waiters: Array<(c: Conn) => void> = [];
  let ready = true;
  const wsServer = createWsServer({
    path: '/ws',
    allowedOrigins: [],
    pingIntervalMs: 0,
    maxPayloadBytes: 1024 * 1024,
    perMessageDeflate: false,
    log: createLogger({ level: 'silent', pretty: false }),
    ...options,
    onConnection(transport, info) {
      const chunkWaiters: Array<(b: Buffer) => void> = [];
      const drainWaiters: Array<() => void> = [];
      const conn: Conn = {
        transport,
        info,
        chunks: [],
        closeCalls: 0,
        drains: 0,
        nextChunk: () => new Promise((resolve) => {
          const waiting = conn.chunks.shift();
          if (waiting) resolve(waiting);
          else chunkWaiters.push(resolve);
        }),
        nextDrain: () => new Promise((resolve) => drainWaiters.push(resolve)),
      };
      transport.setHandlers({
        data(chunk) {
          const waiter = chunkWaiters.shift();
          if (waiter) waiter(chunk);
          else conn.chunks.push(chunk);
        },
        close() {
          conn.closeCalls += 1;
        },
        drain() {
          conn.drains += 1;
          for (const w of drainWaiters.splice(0)) w();
        },
      });
      const waiter = waiters.shift();
      if (waiter) waiter(conn);
      else pending.push(conn);
    },
  });
  const http: Server = createHttpServer({ wsPath: '/ws', isReady: () => ready, onUpgrade: (req, socket, head) => wsServer.handleUpgrade(req, socket, head) });
  const { port } = await listen(http, '127.0.0.1', 0);
  const server: TestServer = {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    nextConnection: () => new Promise((resolve) => {
      const waiting = pending.shift();
      if (waiting) resolve(waiting);
      else waiters.push(resolve);
    }),
    setReady(r) {
      ready = r;
    },
    async stop() {
      wsServer.close();
      http.closeAllConnections();
      await closeServer(http);
    },
  };
  servers.push(server);
  return server;
}

/** Opens a client and waits for `open`; rejects on an HTTP refusal or handshake error. */
async function openClient(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return ws;
}

/** The HTTP status a refused upgrade answers with. */
async function refusedStatus(url: string, options: ClientOptions = {}): Promise<number> {
  const ws = new WebSocket(url, [], options);
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  res.resume();
  ws.terminate();
  return res.statusCode ?? 0;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: RawData, isBinary: boolean) => resolve({ data: data as Buffer, isBinary })));
}

async function httpGet(port: number, path: string): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: '127.0.0.1', port, path }, resolve).on('error', reject));
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return { status: res.statusCode ?? 0, body, headers: res.headers };
}

describe('subprotocol negotiation (reference §4)', () => {
  const cases: Array<{ offer: string[]; echoed: string; versions: string[] }> = [
    { offer: ['v10.stomp', 'v11.stomp', 'v12.stomp'], echoed: 'v12.stomp', versions: ['1.2', '1.1', '1.0'] },
    { offer: ['v11.stomp', 'v10.stomp'], echoed: 'v11.stomp', versions: ['1.1', '1.0'] },
    { offer: ['v10.stomp'], echoed: 'v10.stomp', versions: ['1.0'] },
    { offer: ['stomp'], echoed: 'stomp', versions: [] },
    { offer: ['stomp', 'v11.stomp'], echoed: 'v11.stomp', versions: ['1.1'] },
    { offer: [], echoed: '', versions: [] },
  ];
  for (const { offer, echoed, versions } of cases) {
    test(`offer [${offer.join(', ')}] → "${echoed}"`, TIMEOUT, async () => {
      const server = await startServer();
      const client = await openClient(server.url, offer);
      const conn = await server.nextConnection();
      assert.equal(client.protocol, echoed);
      assert.equal(conn.info.protocol, echoed);
      assert.deepEqual(conn.transport.offeredVersions, versions);
      client.close();
    });
  }

  test('only non-STOMP subprotocols: 101 without a protocol header, like RabbitMQ', TIMEOUT, async () => {
    const server = await startServer();
    const req = request({
      host: '127.0.0.1',
      port: server.port,
      path: '/ws',
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Protocol': 'mqtt, wamp',
      },
    });
    req.end();
    const [res, socket] = (await once(req, 'upgrade')) as [IncomingMessage, Socket];
    assert.equal(res.statusCode, 101);
    assert.equal(res.headers['sec-websocket-protocol'], undefined);
    const conn = await server.nextConnection();
    assert.deepEqual(conn.transport.offeredVersions, []);
    socket.destroy();
  });
});

describe('upgrade rules', () => {
  test('the path and the path with a trailing slash are accepted; others get 404', TIMEOUT, async () => {
    const server = await startServer();
    (await openClient(`ws://127.0.0.1:${server.port}/ws/`)).close();
    (await openClient(`ws://127.0.0.1:${server.port}/ws?token=1`)).close();
    assert.equal(await refusedStatus(`ws://127.0.0.1:${server.port}/other`), 404);
    assert.equal(await refusedStatus(`ws://127.0.0.1:${server.port}/ws/x`), 404);
  });

  test('an Origin allow-list refuses other origins and missing ones with 403', TIMEOUT, async () => {
    const server = await startServer({ allowedOrigins: ['https://app.example.com'] });
    (await openClient(server.url, [], { origin: 'https://app.example.com' })).close();
    (await openClient(server.url, [], { origin: 'HTTPS://APP.EXAMPLE.COM' })).close();
    assert.equal(await refusedStatus(server.url, { origin: 'https://evil.example.com' }), 403);
    assert.equal(await refusedStatus(server.url), 403);
  });

  test('no allow-list: any origin is accepted', TIMEOUT, async () => {
    const server = await startServer();
    (await openClient(server.url, [], { origin: 'https://anywhere.example' })).close();
  });
});

describe('HTTP routes on the same server', () => {
  test('GET on the WebSocket path without upgrade is 426', TIMEOUT, async () => {
    const server = await startServer();
    const res = await httpGet(server.port, '/ws');
    assert.equal(res.status, 426);
    assert.equal(res.headers.upgrade, 'websocket');
  });

  test('/healthz, /readyz and 404', TIMEOUT, async () => {
    const server = await startServer();
    assert.deepEqual(await httpGet(server.port, '/healthz').then((r) => [r.status, JSON.parse(r.body)]), [200, { status: 'ok' }]);
    assert.equal((await httpGet(server.port, '/readyz')).status, 200);
    server.setReady(false);
    const notReady = await httpGet(server.port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.headers['content-type'], 'application/json');
    assert.equal((await httpGet(server.port, '/nope')).status, 404);
    assert.equal((await httpGet(server.port, '/stomp')).status, 404);
  });
});

describe('messages', () => {
  test('text and binary messages both reach the session as Buffers', TIMEOUT, async () => {
    const server = await startServer();
    const client = await openClient(server.url);
    const conn = await server.nextConnection();
    client.send('CONNECT\naccept-version:1.2\n\n\0');
    const text = await conn.nextChunk();
    assert.ok(Buffer.isBuffer(text));
    assert.equal(text.toString(), 'CONNECT\naccept-version:1.2\n\n\0');
    const bytes = Buffer.from([0x53, 0x45, 0x4e, 0x44, 0x0a, 0x0a, 0xff, 0xfe, 0x00]);
    client.send(bytes, { binary: true });
    assert.deepEqual(await conn.nextChunk(), bytes);
    client.close();
  });

  test('one frame per message: text when valid UTF-8, binary otherwise, bytes intact', TIMEOUT, async () => {
    const server = await startServer();
    const client = await openClient(server.url);
    const conn = await server.nextConnection();
    const messages: Array<{ data: Buffer; isBinary: boolean }> = [];
    client.on('message', (data: RawData, isBinary: boolean) => messages.push({ data: data as Buffer, isBinary }));
    const utf8 = Buffer.from('MESSAGE\ndestination:/queue/é\n\nhéllo\0\n');
    const binary = Buffer.from([0x4d, 0x0a, 0x0a, 0xc3, 0x28, 0xff, 0x00, 0x0a]);
    assert.equal(conn.transport.send(utf8), true);
    assert.equal(conn.transport.send(binary), true);
    assert.equal(conn.transport.send(Buffer.from('\n')), true);
    for (let i = 0; i < 100 && messages.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      messages.map((m) => [m.isBinary, m.data.toString('hex')]),
      [
        [false, utf8.toString('hex')],
        [true, binary.toString('hex')],
        [false, '0a'],
      ],
    );
    client.close();
  });

  test('close() flushes what was sent, then closes with the code and reason', TIMEOUT, async () => {
    const server = await startServer();
    const client = await openClient(server.url);
    const conn = await server.nextConnection();
    const received = nextMessage(client);
    const closed = once(client, 'close') as Promise<[number, Buffer]>;
    conn.transport.send(Buffer.from('ERROR\nmessage:bye\n\n\0'));
    conn.transport.close(1001, 'server shutting down');
    assert.equal((await received).data.toString(), 'ERROR\nmessage:bye\n\n\0');
    const [code, reason] = await closed;
    assert.equal(code, 1001);
    assert.equal(reason.toString(), 'server shutting down');
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
  });

  test('the peer closing calls the close handler exactly once', TIMEOUT, async () => {
    const server = await startServer();
    const client = await openClient(server.url);
    const conn = await server.nextConnection();
    client.close();
    await conn.transport.closed;
    conn.transport.close();
    assert.equal(conn.closeCalls, 1);
    assert.equal(conn.transport.send(Buffer.from('late')), true, 'sends after close are dropped quietly');
  });

  test('a message over maxPayload closes with 1009', TIMEOUT, async () => {
    const server = await startServer({ maxPayloadBytes: 1024 });
    const client = await openClient(server.url);
    const conn = await server.nextConnection();
    const closed = once(client, 'close') as Promise<[number, Buffer]>;
    client.send(Buffer.alloc(2000, 0x41));
    const [code] = await closed;
    assert.equal(code, 1009);
    await conn.transport.closed;
    assert.equal(conn.chunks.length, 0);
  });
});

describe('ping/pong', () => {
  test('a peer that does not answer pings is terminated', TIMEOUT, async () => {
    const server = await startServer({ pingIntervalMs: 40 });
    const client = await openClient(server.url, [], { autoPong: false });
    const conn = await server.nextConnection();
    const [code] = (await once(client, 'close')) as [number];
    assert.equal(code, 1006, 'terminated without a closing handshake');
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
  });

  test('a peer that answers pings stays connected', TIMEOUT, async () => {
    const server = await startServer({ pingIntervalMs: 40 });
    const client = await openClient(server.url);
    await server.nextConnection();
    let pings = 0;
    const fourPings = new Promise<void>((resolve) => client.on('ping', () => ++pings >= 4 && resolve()));
    await fourPings;
    assert.equal(client.readyState, WebSocket.OPEN);
    client.close();
  });
});

describe('back-pressure', () => {
  test('send() returns false over the high-water mark and drain follows once the peer reads', TIMEOUT, async () => {
    const server = await startServer({ highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024 });
    const socket = await rawUpgrade(server.port);
    const conn = await server.nextConnection();
    socket.pause();
    const frame = Buffer.alloc(256 * 1024, 0x61);
    let accepted = true;
    let sends = 0;
    while (accepted && sends < 512) {
      accepted = conn.transport.send(frame);
      sends += 1;
    }
    assert.equal(accepted, false, `send() never reported back-pressure after ${sends} frames`);
    assert.ok(conn.transport.bufferedBytes() >= 64 * 1024);
    assert.equal(conn.drains, 0);
    const drained = conn.nextDrain();
    socket.on('data', () => {});
    socket.resume();
    await drained;
    assert.ok(conn.transport.bufferedBytes() < 16 * 1024);
    socket.destroy();
  });
});

/** A WebSocket client that does nothing after the handshake, so the test controls reading. */
async function rawUpgrade(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    head += chunk.toString('latin1');
  }
  assert.match(head, /^HTTP\/1\.1 101 /);
  return socket;
}
