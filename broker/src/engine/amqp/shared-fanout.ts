// Node-wide subscription queues: every shareable subscription (destination/shared-binding.ts) on an
// exchange of a vhost is served by ONE RabbitMQ queue of this Thumper node, bound once per distinct
// binding key, and the node routes each delivery to its subscribers by the exchange type's rule
// (the memory engine's Exchange, so both route alike). RabbitMQ's plugin declares a queue, a
// binding and a consumer per subscription; 10,000 browser tabs on feed/user_i cost it 10,000
// queues, and Thumper one queue with 10,000 bindings.
//
// The queue is not exclusive (any session's channel could then touch it, but only this class does)
// and carries x-expires, so a Thumper node that dies without cleaning up leaves nothing behind for
// long. Its name starts with the subscription-queue prefix, so the guard keeps clients off it.
// Declares, consumes, deletes and rebuilds of a vhost go through one channel, one at a time; binds
// and unbinds are pipelined in order on another (bind-pipe.ts). A failed channel is rebuilt
// (re-declare, re-bind, re-consume) and subscribers of an exchange that vanished are told.
//
// A key whose last subscriber left stays bound for `unbindDelayMs` (idle): a page reload, a tab
// that reconnects, a phone back from a tunnel subscribes the same key again within seconds, and
// then finds it bound, with no bind to wait for and no unbind/bind pair for RabbitMQ to run.
// Nobody receives its messages meanwhile; the node drops them, as it does for any key it has no
// subscriber of.

import { createHash, randomBytes } from 'node:crypto';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { SUBSCRIPTION_QUEUE_PREFIX } from '../../destination/subscription-queue-guard.js';
import type { SharedBinding } from '../../destination/shared-binding.js';
import { stompError, type StompError } from '../../errors.js';
import { EngineError } from '../engine.js';
import type { MessageProperties } from '../message.js';
import { Exchange } from '../memory/exchange.js';
import { amqpErrorToStomp, connectionLost, restoreFailed } from './amqp-errors.js';
import { fitsShortstr, fromAmqpProperties, tooLong } from './amqp-args.js';
import { fullJitterDelay, type BackoffOptions } from './backoff.js';
import { bindAll, BindPipe, type BindKind } from './bind-pipe.js';
import type { ConnectionPool, Lease } from './connection-pool.js';

export interface FanoutMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly body: Buffer;
  readonly properties: MessageProperties;
}

export interface FanoutSubscriber {
  deliver(message: FanoutMessage): void;
  /** The subscription cannot be served any more (exchange deleted, broker gone for good). */
  lost(error: StompError): void;
}

export interface FanoutHandle {
  /** Idempotent. Routing to the subscriber stops at once; resolves once the broker has caught up. */
  release(): Promise<void>;
}

export interface SharedFanoutOptions {
  /** RabbitMQ deletes a shared queue left without a consumer for this long (x-expires). */
  readonly queueExpiresMs: number;
  /** How long to keep trying to rebuild after the channel or connection is lost. */
  readonly restoreTimeoutMs: number;
  /** `close`: a lost connection ends every subscriber (amqp.onConnectionLoss), a channel error still rebuilds. */
  readonly onConnectionLoss: 'restore' | 'close';
  readonly reconnect: BackoffOptions;
  /** A key without subscribers stays bound this long (0: unbound at once). Default 0. */
  readonly unbindDelayMs?: number;
  /** Told each bind or unbind of a key once it took effect, with the seconds it waited (metrics). */
  readonly onBind?: ((kind: BindKind, seconds: number) => void) | undefined;
}

export interface FanoutStats {
  readonly queues: number;
  readonly bindings: number;
  readonly subscribers: number;
}

export class SharedFanout {
  readonly #pool: ConnectionPool;
  readonly #log: Logger;
  readonly #options: SharedFanoutOptions;
  /** Per process, so two Thumper nodes (or a restarted one) never share a queue. */
  readonly #nodeId = randomBytes(6).toString('hex');
  readonly #vhosts = new Map<string, VhostFanout>();
  #stopping = false;

