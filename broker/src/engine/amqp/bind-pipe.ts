// The shared queues' queue.bind / queue.unbind calls, pipelined on one channel. RabbitMQ runs a
// channel's methods in order, so a batch of binds goes out as no-wait methods with only its last
// one waiting for an answer, and that answer confirms the whole batch. queue.unbind has no no-wait
// flag in AMQP 0-9-1 (RabbitMQ answers every one), so an unbind is always a waiting call, and what
// follows it in the batch leaves only once it is answered: amqplib holds a waiting call back until
// the one before it is answered, and a no-wait bind sent meanwhile would overtake it.
//
// Binding 10,000 feed keys on this machine (docs/benchmarks.md, item 11) cost RabbitMQ ~450 µs and
// Thumper ~100 µs per bind as one call at a time on each of four channels, and ~290 and ~15 µs as
// batches of 64 on one channel; more channels only made RabbitMQ's binding transactions collide.
//
// Batches form by themselves: what is submitted while one batch is out is the next batch. A batch
// that fails (the broker closed the channel, say for an exchange deleted meanwhile) does not tell
// which method failed, so its methods are retried one at a time, each waiting for its own answer:
// the one at fault gets its own error and the others go through (binding twice or unbinding what
// is not bound are no-ops in RabbitMQ).
//
// amqplib has no no-wait option for queue.bind; `sendImmediately` is the method it sends its own
// basic.ack with. A channel without it is refused, so an amqplib upgrade that drops it fails the
// tests rather than going quiet.

import type { Channel } from 'amqplib';

export interface BindPipeHooks {
  /** A channel for the pipe; may throw (no connection). */
  open(): Promise<Channel>;
  /** The broker closed the pipe's channel with an error. */
  onChannelError(err: Error): void;
  /** Awaited before each batch and each retry: the owner's rebuild, which binds must not cut into. */
  ready(): Promise<unknown>;
  /** Each call that took effect, with the seconds from its submission (metrics). */
  observe?: ((kind: BindKind, seconds: number) => void) | undefined;
}

export interface BindTarget {
  readonly queue: string;
  readonly exchange: string;
  readonly key: string;
}

export type BindKind = 'bind' | 'unbind';

interface Call {
  readonly kind: BindKind;
  readonly target: BindTarget;
}

interface Pending extends Call {
  /** performance.now() at submission. */
  readonly submitted: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** AMQP 0-9-1 queue.bind (class 50, method 20) as amqplib numbers it. */
const QUEUE_BIND = (50 << 16) | 20;

interface NoWaitSender {
  sendImmediately(method: number, fields: Record<string, unknown>): void;
}

/** A batch past this waits for the next round trip: a few hundred methods keep one write small. */
export const MAX_BATCH = 256;

export class BindPipe {
  readonly #hooks: BindPipeHooks;
  #queue: Pending[] = [];
  #draining = false;
  #channel: Channel | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(hooks: BindPipeHooks) {
    this.#hooks = hooks;
  }

  /** Resolves once the binding is in place; calls settle in the order they were made. */
  bind(target: BindTarget): Promise<void> {
    return this.#submit('bind', target);
  }

  unbind(target: BindTarget): Promise<void> {
    return this.#submit('unbind', target);
  }

  /** Resolves once every call made so far has settled. */
  idle(): Promise<void> {
    if (!this.#draining) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Forgets (and closes) the channel: the next batch opens a fresh one. */
  reset(): void {
    this.#forgetChannel();
  }

  #submit(kind: BindKind, target: BindTarget): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ kind, target, submitted: performance.now(), resolve, reject });
      if (this.#draining) return;
      this.#draining = true;
      // The rest of this tick's calls join the batch.
      process.nextTick(() => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      await this.#hooks.ready().catch(() => undefined);
      const batch = this.#queue.splice(0, MAX_BATCH);
      if (!(await this.#sendBatch(batch))) await this.#oneByOne(batch);
    }
    this.#draining = false;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** true: the broker confirmed every method and each call is resolved; false: nothing is settled. */
  async #sendBatch(batch: readonly Pending[]): Promise<boolean> {
    try {
      await sendBatch(await this.#channelOf(), batch);
    } catch {
      this.#forgetChannel();
      return false;
    }
    for (const p of batch) this.#tookEffect(p);
    return true;
  }

  #tookEffect(p: Pending): void {
    this.#hooks.observe?.(p.kind, (performance.now() - p.submitted) / 1000);
    p.resolve();
  }

  async #oneByOne(batch: readonly Pending[]): Promise<void> {
    for (const p of batch) {
      try {
        await this.#hooks.ready().catch(() => undefined);
        await callOn(await this.#channelOf(), p);
        this.#tookEffect(p);
      } catch (err) {
        // A failed call closes the channel on the broker; the next call must not find it here.
        this.#forgetChannel();
        p.reject(err);
      }
    }
  }

  #forgetChannel(): void {
    const channel = this.#channel;
    this.#channel = undefined;
    channel?.close().catch(() => undefined);
  }

  async #channelOf(): Promise<Channel> {
    if (this.#channel !== undefined) return this.#channel;
    const channel = await this.#hooks.open();
    try {
      noWaitSender(channel);
    } catch (err) {
      channel.close().catch(() => undefined);
      throw err;
    }
    channel.on('error', (err: Error) => this.#hooks.onChannelError(err));
    channel.on('close', () => {
      if (this.#channel === channel) this.#channel = undefined;
    });
    this.#channel = channel;
    return channel;
  }
}

/**
 * Binds every target on the caller's channel, MAX_BATCH at a time, each batch no-wait but for its
 * last call. For a rebuild, which owns its channel while it runs: the first failure rejects the
 * whole call (the caller retries everything; binding twice is a no-op).
 */
export async function bindAll(channel: Channel, targets: readonly BindTarget[]): Promise<void> {
  for (let start = 0; start < targets.length; start += MAX_BATCH) {
    await sendBatch(
      channel,
      targets.slice(start, start + MAX_BATCH).map((target) => ({ kind: 'bind', target })),
    );
  }
}

/** One batch in order: binds no-wait, unbinds and the last call waiting; resolves once all took effect. */
async function sendBatch(channel: Channel, calls: readonly Call[]): Promise<void> {
  const sender = noWaitSender(channel);
  const last = calls.length - 1;
  for (let i = 0; i <= last; i++) {
    const call = calls[i]!;
    if (i === last || call.kind === 'unbind') await callOn(channel, call);
    else sender.sendImmediately(QUEUE_BIND, noWaitFields(call.target));
  }
}

function noWaitSender(channel: Channel): NoWaitSender {
  const sender = channel as unknown as Partial<NoWaitSender>;
  if (typeof sender.sendImmediately !== 'function') {
    throw new Error('this amqplib has no Channel.sendImmediately, which no-wait binds need');
  }
  return sender as NoWaitSender;
}

/** The call that waits for its answer. */
async function callOn(channel: Channel, { kind, target }: Call): Promise<void> {
  if (kind === 'bind') await channel.bindQueue(target.queue, target.exchange, target.key);
  else await channel.unbindQueue(target.queue, target.exchange, target.key);
}

/** Field names as amqplib's own Args.bindQueue / Args.unbindQueue give them. */
function noWaitFields(target: BindTarget): Record<string, unknown> {
  return { queue: target.queue, exchange: target.exchange, routingKey: target.key, arguments: {}, ticket: 0, nowait: true };
}
