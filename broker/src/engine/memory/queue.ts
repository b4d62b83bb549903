// One queue of the memory engine: ready messages (by priority, FIFO within one), its consumers
// served round-robin, and the arguments that bound it (TTL, max length, x-expires). The core of the
// engine. Delivery is "deliver or enqueue" as in RabbitMQ's classic queues: a message that finds a
// consumer with capacity never waits in the queue, so x-max-length 0 and TTL 0 still deliver to a
// ready consumer. Consumers receive entries synchronously; the session makes the callback async.

import type { Logger } from 'pino';
import type { ArgTable } from '../../destination/types.js';
import { Deque } from './deque.js';
import type { QueueArguments } from './queue-args.js';
import type { DeathReason, StoredMessage } from './stored-message.js';

/** A message's place in one queue; the same StoredMessage may sit in several queues. */
export interface QueuedMessage {
  readonly message: StoredMessage;
  /** Arrival order in this queue: a requeued message goes back to its original position. */
  readonly seq: number;
  /** Index into the priority buckets. */
  readonly bucket: number;
  /** Absolute ms; undefined = never expires. */
  readonly expiresAt: number | undefined;
  redelivered: boolean;
}

export interface QueueConsumer {
  readonly tag: string;
  /** Prefetch window open, not cancelled, session able to take more. */
  canTake(): boolean;
  take(entry: QueuedMessage, queue: MemoryQueue): void;
  /** The queue was deleted under the consumer (AMQP basic.cancel from the server). */
  cancelledByServer(): void;
}

/** The session owning an exclusive queue; told when the queue goes so it stops tracking it. */
export interface QueueOwner {
  releaseQueue(queue: MemoryQueue): void;
}

/** What a queue needs from its virtual host. */
export interface QueueHost {
  /** Dead-letters (or drops, without x-dead-letter-exchange) a message the queue let go of. */
  deadLetter(queue: MemoryQueue, message: StoredMessage, reason: DeathReason): void;
  /** x-expires elapsed with the queue unused. */
  expire(queue: MemoryQueue): void;
}

export interface QueueInit {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly exclusiveOwner: QueueOwner | undefined;
  /** As declared, for re-declare equivalence. */
  readonly declaredArguments: ArgTable;
  readonly args: QueueArguments;
  /** Engine-wide bound applied when x-max-length is absent or larger. */
  readonly safetyMaxMessages: number;
}

export class MemoryQueue {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly exclusiveOwner: QueueOwner | undefined;
  readonly declaredArguments: ArgTable;
  readonly args: QueueArguments;

  readonly #host: QueueHost;
  readonly #log: Logger;
  readonly #maxMessages: number;
  readonly #safetyBoundApplies: boolean;
  readonly #buckets: Deque<QueuedMessage>[];
  #consumers: QueueConsumer[] = [];
  #cursor = 0;
  #hadConsumer = false;
  #ready = 0;
  #readyBytes = 0;
  #seq = 0;
  #deleted = false;
  #dispatching = false;
  #dispatchAgain = false;
  #ttlTimer: NodeJS.Timeout | undefined;
  #ttlAt = Infinity;
  #expiresTimer: NodeJS.Timeout | undefined;
  #warnedSafetyBound = false;

  constructor(init: QueueInit, host: QueueHost, log: Logger) {
    this.name = init.name;
    this.durable = init.durable;
    this.autoDelete = init.autoDelete;
    this.exclusiveOwner = init.exclusiveOwner;
    this.declaredArguments = init.declaredArguments;
    this.args = init.args;
    this.#host = host;
    this.#log = log;
    this.#maxMessages = Math.min(init.args.maxLength ?? Infinity, init.safetyMaxMessages);
    this.#safetyBoundApplies = (init.args.maxLength ?? Infinity) > init.safetyMaxMessages;
    // A classic priority queue is one sub-queue per priority level (rabbit_priority_queue).
    const levels = (init.args.maxPriority ?? 0) + 1;
    this.#buckets = Array.from({ length: levels }, () => new Deque<QueuedMessage>());
    this.#armExpires();
  }

  get deleted(): boolean {
    return this.#deleted;
  }

  get consumerCount(): number {
    return this.#consumers.length;
  }

