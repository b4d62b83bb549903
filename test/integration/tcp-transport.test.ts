// STOMP over raw TCP and TLS with real sockets on 127.0.0.1 (port 0) and the real session on the
// embedded engine: round trips (stompit and hand-written bytes), framing across chunks, heart-beats,
// ERROR before close, TLS with and without client certificates, handshake failures, TCP keepalive
// (read back from the kernel), backpressure and who-closed-first. Certificates are made per run with
// the openssl CLI in a temp dir, so no private key lives in the repository.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import pino from 'pino';
import { allowAllAuthorizer } from '../../broker/src/auth/allow-all.js';
import type { Engine } from '../../broker/src/engine/engine.js';
import type { SessionOptions } from '../../broker/src/session/options.js';
import { startSession } from '../../broker/src/session/session.js';
import { DEFAULT_DECODER_LIMITS, StompDecoder } from '../../broker/src/stomp/decoder.js';
import { encodeFrame } from '../../broker/src/stomp/encoder.js';
import { getHeader, makeFrame } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import type { TcpConnectionInfo, TcpServer, TcpServerOptions } from '../../broker/src/transport/tcp-server.js';
import { createTcpServer } from '../../broker/src/transport/tcp-server.js';
import type { TcpTransport } from '../../broker/src/transport/tcp-transport.js';
import type { TransportHandlers } from '../../broker/src/transport/transport.js';
import { holdingCloses, memoryEngine, silentLog, TEST_SESSION_OPTIONS } from '../helpers/session-fixture.js';

const TIMEOUT = { timeout: 20000 };

// stompit ships no types: the few calls used here, typed locally.
interface StompitMessage {
  readonly headers: Record<string, string>;
  readString(encoding: 'utf-8', callback: (err: Error | null, body?: string) => void): void;
}
interface StompitClient {
  send(headers: Record<string, string>): { write(chunk: string): void; end(): void };
  subscribe(headers: Record<string, string>, callback: (err: Error | null, message: StompitMessage) => void): unknown;
  disconnect(callback?: (err: Error | null) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
interface Stompit {
  connect(options: Record<string, unknown>, callback: (err: Error | null, client: StompitClient) => void): StompitClient;
}
const stompit = createRequire(import.meta.url)('stompit') as Stompit;

// ---------------------------------------------------------------------------------------------
// Certificates

interface Pem {
  readonly key: string;
  readonly cert: string;
}
interface Certs {
  readonly ca: string;
  readonly server: Pem;
  /** Signed by the CA, subject CN=alice. */
  readonly alice: Pem;
  /** Signed by a CA the server does not trust, subject CN=mallory. */
  readonly mallory: Pem;
}

let certDir: string | undefined;
let certs: Certs;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: certDir, stdio: 'pipe' });
}

