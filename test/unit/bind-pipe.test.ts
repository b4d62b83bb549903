// BindPipe: how calls are cut into batches, what goes out no-wait and what waits, and how a failed
// batch is settled call by call. The channel is a stand-in that keeps a broker's one rule that
// matters here: a channel runs its methods in order, and one refused method closes it, so nothing
// after it on that channel is answered. RabbitMQ itself is in test/integration/shared-fanout.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Channel } from 'amqplib';
import { bindAll, BindPipe, MAX_BATCH, type BindPipeHooks } from '../../broker/src/engine/amqp/bind-pipe.js';

const BIND = (50 << 16) | 20;

interface Sent {
  readonly channel: number;
  readonly call: string;
  readonly wait: boolean;
}

/** Refuses any method whose key is in `refused`; answers a waiting call on the next turn. */
class FakeChannel extends EventEmitter {
  closed = false;
  #failed: Error | undefined;

  constructor(
    readonly id: number,
    readonly log: Sent[],
    readonly refused: ReadonlySet<string>,
    /** Sends and answers, in the order they happened. */
    readonly events: string[],
  ) {
    super();
  }

  /** Only queue.bind has a no-wait flag; RabbitMQ would answer anything else, to amqplib's surprise. */
  sendImmediately(method: number, fields: { routingKey: string; nowait: boolean }): void {
    if (this.closed) throw new Error('Channel closed');
    assert.equal(method, BIND, 'only queue.bind may be sent no-wait');
    assert.equal(fields.nowait, true);
    this.#apply('bind', fields.routingKey, false);
  }

  bindQueue(_q: string, _x: string, key: string): Promise<void> {
    return this.#call('bind', key);
  }

  unbindQueue(_q: string, _x: string, key: string): Promise<void> {
    return this.#call('unbind', key);
  }

  close(): Promise<void> {
    if (!this.closed) this.#close();
    return Promise.resolve();
  }

  #apply(kind: string, key: string, wait: boolean): void {
    this.log.push({ channel: this.id, call: `${kind} ${key}`, wait });
    this.events.push(`${kind} ${key}`);
    if (this.#failed === undefined && this.refused.has(key)) this.#failed = new Error(`404 no exchange for ${key}`);
  }

  #call(kind: string, key: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('Channel closed'));
    this.#apply(kind, key, true);
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        const failed = this.#failed;
        if (failed === undefined) {
          this.events.push(`answered ${kind} ${key}`);
          return resolve();
        }
        this.emit('error', failed);
        this.#close();
        reject(failed);
      }),
    );
  }

  #close(): void {
    this.closed = true;
    this.emit('close');
  }
}

function pipeWith(options: { refused?: string[]; ready?: () => Promise<unknown>; noWait?: boolean } = {}) {
  const observed: { kind: string; seconds: number }[] = [];
  const log: Sent[] = [];
  const events: string[] = [];
  const channels: FakeChannel[] = [];
  const errors: Error[] = [];
  const refused = new Set(options.refused ?? []);
  const hooks: BindPipeHooks = {
    open: () => {
      const ch = new FakeChannel(channels.length, log, refused, events);
      if (options.noWait === false) (ch as { sendImmediately?: unknown }).sendImmediately = undefined;
      channels.push(ch);
      return Promise.resolve(ch as unknown as Channel);
    },
    onChannelError: (err) => errors.push(err),
    ready: options.ready ?? (() => Promise.resolve()),
    observe: (kind, seconds) => observed.push({ kind, seconds }),
  };
  return { pipe: new BindPipe(hooks), log, events, channels, errors, observed };
}

