// TickCork: the writes of one tick to one socket leave in one batch, and nothing stays corked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { BATCH_BYTES, BATCH_FRAMES, TickCork, corkWritesPerTick } from '../../broker/src/transport/tick-cork.js';

function fakeSocket() {
  const log: string[] = [];
  return { log, cork: () => log.push('cork'), uncork: () => log.push('uncork') };
}

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

/** A loopback TCP connection: `client` is written to, `received()` is what its peer has read. */
async function loopbackPair() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const [[peer]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  const chunks: Buffer[] = [];
  peer.on('data', (d: Buffer) => chunks.push(d));
  const received = (): string => Buffer.concat(chunks).toString();
  return {
    client,
    received,
    /** Waits (bounded) until the peer has read `length` bytes. */
    async receivedLength(length: number): Promise<void> {
      const deadline = Date.now() + 5000;
      while (received().length < length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
    close(): void {
      client.destroy();
      peer.destroy();
      server.close();
    },
  };
}

test('many holds in one tick cork once and uncork once, after the tick', async () => {
  const s = fakeSocket();
  const cork = new TickCork(s);
  for (let i = 0; i < 5; i++) cork.hold();
  assert.deepEqual(s.log, ['cork']);
  await nextTick();
  assert.deepEqual(s.log, ['cork', 'uncork']);
  cork.hold();
  await nextTick();
  assert.deepEqual(s.log, ['cork', 'uncork', 'cork', 'uncork']);
});

test('release() flushes at once and the tick end does not uncork a second time', async () => {
  const s = fakeSocket();
  const cork = new TickCork(s);
  cork.hold();
  cork.release();
  cork.release();
  assert.deepEqual(s.log, ['cork', 'uncork']);
  await nextTick();
  assert.deepEqual(s.log, ['cork', 'uncork']);
});

test('sockets corked in the same tick are all uncorked at its end', async () => {
  const sockets = [fakeSocket(), fakeSocket(), fakeSocket()];
  const corks = sockets.map((s) => new TickCork(s));
  for (const c of corks) c.hold();
  assert.ok(sockets.every((s) => s.log.join() === 'cork'));
  await nextTick();
  assert.ok(sockets.every((s) => s.log.join() === 'cork,uncork'));
});

test('on a real socket, frames written in one tick arrive complete and in order', async () => {
  const pair = await loopbackPair();
  const c = pair.client;
  const cork = new TickCork(c);
  const frames = Array.from({ length: 200 }, (_, i) => `frame-${i};`);
  for (const f of frames) {
    cork.hold();
    c.write(f);
  }
  // Nothing left while corked: the bytes wait in the socket's buffer until the tick ends.
  assert.equal(c.writableLength, frames.join('').length);
  const expected = frames.join('');
  await pair.receivedLength(expected.length);
  assert.equal(pair.received(), expected);
  pair.close();
});

test('a batch that reaches BATCH_FRAMES or BATCH_BYTES is written out at once', async () => {
  const s = fakeSocket();
  const cork = new TickCork(s);
  for (let i = 0; i < BATCH_FRAMES; i++) {
    cork.hold();
    cork.wrote(i * 10);
  }
  assert.deepEqual(s.log, ['cork', 'uncork']);
  cork.hold();
  cork.wrote(BATCH_BYTES);
  assert.deepEqual(s.log, ['cork', 'uncork', 'cork', 'uncork']);
  cork.hold();
  cork.wrote(10);
  await nextTick();
  assert.deepEqual(s.log, ['cork', 'uncork', 'cork', 'uncork', 'cork', 'uncork']);
});

test('corkWritesPerTick: a library writing frame by frame gets one batch per tick', async () => {
  const pair = await loopbackPair();
  const client = pair.client;
  corkWritesPerTick(client);
  for (let i = 0; i < 50; i++) client.write(`f${i};`);
  assert.equal(client.writableLength, Array.from({ length: 50 }, (_, i) => `f${i};`).join('').length, 'held until the tick ends');
  await nextTick();
  assert.equal(client.writableLength, 0, 'written out at the end of the tick');
  await pair.receivedLength(client.bytesWritten);
  assert.equal(pair.received(), Array.from({ length: 50 }, (_, i) => `f${i};`).join(''));
  pair.close();
});
