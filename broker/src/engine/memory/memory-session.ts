// One engine session of the memory engine: the equivalent of the AMQP channel RabbitMQ's STOMP
// plugin opens per connection. It numbers deliveries, tracks unacked ones against each consumer's
// prefetch, owns exclusive queues, and turns channel errors into a closed session. Callbacks run
// from an outbox flushed on setImmediate, never inside the call that produced the delivery.

import type { QueueSpec } from '../../destination/types.js';
import type { StompError } from '../../errors.js';
import {
  EngineError,
  type ConsumeOptions,
  type EngineSession,
  type EngineSessionContext,
  type EngineSessionEvents,
} from '../engine.js';
import type { Delivery, OutboundMessage } from '../message.js';
import { Deque } from './deque.js';
import { amqpErrors, memoryErrors } from './amqp-errors.js';
import type { MemoryQueue, QueueConsumer, QueueOwner, QueuedMessage } from './queue.js';
import { checkEquivalence, parseQueueArguments, unsupportedQueueType } from './queue-args.js';
import { copyProperties, parseExpiration, storeMessage } from './stored-message.js';
import type { VirtualHost } from './vhost.js';
import { randomToken } from '../../random-pool.js';

/**
 * Deliveries waiting for their callback, per session. When full, this session's consumers take no
 * more, so a consumer without prefetch cannot pull a whole queue into memory in one go (the role
 * RabbitMQ's credit flow plays between queue and channel).
 */
export const OUTBOX_LIMIT = 1000;
const MAX_PREFETCH = 65_535;

interface SessionConsumer extends QueueConsumer {
  readonly queue: MemoryQueue;
  readonly noAck: boolean;
  readonly prefetch: number;
  readonly onDelivery: (d: Delivery) => void;
  unacked: number;
  active: boolean;
}

interface Unacked {
  readonly queue: MemoryQueue;
  readonly entry: QueuedMessage;
  readonly consumer: SessionConsumer;
}

type OutboxItem =
  | { readonly kind: 'delivery'; readonly consumer: SessionConsumer; readonly delivery: Delivery }
  | { readonly kind: 'cancelled'; readonly tag: string };

/** rabbit_guid:binary(gen_secure(), Prefix): prefix + base64url of 16 random bytes (22 chars). */
export function generateName(prefix: 'amq.gen' | 'amq.ctag'): string {
  return `${prefix}-${randomToken(16)}`;
}

export class MemorySession implements EngineSession, QueueOwner {
  readonly #ctx: EngineSessionContext;
  readonly #events: EngineSessionEvents;
  readonly #vhost: VirtualHost;
  readonly #detach: (session: MemorySession) => void;
  #nextTag = 1;
  readonly #unacked = new Map<number, Unacked>();
  readonly #consumers = new Map<string, SessionConsumer>();
  readonly #owned = new Set<MemoryQueue>();
  #prefetch = 0;
  /** setFlow(false): ack-mode consumers take nothing until setFlow(true). */
  #flowActive = true;
  readonly #outbox = new Deque<OutboxItem>();
  #flushScheduled = false;
  /** A consumer was refused because the outbox was full: re-dispatch once it drains. */
  #starved = false;
  #idleWaiters: Array<() => void> = [];
  #closed: StompError | undefined;

  constructor(
    ctx: EngineSessionContext,
    events: EngineSessionEvents,
    vhost: VirtualHost,
    detach: (session: MemorySession) => void,
  ) {
    this.#ctx = ctx;
    this.#events = events;
    this.#vhost = vhost;
    this.#detach = detach;
  }