const target = (key: string) => ({ queue: 'q', exchange: 'x', key });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('BindPipe', () => {
  test('calls of one tick leave as one batch: all but the last no-wait, the last waits, in call order', async () => {
    const { pipe, log, channels } = pipeWith();
    const done = ['a', 'b', 'c'].map((k) => pipe.bind(target(k)));
    done.push(pipe.unbind(target('a')));
    await Promise.all(done);
    assert.deepEqual(log, [
      { channel: 0, call: 'bind a', wait: false },
      { channel: 0, call: 'bind b', wait: false },
      { channel: 0, call: 'bind c', wait: false },
      { channel: 0, call: 'unbind a', wait: true },
    ]);
    assert.equal(channels.length, 1);
  });

  test('an unbind always waits for its answer (it has no no-wait flag), and nothing after it leaves before that answer', async () => {
    const { pipe, log, events } = pipeWith();
    await Promise.all([pipe.bind(target('a')), pipe.unbind(target('b')), pipe.bind(target('b')), pipe.bind(target('c'))]);
    assert.deepEqual(
      log.map((s) => `${s.call}${s.wait ? ' (waits)' : ''}`),
      ['bind a', 'unbind b (waits)', 'bind b', 'bind c (waits)'],
    );
    assert.deepEqual(events, ['bind a', 'unbind b', 'answered unbind b', 'bind b', 'bind c', 'answered bind c']);
  });

  test('a lone call waits for its own answer, as before pipelining', async () => {
    const { pipe, log } = pipeWith();
    await pipe.bind(target('only'));
    assert.deepEqual(log, [{ channel: 0, call: 'bind only', wait: true }]);
  });

  test('calls made while a batch is out go in the next batch, sent after its answer', async () => {
    const { pipe, log } = pipeWith();
    const first = [pipe.bind(target('a')), pipe.bind(target('b'))];
    // Microtasks only: the stand-in answers on a later turn of the event loop.
    await new Promise((resolve) => process.nextTick(resolve));
    for (let i = 0; i < 50 && log.length < 2; i++) await Promise.resolve();
    // The first batch is on the wire and not yet answered.
    assert.equal(log.length, 2);
    const second = [pipe.bind(target('c')), pipe.bind(target('d'))];
    await Promise.all(first);
    await Promise.all(second);
    assert.deepEqual(
      log.map((s) => `${s.call}${s.wait ? ' (waits)' : ''}`),
      ['bind a', 'bind b (waits)', 'bind c', 'bind d (waits)'],
    );
  });

  test('each call that took effect is observed once, with its kind and its wait; a refused one is not', async () => {
    const { pipe, observed } = pipeWith({ refused: ['bad'] });
    const results = await Promise.allSettled([pipe.bind(target('a')), pipe.bind(target('bad')), pipe.unbind(target('a'))]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(
      observed.map((o) => o.kind),
      ['bind', 'unbind'],
    );
    for (const o of observed) assert.ok(o.seconds >= 0 && o.seconds < 5, `wait ${o.seconds} s`);
  });

  test(`a batch holds at most ${MAX_BATCH} calls`, async () => {
    const { pipe, log } = pipeWith();
    await Promise.all(Array.from({ length: MAX_BATCH + 10 }, (_, i) => pipe.bind(target(`k${i}`))));
    const waits = log.flatMap((s, i) => (s.wait ? [i] : []));
    assert.deepEqual(waits, [MAX_BATCH - 1, MAX_BATCH + 9]);
  });

  test('a refused method fails only its own call: the batch is retried one call at a time on fresh channels', async () => {
    const { pipe, log, channels, errors } = pipeWith({ refused: ['bad'] });
    const results = await Promise.allSettled(['a', 'bad', 'c', 'd'].map((k) => pipe.bind(target(k))));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /404 no exchange for bad/);
    assert.deepEqual(
      log.map((s) => `${s.channel}: ${s.call}${s.wait ? ' (waits)' : ''}`),
      [
        '0: bind a',
        '0: bind bad',
        '0: bind c',
        '0: bind d (waits)',
        // Retried one by one; the refusal closes channel 1, so the rest go on channel 2.
        '1: bind a (waits)',
        '1: bind bad (waits)',
        '2: bind c (waits)',
        '2: bind d (waits)',
      ],
    );
    assert.equal(channels.length, 3);
    assert.equal(errors.length, 2, 'the owner hears of each refusal');
    // The pipe goes on batching afterwards.
    await Promise.all([pipe.bind(target('e')), pipe.bind(target('f'))]);
    assert.deepEqual(
      log.slice(-2).map((s) => `${s.channel}: ${s.call}${s.wait ? ' (waits)' : ''}`),
      ['2: bind e', '2: bind f (waits)'],
    );
  });

  test('nothing is sent before the owner is ready (a rebuild under way)', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { pipe, log } = pipeWith({ ready: () => gate });
    const done = pipe.bind(target('a'));
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(log, []);
    open();
    await done;
    assert.deepEqual(log, [{ channel: 0, call: 'bind a', wait: true }]);
  });

  test('idle() waits for every call made so far, and a closed channel is replaced after reset()', async () => {
    const { pipe, log, channels } = pipeWith();
    let settled = 0;
    for (const k of ['a', 'b']) void pipe.bind(target(k)).then(() => settled++);
    await pipe.idle();
    assert.equal(settled, 2);
    pipe.reset();
    assert.equal(channels[0]!.closed, true);
    await pipe.unbind(target('a'));
    assert.equal(log.at(-1)?.channel, 1);
    await pipe.idle();
  });

  test('a channel that cannot send no-wait methods is refused with a clear error', async () => {
    const { pipe, channels } = pipeWith({ noWait: false });
    await assert.rejects(pipe.bind(target('a')), /no Channel\.sendImmediately/);
    assert.ok(channels.every((c) => c.closed));
  });

  test('no channel (connection lost): every call is refused with the open error', async () => {
    const hooks: BindPipeHooks = {
      open: () => Promise.reject(new Error('connection lost')),
      onChannelError: () => undefined,
      ready: () => Promise.resolve(),
    };
    const pipe = new BindPipe(hooks);
    const results = await Promise.allSettled([pipe.bind(target('a')), pipe.unbind(target('b'))]);
    assert.deepEqual(
      results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')),
      ['Error: connection lost', 'Error: connection lost'],
    );
  });
});

describe('bindAll (a rebuild binding every counted key on its own channel)', () => {
  const channelWith = (refused: string[] = []) => {
    const log: Sent[] = [];
    return { log, channel: new FakeChannel(0, log, new Set(refused), []) };
  };

  test(`binds in batches of ${MAX_BATCH}, each no-wait but for its last call, and waits for each batch`, async () => {
    const { log, channel } = channelWith();
    await bindAll(channel as unknown as Channel, Array.from({ length: MAX_BATCH + 10 }, (_, i) => target(`k${i}`)));
    assert.equal(log.length, MAX_BATCH + 10);
    assert.deepEqual(
      log.flatMap((s, i) => (s.wait ? [i] : [])),
      [MAX_BATCH - 1, MAX_BATCH + 9],
    );
    assert.deepEqual(log.map((s) => s.call).slice(0, 2), ['bind k0', 'bind k1']);
  });

  test('nothing to bind: nothing is sent', async () => {
    const { log, channel } = channelWith();
    await bindAll(channel as unknown as Channel, []);
    assert.deepEqual(log, []);
  });

  test('a refused bind rejects the whole call', async () => {
    const { channel } = channelWith(['bad']);
    channel.on('error', () => undefined);
    await assert.rejects(bindAll(channel as unknown as Channel, ['a', 'bad', 'c'].map(target)), /404 no exchange for bad/);
  });
});