  get readyCount(): number {
    return this.#ready;
  }

  get readyBytes(): number {
    return this.#readyBytes;
  }

  publish(message: StoredMessage, nowMs: number): void {
    if (this.#deleted) return;
    const entry: QueuedMessage = {
      message,
      seq: this.#seq++,
      bucket: this.#bucketOf(message),
      expiresAt: this.#expiryOf(message, nowMs),
      redelivered: false,
    };
    if (this.#ready === 0 && !this.#dispatching) {
      const consumer = this.#pickConsumer();
      if (consumer !== undefined) {
        consumer.take(entry, this);
        return;
      }
    }
    this.#insert(entry);
    this.#enforceLimits();
    if (this.#dispatching) this.#dispatchAgain = true;
    this.#armTtl(nowMs);
  }

  /** basic.nack/reject requeue, or a closed channel: back to the original position, redelivered. */
  requeue(entries: readonly QueuedMessage[]): void {
    if (this.#deleted || entries.length === 0) return;
    for (const entry of entries) {
      entry.redelivered = true;
      this.#insert(entry);
    }
    this.dispatch();
    this.#enforceLimits();
  }

  addConsumer(consumer: QueueConsumer): void {
    this.#consumers.push(consumer);
    this.#hadConsumer = true;
    this.#clearExpires();
    this.dispatch();
  }

  /**
   * Returns true when the queue should now be auto-deleted: it is auto-delete, has had a consumer and
   * just lost the last one (AMQP 0-9-1 queue.declare auto-delete).
   */
  removeConsumer(consumer: QueueConsumer): boolean {
    const index = this.#consumers.indexOf(consumer);
    if (index < 0) return false;
    this.#consumers.splice(index, 1);
    if (index < this.#cursor) this.#cursor--;
    if (this.#cursor >= this.#consumers.length) this.#cursor = 0;
    if (this.#consumers.length > 0) return false;
    this.#armExpires();
    return this.autoDelete && this.#hadConsumer;
  }

  /** A re-declare counts as use for x-expires. */
  touch(): void {
    if (this.#consumers.length === 0) this.#armExpires();
  }

  /** Hands ready messages to consumers with capacity, dropping expired ones on the way. */
  dispatch(): void {
    if (this.#deleted) return;
    if (this.#dispatching) {
      this.#dispatchAgain = true;
      return;
    }
    this.#dispatching = true;
    try {
      do {
        this.#dispatchAgain = false;
        this.#dropExpired(Date.now());
        while (this.#ready > 0 && !this.#deleted) {
          const consumer = this.#pickConsumer();
          if (consumer === undefined) break;
          const entry = this.#shiftHead();
          if (entry === undefined) break;
          consumer.take(entry, this);
        }
      } while (this.#dispatchAgain && !this.#deleted);
    } finally {
      this.#dispatching = false;
    }
    this.#armTtl(Date.now());
  }

  /** Marks the queue deleted, drops its messages and timers; returns the consumers it had. */
  destroy(): QueueConsumer[] {
    const consumers = this.#consumers;
    this.#deleted = true;
    this.#consumers = [];
    this.#clearExpires();
    if (this.#ttlTimer !== undefined) clearTimeout(this.#ttlTimer);
    this.#ttlTimer = undefined;
    for (const bucket of this.#buckets) bucket.drain();
    this.#ready = 0;
    this.#readyBytes = 0;
    return consumers;
  }

  #bucketOf(message: StoredMessage): number {
    const max = this.#buckets.length - 1;
    if (max === 0) return 0;
    // Priorities above x-max-priority count as the maximum; no priority counts as 0.
    const p = message.properties.priority ?? 0;
    return Math.max(0, Math.min(max, Math.trunc(p)));
  }

  #expiryOf(message: StoredMessage, nowMs: number): number | undefined {
    // Queue TTL and per-message expiration both apply: the sooner wins.
    const ttls = [this.args.messageTtl, message.ttl].filter((t): t is number => t !== undefined);
    return ttls.length === 0 ? undefined : nowMs + Math.min(...ttls);
  }

  #insert(entry: QueuedMessage): void {
    const bucket = this.#buckets[entry.bucket];
    if (bucket === undefined) return;
    // New messages append; a requeued one goes before the first later arrival (usually near the head).
    const last = bucket.at(bucket.length - 1);
    if (last === undefined || last.seq < entry.seq) {
      bucket.push(entry);
    } else {
      let i = 0;
      while (i < bucket.length && (bucket.at(i)?.seq ?? Infinity) < entry.seq) i++;
      bucket.insertAt(i, entry);
    }
    this.#ready++;
    this.#readyBytes += entry.message.body.length;
  }

  #headBucket(): Deque<QueuedMessage> | undefined {
    for (let i = this.#buckets.length - 1; i >= 0; i--) {
      const bucket = this.#buckets[i];
      if (bucket !== undefined && bucket.length > 0) return bucket;
    }
    return undefined;
  }

  #shiftHead(): QueuedMessage | undefined {
    const entry = this.#headBucket()?.shift();
    if (entry !== undefined) {
      this.#ready--;
      this.#readyBytes -= entry.message.body.length;
    }
    return entry;
  }

  #pickConsumer(): QueueConsumer | undefined {
    const n = this.#consumers.length;
    for (let i = 0; i < n; i++) {
      const index = (this.#cursor + i) % n;
      const consumer = this.#consumers[index];
      if (consumer?.canTake() === true) {
        this.#cursor = (index + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  /** x-max-length / x-max-length-bytes, overflow drop-head: the oldest ready messages go first. */
  #enforceLimits(): void {
    const maxBytes = this.args.maxLengthBytes ?? Infinity;
    while (this.#ready > this.#maxMessages || this.#readyBytes > maxBytes) {
      const overCount = this.#ready > this.#maxMessages;
      const dropped = this.#shiftHead();
      if (dropped === undefined) break;
      if (overCount && this.#safetyBoundApplies && !this.#warnedSafetyBound) {
        this.#warnedSafetyBound = true;
        this.#log.warn(
          { queue: this.name, maxQueueMessages: this.#maxMessages },
          'memory engine queue reached maxQueueMessages; dropping its oldest messages',
        );
      }
      this.#host.deadLetter(this, dropped.message, 'maxlen');
    }
  }

  /** TTL expiry happens at the head of each priority level, as in RabbitMQ. */
  #dropExpired(nowMs: number): void {
    for (const bucket of this.#buckets) {
      for (let head = bucket.peek(); head !== undefined; head = bucket.peek()) {
        if (head.expiresAt === undefined || head.expiresAt > nowMs) break;
        bucket.shift();
        this.#ready--;
        this.#readyBytes -= head.message.body.length;
        this.#host.deadLetter(this, head.message, 'expired');
        if (this.#deleted) return;
      }
    }
  }

  #armTtl(nowMs: number): void {
    if (this.#deleted) return;
    let earliest = Infinity;
    for (const bucket of this.#buckets) {
      const at = bucket.peek()?.expiresAt;
      if (at !== undefined && at < earliest) earliest = at;
    }
    if (earliest === Infinity) {
      if (this.#ttlTimer !== undefined) clearTimeout(this.#ttlTimer);
      this.#ttlTimer = undefined;
      this.#ttlAt = Infinity;
      return;
    }
    if (this.#ttlTimer !== undefined && this.#ttlAt <= earliest) return;
    if (this.#ttlTimer !== undefined) clearTimeout(this.#ttlTimer);
    this.#ttlAt = earliest;
    // +1: fire when Date.now() has passed the expiry, not a hair before it.
    this.#ttlTimer = setTimeout(() => {
      this.#ttlTimer = undefined;
      this.#ttlAt = Infinity;
      this.dispatch();
    }, Math.max(0, earliest - nowMs) + 1);
    this.#ttlTimer.unref();
  }

  #armExpires(): void {
    this.#clearExpires();
    const expires = this.args.expires;
    if (expires === undefined || this.#deleted) return;
    this.#expiresTimer = setTimeout(() => {
      this.#expiresTimer = undefined;
      if (!this.#deleted && this.#consumers.length === 0) this.#host.expire(this);
    }, expires);
    this.#expiresTimer.unref();
  }

  #clearExpires(): void {
    if (this.#expiresTimer !== undefined) clearTimeout(this.#expiresTimer);
    this.#expiresTimer = undefined;
  }
}
