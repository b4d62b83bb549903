// Memory-engine behaviour that the shared contract cannot check on RabbitMQ: lifecycle, vhosts and
// configured exchanges, the NOT_SUPPORTED queue types, its safety bound, asynchronous delivery and
// flow control, and the engine-specific edges of dead-lettering.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { EngineError, type EngineSession } from '../../broker/src/engine/engine.js';
import { MemoryEngine, type MemoryEngineOptions } from '../../broker/src/engine/memory/memory-engine.js';
import { OUTBOX_LIMIT } from '../../broker/src/engine/memory/memory-session.js';
import type { StompError } from '../../broker/src/errors.js';
import { expectFatal, Inbox, message, queueSpec } from '../contract/contract-helpers.js';

const silent = pino({ level: 'silent' });
const engines: MemoryEngine[] = [];

afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function startEngine(options: Partial<MemoryEngineOptions> = {}, log: Logger = silent): Promise<MemoryEngine> {
  const engine = new MemoryEngine(options, log);
  engines.push(engine);
  await engine.start();
  return engine;
}

interface Opened {
  session: EngineSession;
  closed: StompError[];
  cancelled: string[];
}

async function open(engine: MemoryEngine, vhost = '/'): Promise<Opened> {
  const closed: StompError[] = [];
  const cancelled: string[] = [];
  const session = await engine.openSession(
    { vhost, username: 'u', sessionId: 's', log: silent },
    { onClosed: (e) => closed.push(e), onCancelled: (t) => cancelled.push(t) },
  );
  return { session, closed, cancelled };
}