  constructor(pool: ConnectionPool, options: SharedFanoutOptions, log: Logger) {
    this.#pool = pool;
    this.#options = options;
    this.#log = log.child({ component: 'shared-fanout' });
  }

  subscribe(vhost: string, binding: SharedBinding, subscriber: FanoutSubscriber): Promise<FanoutHandle> {
    if (this.#stopping) return Promise.reject(new EngineError(stompError('SERVER_SHUTDOWN', 'the AMQP engine is stopping')));
    let fanout = this.#vhosts.get(vhost);
    if (fanout === undefined) {
      fanout = new VhostFanout(vhost, this.#pool, this.#options, this.#nodeId, this.#log.child({ vhost }));
      this.#vhosts.set(vhost, fanout);
    }
    return fanout.subscribe(binding, subscriber);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#vhosts.values()].map((v) => v.stop()));
    this.#vhosts.clear();
  }

  stats(): FanoutStats {
    let queues = 0;
    let bindings = 0;
    let subscribers = 0;
    for (const v of this.#vhosts.values()) {
      const s = v.stats();
      queues += s.queues;
      bindings += s.bindings;
      subscribers += s.subscribers;
    }
    return { queues, bindings, subscribers };
  }
}

/** One exchange's shared queue: its bindings (by key, counted) and its subscribers. */
interface ExchangeQueue {
  readonly exchange: string;
  readonly queue: string;
  readonly router: Exchange;
  readonly keyCounts: Map<string, number>;
  /** Binds on their way, by key: a second subscriber of the key waits for the first one's bind. */
  readonly binding: Map<string, Promise<void>>;
  /** Keys still bound with no subscriber, each with the timer that unbinds it. */
  readonly idle: Map<string, NodeJS.Timeout>;
  readonly subscribers: Map<string, FanoutSubscriber>;
  /** The channel its consumer runs on: a second rebuild on the same channel must not add another. */
  consumingOn: Channel | undefined;
  /** Subscribes under way: the queue is not deleted under them. */
  pending: number;
  /** Set when the entry was given up (its exchange vanished, the restore failed). */
  abandoned: StompError | undefined;
}

class VhostFanout {
  readonly #vhost: string;
  readonly #pool: ConnectionPool;
  readonly #options: SharedFanoutOptions;
  readonly #nodeId: string;
  readonly #log: Logger;
  readonly #queues = new Map<string, ExchangeQueue>();
  #lease: Lease | undefined;
  #channel: Channel | undefined;
  /** Declare, consume, delete and rebuild run one at a time, in order. */
  #chain: Promise<unknown> = Promise.resolve();
  readonly #binds: BindPipe;
  /** Settles when the last rebuild has: binds and unbinds wait for it, so a rebuild sees stable counts. */
  #restored: Promise<unknown> = Promise.resolve();
  #nextId = 1;
  #stopping = false;
  /** The broker closed the channel with an error (not a lost connection). */
  #channelFailed = false;

  constructor(vhost: string, pool: ConnectionPool, options: SharedFanoutOptions, nodeId: string, log: Logger) {
    this.#vhost = vhost;
    this.#pool = pool;
    this.#options = options;
    this.#nodeId = nodeId;
    this.#log = log;
    this.#binds = new BindPipe({
      open: () => this.#openBindChannel(),
      onChannelError: (err) => this.#onBindError(err),
      ready: () => this.#restored,
      observe: options.onBind,
    });
  }

