// One virtual host of the memory engine: its exchanges (the AMQP pre-declared ones plus configured
// ones), its queues, routing through the default exchange, dead-lettering and queue deletion.

import type { Logger } from 'pino';
import { Exchange, type ExchangeType } from './exchange.js';
import { MemoryQueue, type QueueHost, type QueueInit } from './queue.js';
import { deadLetter, isDeadLetterCycle, type DeathReason, type StoredMessage } from './stored-message.js';

/** Declared in every vhost, as RabbitMQ does (amq.headers/amq.match are missing: no headers type). */
export const PREDECLARED_EXCHANGES: ReadonlyArray<{ name: string; type: ExchangeType }> = [
  { name: 'amq.direct', type: 'direct' },
  { name: 'amq.topic', type: 'topic' },
  { name: 'amq.fanout', type: 'fanout' },
];

export class VirtualHost implements QueueHost {
  readonly name: string;
  readonly #exchanges = new Map<string, Exchange>();
  readonly #queues = new Map<string, MemoryQueue>();
  readonly #log: Logger;
  readonly #safetyMaxMessages: number;

  constructor(name: string, safetyMaxMessages: number, log: Logger) {
    this.name = name;
    this.#safetyMaxMessages = safetyMaxMessages;
    this.#log = log;
    for (const { name: exchange, type } of PREDECLARED_EXCHANGES) this.declareExchange(exchange, type);
  }

  /** Returns false when an exchange of that name but another type exists. */
  declareExchange(name: string, type: ExchangeType): boolean {
    const existing = this.#exchanges.get(name);
    if (existing !== undefined) return existing.type === type;
    this.#exchanges.set(name, new Exchange(name, type));
    return true;
  }

  exchange(name: string): Exchange | undefined {
    return this.#exchanges.get(name);
  }

  /** '' is the default exchange, which always exists. */
  hasExchange(name: string): boolean {
    return name === '' || this.#exchanges.has(name);
  }

  queue(name: string): MemoryQueue | undefined {
    return this.#queues.get(name);
  }

  get queueCount(): number {
    return this.#queues.size;
  }

  createQueue(init: Omit<QueueInit, 'safetyMaxMessages'>): MemoryQueue {
    const queue = new MemoryQueue({ ...init, safetyMaxMessages: this.#safetyMaxMessages }, this, this.#log);
    this.#queues.set(init.name, queue);
    return queue;
  }

  /** Routes a message; unroutable messages are dropped (no mandatory flag in this interface). */
  publish(exchangeName: string, message: StoredMessage, nowMs: number): void {
    for (const queue of this.#route(exchangeName, message.routingKey)) queue.publish(message, nowMs);
  }

  /** Unbinds, forgets and empties a queue; its consumers get a server-side basic.cancel. */
  deleteQueue(queue: MemoryQueue): void {
    if (queue.deleted || this.#queues.get(queue.name) !== queue) return;
    this.#queues.delete(queue.name);
    for (const exchange of this.#exchanges.values()) exchange.unbindQueue(queue.name);
    const consumers = queue.destroy();
    queue.exclusiveOwner?.releaseQueue(queue);
    for (const consumer of consumers) consumer.cancelledByServer();
  }

  /** Stops everything (engine stop): queues and their timers go. */
  clear(): void {
    for (const queue of [...this.#queues.values()]) this.deleteQueue(queue);
  }

  deadLetter(queue: MemoryQueue, message: StoredMessage, reason: DeathReason): void {
    const dlx = queue.args.deadLetterExchange;
    if (dlx === undefined) return;
    if (!this.hasExchange(dlx)) {
      this.#log.debug({ queue: queue.name, dlx, reason }, 'dead-letter exchange missing; message dropped');
      return;
    }
    const dead = deadLetter(message, reason, queue.name, dlx, queue.args.deadLetterRoutingKey, Date.now());
    const now = Date.now();
    for (const target of this.#route(dlx, dead.routingKey)) {
      if (isDeadLetterCycle(dead, target.name)) {
        this.#log.debug({ queue: queue.name, target: target.name, reason }, 'dead-letter cycle; message dropped');
        continue;
      }
      target.publish(dead, now);
    }
  }

  expire(queue: MemoryQueue): void {
    this.#log.debug({ queue: queue.name, vhost: this.name }, 'queue expired (x-expires)');
    this.deleteQueue(queue);
  }

  #route(exchangeName: string, routingKey: string): MemoryQueue[] {
    if (exchangeName === '') {
      // The default exchange: every queue is bound to it by its own name (AMQP 0-9-1 §3.1.3.1).
      const queue = this.#queues.get(routingKey);
      return queue === undefined ? [] : [queue];
    }
    const exchange = this.#exchanges.get(exchangeName);
    if (exchange === undefined) return [];
    const names = new Set<string>();
    exchange.route(routingKey, names);
    const queues: MemoryQueue[] = [];
    for (const name of names) {
      const queue = this.#queues.get(name);
      if (queue !== undefined) queues.push(queue);
    }
    return queues;
  }
}
