// Bad input against a real gateway, over WebSocket and TCP (and one over SockJS's raw WebSocket):
// every case gets an ERROR whose `message` header and body name the problem; the
// framing errors close the connection; and two well-behaved clients (one per transport) connected
// throughout keep sending and receiving: after every case each of them sends a message to itself
// and must get it, and at the end each has received all of them, in order, and no ERROR.
// Limits are small here so that the cases stay small: stomp.maxFrameBytes 64 KiB, maxHeaders 20,
// maxHeaderLineBytes 1024, loginTimeoutMs 1500, maxTransactions 4, maxTransactionFrames 10,
// maxTransactionBytes 8192.
// The 10,000-SUBSCRIBE flood also runs against RabbitMQ (amqp engine): the session's queues are
// gone once it closes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit, type RabbitNode } from '../harness/rabbitmq.js';
import { WebSocket } from 'ws';
import { connectTcp, connectWs, isError, isMessageFor, login, sleep, withDeadline, type StompConn } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';

const SUITE = { timeout: 180_000 };
const LIMITS = {
  THUMPER_STOMP_MAX_FRAME_BYTES: String(64 * 1024),
  THUMPER_STOMP_MAX_HEADERS: '20',
  THUMPER_STOMP_MAX_HEADER_LINE_BYTES: '1024',
  THUMPER_STOMP_LOGIN_TIMEOUT_MS: '1500',
  THUMPER_STOMP_MAX_TRANSACTIONS: '4',
  THUMPER_STOMP_MAX_TRANSACTION_FRAMES: '10',
  THUMPER_STOMP_MAX_TRANSACTION_BYTES: '8192',
};

type Kind = 'ws' | 'tcp';

/** A client that behaves: subscribed to its own queue, it sends itself one numbered message per check. */
class Witness {
  readonly #conn: StompConn;
  readonly #queue: string;
  #sent = 0;

  private constructor(conn: StompConn, queue: string) {
    this.#conn = conn;
    this.#queue = queue;
  }

  static async start(conn: StompConn, name: string): Promise<Witness> {
    await login(conn);
    const queue = `/queue/bad-input-witness-${name}-${randomBytes(4).toString('hex')}`;
    await conn.request('SUBSCRIBE', { id: 'w', destination: queue });
    return new Witness(conn, queue);
  }

  /** One round trip: SEND (with receipt) to itself, then the MESSAGE. */
  async check(): Promise<void> {
    const n = ++this.#sent;
    await this.#conn.request('SEND', { destination: this.#queue }, `witness ${n}`);
    const message = await this.#conn.waitFor(isMessageFor('w'));
    assert.equal(message.body.toString(), `witness ${n}`);
  }

