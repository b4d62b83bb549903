// Backpressure in the session, over an in-memory transport whose client can stop reading: an
// auto-ack subscriber over stomp.maxOutboundBytes ends with ERROR "slow consumer" (flushed, counted);
// a client-ack subscriber pauses the engine (setFlow) and gets every message, in order, once it
// reads again; a full inbox pauses reading and resumes it; a transport that cannot pause is bounded.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allowAllAuthorizer } from '../../broker/src/auth/allow-all.js';
import type { Engine, EngineSession } from '../../broker/src/engine/engine.js';
import { createMetrics, type Metrics } from '../../broker/src/server/metrics.js';
import { exceedsBound, outboundWaterMarks } from '../../broker/src/session/outbound-flow.js';
import type { FlowOptions, SessionOptions } from '../../broker/src/session/options.js';
import { startSession, type SessionHandle } from '../../broker/src/session/session.js';
import { getHeader, type Frame } from '../../broker/src/stomp/frame.js';
import { TestClient } from '../helpers/memory-transport.js';
import { memoryEngine, silentLog, TEST_SESSION_OPTIONS } from '../helpers/session-fixture.js';

const FLOW: FlowOptions = { maxOutboundBytes: 4096, maxOutboundFrames: 1000, maxInboxFrames: 4, maxInboxBytes: 64 * 1024 };
const isFrame = (command: string, header?: [string, string]) => (f: Frame) =>
  f.command === command && (header === undefined || getHeader(f, header[0]) === header[1]);
let n = 0;
const uniq = (p: string) => `${p}-${process.pid}-${++n}`;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An engine whose sessions record every setFlow call. */
function recordingEngine(engine: Engine, flows: boolean[]): Engine {
  return new Proxy(engine, {
    get(target, prop) {
      if (prop !== 'openSession') return Reflect.get(target, prop, target) as unknown;
      return async (...args: Parameters<Engine['openSession']>) => {
        const session = await target.openSession(...args);
        return new Proxy(session, {
          get(s, p) {
            if (p === 'setFlow') return (active: boolean) => (flows.push(active), s.setFlow(active));
            const v = Reflect.get(s, p, s) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(s) : v;
          },
        }) as EngineSession;
      };
    },
  });
}

type Client = TestClient & { session: SessionHandle };

