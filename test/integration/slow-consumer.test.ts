// Slow consumers on a real gateway (RabbitMQ engine on the shared dev node, and the memory engine):
// one client that stops reading does not stop a fan-out to 50 WebSocket subscribers; its auto-ack
// session ends with ERROR "slow consumer" (read once it reads again) and is counted; a client-ack
// subscriber that stops reading leaves the rest at the broker and, once it reads and acks again,
// gets every message in order. The stalled client is a raw TCP socket we stop reading from: the
// kernel's socket buffers absorb about 4 MB on loopback first, hence messages of 4 KiB.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import { encodeFrame } from '../../broker/src/stomp/encoder.js';
import { getHeader, makeFrame, type Frame } from '../../broker/src/stomp/frame.js';
import { useRabbit } from '../harness/rabbitmq.js';
import { connectWs, isReceipt, login, sleep, type StompConn } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';

const SUITE = { timeout: 240_000 };
const SUBSCRIBERS = 50;
const MESSAGES = 1500;
const BODY_BYTES = 4096;
const MAX_OUTBOUND = 64 * 1024;
const DEADLINE_MS = 120_000;
let n = 0;
const uniq = (p: string) => `${p}-${process.pid}-${++n}`;
const body = (i: number) => `${i}:`.padEnd(BODY_BYTES, 'x');
const indexOf = (f: Frame) => Number(f.body.toString('latin1', 0, 12).split(':')[0]);