  async publish(exchange: string, routingKey: string, message: OutboundMessage, _confirm: boolean): Promise<void> {
    // confirm needs no extra wait: routing and enqueueing are done before this resolves.
    this.#assertOpen();
    if (!this.#vhost.hasExchange(exchange)) this.#fatal(amqpErrors.noExchange(exchange, this.#vhost.name));
    const ttl = parseExpiration(message.properties.expiration);
    if (!ttl.ok) this.#fatal(ttl.error);
    this.#vhost.publish(exchange, storeMessage(exchange, routingKey, message, ttl.value), Date.now());
  }

  async declareQueue(spec: QueueSpec): Promise<string> {
    this.#assertOpen();
    const vhost = this.#vhost.name;
    // AMQP 0-9-1 queue.declare: the amq. prefix is reserved for server-named queues.
    if (spec.name.startsWith('amq.')) this.#fatal(amqpErrors.reservedQueueName(spec.name));
    const unsupported = unsupportedQueueType(spec.arguments);
    if (unsupported !== undefined) throw new EngineError(memoryErrors.unsupportedQueueType(unsupported));

    const existing = spec.name === '' ? undefined : this.#vhost.queue(spec.name);
    if (existing !== undefined) {
      const owner = spec.exclusive ? this : undefined;
      if (existing.exclusiveOwner !== owner) this.#fatal(amqpErrors.queueLocked(existing.name, vhost));
      const inequivalent = checkEquivalence(existing, spec, vhost);
      if (inequivalent !== undefined) this.#fatal(inequivalent);
      existing.touch();
      return existing.name;
    }

    let name = spec.name;
    while (name === '' || this.#vhost.queue(name) !== undefined) name = generateName('amq.gen');
    const args = parseQueueArguments(spec.arguments, name, vhost);
    if (!args.ok) this.#fatal(args.error);
    const queue = this.#vhost.createQueue({
      name,
      durable: spec.durable,
      autoDelete: spec.autoDelete,
      exclusiveOwner: spec.exclusive ? this : undefined,
      declaredArguments: { ...spec.arguments },
      args: args.value,
    });
    if (spec.exclusive) this.#owned.add(queue);
    return name;
  }

  async checkQueue(name: string): Promise<void> {
    this.#assertOpen();
    this.#accessibleQueue(name);
  }