function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '2', '-subj', `/CN=Thumper test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

function makeLeaf(name: string, cn: string, ca: string, extensions: string, serial: number): Pem {
  writeFileSync(join(certDir!, `${name}.ext`), extensions);
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(serial), '-days', '2',
    '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  return { key: readFileSync(join(certDir!, `${name}.key`), 'utf8'), cert: readFileSync(join(certDir!, `${name}.crt`), 'utf8') };
}

// ---------------------------------------------------------------------------------------------
// Server side

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A pino logger whose lines are kept for assertions. */
function capturingLog(): { log: pino.Logger; lines: LogLine[]; waitFor(pred: (l: LogLine) => boolean): Promise<LogLine> } {
  const lines: LogLine[] = [];
  const waiters: Array<() => void> = [];
  const log = pino({ level: 'debug' }, {
    write(line: string) {
      lines.push(JSON.parse(line) as LogLine);
      for (const w of waiters.splice(0)) w();
    },
  });
  async function waitFor(pred: (l: LogLine) => boolean): Promise<LogLine> {
    for (;;) {
      const found = lines.find(pred);
      if (found) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  }
  return { log, lines, waitFor };
}

/** What the server side saw on one connection. */
interface Conn {
  readonly transport: TcpTransport;
  readonly info: TcpConnectionInfo;
  /** Inbound chunks the transport handed up. */
  inboundChunks: number;
  closeCalls: number;
}

interface Node {
  readonly server: TcpServer;
  readonly port: number;
  readonly conns: Conn[];
  readonly logs: ReturnType<typeof capturingLog>;
  nextConnection(): Promise<Conn>;
  stop(): Promise<void>;
}

let engine: Engine;
const nodes: Node[] = [];
const sockets: Socket[] = [];

before(async () => {
  engine = await memoryEngine();
  certDir = mkdtempSync(join(tmpdir(), 'thumper-tls-'));
  makeCa('ca');
  makeCa('rogue-ca');
  certs = {
    ca: readFileSync(join(certDir, 'ca.crt'), 'utf8'),
    server: makeLeaf('server', '127.0.0.1', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n', 1001),
    alice: makeLeaf('alice', 'alice', 'ca', 'extendedKeyUsage=clientAuth\n', 1002),
    mallory: makeLeaf('mallory', 'mallory', 'rogue-ca', 'extendedKeyUsage=clientAuth\n', 1003),
  };
});

after(async () => {
  for (const s of sockets) s.destroy();
  for (const n of nodes) await n.stop();
  await engine.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

type NodeOptions = Partial<Omit<TcpServerOptions, 'onConnection' | 'log'>> & {
  /** Session options over TEST_SESSION_OPTIONS; `false`: no session, the test drives the transport. */
  readonly session?: Partial<SessionOptions> | false;
  /** Default: the suite's embedded engine. */
  readonly engine?: Engine;
};

async function startNode(options: NodeOptions = {}): Promise<Node> {
  const { session: sessionOverrides = {}, engine: nodeEngine = engine, ...serverOptions } = options;
  const logs = capturingLog();
  const conns: Conn[] = [];
  const waiters: Array<(c: Conn) => void> = [];
  let taken = 0;
  const server = await createTcpServer({
    host: '127.0.0.1',
    port: 0,
    ...serverOptions,
    log: logs.log,
    onConnection(transport, info) {
      const conn: Conn = { transport, info, inboundChunks: 0, closeCalls: 0 };
      // Counts what the transport hands up, then passes it on to whoever set the handlers.
      const setHandlers = transport.setHandlers.bind(transport);
      transport.setHandlers = (h: TransportHandlers) =>
        setHandlers({
          data(chunk) {
            conn.inboundChunks += 1;
            h.data(chunk);
          },
          close() {
            conn.closeCalls += 1;
            h.close();
          },
          drain: () => h.drain(),
          ...(h.end ? { end: () => h.end!() } : {}),
        });
      if (sessionOverrides !== false) {
        const options = { ...TEST_SESSION_OPTIONS, ...sessionOverrides };
        startSession({ transport, engine: nodeEngine, authorizer: allowAllAuthorizer(), options, log: silentLog });
      }
      conns.push(conn);
      for (const w of waiters.splice(0)) w(conn);
    },
  });
  const node: Node = {
    server,
    port: server.address.port,
    conns,
    logs,
    nextConnection: () =>
      new Promise((resolve) => {
        const index = taken++;
        const check = (): void => {
          const c = conns[index];
          if (c) resolve(c);
          else waiters.push(check);
        };
        check();
      }),
    async stop() {
      server.close();
      for (const t of server.transports) t.terminate();
    },
  };
  nodes.push(node);
  return node;
}

/** Handlers for tests that drive a transport without a session. */
function recordingHandlers(): TransportHandlers & { chunks: Buffer[]; drains: number; nextDrain(): Promise<void> } {
  const drainWaiters: Array<() => void> = [];
  const h = {
    chunks: [] as Buffer[],
    drains: 0,
    data(chunk: Buffer) {
      h.chunks.push(chunk);
    },
    close() {},
    drain() {
      h.drains += 1;
      for (const w of drainWaiters.splice(0)) w();
    },
    nextDrain: () => new Promise<void>((resolve) => drainWaiters.push(resolve)),
  };
  return h;
}

// ---------------------------------------------------------------------------------------------
// Client side: raw STOMP bytes over a socket, decoded with the broker's own decoder.

interface Ending {
  /** The peer's FIN arrived (an orderly close), as opposed to a reset. */
  readonly sawEnd: boolean;
  readonly error: NodeJS.ErrnoException | undefined;
}

class StompSocket {
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  heartBeats = 0;
  /** Resolves when the socket is fully closed. */
  readonly ended: Promise<Ending>;
  #decoder = new StompDecoder({ maxFrameBytes: 64 * 1024 * 1024, maxFrameBytesBeforeConnect: 64 * 1024 * 1024 });
  #waiters: Array<() => void> = [];
  #isClosed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    sockets.push(socket);
    this.#decoder.setVersion('1.2');
    this.#decoder.setAuthenticated();
    let sawEnd = false;
    let error: NodeJS.ErrnoException | undefined;
    socket.on('data', (chunk: Buffer) => {
      for (const e of this.#decoder.push(chunk).events) {
        if (e.type === 'frame') this.frames.push(e.frame);
        else this.heartBeats += 1;
      }
      this.#wake();
    });
    socket.on('end', () => {
      sawEnd = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err;
    });
    this.ended = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true;
        this.#wake();
        resolve({ sawEnd, error });
      });
    });
  }

  static async plain(port: number): Promise<StompSocket> {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const client = new StompSocket(socket);
    await once(socket, 'connect');
    return client;
  }

  static async tls(port: number, options: ConnectionOptions = {}): Promise<StompSocket> {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca, ...options });
    const client = new StompSocket(socket);
    await once(socket, 'secureConnect');
    return client;
  }

  write(command: string, headers: Record<string, string> = {}, body: string | Buffer = ''): void {
    this.socket.write(frameBytes(command, headers, body));
  }

  /** The first frame matching `pred`; rejects if the socket closes first. */
  async waitFor(pred: (f: Frame) => boolean, what: string): Promise<Frame> {
    for (;;) {
      const found = this.frames.find(pred);
      if (found) return found;
      if (this.#isClosed) throw new Error(`socket closed before ${what}; got ${this.frames.map((f) => f.command).join(',') || 'nothing'}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async waitForHeartBeats(n: number): Promise<void> {
    while (this.heartBeats < n) {
      if (this.#isClosed) throw new Error(`socket closed after ${this.heartBeats}/${n} heart-beats`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** CONNECT and wait for CONNECTED. */
  async login(headers: Record<string, string> = {}): Promise<Frame> {
    this.write('CONNECT', { 'accept-version': '1.2', host: '/', ...headers });
    return this.waitFor((f) => f.command === 'CONNECTED', 'CONNECTED');
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

function frameBytes(command: string, headers: Record<string, string> = {}, body: string | Buffer = ''): Buffer {
  return encodeFrame(makeFrame(command, Object.entries(headers), body), '1.2');
}

/** A full publish/consume over a logged-in client: SUBSCRIBE (with receipt), SEND, MESSAGE. */
async function roundTrip(client: StompSocket, queue: string, body: string): Promise<Frame> {
  client.write('SUBSCRIBE', { id: 's1', destination: `/queue/${queue}`, receipt: `sub-${queue}` });
  await client.waitFor((f) => f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === `sub-${queue}`, 'subscribe receipt');
  client.write('SEND', { destination: `/queue/${queue}`, 'content-type': 'text/plain' }, body);
  return client.waitFor((f) => f.command === 'MESSAGE' && getHeader(f, 'destination') === `/queue/${queue}`, 'MESSAGE');
}

/** Tries a TLS connection and a CONNECT; resolves once the server has closed it (or CONNECTED came). */
async function tryTls(port: number, options: ConnectionOptions): Promise<{ frames: string[]; error: string | undefined }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca, ...options });
  const client = new StompSocket(socket);
  socket.once('secureConnect', () => client.write('CONNECT', { 'accept-version': '1.2', host: '/' }));
  await client.waitFor((f) => f.command === 'CONNECTED', 'CONNECTED').catch(() => undefined);
  socket.destroy();
  const { error } = await client.ended;
  return { frames: client.frames.map((f) => f.command), error: error?.code };
}

/** The kernel's view of one IPv4 TCP socket: which timer runs and when it fires (Linux only). */
function tcpTimer(localPort: number, remotePort: number): { timer: number; whenSeconds: number } | undefined {
  const hex = (port: number): string => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== hex(localPort) || fields[2] !== hex(remotePort)) continue;
    const [timer, when] = (fields[5] ?? '').split(':');
    // tm->when is in clock ticks (USER_HZ, 100 on Linux).
    return { timer: Number.parseInt(timer ?? '', 16), whenSeconds: Number.parseInt(when ?? '', 16) / 100 };
  }
  return undefined;
}
/** /proc/net/tcp `tr` value for "another timer", which on an established socket is the keepalive timer. */
const KEEPALIVE_TIMER = 2;