/** A STOMP client over raw TCP whose reading we stop and start. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  readonly #socket: Socket;
  readonly #decoder = new StompDecoder({ maxFrameBytes: 64 * 1024 * 1024, maxFrameBytesBeforeConnect: 64 * 1024 * 1024 });
  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#decoder.setVersion('1.2');
    this.#decoder.setAuthenticated();
    socket.on('data', (chunk: Buffer) => {
      for (const e of this.#decoder.push(chunk).events) if (e.type === 'frame') this.frames.push(e.frame);
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }
  static async open(port: number): Promise<RawClient> {
    const socket = netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket);
    c.send('CONNECT', { 'accept-version': '1.2', host: '/', login: 'guest', passcode: 'guest', 'heart-beat': '0,0' });
    await c.until((f) => f.command === 'CONNECTED', 'CONNECTED');
    return c;
  }
  send(command: string, headers: Record<string, string>, text = ''): void {
    this.#socket.write(encodeFrame(makeFrame(command, Object.entries(headers), Buffer.from(text)), '1.2'));
  }
  pause(): void {
    this.#socket.pause();
  }
  resume(): void {
    this.#socket.resume();
  }
  async until(pred: (f: Frame) => boolean, what: string, deadlineMs = 10_000): Promise<Frame> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() > end || this.closed) throw new Error(`no ${what}; got ${this.frames.map((x) => x.command).join(',')}`);
      await sleep(20);
    }
  }
  end(): void {
    this.#socket.destroy();
  }
}

/** One sample of the gateway's /metrics text. */
async function metric(server: ThumperServer, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

interface Publisher {
  /** Publishes messages [from, to) to the exchange/routing key behind `destination`. */
  publish(destination: string, from: number, to: number): Promise<void>;
  /** Messages ready in a queue (undefined: the engine cannot tell from outside). */
  ready(queue: string): Promise<number | undefined>;
  close(): Promise<void>;
}

async function amqpPublisher(url: string): Promise<Publisher> {
  const conn: ChannelModel = await amqp.connect(url);
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  return {
    async publish(destination, from, to) {
      const [, kind, name] = destination.split('/');
      const [exchange, key] = kind === 'topic' ? ['amq.topic', name!] : ['', name!];
      for (let i = from; i < to; i++) ch.publish(exchange, key, Buffer.from(body(i)));
      await ch.waitForConfirms();
    },
    async ready(queue) {
      return (await ch.checkQueue(queue)).messageCount;
    },
    async close() {
      await conn.close();
    },
  };
}

async function stompPublisher(server: ThumperServer): Promise<Publisher> {
  const conn = await connectWs(server.wsUrl);
  await login(conn, { heartBeat: '0,0' });
  return {
    async publish(destination, from, to) {
      for (let i = from; i < to; i++) conn.send('SEND', i === to - 1 ? { destination, receipt: `p${i}` } : { destination }, body(i));
      await conn.waitFor(isReceipt(`p${to - 1}`), 30_000);
    },
    ready: async () => undefined,
    close: () => conn.close(),
  };
}

function assertInOrder(frames: readonly Frame[], what: string): void {
  const got = frames.filter((f) => f.command === 'MESSAGE').map(indexOf);
  assert.equal(got.length, MESSAGES, `${what}: every message`);
  for (let i = 0; i < got.length; i++) if (got[i] !== i) assert.fail(`${what}: message ${i} is ${got[i]}`);
}

function suite(engine: 'amqp' | 'memory'): void {
  describe(`slow consumers (${engine} engine)`, SUITE, () => {
    let server: ThumperServer;
    let publisher: Publisher;
    before(async () => {
      const env: Record<string, string> = { THUMPER_STOMP_MAX_OUTBOUND_BYTES: String(MAX_OUTBOUND), THUMPER_TCP_ENABLED: 'true' };
      if (engine === 'amqp') {
        const rabbit = await useRabbit();
        server = await startThumper({ ...env, THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl });
        publisher = await amqpPublisher(rabbit.amqpUrl);
      } else {
        server = await startThumper({ ...env, THUMPER_ENGINE: 'memory' });
        publisher = await stompPublisher(server);
      }
    });
    after(async () => {
      await publisher?.close();
      await server?.stop();
    });

    it('one stalled auto subscriber ends with ERROR "slow consumer"; 50 others get every message in order', SUITE, async () => {
      const destination = uniq('/topic/fanout');
      const readers: StompConn[] = [];
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const c = await connectWs(server.wsUrl);
        await login(c, { heartBeat: '0,0' });
        c.send('SUBSCRIBE', { id: 's', destination, receipt: 'sub' });
        await c.waitFor(isReceipt('sub'));
        readers.push(c);
      }
      const stalled = await RawClient.open(server.tcpPort!);
      stalled.send('SUBSCRIBE', { id: 'stalled', destination, receipt: 'sub' });
      await stalled.until((f) => f.command === 'RECEIPT', 'RECEIPT');
      stalled.pause();
      const before = await metric(server, 'thumper_slow_consumer_disconnects_total');

      // The readers share this process's event loop with the gateway: paced, so none of them
      // falls 4 MB behind and becomes a slow consumer itself.
      const count = (c: StompConn) => c.frames.filter((f) => f.command === 'MESSAGE').length;
      const published = (async () => {
        for (let from = 0; from < MESSAGES; from += 100) {
          await publisher.publish(destination, from, Math.min(from + 100, MESSAGES));
          const until = Date.now() + 30_000;
          while (Math.min(...readers.map(count)) < from - 200 && Date.now() < until) await sleep(10);
        }
      })();
      // Read the ERROR soon after it is written: a close that cannot flush is forced after 5 s.
      const end = Date.now() + DEADLINE_MS;
      while ((await metric(server, 'thumper_slow_consumer_disconnects_total')) === before && Date.now() < end) await sleep(50);
      stalled.resume();
      await published;
      const err = await stalled.until((f) => f.command === 'ERROR', 'ERROR', 20_000);
      assert.equal(getHeader(err, 'message'), 'slow consumer');
      assert.equal(getHeader(err, 'subscription'), 'stalled');
      assert.equal(await metric(server, 'thumper_slow_consumer_disconnects_total'), before + 1);
      const got = stalled.frames.filter((f) => f.command === 'MESSAGE').length;
      assert.ok(got < MESSAGES, `the stalled client got ${got} of ${MESSAGES} before its ERROR`);

      for (const [i, c] of readers.entries()) {
        while (count(c) < MESSAGES && Date.now() < end && !c.isClosed) await sleep(50);
        assertInOrder(c.frames, `subscriber ${i}`);
      }
      await Promise.all(readers.map((c) => c.close()));
      stalled.end();
    });

    it('a stalled client-ack subscriber leaves messages at the broker and, reading again, gets all in order', SUITE, async () => {
      const name = uniq('flow');
      const destination = `/queue/${name}`;
      const client = await RawClient.open(server.tcpPort!);
      client.send('SUBSCRIBE', { id: 'q', destination, ack: 'client-individual', receipt: 'sub' });
      await client.until((f) => f.command === 'RECEIPT', 'RECEIPT');
      client.pause();
      const pausesBefore = await metric(server, 'thumper_flow_pauses_total', '{direction="outbound"}');
      // In batches until the session has paused its deliveries; then the rest.
      let sent = 0;
      while (sent < MESSAGES - 200 && (await metric(server, 'thumper_flow_pauses_total', '{direction="outbound"}')) === pausesBefore) {
        await publisher.publish(destination, sent, sent + 50);
        sent += 50;
      }
      assert.ok(sent < MESSAGES - 200, `paused after ${sent} messages`);
      await publisher.publish(destination, sent, MESSAGES);
      const ready = await publisher.ready(name);
      if (ready !== undefined) assert.ok(ready >= 100, `${ready} of the last ${MESSAGES - sent} wait at the broker, not in Thumper`);

      client.resume();
      const end = Date.now() + DEADLINE_MS;
      let acked = 0;
      while (Date.now() < end && !client.closed) {
        const messages = client.frames.filter((f) => f.command === 'MESSAGE');
        for (; acked < messages.length; acked++) client.send('ACK', { id: getHeader(messages[acked]!, 'ack')! });
        if (acked >= MESSAGES) break;
        await sleep(20);
      }
      assertInOrder(client.frames, 'client-ack subscriber');
      assert.equal(client.frames.filter((f) => f.command === 'ERROR').length, 0);
      client.send('DISCONNECT', { receipt: 'bye' });
      await client.until((f) => f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === 'bye', 'DISCONNECT receipt');
      client.end();
    });
  });
}

suite('amqp');
suite('memory');