  async bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    this.#assertOpen();
    if (exchange === '') this.#fatal(amqpErrors.defaultExchangeBinding());
    const target = this.#accessibleQueue(queue);
    const source = this.#vhost.exchange(exchange);
    if (source === undefined) return this.#fatal(amqpErrors.noExchange(exchange, this.#vhost.name));
    source.bind(target.name, routingKey);
  }

  async deleteQueue(name: string): Promise<void> {
    this.#assertOpen();
    const queue = this.#vhost.queue(name);
    if (queue === undefined) return;
    if (queue.exclusiveOwner !== undefined && queue.exclusiveOwner !== this) {
      this.#fatal(amqpErrors.queueLocked(name, this.#vhost.name));
    }
    this.#vhost.deleteQueue(queue);
  }

  async setPrefetch(count: number): Promise<void> {
    this.#assertOpen();
    if (!Number.isInteger(count) || count < 0 || count > MAX_PREFETCH) {
      throw new EngineError(memoryErrors.invalidPrefetch(count));
    }
    this.#prefetch = count;
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): Promise<string> {
    this.#assertOpen();
    const target = this.#accessibleQueue(queue);
    const tag = generateName('amq.ctag');
    const consumer: SessionConsumer = {
      tag,
      queue: target,
      noAck: options.noAck,
      // basic.qos global=false: the count in force now binds this consumer for its whole life.
      prefetch: this.#prefetch,
      onDelivery,
      unacked: 0,
      active: true,
      canTake: () =>
        consumer.active &&
        (consumer.noAck || (this.#flowActive && (consumer.prefetch === 0 || consumer.unacked < consumer.prefetch))) &&
        this.#outboxHasRoom(),
      take: (entry, from) => this.#assign(consumer, entry, from),
      cancelledByServer: () => this.#serverCancel(consumer),
    };
    this.#consumers.set(tag, consumer);
    target.addConsumer(consumer);
    return tag;
  }

  async cancel(consumerTag: string): Promise<void> {
    this.#assertOpen();
    const consumer = this.#consumers.get(consumerTag);
    // basic.cancel of an unknown tag is not an error in AMQP 0-9-1.
    if (consumer === undefined) return;
    this.#consumers.delete(consumerTag);
    consumer.active = false;
    if (consumer.queue.removeConsumer(consumer)) this.#vhost.deleteQueue(consumer.queue);
    // Deliveries already handed out reach the callback before cancel-ok, as on an AMQP channel.
    await this.#idle();
  }

  ack(deliveryTag: number, multiple: boolean): void {
    this.#settle(deliveryTag, multiple, 'ack');
  }

  nack(deliveryTag: number, multiple: boolean, requeue: boolean): void {
    this.#settle(deliveryTag, multiple, requeue ? 'requeue' : 'reject');
  }

  /** The equivalent of basic.qos(global=true) on the channel: pausing holds ack-mode consumers. */
  async setFlow(active: boolean): Promise<void> {
    this.#assertOpen();
    if (this.#flowActive === active) return;
    this.#flowActive = active;
    if (active) for (const consumer of [...this.#consumers.values()]) consumer.queue.dispatch();
  }

  async close(): Promise<void> {
    if (this.#closed === undefined) this.#teardown(memoryErrors.sessionClosed());
  }

  /** Engine stop or similar: the session dies and is told through onClosed. */
  terminate(error: StompError): void {
    this.#failAsync(error);
  }

  releaseQueue(queue: MemoryQueue): void {
    this.#owned.delete(queue);
  }

  #accessibleQueue(name: string): MemoryQueue {
    const queue = this.#vhost.queue(name);
    if (queue === undefined) return this.#fatal(amqpErrors.noQueue(name, this.#vhost.name));
    if (queue.exclusiveOwner !== undefined && queue.exclusiveOwner !== this) {
      return this.#fatal(amqpErrors.queueLocked(name, this.#vhost.name));
    }
    return queue;
  }

  #assign(consumer: SessionConsumer, entry: QueuedMessage, queue: MemoryQueue): void {
    const deliveryTag = this.#nextTag++;
    if (!consumer.noAck) {
      this.#unacked.set(deliveryTag, { queue, entry, consumer });
      consumer.unacked++;
    }
    const { message } = entry;
    const delivery: Delivery = {
      consumerTag: consumer.tag,
      deliveryTag,
      redelivered: entry.redelivered,
      exchange: message.exchange,
      routingKey: message.routingKey,
      body: message.body,
      properties: copyProperties(message.properties),
    };
    this.#outbox.push({ kind: 'delivery', consumer, delivery });
    this.#scheduleFlush();
  }

  #serverCancel(consumer: SessionConsumer): void {
    if (!consumer.active) return;
    consumer.active = false;
    this.#consumers.delete(consumer.tag);
    this.#outbox.push({ kind: 'cancelled', tag: consumer.tag });
    this.#scheduleFlush();
  }

  #settle(deliveryTag: number, multiple: boolean, how: 'ack' | 'requeue' | 'reject'): void {
    if (this.#closed !== undefined) return;
    const settled = this.#takeUnacked(deliveryTag, multiple);
    if (settled === undefined) {
      this.#failAsync(amqpErrors.unknownDeliveryTag(deliveryTag));
      return;
    }
    const requeues = new Map<MemoryQueue, QueuedMessage[]>();
    const released = new Set<MemoryQueue>();
    for (const { queue, entry, consumer } of settled) {
      consumer.unacked--;
      if (consumer.active) released.add(consumer.queue);
      if (how === 'requeue') {
        let list = requeues.get(queue);
        if (list === undefined) requeues.set(queue, (list = []));
        list.push(entry);
      } else if (how === 'reject' && !queue.deleted) {
        this.#vhost.deadLetter(queue, entry.message, 'rejected');
      }
    }
    for (const [queue, entries] of requeues) queue.requeue(entries);
    for (const queue of released) queue.dispatch();
  }

  /** rabbit_channel:collect_acks: the exact tag must be outstanding, except 0 with multiple = all. */
  #takeUnacked(deliveryTag: number, multiple: boolean): Unacked[] | undefined {
    const all = multiple && deliveryTag === 0;
    if (!all && !this.#unacked.has(deliveryTag)) return undefined;
    const out: Unacked[] = [];
    if (!multiple) {
      const one = this.#unacked.get(deliveryTag);
      if (one !== undefined) out.push(one);
      this.#unacked.delete(deliveryTag);
      return out;
    }
    // The map is in delivery-tag order: tags are inserted increasing and never re-inserted.
    for (const [tag, unacked] of this.#unacked) {
      if (!all && tag > deliveryTag) break;
      out.push(unacked);
      this.#unacked.delete(tag);
    }
    return out;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #outboxHasRoom(): boolean {
    if (this.#outbox.length < OUTBOX_LIMIT) return true;
    this.#starved = true;
    return false;
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (let i = 0; i < OUTBOX_LIMIT && this.#closed === undefined; i++) {
      const item = this.#outbox.shift();
      if (item === undefined) break;
      try {
        if (item.kind === 'delivery') item.consumer.onDelivery(item.delivery);
        else this.#events.onCancelled(item.tag);
      } catch (err) {
        this.#ctx.log.error({ err }, 'engine session callback threw');
      }
    }
    if (this.#starved && this.#closed === undefined && this.#outbox.length < OUTBOX_LIMIT) {
      this.#starved = false;
      for (const consumer of [...this.#consumers.values()]) consumer.queue.dispatch();
    }
    if (this.#outbox.length > 0 && this.#closed === undefined) this.#scheduleFlush();
    else this.#wakeIdle();
  }

  #idle(): Promise<void> {
    if (this.#outbox.length === 0 && !this.#flushScheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) throw new EngineError(this.#closed);
  }

  /** A channel error answered to the call that caused it: no onClosed for it. */
  #fatal(error: StompError): never {
    this.#ctx.log.debug({ code: error.code, detail: error.detail }, 'engine session closed by channel error');
    this.#teardown(error);
    throw new EngineError(error);
  }

  /** A channel error with no call to answer (ack of an unknown tag, engine stop): onClosed. */
  #failAsync(error: StompError): void {
    if (this.#closed !== undefined) return;
    this.#ctx.log.debug({ code: error.code, detail: error.detail }, 'engine session closed');
    this.#teardown(error);
    queueMicrotask(() => {
      try {
        this.#events.onClosed(error);
      } catch (err) {
        this.#ctx.log.error({ err }, 'engine session onClosed threw');
      }
    });
  }

  /** AMQP channel close: consumers go, unacked messages are requeued, owned queues are deleted. */
  #teardown(reason: StompError): void {
    this.#closed = reason;
    this.#outbox.drain();
    const emptied: MemoryQueue[] = [];
    for (const consumer of this.#consumers.values()) {
      consumer.active = false;
      if (consumer.queue.removeConsumer(consumer)) emptied.push(consumer.queue);
    }
    this.#consumers.clear();
    const requeues = new Map<MemoryQueue, QueuedMessage[]>();
    for (const { queue, entry } of this.#unacked.values()) {
      let list = requeues.get(queue);
      if (list === undefined) requeues.set(queue, (list = []));
      list.push(entry);
    }
    this.#unacked.clear();
    for (const [queue, entries] of requeues) queue.requeue(entries);
    for (const queue of [...this.#owned]) this.#vhost.deleteQueue(queue);
    this.#owned.clear();
    for (const queue of emptied) if (queue.consumerCount === 0) this.#vhost.deleteQueue(queue);
    this.#detach(this);
    this.#wakeIdle();
  }
}