// ---------------------------------------------------------------------------------------------

describe('plain TCP with the real session', () => {
  test('stompit: CONNECT, SUBSCRIBE, SEND and MESSAGE round-trip', TIMEOUT, async () => {
    const node = await startNode();
    const connected = node.nextConnection();
    const client = await new Promise<StompitClient>((resolve, reject) => {
      stompit.connect({ host: '127.0.0.1', port: node.port, connectHeaders: { host: '/', login: 'guest', passcode: 'guest' } }, (err, c) =>
        err ? reject(err) : resolve(c),
      );
    });
    client.on('error', () => {});
    const message = await new Promise<{ headers: Record<string, string>; body: string }>((resolve, reject) => {
      client.subscribe({ destination: '/queue/tcp-stompit', ack: 'auto' }, (err, msg) => {
        if (err) return reject(err);
        msg.readString('utf-8', (readErr, body) => (readErr ? reject(readErr) : resolve({ headers: msg.headers, body: body ?? '' })));
      });
      const frame = client.send({ destination: '/queue/tcp-stompit', 'content-type': 'text/plain' });
      frame.write('hello over tcp');
      frame.end();
    });
    assert.equal(message.body, 'hello over tcp');
    assert.equal(message.headers.destination, '/queue/tcp-stompit');

    const { transport, info } = await connected;
    assert.equal(transport.kind, 'tcp');
    assert.equal(transport.remoteAddress, '127.0.0.1');
    assert.match(info.remote, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(transport.offeredVersions, []);
    assert.equal(transport.bearerToken, undefined);
    assert.equal(transport.peerCommonName, undefined);
    assert.equal(node.server.connectionCount, 1);

    await new Promise<void>((resolve) => client.disconnect(() => resolve()));
    await transport.closed;
    assert.equal(node.server.connectionCount, 0);
  });

  test('a frame written one byte at a time is decoded across the chunks', TIMEOUT, async () => {
    const node = await startNode();
    const client = await StompSocket.plain(node.port);
    const conn = await node.nextConnection();
    const bytes = Buffer.concat([
      frameBytes('CONNECT', { 'accept-version': '1.2', host: '/' }),
      frameBytes('SUBSCRIBE', { id: 's1', destination: '/queue/tcp-bytewise' }),
      frameBytes('SEND', { destination: '/queue/tcp-bytewise', 'content-length': '5' }, 'a\0b\nc'),
    ]);
    for (let i = 0; i < bytes.length; i++) {
      await new Promise<void>((resolve) => client.socket.write(bytes.subarray(i, i + 1), () => setImmediate(resolve)));
    }
    const message = await client.waitFor((f) => f.command === 'MESSAGE', 'MESSAGE');
    assert.deepEqual(message.body, Buffer.from('a\0b\nc'));
    assert.ok(client.frames.some((f) => f.command === 'CONNECTED'));
    // The point of the test: the session really was fed many small chunks.
    assert.ok(conn.inboundChunks > 10, `only ${conn.inboundChunks} inbound chunks`);
  });

  test('several frames in one chunk, ending with DISCONNECT: every answer, then the socket closes', TIMEOUT, async () => {
    const node = await startNode();
    const client = await StompSocket.plain(node.port);
    const conn = await node.nextConnection();
    client.socket.write(
      Buffer.concat([
        frameBytes('CONNECT', { 'accept-version': '1.2', host: '/' }),
        frameBytes('SUBSCRIBE', { id: 's1', destination: '/queue/tcp-batch', receipt: 'r-sub' }),
        frameBytes('SEND', { destination: '/queue/tcp-batch' }, 'one'),
        frameBytes('SEND', { destination: '/queue/tcp-batch' }, 'two'),
      ]),
    );
    await client.waitFor((f) => f.command === 'MESSAGE' && f.body.toString() === 'two', 'MESSAGE two');
    assert.equal(conn.inboundChunks, 1);
    assert.deepEqual(client.frames.map((f) => f.command), ['CONNECTED', 'RECEIPT', 'MESSAGE', 'MESSAGE']);
    assert.deepEqual(client.frames.slice(2).map((f) => f.body.toString()), ['one', 'two']);

    client.write('DISCONNECT', { receipt: 'bye' });
    await client.waitFor((f) => f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === 'bye', 'DISCONNECT receipt');
    const ending = await client.ended;
    assert.equal(ending.sawEnd, true);
    assert.equal(ending.error, undefined);
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
  });

  for (const kind of ['tcp', 'tls'] as const) {
    test(`${kind}: a client that half-closes right after DISCONNECT still gets every RECEIPT, then the close`, TIMEOUT, async () => {
      // The broker takes a while to close the session, so the FIN is in long before the RECEIPT.
      const node = await startNode({
        engine: holdingCloses(engine, () => new Promise((resolve) => setTimeout(resolve, 300))),
        ...(kind === 'tls' ? { tls: { ...certs.server, requestClientCert: false, requireClientCert: false } } : {}),
      });
      const client = kind === 'tls' ? await StompSocket.tls(node.port) : await StompSocket.plain(node.port);
      const conn = await node.nextConnection();
      client.socket.end(
        Buffer.concat([
          frameBytes('CONNECT', { 'accept-version': '1.2', host: '/' }),
          frameBytes('SEND', { destination: '/queue/tcp-half-close', receipt: 'sent' }, 'x'),
          frameBytes('DISCONNECT', { receipt: 'bye' }),
        ]),
      );
      const ending = await client.ended;
      assert.deepEqual(
        client.frames.map((f) => [f.command, getHeader(f, 'receipt-id') ?? '']),
        [['CONNECTED', ''], ['RECEIPT', 'sent'], ['RECEIPT', 'bye']],
      );
      assert.equal(ending.sawEnd, true);
      assert.equal(ending.error, undefined);
      await conn.transport.closed;
    });
  }

  test('a client that half-closes without DISCONNECT gets the answers to what it sent, then the close', TIMEOUT, async () => {
    const node = await startNode();
    const client = await StompSocket.plain(node.port);
    client.socket.end(
      Buffer.concat([
        frameBytes('CONNECT', { 'accept-version': '1.2', host: '/' }),
        frameBytes('SUBSCRIBE', { id: 's', destination: '/queue/tcp-half-close-2', receipt: 'sub' }),
        frameBytes('SEND', { destination: '/queue/tcp-half-close-2', receipt: 'sent' }, 'echo'),
      ]),
    );
    const ending = await client.ended;
    assert.deepEqual(client.frames.filter((f) => f.command === 'RECEIPT').map((f) => getHeader(f, 'receipt-id')), ['sub', 'sent']);
    assert.equal(ending.sawEnd, true);
  });

  test('heart-beats: the server sends EOLs when the client asks for them', TIMEOUT, async () => {
    const node = await startNode();
    const client = await StompSocket.plain(node.port);
    const connected = await client.login({ 'heart-beat': '0,1000' });
    assert.equal(getHeader(connected, 'heart-beat'), '1000,0');
    await client.waitForHeartBeats(2);
    assert.equal(client.frames.length, 1, 'nothing but heart-beats after CONNECTED');
  });

  test('heart-beats: a client that promised beats and went silent is disconnected', TIMEOUT, async () => {
    const node = await startNode();
    const client = await StompSocket.plain(node.port);
    const conn = await node.nextConnection();
    const connected = await client.login({ 'heart-beat': '1000,0' });
    assert.equal(getHeader(connected, 'heart-beat'), '0,1000');
    const ending = await client.ended;
    assert.equal(ending.sawEnd, true);
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
  });

  test('a frame too large: the ERROR frame is flushed, then the socket is closed without a reset', TIMEOUT, async () => {
    const limit = 4096;
    const node = await startNode({ session: { decoder: { ...DEFAULT_DECODER_LIMITS, maxFrameBytes: limit, maxFrameBytesBeforeConnect: limit } } });
    const client = await StompSocket.plain(node.port);
    const conn = await node.nextConnection();
    await client.login();
    // Far more than the limit, so the server still has unread bytes when it decides to close.
    const body = Buffer.alloc(16 * 1024 * 1024, 0x61);
    client.socket.write(frameBytes('SEND', { destination: '/queue/tcp-big', 'content-length': String(body.length) }, body));
    const error = await client.waitFor((f) => f.command === 'ERROR', 'ERROR');
    assert.equal(getHeader(error, 'message'), 'Frame too large');
    const ending = await client.ended;
    assert.equal(ending.sawEnd, true, 'the server ended the stream (FIN) rather than resetting it');
    assert.equal(ending.error, undefined);
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
  });

  test('server.close() stops accepting; open connections carry on', TIMEOUT, async () => {
    const node = await startNode();
    const client = await StompSocket.plain(node.port);
    await client.login();
    node.server.close();
    const refused = netConnect({ host: '127.0.0.1', port: node.port });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    const message = await roundTrip(client, 'tcp-after-close', 'still here');
    assert.equal(message.body.toString(), 'still here');
  });

  test('maxConnections: a connection past the limit is dropped and logged', TIMEOUT, async () => {
    const node = await startNode({ maxConnections: 1 });
    const first = await StompSocket.plain(node.port);
    await first.login();
    const second = await StompSocket.plain(node.port);
    const ending = await second.ended;
    assert.deepEqual(second.frames, []);
    assert.ok(ending.sawEnd || ending.error !== undefined);
    const line = await node.logs.waitFor((l) => l.msg === 'connection dropped: too many connections');
    assert.equal(line.level, 40);
    assert.equal(node.server.connectionCount, 1);
  });
});

describe('TLS', () => {
  test('server certificate verified against the CA: round-trip over raw bytes and with stompit', TIMEOUT, async () => {
    const node = await startNode({ tls: { ...certs.server, requestClientCert: false, requireClientCert: false } });
    const client = await StompSocket.tls(node.port);
    const conn = await node.nextConnection();
    await client.login();
    const message = await roundTrip(client, 'tls-raw', 'hello over tls');
    assert.equal(message.body.toString(), 'hello over tls');
    assert.equal(conn.transport.kind, 'tls');
    assert.equal(conn.transport.remoteAddress, '127.0.0.1');
    assert.equal(conn.transport.peerCommonName, undefined);

    const stomp = await new Promise<StompitClient>((resolve, reject) => {
      stompit.connect({ host: '127.0.0.1', port: node.port, ssl: true, ca: certs.ca, connectHeaders: { host: '/' } }, (err, c) => (err ? reject(err) : resolve(c)));
    });
    stomp.on('error', () => {});
    const body = await new Promise<string>((resolve, reject) => {
      stomp.subscribe({ destination: '/queue/tls-stompit' }, (err, msg) => {
        if (err) return reject(err);
        msg.readString('utf-8', (readErr, text) => (readErr ? reject(readErr) : resolve(text ?? '')));
      });
      const frame = stomp.send({ destination: '/queue/tls-stompit' });
      frame.write('stompit over tls');
      frame.end();
    });
    assert.equal(body, 'stompit over tls');
    await new Promise<void>((resolve) => stomp.disconnect(() => resolve()));
  });

  test('requireClientCert: no certificate or a foreign one is refused at the handshake; a CA-signed one gets in with its CN', TIMEOUT, async () => {
    const node = await startNode({ tls: { ...certs.server, ca: certs.ca, requestClientCert: true, requireClientCert: true } });

    // TLS 1.3: the client's side of the handshake completes before the server has checked its
    // certificate, so the refusal shows as an alert or a closed stream, never as a STOMP answer.
    const anonymous = await tryTls(node.port, {});
    assert.deepEqual(anonymous.frames, []);
    assert.equal(anonymous.error, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    await node.logs.waitFor((l) => l.msg === 'TLS handshake failed' && l.level === 30);

    const foreign = await tryTls(node.port, { ...certs.mallory });
    assert.deepEqual(foreign.frames, []);
    const refusal = await node.logs.waitFor((l) => l.msg === 'TLS handshake failed' && l.authorizationError !== undefined);
    assert.equal(refusal.level, 30);
    assert.equal(refusal.authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(node.conns.length, 0, 'no transport was made for a refused handshake');

    const alice = await StompSocket.tls(node.port, { ...certs.alice });
    const conn = await node.nextConnection();
    await alice.login();
    assert.equal(conn.transport.peerCommonName, 'alice');
    assert.equal(node.logs.lines.filter((l) => l.msg === 'TLS handshake failed').length, 2);
  });

  test('requestClientCert alone: everyone gets in, only a verified certificate gives a peerCommonName', TIMEOUT, async () => {
    const node = await startNode({ tls: { ...certs.server, ca: certs.ca, requestClientCert: true, requireClientCert: false } });
    const names: Array<string | undefined> = [];
    for (const options of [{}, { ...certs.mallory }, { ...certs.alice }]) {
      const client = await StompSocket.tls(node.port, options);
      const conn = await node.nextConnection();
      await client.login();
      names.push(conn.transport.peerCommonName);
      client.socket.end();
    }
    assert.deepEqual(names, [undefined, undefined, 'alice']);
  });

  test('plain text to the TLS port is refused and logged; the listener keeps serving', TIMEOUT, async () => {
    const node = await startNode({ tls: { ...certs.server, requestClientCert: false, requireClientCert: false } });
    const plain = await StompSocket.plain(node.port);
    plain.write('CONNECT', { 'accept-version': '1.2', host: '/' });
    await plain.ended;
    assert.deepEqual(plain.frames, []);
    const line = await node.logs.waitFor((l) => l.msg === 'TLS handshake failed');
    assert.equal(line.level, 30);
    assert.equal(node.conns.length, 0);

    const good = await StompSocket.tls(node.port);
    await good.login();
    assert.equal(node.server.connectionCount, 1);
  });
});

describe('TCP keepalive against half-open peers', () => {
  const linux = existsSync('/proc/net/tcp');

  test('accepted sockets run the kernel keepalive timer at the configured idle time (Linux)', { ...TIMEOUT, skip: !linux && 'needs /proc/net/tcp' }, async () => {
    const cases: Array<{ options: NodeOptions; expect: number | undefined }> = [
      { options: { session: false }, expect: 60 },
      { options: { session: false, keepAliveInitialDelayMs: 20_000 }, expect: 20 },
      { options: { session: false, keepAliveInitialDelayMs: 20_000, tls: { ...certs.server, requestClientCert: false, requireClientCert: false } }, expect: 20 },
      { options: { session: false, keepAliveInitialDelayMs: 0 }, expect: undefined },
    ];
    for (const { options, expect } of cases) {
      const node = await startNode(options);
      const client = options.tls ? await StompSocket.tls(node.port) : await StompSocket.plain(node.port);
      const conn = await node.nextConnection();
      conn.transport.setHandlers(recordingHandlers());
      const seen = tcpTimer(node.port, client.socket.localPort ?? 0);
      assert.ok(seen, 'server-side socket found in /proc/net/tcp');
      if (expect === undefined) {
        assert.notEqual(seen.timer, KEEPALIVE_TIMER, 'no keepalive timer when disabled');
      } else {
        assert.equal(seen.timer, KEEPALIVE_TIMER, `keepalive timer running (${JSON.stringify(options.keepAliveInitialDelayMs)})`);
        // The timer was armed moments ago with the idle time; allow for the seconds this test took.
        assert.ok(seen.whenSeconds <= expect && seen.whenSeconds > expect - 10, `keepalive fires in ${seen.whenSeconds}s, expected ~${expect}s`);
      }
      client.socket.destroy();
      await conn.transport.closed;
    }
  });
});

describe('TcpTransport: backpressure and closing', () => {
  test('send() returns false past high water; drain fires below low water once the peer reads', TIMEOUT, async () => {
    const highWaterBytes = 256 * 1024;
    const lowWaterBytes = 64 * 1024;
    const node = await startNode({ session: false, highWaterBytes, lowWaterBytes });
    const client = netConnect({ host: '127.0.0.1', port: node.port });
    sockets.push(client);
    client.pause(); // reads nothing: the kernel buffers fill, then the socket's own buffer grows
    const conn = await node.nextConnection();
    const handlers = recordingHandlers();
    conn.transport.setHandlers(handlers);

    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let sent = 0;
    let accepted = true;
    for (let i = 0; i < 4096 && accepted; i++) {
      accepted = conn.transport.send(chunk);
      sent += chunk.length;
    }
    assert.equal(accepted, false, 'send() reported backpressure');
    assert.ok(conn.transport.bufferedBytes() >= highWaterBytes);
    assert.equal(handlers.drains, 0);

    let received = 0;
    const allReceived = new Promise<void>((resolve) => {
      client.on('data', (c: Buffer) => {
        received += c.length;
        if (received === sent) resolve();
      });
    });
    const drained = handlers.nextDrain();
    client.resume();
    await drained;
    assert.ok(conn.transport.bufferedBytes() < lowWaterBytes, `drain at ${conn.transport.bufferedBytes()} buffered bytes`);
    await allReceived;
    assert.equal(handlers.drains, 1);
  });

  test('close() flushes pending writes before the FIN; the close handler runs once', TIMEOUT, async () => {
    const node = await startNode({ session: false });
    const client = netConnect({ host: '127.0.0.1', port: node.port });
    sockets.push(client);
    const conn = await node.nextConnection();
    const handlers = recordingHandlers();
    conn.transport.setHandlers(handlers);
    let received = 0;
    client.on('data', (c: Buffer) => {
      received += c.length;
    });
    const clientEnded = once(client, 'end');
    const payload = Buffer.alloc(4 * 1024 * 1024, 0x63);
    conn.transport.send(payload);
    conn.transport.close(1000, 'bye');
    conn.transport.close();
    assert.equal(conn.transport.send(Buffer.from('late')), true, 'a send after close is dropped quietly');
    await clientEnded;
    assert.equal(received, payload.length);
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
  });

  test('the peer closing first: close handler once, and a later close() is a no-op', TIMEOUT, async () => {
    const node = await startNode({ session: false });
    const client = netConnect({ host: '127.0.0.1', port: node.port });
    sockets.push(client);
    const conn = await node.nextConnection();
    const handlers = recordingHandlers();
    conn.transport.setHandlers(handlers);
    client.end('last words');
    await conn.transport.closed;
    conn.transport.close();
    assert.equal(conn.closeCalls, 1);
    assert.equal(Buffer.concat(handlers.chunks).toString(), 'last words');
  });

  test('close() destroys the socket when the peer never finishes closing', TIMEOUT, async () => {
    const node = await startNode({ session: false, closeTimeoutMs: 200 });
    // allowHalfOpen: the client sees our FIN but never sends its own.
    const client = netConnect({ host: '127.0.0.1', port: node.port, allowHalfOpen: true });
    sockets.push(client);
    client.on('error', () => {});
    const conn = await node.nextConnection();
    conn.transport.setHandlers(recordingHandlers());
    const clientEnded = once(client, 'end');
    client.resume();
    conn.transport.close();
    await clientEnded;
    // Without the timeout this never resolves: the socket would wait for the client's FIN forever.
    await conn.transport.closed;
    assert.equal(conn.closeCalls, 1);
    assert.equal(node.server.connectionCount, 0);
  });

  test('terminate() drops the connection at once', TIMEOUT, async () => {
    const node = await startNode({ session: false });
    const client = netConnect({ host: '127.0.0.1', port: node.port });
    sockets.push(client);
    client.on('error', () => {});
    const conn = await node.nextConnection();
    conn.transport.setHandlers(recordingHandlers());
    const clientClosed = once(client, 'close');
    client.resume();
    conn.transport.terminate();
    await conn.transport.closed;
    await clientClosed;
    assert.equal(conn.closeCalls, 1);
    assert.equal(node.server.connectionCount, 0);
  });
});