  /** Everything it sent came back, in order, and nobody sent it an ERROR. */
  verify(): void {
    const messages = this.#conn.frames.filter((f) => f.command === 'MESSAGE').map((f) => f.body.toString());
    assert.deepEqual(messages, Array.from({ length: this.#sent }, (_, i) => `witness ${i + 1}`));
    assert.equal(this.#conn.frames.filter(isError).length, 0);
    assert.equal(this.#conn.isClosed, false);
  }

  get sent(): number {
    return this.#sent;
  }

  close(): Promise<void> {
    return this.#conn.close();
  }
}

async function open(server: ThumperServer, kind: Kind, options: { version?: '1.0' | '1.1' | '1.2' } = {}): Promise<StompConn> {
  if (kind === 'tcp') return connectTcp(server.tcpPort!, options);
  return connectWs(server.wsUrl, options);
}

/** The ERROR the connection got, after checking its message header and body. */
async function expectError(conn: StompConn, message: string, detail: RegExp): Promise<Frame> {
  const error = await conn.waitFor(isError);
  assert.equal(getHeader(error, 'message'), message);
  assert.match(error.body.toString(), detail);
  return error;
}

/** A framing error: the ERROR, then the connection is closed by the server. */
async function expectFatal(conn: StompConn, message: string, detail: RegExp): Promise<void> {
  await expectError(conn, message, detail);
  await conn.waitClosed();
}

/** Writes `bytes` in pieces of at most `size` (WebSocket messages, TCP writes). */
function sendInPieces(conn: StompConn, bytes: Buffer, size = 16 * 1024): void {
  for (let at = 0; at < bytes.length; at += size) conn.sendRaw(bytes.subarray(at, at + size));
}

/** Takes `n` ERROR frames (so that later requests see their own replies), checking each. */
async function takeErrors(conn: StompConn, n: number, message: string, detail: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const error = await conn.waitFor(isError, 60_000);
    assert.equal(getHeader(error, 'message'), message);
    assert.equal(error.body.toString(), detail);
  }
}

const frame = (head: string, body: Buffer | string = ''): Buffer => Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body), Buffer.from([0])]);

describe('bad input, embedded engine', SUITE, () => {
  let server: ThumperServer;
  let witnesses: Witness[];
  let badClients = 0;

  before(async () => {
    server = await startThumper({ THUMPER_ENGINE: 'memory', ...LIMITS });
    witnesses = [await Witness.start(await open(server, 'ws'), 'ws'), await Witness.start(await open(server, 'tcp'), 'tcp')];
  });
  after(async () => {
    await Promise.all(witnesses.map((w) => w.close()));
    await server.stop();
  });

  /** Runs one bad client, then proves the witnesses still work. */
  async function badClient(kind: Kind, run: (conn: StompConn) => Promise<void>, options: { login?: boolean; version?: '1.0' | '1.1' | '1.2' } = {}): Promise<void> {
    const conn = await open(server, kind, options.version ? { version: options.version } : {});
    try {
      if (options.login ?? true) await login(conn, options.version ? { acceptVersion: options.version } : {});
      await run(conn);
    } finally {
      await conn.close();
    }
    for (const w of witnesses) await w.check();
    badClients++;
  }

  for (const kind of ['ws', 'tcp'] as const) {
    describe(`over ${kind}`, () => {
      it('a frame beyond stomp.maxFrameBytes, with content-length: ERROR before any body byte is read', () =>
        badClient(kind, async (c) => {
          c.sendRaw(Buffer.from('SEND\ndestination:/queue/x\ncontent-length:70000\n\n'));
          await expectFatal(c, 'Frame too large', /^Frame exceeds 65536 bytes \(content-length 70000\)$/);
        }));

      it('a frame beyond stomp.maxFrameBytes, without content-length', () =>
        badClient(kind, async (c) => {
          sendInPieces(c, frame('SEND\ndestination:/queue/x\n\n', Buffer.alloc(70_000, 0x78)));
          await expectFatal(c, 'Frame too large', /^Frame exceeds 65536 bytes$/);
        }));

      it('a header flood beyond stomp.maxHeaders', () =>
        badClient(kind, async (c) => {
          const headers = Array.from({ length: 21 }, (_, i) => `h${i}:v\n`).join('');
          c.sendRaw(frame(`SEND\ndestination:/queue/x\n${headers}\n`));
          await expectFatal(c, 'Too many headers', /^Frame has more than 20 headers$/);
        }));

      it('one header line beyond stomp.maxHeaderLineBytes', () =>
        badClient(kind, async (c) => {
          c.sendRaw(frame(`SEND\ndestination:/queue/x\nlong:${'y'.repeat(2000)}\n\n`));
          await expectFatal(c, 'Header line too long', /^Header line exceeds 1024 bytes$/);
        }));

      for (const version of ['1.1', '1.2'] as const) {
        it(`invalid UTF-8 in a header (STOMP ${version})`, () =>
          badClient(
            kind,
            async (c) => {
              c.sendRaw(Buffer.concat([Buffer.from('SEND\ndestination:/queue/x\nname:caf'), Buffer.from([0xc3, 0x28]), Buffer.from('\n\n\0')]));
              await expectFatal(c, 'Invalid UTF-8 in header', /^Header line "name:caf.*" is not valid UTF-8$/);
            },
            { version },
          ));
      }

      for (const [value, message, detail] of [
        ['-1', 'Malformed frame', /^Invalid content-length "-1": not a non-negative decimal integer$/],
        ['abc', 'Malformed frame', /^Invalid content-length "abc": not a non-negative decimal integer$/],
        ['9007199254740992', 'Frame too large', /^Frame exceeds 65536 bytes \(content-length 9007199254740992\)$/],
        ['1000000000000000000000000000000', 'Frame too large', /^Frame exceeds 65536 bytes \(content-length 1000000000000000000000000000000\)$/],
      ] as const) {
        it(`content-length ${value}`, () =>
          badClient(kind, async (c) => {
            c.sendRaw(frame(`SEND\ndestination:/queue/x\ncontent-length:${value}\n\n`, 'abc'));
            await expectFatal(c, message, detail);
          }));
      }

      it('an unknown command: ERROR "Bad command", and the session goes on (as RabbitMQ)', () =>
        badClient(kind, async (c) => {
          c.sendRaw(frame('FROBNICATE\nreceipt:r-1\n\n'));
          const error = await expectError(c, 'Bad command', /^Could not interpret command "FROBNICATE"/);
          assert.equal(getHeader(error, 'receipt-id'), 'r-1');
          await c.request('SEND', { destination: '/queue/bad-input-after-unknown' }, 'still usable');
        }));
    });
  }

  it('a malformed frame over SockJS\'s raw WebSocket: ERROR, then close (the close code is one SockJS can send)', () =>
    badClient(
      'ws',
      async () => {
        const raw = new WebSocket(`${server.httpUrl.replace('http:', 'ws:')}/stomp/websocket`);
        const received: string[] = [];
        raw.on('message', (data) => received.push(data.toString()));
        const closed = new Promise<number>((resolve) => raw.on('close', (code) => resolve(code)));
        await new Promise<void>((resolve, reject) => {
          raw.once('open', () => resolve());
          raw.once('error', reject);
        });
        raw.send('CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0');
        raw.send('SEND\ndestination:/queue/x\ncontent-length:-1\n\nabc\0');
        assert.equal(await withDeadline(closed, 5000, 'SockJS connection still open'), 1000);
        const error = received.find((m) => m.startsWith('ERROR\n'));
        assert.ok(error, `an ERROR frame among ${JSON.stringify(received)}`);
        assert.match(error, /^ERROR\nmessage:Malformed frame\n/);
        assert.match(error, /Invalid content-length "-1": not a non-negative decimal integer/);
      },
      { login: false },
    ));

  for (const kind of ['ws', 'tcp'] as const) {
    it(`bytes trickled before CONNECT (${kind}): closed with ERROR at stomp.loginTimeoutMs`, () =>
      badClient(
        kind,
        async (c) => {
          const connect = Buffer.from('CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0');
          // One byte every 200 ms: CONNECT would take 13 s; the login timeout is 1.5 s.
          for (let i = 0; i < connect.length - 1 && !c.isClosed; i++) {
            c.sendRaw(connect.subarray(i, i + 1));
            await sleep(200);
          }
          await expectFatal(c, 'Login timeout', /^No CONNECT within 1500 ms$/);
          assert.equal(c.frames.filter((f) => f.command === 'CONNECTED').length, 0);
        },
        { login: false },
      ));
  }

  it('10,000 SUBSCRIBEs on one connection: the first 1000 (stomp.maxSubscriptions) are taken, every later one gets ERROR', () =>
    badClient('ws', async (c) => {
      const frames = Array.from({ length: 10_000 }, (_, i) => frame(`SUBSCRIBE\nid:f${i}\ndestination:/topic/bad-input-flood.${i}\n\n`));
      sendInPieces(c, Buffer.concat(frames), 64 * 1024);
      await takeErrors(c, 9000, 'Too many subscriptions', 'At most 1000 subscriptions per connection');
      await c.request('UNSUBSCRIBE', { id: 'f0' });
      assert.equal(c.frames.filter(isError).length, 9000);
      // The subscriptions it holds work, and the slot the UNSUBSCRIBE freed can be taken again.
      await c.request('SUBSCRIBE', { id: 'again', destination: '/topic/bad-input-flood.again' });
      await c.request('SEND', { destination: '/topic/bad-input-flood.999' }, 'to 999');
      assert.equal((await c.waitFor(isMessageFor('f999'))).body.toString(), 'to 999');
    }));

  describe('transactions that never commit', () => {
    it('a transaction beyond stomp.maxTransactionFrames is aborted whole: its COMMIT publishes nothing', () =>
      badClient('tcp', async (c) => {
        const dest = `/queue/bad-input-tx-${randomBytes(4).toString('hex')}`;
        await c.request('SUBSCRIBE', { id: 'tx', destination: dest });
        await c.request('BEGIN', { transaction: 't1' });
        for (let i = 1; i <= 11; i++) c.send('SEND', { destination: dest, transaction: 't1' }, `tx ${i}`);
        await expectError(c, 'Transaction limit exceeded', /^Transaction "t1" exceeded 10 frames and was aborted; nothing of it will be published$/);
        c.send('COMMIT', { transaction: 't1', receipt: 'commit' });
        const refused = await expectError(c, 'Bad transaction', /Invalid transaction identifier: "t1"/);
        assert.equal(getHeader(refused, 'receipt-id'), 'commit');
        await c.request('SEND', { destination: dest }, 'outside');
        const first = await c.waitFor(isMessageFor('tx'));
        assert.equal(first.body.toString(), 'outside', 'nothing of the aborted transaction was published');
      }));

    it('transactions holding more than stomp.maxTransactionBytes: the one that would go past it is aborted', () =>
      badClient('ws', async (c) => {
        const dest = `/queue/bad-input-tx-bytes-${randomBytes(4).toString('hex')}`;
        await c.request('SUBSCRIBE', { id: 'tb', destination: dest });
        await c.request('BEGIN', { transaction: 'small' });
        await c.request('BEGIN', { transaction: 'big' });
        c.send('SEND', { destination: dest, transaction: 'small' }, 'kept');
        for (let i = 0; i < 3; i++) c.send('SEND', { destination: dest, transaction: 'big' }, 'b'.repeat(3000));
        await expectError(c, 'Transaction limit exceeded', /^Transaction "big" would make this session's transactions hold more than 8192 bytes and was aborted; nothing of it will be published$/);
        // The other transaction is intact and commits.
        await c.request('COMMIT', { transaction: 'small' });
        assert.equal((await c.waitFor(isMessageFor('tb'))).body.toString(), 'kept');
        c.send('COMMIT', { transaction: 'big' });
        await expectError(c, 'Bad transaction', /Invalid transaction identifier: "big"/);
        await c.request('SEND', { destination: dest }, 'outside');
        assert.equal((await c.waitFor(isMessageFor('tb'))).body.toString(), 'outside');
      }));

    it('more than stomp.maxTransactions open at once: ERROR', () =>
      badClient('ws', async (c) => {
        for (let i = 1; i <= 4; i++) await c.request('BEGIN', { transaction: `open-${i}` });
        c.send('BEGIN', { transaction: 'open-5' });
        await expectError(c, 'Transaction limit exceeded', /^At most 4 transactions may be open at once$/);
      }));

    for (const kind of ['ws', 'tcp'] as const) {
      it(`a session that closes with open transactions publishes nothing of them (${kind})`, async () => {
        const dest = `/queue/bad-input-open-tx-${randomBytes(4).toString('hex')}`;
        const reader = await open(server, 'ws');
        await login(reader);
        await reader.request('SUBSCRIBE', { id: 'r', destination: dest });
        await badClient(kind, async (c) => {
          await c.request('BEGIN', { transaction: 'left-open' });
          for (let i = 0; i < 5; i++) c.send('SEND', { destination: dest, transaction: 'left-open' }, `never ${i}`);
          await c.request('BEGIN', { transaction: 'also-open' });
        });
        // The bad client is gone (badClient closed it); a message sent now must be the first to arrive.
        await reader.request('SEND', { destination: dest }, 'after close');
        assert.equal((await reader.waitFor(isMessageFor('r'))).body.toString(), 'after close');
        await reader.close();
      });
    }
  });

  it('the witnesses received every message they sent and no ERROR', () => {
    for (const w of witnesses) {
      assert.ok(badClients >= 30);
      assert.equal(w.sent, badClients, 'one round trip after every bad client');
      w.verify();
    }
  });
});

describe('10,000 SUBSCRIBEs against RabbitMQ (amqp engine): the session leaves no queue or binding behind', SUITE, () => {
  let rabbit: RabbitNode;
  let server: ThumperServer;
  let witness: Witness;

  before(async () => {
    rabbit = await useRabbit();
    server = await startThumper({ THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl, ...LIMITS });
    witness = await Witness.start(await open(server, 'tcp'), 'amqp');
  });
  after(async () => {
    await witness?.close();
    await server?.stop();
    await rabbit?.stop();
  });

  /** Bindings from amq.topic with a routing key under `prefix` (management API): routing keys and their queues. */
  async function bindingsUnder(prefix: string): Promise<{ keys: Set<string>; queues: Set<string> }> {
    assert.ok(rabbit.managementUrl, 'the RabbitMQ node has a management URL');
    const url = new URL('/api/exchanges/%2F/amq.topic/bindings/source', rabbit.managementUrl);
    const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` } });
    assert.equal(res.status, 200);
    const bindings = (await res.json()) as Array<{ destination: string; routing_key: string }>;
    const mine = bindings.filter((b) => b.routing_key.startsWith(prefix));
    return { keys: new Set(mine.map((b) => b.routing_key)), queues: new Set(mine.map((b) => b.destination)) };
  }

  it('a SUBSCRIBE whose binding key is past AMQP\'s 255 bytes: ERROR naming the limit; later subscriptions are served', async () => {
    const c = await open(server, 'ws');
    await login(c);
    c.send('SUBSCRIBE', [['id', 'long'], ['destination', `/topic/${'k'.repeat(256)}`], ['receipt', 'long']]);
    const error = await c.waitFor(isError);
    assert.match(`${getHeader(error, 'message')}\n${error.body.toString()}`, /longer than 255 bytes/);
    // The node's shared queue for amq.topic still binds: every later subscription gets its RECEIPT
    // and its messages.
    const d = await open(server, 'tcp');
    await login(d);
    const prefix = `bad-input-after-long-${randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 10; i++) await d.request('SUBSCRIBE', { id: `a${i}`, destination: `/topic/${prefix}.${i}` });
    for (let i = 0; i < 10; i++) {
      await d.request('SEND', { destination: `/topic/${prefix}.${i}` }, `m${i}`);
      assert.equal((await d.waitFor(isMessageFor(`a${i}`))).body.toString(), `m${i}`);
    }
    await d.close();
    await c.close();
    await witness.check();
  });

  it('1000 subscriptions while it is open, none after it closed; the witness kept working', async () => {
    const prefix = `bad-input-flood-${randomBytes(4).toString('hex')}.`;
    const c = await open(server, 'ws');
    await login(c);
    const frames = Array.from({ length: 10_000 }, (_, i) => frame(`SUBSCRIBE\nid:f${i}\ndestination:/topic/${prefix}${i}\n\n`));
    sendInPieces(c, Buffer.concat(frames), 64 * 1024);
    await takeErrors(c, 9000, 'Too many subscriptions', 'At most 1000 subscriptions per connection');
    await c.request('SEND', { destination: `/topic/${prefix}0` }, 'flood done');
    assert.equal((await c.waitFor(isMessageFor('f0'))).body.toString(), 'flood done');
    await witness.check();
    // Thumper may share a queue between a session's subscriptions: count the bindings, and
    // remember every queue behind them.
    const { keys, queues } = await bindingsUnder(prefix);
    assert.equal(keys.size, 1000);
    assert.ok(queues.size >= 1);

    await c.close();
    let left = queues.size;
    for (let i = 0; i < 100 && left > 0; i++) {
      await sleep(200);
      const names = new Set((await rabbit.listQueues('/')).map((q) => q.name));
      left = [...queues].filter((q) => names.has(q)).length;
    }
    assert.equal(left, 0, 'the closed session\'s subscription queues are gone');
    assert.equal((await bindingsUnder(prefix)).keys.size, 0, 'and so are their bindings');
    await witness.check();
    witness.verify();
  });
});
