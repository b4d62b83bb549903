// One exchange of the memory engine: its bindings and how it routes a key to queue names.
// Bindings name queues rather than hold them, so deleting a queue is one unbind per exchange and a
// stale binding can never route into a deleted queue.

import { compileTopicPattern, matchTopicWords, splitTopicKey, type TopicPattern } from './topic-matcher.js';

export type ExchangeType = 'direct' | 'topic' | 'fanout';

export class Exchange {
  readonly name: string;
  readonly type: ExchangeType;
  /** binding key → queue names. For topic exchanges only keys without wildcards live here. */
  readonly #exact = new Map<string, Set<string>>();
  /** topic exchanges: binding key with `*`/`#` → its compiled pattern and queue names. */
  readonly #patterns = new Map<string, { pattern: TopicPattern; queues: Set<string> }>();
  /** queue name → its binding keys here: deleting a queue visits its own bindings, not all of them. */
  readonly #keysOf = new Map<string, Set<string>>();

  constructor(name: string, type: ExchangeType) {
    this.name = name;
    this.type = type;
  }

  /** AMQP queue.bind is idempotent: the same (queue, key) twice is one binding. */
  bind(queue: string, bindingKey: string): void {
    let keys = this.#keysOf.get(queue);
    if (keys === undefined) {
      keys = new Set();
      this.#keysOf.set(queue, keys);
    }
    keys.add(bindingKey);
    if (this.type === 'topic') {
      const pattern = compileTopicPattern(bindingKey);
      if (pattern.wildcard) {
        let entry = this.#patterns.get(bindingKey);
        if (entry === undefined) {
          entry = { pattern, queues: new Set() };
          this.#patterns.set(bindingKey, entry);
        }
        entry.queues.add(queue);
        return;
      }
    }
    let queues = this.#exact.get(bindingKey);
    if (queues === undefined) {
      queues = new Set();
      this.#exact.set(bindingKey, queues);
    }
    queues.add(queue);
  }

  /** Removes one binding; a no-op when it does not exist (queue.unbind of an absent binding). */
  unbind(queue: string, bindingKey: string): void {
    const keys = this.#keysOf.get(queue);
    if (keys !== undefined && keys.delete(bindingKey) && keys.size === 0) this.#keysOf.delete(queue);
    const entry = this.#patterns.get(bindingKey);
    if (entry !== undefined && entry.queues.delete(queue) && entry.queues.size === 0) this.#patterns.delete(bindingKey);
    const queues = this.#exact.get(bindingKey);
    if (queues !== undefined && queues.delete(queue) && queues.size === 0) this.#exact.delete(bindingKey);
  }

  /** Removes every binding of a queue (the queue was deleted). */
  unbindQueue(queue: string): void {
    const keys = this.#keysOf.get(queue);
    if (keys === undefined) return;
    for (const key of [...keys]) this.unbind(queue, key);
  }

  bindingCount(): number {
    let n = 0;
    for (const queues of this.#exact.values()) n += queues.size;
    for (const entry of this.#patterns.values()) n += entry.queues.size;
    return n;
  }

  /** Adds the names of the queues the key routes to; a queue bound twice is delivered to once. */
  route(routingKey: string, into: Set<string>): void {
    switch (this.type) {
      case 'fanout':
        for (const queues of this.#exact.values()) for (const q of queues) into.add(q);
        return;
      case 'direct':
        addAll(into, this.#exact.get(routingKey));
        return;
      case 'topic': {
        addAll(into, this.#exact.get(routingKey));
        if (this.#patterns.size === 0) return;
        const words = splitTopicKey(routingKey);
        for (const { pattern, queues } of this.#patterns.values()) {
          if (matchTopicWords(pattern.words, words)) addAll(into, queues);
        }
        return;
      }
    }
  }
}

function addAll(into: Set<string>, from: ReadonlySet<string> | undefined): void {
  if (from !== undefined) for (const q of from) into.add(q);
}