function memoryLog(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  return { log, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('memory engine lifecycle', () => {
  it('serves sessions only between start() and stop()', async () => {
    const engine = new MemoryEngine({}, silent);
    engines.push(engine);
    assert.equal(engine.kind, 'memory');
    assert.equal(engine.isReady(), false);
    await assert.rejects(open(engine), (err: unknown) => err instanceof EngineError && err.error.code === 'ENGINE_UNAVAILABLE');
    await engine.start();
    assert.equal(engine.isReady(), true);
    await open(engine);
    await engine.stop();
    assert.equal(engine.isReady(), false);
    await assert.rejects(open(engine), EngineError);
  });

  it('stop() closes every session with ENGINE_UNAVAILABLE "server shutting down" and drops all state', async () => {
    const engine = await startEngine();
    const a = await open(engine);
    const b = await open(engine);
    const q = await a.session.declareQueue(queueSpec('q', { arguments: { 'x-message-ttl': 60_000, 'x-expires': 60_000 } }));
    await a.session.publish('', q, message('m'), false);
    await b.session.consume(q, { noAck: false, args: {} }, () => undefined);
    assert.deepEqual(engine.stats(), { sessions: 2, queues: 1 });
    await engine.stop();
    for (const peer of [a, b]) {
      assert.equal(peer.closed.length, 1);
      assert.equal(peer.closed[0]?.code, 'ENGINE_UNAVAILABLE');
      assert.equal(peer.closed[0]?.detail, 'server shutting down');
      assert.equal(peer.closed[0]?.fatal, true);
      await expectFatal(peer.session.checkQueue(q), 'ENGINE_UNAVAILABLE');
    }
    assert.deepEqual(engine.stats(), { sessions: 0, queues: 0 });
    await engine.stop();
  });

  it('a restarted engine starts empty', async () => {
    const engine = await startEngine();
    const a = await open(engine);
    await a.session.declareQueue(queueSpec('kept?'));
    await engine.stop();
    await engine.start();
    const b = await open(engine);
    await expectFatal(b.session.checkQueue('kept?'), 'NOT_FOUND');
  });

  it('closed sessions leave nothing behind: exclusive and auto-delete queues go, the session is forgotten', async () => {
    const engine = await startEngine();
    const a = await open(engine);
    const exclusive = await a.session.declareQueue(queueSpec('', { exclusive: true, autoDelete: true }));
    const auto = await a.session.declareQueue(queueSpec('auto', { autoDelete: true }));
    await a.session.declareQueue(queueSpec('stays'));
    await a.session.consume(auto, { noAck: true, args: {} }, () => undefined);
    await a.session.consume(exclusive, { noAck: true, args: {} }, () => undefined);
    assert.deepEqual(engine.stats(), { sessions: 1, queues: 3 });
    await a.session.close();
    await a.session.close();
    assert.deepEqual(engine.stats(), { sessions: 0, queues: 1 });
    assert.deepEqual(a.closed, [], 'a requested close is not reported through onClosed');
    await assert.rejects(a.session.publish('', 'stays', message('x'), false), EngineError);
  });

  it('rejects inconsistent configuration at construction', () => {
    assert.throws(() => new MemoryEngine({ vhosts: [] }, silent), /at least one vhost/);
    assert.throws(() => new MemoryEngine({ maxQueueMessages: 0 }, silent), /maxQueueMessages/);
    assert.throws(() => new MemoryEngine({ exchanges: [{ name: 'amq.topic', type: 'fanout' }] }, silent), /another type/);
    assert.throws(() => new MemoryEngine({ exchanges: [{ name: 'x', type: 'topic', vhost: 'nope' }] }, silent), /unknown vhost/);
    assert.throws(() => new MemoryEngine({ exchanges: [{ name: '', type: 'direct' }] }, silent), /default exchange/);
  });
});

describe('memory engine vhosts and exchanges', () => {
  it('a session for an unconfigured vhost is refused with NOT_FOUND', async () => {
    const engine = await startEngine({ vhosts: ['/', 'dev'] });
    await assert.rejects(open(engine, 'prod'), (err: unknown) => {
      assert.ok(err instanceof EngineError);
      assert.equal(err.error.code, 'NOT_FOUND');
      assert.equal(err.error.detail, 'vhost prod not found');
      return true;
    });
  });

  it('configured exchanges exist in every vhost or only the named one; vhosts do not share queues', async () => {
    const engine = await startEngine({
      vhosts: ['/', 'dev'],
      exchanges: [
        { name: 'feed', type: 'topic' },
        { name: 'dev-only', type: 'fanout', vhost: 'dev' },
      ],
    });
    const root = await open(engine, '/');
    const dev = await open(engine, 'dev');
    for (const peer of [root, dev]) {
      const q = await peer.session.declareQueue(queueSpec('feed-q'));
      await peer.session.bindQueue(q, 'feed', 'user_x.#');
    }
    const inbox = new Inbox();
    await dev.session.consume('feed-q', { noAck: true, args: {} }, inbox.onDelivery);
    await dev.session.publish('dev-only', 'k', message('fanout'), true);
    await dev.session.publish('feed', 'user_x.news', message('dev news'), true);
    await root.session.publish('feed', 'user_x.news', message('root news'), true);
    await dev.session.bindQueue('feed-q', 'dev-only', '');
    await dev.session.publish('dev-only', 'k', message('fanout bound'), true);
    await inbox.waitFor(2);
    assert.deepEqual(inbox.bodies, ['dev news', 'fanout bound']);
    await expectFatal(root.session.publish('dev-only', 'k', message('x'), true), 'NOT_FOUND', "NOT_FOUND - no exchange 'dev-only' in vhost '/'");
  });
});

describe('memory engine queue types and arguments', () => {
  for (const type of ['quorum', 'stream'] as const) {
    it(`x-queue-type ${type} is NOT_SUPPORTED, non-fatal, pointing at RabbitMQ`, async () => {
      const engine = await startEngine();
      const peer = await open(engine);
      await assert.rejects(peer.session.declareQueue(queueSpec('q', { durable: true, arguments: { 'x-queue-type': type } })), (err: unknown) => {
        assert.ok(err instanceof EngineError);
        assert.equal(err.error.code, 'NOT_SUPPORTED');
        assert.equal(err.error.fatal, false);
        assert.match(err.error.detail, new RegExp(`no ${type} queues`));
        assert.match(err.error.detail, /RabbitMQ/);
        return true;
      });
      assert.equal(await peer.session.declareQueue(queueSpec('q', { arguments: { 'x-queue-type': 'classic' } })), 'q');
      assert.deepEqual(peer.closed, []);
    });
  }

  it('invalid arguments on a new queue are a fatal PRECONDITION_FAILED', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    await expectFatal(
      peer.session.declareQueue(queueSpec('p', { arguments: { 'x-max-priority': 300 } })),
      'PRECONDITION_FAILED',
      "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'p' in vhost '/': {max_value_exceeded,300}",
    );
    assert.deepEqual(engine.stats().queues, 0);
  });

  it('an invalid prefetch count is a non-fatal PROCESSING_ERROR', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    for (const bad of [-1, 1.5, 65_536]) {
      await assert.rejects(peer.session.setPrefetch(bad), (err: unknown) => {
        assert.ok(err instanceof EngineError);
        assert.equal(err.error.code, 'PROCESSING_ERROR');
        assert.equal(err.error.fatal, false);
        return true;
      });
    }
    await peer.session.setPrefetch(65_535);
  });

  it('x-max-length-bytes drops whole messages from the head until the bodies fit', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('bytes', { arguments: { 'x-max-length-bytes': 10 } }));
    for (const body of ['aaaa', 'bbbb', 'cccc', '']) await peer.session.publish('', q, message(body), true);
    const inbox = new Inbox();
    await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
    await inbox.waitFor(3);
    assert.deepEqual(inbox.bodies, ['bbbb', 'cccc', '']);
  });

  it('messages dropped by x-max-length are dead-lettered with reason maxlen', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const dead = await peer.session.declareQueue(queueSpec('dead'));
    const q = await peer.session.declareQueue(
      queueSpec('short', { arguments: { 'x-max-length': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead } }),
    );
    await peer.session.publish('', q, message('first'), true);
    await peer.session.publish('', q, message('second'), true);
    const inbox = new Inbox();
    await peer.session.consume(dead, { noAck: true, args: {} }, inbox.onDelivery);
    const [d] = await inbox.waitFor(1);
    assert.equal(d?.body.toString(), 'first');
    assert.equal(d?.properties.headers['x-first-death-reason'], 'maxlen');
  });

  it('maxQueueMessages bounds a queue without x-max-length: the oldest go, with one warning', async () => {
    const { log, lines } = memoryLog();
    const engine = await startEngine({ maxQueueMessages: 3 }, log);
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('bounded', { arguments: { 'x-max-length': 10 } }));
    for (let i = 1; i <= 6; i++) await peer.session.publish('', q, message(`m${i}`), true);
    const inbox = new Inbox();
    await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
    await inbox.waitFor(3);
    assert.deepEqual(inbox.bodies, ['m4', 'm5', 'm6']);
    const warnings = lines().filter((l) => l['level'] === 40);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.['queue'], 'bounded');
  });

  it('a dead-letter loop without a client rejection is cut instead of spinning', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(
      queueSpec('loop', { arguments: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'loop' } }),
    );
    await peer.session.publish('', q, message('expires once'), true);
    await sleep(100); // let it expire; a wait, not an assertion
    const inbox = new Inbox();
    await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
    await peer.session.publish('', q, message('marker', { expiration: '60000' }), true);
    await inbox.waitFor(1);
    assert.deepEqual(inbox.bodies, ['marker']);
  });

  it('a missing dead-letter exchange drops the message without an error', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('dl-missing', { arguments: { 'x-dead-letter-exchange': 'nowhere' } }));
    const inbox = new Inbox();
    await peer.session.consume(q, { noAck: false, args: {} }, inbox.onDelivery);
    await peer.session.publish('', q, message('x'), true);
    const [d] = await inbox.waitFor(1);
    peer.session.nack(d?.deliveryTag ?? -1, false, false);
    await peer.session.publish('', q, message('y'), true);
    await inbox.waitFor(2);
    assert.deepEqual(inbox.bodies, ['x', 'y']);
    assert.deepEqual(peer.closed, []);
  });
});

