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
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const [[a]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  const c = client;
  const received: Buffer[] = [];
  a.on('data', (d: Buffer) => received.push(d));
  const cork = new TickCork(c);
  const frames = Array.from({ length: 200 }, (_, i) => `frame-${i};`);
  for (const f of frames) {
    cork.hold();
    c.write(f);
  }
  // Nothing left while corked: the bytes wait in the socket's buffer until the tick ends.
  assert.equal(c.writableLength, frames.join('').length);
  const expected = frames.join('');
  const deadline = Date.now() + 5000;
  while (Buffer.concat(received).length < expected.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(Buffer.concat(received).toString(), expected);
  c.destroy();
  a.destroy();
  server.close();
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
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const [[peer]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  const chunks: Buffer[] = [];
  peer.on('data', (d: Buffer) => chunks.push(d));
  corkWritesPerTick(client);
  for (let i = 0; i < 50; i++) client.write(`f${i};`);
  assert.equal(client.writableLength, Array.from({ length: 50 }, (_, i) => `f${i};`).join('').length, 'held until the tick ends');
  await nextTick();
  assert.equal(client.writableLength, 0, 'written out at the end of the tick');
  const deadline = Date.now() + 5000;
  while (Buffer.concat(chunks).length < client.bytesWritten && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(Buffer.concat(chunks).toString(), Array.from({ length: 50 }, (_, i) => `f${i};`).join(''));
  client.destroy();
  peer.destroy();
  server.close();
});

test('eager: the first write of a tick is not corked, the second and later ones are, until the tick ends', async () => {
  const s = fakeSocket();
  const cork = new TickCork(s, { eager: true });
  cork.hold();
  cork.wrote(10);
  assert.deepEqual(s.log, [], 'the first frame goes straight out');
  cork.hold();
  cork.wrote(20);
  cork.hold();
  assert.deepEqual(s.log, ['cork']);
  await nextTick();
  assert.deepEqual(s.log, ['cork', 'uncork']);
  // A new tick: its first write goes straight out again.
  cork.hold();
  await nextTick();
  assert.deepEqual(s.log, ['cork', 'uncork']);
});

test('eager, on a real socket: a lone frame leaves in the tick it was written, a burst still in order', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const [[peer]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  const chunks: Buffer[] = [];
  peer.on('data', (d: Buffer) => chunks.push(d));
  const cork = new TickCork(client, { eager: true });
  cork.hold();
  client.write('lone;');
  assert.equal(client.writableLength, 0, 'handed to the kernel at once, not held for the tick');
  const burst = Array.from({ length: 100 }, (_, i) => `b${i};`);
  for (const f of burst) {
    cork.hold();
    client.write(f);
  }
  assert.equal(client.writableLength, burst.join('').length, 'the rest of the tick is held');
  await nextTick();
  const expected = `lone;${burst.join('')}`;
  const deadline = Date.now() + 5000;
  while (Buffer.concat(chunks).length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(Buffer.concat(chunks).toString(), expected);
  client.destroy();
  peer.destroy();
  server.close();
});