describe('session flow: outbound bound', () => {
  let engine: Engine;
  let metrics: Metrics;
  const flows: boolean[] = [];
  let options: SessionOptions;
  const open = async (flow: FlowOptions = FLOW): Promise<Client> => {
    const c = new TestClient() as Client;
    c.session = startSession({
      transport: c.transport,
      engine: recordingEngine(engine, flows),
      authorizer: allowAllAuthorizer(),
      options: { ...options, flow },
      log: silentLog,
      metrics,
    });
    c.send('CONNECT', { 'accept-version': '1.2', host: '/' });
    await c.waitFor(isFrame('CONNECTED'));
    return c;
  };
  before(async () => {
    engine = await memoryEngine();
    metrics = createMetrics();
    options = TEST_SESSION_OPTIONS;
  });
  after(() => engine.stop());

  it('the water marks are the bound, and drain at half of it; an empty backlog takes any frame', () => {
    assert.deepEqual(outboundWaterMarks(FLOW), { highBytes: 4096, lowBytes: 2048, highFrames: 1000, lowFrames: 500 });
    assert.equal(exceedsBound(FLOW, 0, 0, 1_000_000), false, 'one frame always fits');
    assert.equal(exceedsBound(FLOW, 100, 1, 3996), false);
    assert.equal(exceedsBound(FLOW, 100, 1, 3997), true);
    assert.equal(exceedsBound(FLOW, 0, 1000, 1), true, 'frames count too');
  });

  it('an auto subscriber that stops reading gets ERROR "slow consumer" (flushed past the bound), is closed and counted', async () => {
    const slow = await open();
    const topic = uniq('/topic/slow');
    slow.send('SUBSCRIBE', { id: 's1', destination: topic, receipt: 'sub' });
    await slow.waitFor(isFrame('RECEIPT', ['receipt-id', 'sub']));
    slow.transport.stalled = true;
    const pub = await open();
    const body = 'x'.repeat(512);
    for (let i = 0; i < 40; i++) pub.send('SEND', { destination: topic, receipt: `p${i}` }, body);
    await pub.waitFor(isFrame('RECEIPT', ['receipt-id', 'p39']));
    for (let i = 0; i < 100 && !slow.isClosed; i++) await tick();
    assert.equal(slow.isClosed, true, 'the slow session is closed');
    assert.equal(slow.transport.closed?.code, 1008);
    assert.ok(slow.transport.bufferedBytes() > FLOW.maxOutboundBytes - 1024, 'the backlog had reached the bound');
    slow.transport.unstall();
    const err = await slow.waitFor(isFrame('ERROR'));
    assert.equal(getHeader(err, 'message'), 'slow consumer');
    assert.equal(getHeader(err, 'subscription'), 's1');
    assert.match(err.body.toString(), /stomp\.maxOutboundBytes=4096/);
    const messages = slow.frames.filter(isFrame('MESSAGE'));
    assert.ok(messages.length > 0 && messages.length < 40, `${messages.length} MESSAGEs before the ERROR`);
    assert.equal(slow.frames.at(-1), err, 'the ERROR is the last frame');
    const counted = (await metrics.registry.getSingleMetric('thumper_slow_consumer_disconnects_total')?.get())?.values[0]?.value;
    assert.equal(counted, 1);
    const closed = (await metrics.registry.getSingleMetric('thumper_sessions_closed_total')?.get())?.values.find((v) => v.labels.reason === 'slow-consumer');
    assert.equal(closed?.value, 1);
    assert.equal(pub.isClosed, false, 'the publisher is untouched');
  });

  it('a client-ack subscriber that stops reading pauses the engine, loses nothing and gets every message in order', async () => {
    flows.length = 0;
    const c = await open();
    const queue = uniq('/queue/flow');
    c.send('SUBSCRIBE', { id: 'q', destination: queue, ack: 'client-individual', receipt: 'sub' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'sub']));
    c.transport.stalled = true;
    const pub = await open();
    const total = 200;
    // In batches, so deliveries reach the session while the rest is published: without a prefetch
    // the engine hands out whatever is ready, and a pause stops only what it has not sent yet.
    for (let i = 0; i < total; i++) {
      pub.send('SEND', { destination: queue, receipt: `p${i}` }, `${i}:${'y'.repeat(500)}`);
      if (i % 5 === 4) {
        await pub.waitFor(isFrame('RECEIPT', ['receipt-id', `p${i}`]));
        await tick();
      }
    }
    for (let i = 0; i < 50; i++) await tick();
    assert.deepEqual(flows, [false], 'paused once');
    const heldBack = c.transport.bufferedFrames();
    assert.ok(heldBack < 20, `only what was in flight went past the bound (${heldBack} of ${total}; the bound is about 8)`);
    assert.equal(c.isClosed, false);
    // The client reads a little at a time: drains resume the engine, which pauses again at the bound.
    for (let i = 0; i < 2000 && c.frames.filter(isFrame('MESSAGE')).length < total; i++) {
      c.transport.flush(4);
      await tick();
    }
    c.transport.unstall();
    const messages = await c.collect('MESSAGE', total);
    assert.equal(messages.length, total, 'none dropped, none doubled');
    assert.deepEqual(
      messages.map((m) => Number(m.body.toString().split(':')[0])),
      Array.from({ length: total }, (_, i) => i),
      'in order',
    );
    assert.ok(flows.includes(true), 'resumed after a drain');
    assert.equal(flows.at(-1), true, 'left resumed');
    assert.ok(c.transport.drains >= 1);
    for (const m of messages) c.send('ACK', { id: getHeader(m, 'ack')! });
    c.send('DISCONNECT', { receipt: 'bye' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'bye']));
    const paused = (await metrics.registry.getSingleMetric('thumper_flow_pauses_total')?.get())?.values.find((v) => v.labels.direction === 'outbound');
    assert.ok((paused?.value ?? 0) >= 1);
  });
});

describe('session flow: inbox bound', () => {
  let engine: Engine;
  before(async () => (engine = await memoryEngine()));
  after(() => engine.stop());
  const open = async (pausable: boolean, flow: FlowOptions = FLOW): Promise<Client> => {
    const c = new TestClient() as Client;
    c.transport.pausable = pausable;
    c.session = startSession({ transport: c.transport, engine, authorizer: allowAllAuthorizer(), options: { ...TEST_SESSION_OPTIONS, flow }, log: silentLog });
    c.send('CONNECT', { 'accept-version': '1.2', host: '/' });
    await c.waitFor(isFrame('CONNECTED'));
    return c;
  };
  const burst = (count: number, destination: string): Buffer =>
    Buffer.concat(Array.from({ length: count }, (_, i) => Buffer.from(`SEND\ndestination:${destination}\nreceipt:r${i}\n\n${i}\0`)));

  it('frames waiting past maxInboxFrames pause reading; it resumes once they are handled', async () => {
    const c = await open(true);
    c.sendRaw(burst(20, uniq('/queue/in')));
    assert.equal(c.transport.paused, true, 'paused while 20 frames wait (bound 4)');
    assert.equal(c.transport.pauses, 1);
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'r19']));
    assert.equal(c.transport.paused, false, 'reading again');
    assert.equal(c.transport.resumes, 1);
    assert.equal(c.frames.filter(isFrame('RECEIPT')).length, 20, 'every frame handled');
  });

  it('a transport that cannot pause is bounded: far past the bound the session ends with an ERROR', async () => {
    const ok = await open(false);
    ok.sendRaw(burst(60, uniq('/queue/in')));
    await ok.waitFor(isFrame('RECEIPT', ['receipt-id', 'r59']));
    assert.equal(ok.isClosed, false, '60 frames (under 16 x 4) are taken');
    const flood = await open(false);
    flood.sendRaw(burst(100, uniq('/queue/in')));
    const err = await flood.waitFor(isFrame('ERROR'));
    assert.equal(getHeader(err, 'message'), 'Too many frames pending');
    await flood.waitForClose();
  });
});