  async subscribe(binding: SharedBinding, subscriber: FanoutSubscriber): Promise<FanoutHandle> {
    // amqplib throws on an over-long shortstr only once it is writing the method, too late for a
    // clean error and, for a call that waits for an answer, leaving its channel stuck.
    if (!fitsShortstr(binding.exchange)) throw new EngineError(tooLong('exchange', binding.exchange));
    if (!fitsShortstr(binding.bindingKey)) throw new EngineError(tooLong('binding key', binding.bindingKey));
    const entry = await this.#serial(() => this.#entryFor(binding));
    const key = binding.bindingKey;
    try {
      await this.#restored;
      if (entry.abandoned !== undefined) throw new EngineError(entry.abandoned);
      if (this.#queues.get(entry.exchange) !== entry) throw new EngineError(connectionLost());
      await this.#countIn(entry, key);
    } catch (err) {
      entry.pending--;
      if (entry.subscribers.size === 0) void this.#deleteIfUnused(entry);
      throw err;
    }
    entry.pending--;
    if (entry.abandoned !== undefined) {
      // Given up while the bind was in flight: the subscriber was not yet there to be told.
      throw new EngineError(entry.abandoned);
    }
    const id = String(this.#nextId++);
    entry.router.bind(id, key);
    entry.subscribers.set(id, subscriber);
    let released: Promise<void> | undefined;
    return {
      release: () => (released ??= this.#release(entry, id, key)),
    };
  }

  /**
   * One more subscriber of `key`. The first binds it; those that come while that bind is on its way
   * wait for it, so none is told it is subscribed before the binding exists. Counts change at once
   * and the pipe keeps binds and unbinds in call order, so the broker ends with the counted keys.
   */
  async #countIn(entry: ExchangeQueue, key: string): Promise<void> {
    const count = entry.keyCounts.get(key) ?? 0;
    entry.keyCounts.set(key, count + 1);
    const idle = entry.idle.get(key);
    if (idle !== undefined) {
      clearTimeout(idle);
      entry.idle.delete(key);
      return;
    }
    let bound = entry.binding.get(key);
    if (count === 0) {
      const started = this.#binds.bind({ queue: entry.queue, exchange: entry.exchange, key }).catch((err: unknown) => {
        throw err instanceof EngineError ? err : new EngineError(amqpErrorToStomp(err));
      });
      const settled = (): void => {
        if (entry.binding.get(key) === started) entry.binding.delete(key);
      };
      started.then(settled, settled);
      entry.binding.set(key, started);
      bound = started;
    }
    if (bound === undefined) return;
    try {
      await bound;
    } catch (err) {
      uncount(entry, key);
      throw err;
    }
  }

  /** The exchange's shared queue, declared and consumed from on first use; counted as pending. */
  async #entryFor(binding: SharedBinding): Promise<ExchangeQueue> {
    const channel = await this.#ensureChannel();
    const existing = this.#queues.get(binding.exchange);
    if (existing !== undefined) {
      existing.pending++;
      return existing;
    }
    await this.#checkExchange(binding.exchange);
    const entry: ExchangeQueue = {
      exchange: binding.exchange,
      queue: this.#queueName(binding.exchange),
      router: new Exchange(binding.exchange, binding.type),
      keyCounts: new Map(),
      binding: new Map(),
      idle: new Map(),
      subscribers: new Map(),
      consumingOn: undefined,
      pending: 1,
      abandoned: undefined,
    };
    await this.#declareAndConsume(channel, entry);
    this.#queues.set(binding.exchange, entry);
    return entry;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#chain.catch(() => undefined);
    await this.#binds.idle();
    this.#binds.reset();
    for (const entry of this.#queues.values()) forgetIdle(entry);
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel !== undefined) {
      for (const entry of this.#queues.values()) await channel.deleteQueue(entry.queue).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    this.#queues.clear();
    this.#lease?.release();
    this.#lease = undefined;
  }

  stats(): FanoutStats {
    let bindings = 0;
    let subscribers = 0;
    for (const e of this.#queues.values()) {
      bindings += e.keyCounts.size + e.idle.size;
      subscribers += e.subscribers.size;
    }
    return { queues: this.#queues.size, bindings, subscribers };
  }

  async #release(entry: ExchangeQueue, id: string, bindingKey: string): Promise<void> {
    // Routing stops at once; the broker catches up in order.
    entry.router.unbind(id, bindingKey);
    entry.subscribers.delete(id);
    // Still counted: a subscriber of the key is there or on its way, so the queue stays too.
    if (uncount(entry, bindingKey) > 0) return;
    const delay = this.#options.unbindDelayMs ?? 0;
    if (delay > 0 && this.#queues.get(entry.exchange) === entry) {
      const timer = setTimeout(() => {
        if (entry.idle.get(bindingKey) !== timer) return;
        entry.idle.delete(bindingKey);
        void this.#unbindUnused(entry, bindingKey);
      }, delay);
      timer.unref();
      entry.idle.set(bindingKey, timer);
      return;
    }
    await this.#unbindUnused(entry, bindingKey);
  }

  /** A key nobody subscribes to any more: unbound, and the queue goes with the last one. */
  async #unbindUnused(entry: ExchangeQueue, key: string): Promise<void> {
    await this.#unbind(entry, key);
    if (entry.subscribers.size === 0) await this.#deleteIfUnused(entry);
  }