describe('memory engine delivery', () => {
  it('never calls back inside publish: deliveries arrive after the publishing call returns', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('async'));
    const inbox = new Inbox();
    await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
    const published = peer.session.publish('', q, message('later'), true);
    assert.equal(inbox.deliveries.length, 0);
    await published;
    assert.equal(inbox.deliveries.length, 0, 'not even in the microtasks that resolve publish');
    await inbox.waitFor(1);
  });

  it('a consumer without prefetch takes a bounded batch at a time: order kept, competitors get a share', async () => {
    const engine = await startEngine();
    const a = await open(engine);
    const b = await open(engine);
    const q = await a.session.declareQueue(queueSpec('backlog'));
    const total = OUTBOX_LIMIT * 3 + 7;
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < total; i++) publishes.push(a.session.publish('', q, message(String(i)), false));
    await Promise.all(publishes);
    const first = new Inbox();
    const second = new Inbox();
    const all = new Inbox();
    await a.session.consume(q, { noAck: true, args: {} }, (d) => {
      first.onDelivery(d);
      all.onDelivery(d);
    });
    await b.session.consume(q, { noAck: true, args: {} }, (d) => {
      second.onDelivery(d);
      all.onDelivery(d);
    });
    await all.waitFor(total);
    const ascending = (xs: number[]) => xs.every((x, i) => i === 0 || x > (xs[i - 1] ?? -1));
    assert.ok(ascending(first.bodies.map(Number)), 'per-queue order for the first consumer');
    assert.ok(ascending(second.bodies.map(Number)), 'per-queue order for the second consumer');
    assert.ok(second.deliveries.length >= OUTBOX_LIMIT, `the later consumer got ${second.deliveries.length}`);
    assert.equal(new Set(all.bodies).size, total, 'each message once');
  });

  it('acks and nacks from inside the delivery callback are safe', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('reentrant'));
    await peer.session.setPrefetch(1);
    const bodies: string[] = [];
    let nacked = false;
    const done = new Promise<void>((resolve) => {
      void peer.session.consume(q, { noAck: false, args: {} }, (d) => {
        bodies.push(`${d.body.toString()}${d.redelivered ? '*' : ''}`);
        if (d.body.toString() === 'b' && !nacked) {
          nacked = true;
          peer.session.nack(d.deliveryTag, false, true);
        } else {
          peer.session.ack(d.deliveryTag, false);
        }
        if (bodies.length === 4) resolve();
      });
    });
    for (const body of ['a', 'b', 'c']) await peer.session.publish('', q, message(body), false);
    await done;
    assert.deepEqual(bodies, ['a', 'b', 'b*', 'c']);
  });

  it('a throwing callback is logged and does not stop later deliveries', async () => {
    const { log, lines } = memoryLog();
    const engine = await startEngine({}, log);
    const closed: StompError[] = [];
    const session = await engine.openSession(
      { vhost: '/', username: 'u', sessionId: 's', log },
      { onClosed: (e) => closed.push(e), onCancelled: () => undefined },
    );
    const q = await session.declareQueue(queueSpec('throws'));
    const inbox = new Inbox();
    await session.consume(q, { noAck: true, args: {} }, (d) => {
      inbox.onDelivery(d);
      if (d.body.toString() === 'boom') throw new Error('consumer bug');
    });
    await session.publish('', q, message('boom'), false);
    await session.publish('', q, message('fine'), false);
    await inbox.waitFor(2);
    assert.ok(lines().some((l) => l['level'] === 50 && l['msg'] === 'engine session callback threw'));
    assert.deepEqual(closed, []);
  });

  it('deliveries handed out before cancel reach the callback before cancel() resolves', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('in-flight'));
    await peer.session.publish('', q, message('queued'), true);
    const inbox = new Inbox();
    const tag = await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
    await peer.session.cancel(tag);
    assert.deepEqual(inbox.bodies, ['queued']);
    await peer.session.cancel(tag);
  });

  it('passes userId through unchecked (the STOMP session enforces user-id, as it knows the user tags)', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const q = await peer.session.declareQueue(queueSpec('user-id'));
    const inbox = new Inbox();
    await peer.session.consume(q, { noAck: true, args: {} }, inbox.onDelivery);
    await peer.session.publish('', q, message('x', { userId: 'someone-else' }), true);
    const [d] = await inbox.waitFor(1);
    assert.equal(d?.properties.userId, 'someone-else');
  });

  it('a fatal error is reported once: by the failing call, later calls repeat it, onClosed stays silent', async () => {
    const engine = await startEngine();
    const peer = await open(engine);
    const error = await expectFatal(peer.session.checkQueue('nope'), 'NOT_FOUND');
    await expectFatal(peer.session.consume('x', { noAck: true, args: {} }, () => undefined), 'NOT_FOUND', error.detail);
    peer.session.ack(1, false);
    await peer.session.close();
    await sleep(0);
    assert.deepEqual(peer.closed, []);
    assert.equal(engine.stats().sessions, 0);
  });
});