  async #unbind(entry: ExchangeQueue, key: string): Promise<void> {
    // Without a channel a rebuild is to come, and it binds only the keys still counted or idle.
    if (this.#queues.get(entry.exchange) !== entry || this.#channel === undefined) return;
    await this.#binds.unbind({ queue: entry.queue, exchange: entry.exchange, key }).catch((err: unknown) => {
      this.#log.debug({ err: (err as Error).message }, 'shared queue unbind failed');
    });
  }

  /** No subscriber, no idle key and no subscribe binding: the queue goes (bindings with it). */
  #deleteIfUnused(entry: ExchangeQueue): Promise<void> {
    return this.#serial(async () => {
      if (entry.subscribers.size > 0 || entry.pending > 0 || entry.idle.size > 0 || this.#queues.get(entry.exchange) !== entry) return;
      this.#queues.delete(entry.exchange);
      await this.#channel?.deleteQueue(entry.queue);
    }).catch((err: unknown) => {
      // x-expires removes it soon enough.
      this.#log.debug({ err: (err as Error).message }, 'shared queue delete failed');
    });
  }

  async #openBindChannel(): Promise<Channel> {
    const lease = this.#lease;
    if (lease === undefined) throw new EngineError(connectionLost());
    try {
      return await lease.connection.createChannel();
    } catch {
      throw new EngineError(lease.lostReason());
    }
  }

  /**
   * A bind failed (the caller is told). The likely cause is an exchange deleted under its
   * subscribers: find out which, on the main chain, and tell them.
   */
  #onBindError(err: Error): void {
    this.#log.warn({ err: err.message }, 'shared subscription bind channel error');
    if (this.#stopping) return;
    void this.#serial(async () => {
      for (const entry of [...this.#queues.values()]) {
        try {
          await this.#checkExchange(entry.exchange);
        } catch (checkErr) {
          if (!(checkErr instanceof EngineError) || checkErr.error.code !== 'NOT_FOUND') continue;
          this.#queues.delete(entry.exchange);
          this.#abandon(entry, checkErr.error);
          await this.#channel?.deleteQueue(entry.queue).catch(() => undefined);
        }
      }
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #queueName(exchange: string): string {
    // Exchange names may be 255 bytes: a digest keeps the queue name inside AMQP's shortstr.
    const digest = createHash('sha256').update(exchange).digest('hex').slice(0, 16);
    return `${SUBSCRIPTION_QUEUE_PREFIX}thumper-${this.#nodeId}-${digest}`;
  }

  async #ensureChannel(): Promise<Channel> {
    if (this.#channel !== undefined) return this.#channel;
    const lease = await this.#pool.acquire(this.#vhost);
    let channel: Channel;
    try {
      channel = await lease.connection.createChannel();
    } catch (err) {
      lease.release();
      throw new EngineError(lease.lostReason());
    }
    this.#channelFailed = false;
    channel.on('error', (err: Error) => {
      this.#channelFailed = true;
      this.#log.warn({ err: err.message }, 'shared subscription channel error');
    });
    channel.on('close', () => this.#onChannelClosed(channel));
    this.#lease = lease;
    this.#channel = channel;
    return channel;
  }

  /**
   * A bind to a missing exchange is a channel error, and this channel serves every subscriber of the
   * vhost: ask on a channel of its own first, which the 404 may close.
   */
  async #checkExchange(exchange: string): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined) return;
    let probe: Channel | undefined;
    try {
      probe = await lease.connection.createChannel();
      probe.on('error', () => undefined);
      await probe.checkExchange(exchange);
    } catch (err) {
      throw new EngineError(amqpErrorToStomp(err));
    } finally {
      await probe?.close().catch(() => undefined);
    }
  }

  async #declareAndConsume(channel: Channel, entry: ExchangeQueue): Promise<void> {
    if (entry.consumingOn === channel) return;
    await channel.assertQueue(entry.queue, {
      durable: false,
      autoDelete: false,
      exclusive: false,
      arguments: { 'x-expires': { '!': 'long', value: this.#options.queueExpiresMs } },
    });
    await channel.consume(entry.queue, (msg) => this.#dispatch(entry, msg), { noAck: true });
    entry.consumingOn = channel;
  }

  #dispatch(entry: ExchangeQueue, msg: ConsumeMessage | null): void {
    if (msg === null) return; // server cancel: the channel is rebuilt when it closes
    const ids = new Set<string>();
    entry.router.route(msg.fields.routingKey, ids);
    if (ids.size === 0) return;
    const message: FanoutMessage = {
      exchange: msg.fields.exchange,
      routingKey: msg.fields.routingKey,
      redelivered: msg.fields.redelivered,
      body: msg.content,
      properties: fromAmqpProperties(msg.properties),
    };
    for (const id of ids) {
      try {
        entry.subscribers.get(id)?.deliver(message);
      } catch (err) {
        this.#log.error({ err }, 'shared subscriber delivery failed');
      }
    }
  }

  #onChannelClosed(channel: Channel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    // The bind channel belongs to the lease being given up; the next bind opens one on the new one.
    this.#binds.reset();
    this.#lease?.release();
    this.#lease = undefined;
    if (this.#stopping || this.#queues.size === 0) return;
    if (!this.#channelFailed && this.#options.onConnectionLoss === 'close') {
      for (const entry of this.#queues.values()) this.#abandon(entry, connectionLost());
      this.#queues.clear();
      return;
    }
    this.#restored = this.#serial(() => this.#rebuild()).catch(() => undefined);
  }

  /** Same queues, same bindings, new channel; an exchange that is gone loses its subscribers. */
  async #rebuild(): Promise<void> {
    const deadline = Date.now() + this.#options.restoreTimeoutMs;
    for (let attempt = 0; !this.#stopping; attempt++) {
      try {
        const channel = await this.#ensureChannel();
        for (const entry of [...this.#queues.values()]) {
          try {
            await this.#checkExchange(entry.exchange);
          } catch (err) {
            this.#queues.delete(entry.exchange);
            this.#abandon(entry, err instanceof EngineError ? err.error : amqpErrorToStomp(err));
            continue;
          }
          await this.#declareAndConsume(channel, entry);
          const { queue, exchange } = entry;
          // Idle keys too: the queue may have outlived the channel, and their timers unbind them.
          const keys = [...entry.keyCounts.keys(), ...entry.idle.keys()];
          await bindAll(channel, keys.map((key) => ({ queue, exchange, key })));
        }
        this.#log.info({ queues: this.#queues.size, attempt }, 'shared subscription queues restored');
        return;
      } catch (err) {
        if (Date.now() >= deadline) {
          const error = restoreFailed(err instanceof EngineError ? err.error.detail : (err as Error).message);
          for (const entry of this.#queues.values()) this.#abandon(entry, error);
          this.#queues.clear();
          return;
        }
        await sleep(fullJitterDelay(attempt, this.#options.reconnect));
      }
    }
  }

  #abandon(entry: ExchangeQueue, error: StompError): void {
    entry.abandoned = error;
    forgetIdle(entry);
    const subscribers = [...entry.subscribers.values()];
    entry.subscribers.clear();
    for (const s of subscribers) {
      try {
        s.lost(error);
      } catch (err) {
        this.#log.error({ err }, 'shared subscriber lost handler failed');
      }
    }
  }
}

function forgetIdle(entry: ExchangeQueue): void {
  for (const timer of entry.idle.values()) clearTimeout(timer);
  entry.idle.clear();
}

/** One subscriber of `key` fewer; returns how many are left. */
function uncount(entry: ExchangeQueue, key: string): number {
  const left = (entry.keyCounts.get(key) ?? 1) - 1;
  if (left > 0) entry.keyCounts.set(key, left);
  else entry.keyCounts.delete(key);
  return left;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
