// What an AMQP session must replay on a new channel after its connection was lost: the queues it
// declared (or only checked) with the bindings it made on them, and its consumers, each with the
// prefetch in force when it started. Kept as current state, not as a log of calls: a cancel, a
// server cancel or a delete removes what it undoes, so a long-lived session's record stays the
// size of what it has open. Pure: the AMQP session feeds it and executes its replay plan.

import type { QueueSpec } from '../../destination/types.js';
import type { ConsumeOptions } from '../engine.js';

/** How a queue came to exist for this session: declared with a spec, or only checked (passive). */
export type QueueOrigin =
  | { readonly kind: 'declared'; readonly spec: QueueSpec }
  | { readonly kind: 'checked' };

export interface ConsumerRecipe<D> {
  readonly tag: string;
  readonly queue: string;
  /** basic.qos per-consumer prefetch in force when basic.consume was sent (0 = unlimited). */
  readonly prefetch: number;
  readonly options: ConsumeOptions;
  readonly onDelivery: D;
}

export type ReplayStep<D> =
  | { readonly kind: 'qos'; readonly prefetch: number }
  | { readonly kind: 'declare'; readonly spec: QueueSpec }
  | { readonly kind: 'check'; readonly queue: string }
  | { readonly kind: 'bind'; readonly queue: string; readonly exchange: string; readonly routingKey: string }
  | { readonly kind: 'consume'; readonly recipe: ConsumerRecipe<D> };

interface QueueRecord {
  origin: QueueOrigin;
  /** RabbitMQ named it (declared with name ''): it cannot be declared again under that name. */
  readonly serverNamed: boolean;
  /** "exchange\0routingKey" → the binding, in the order they were made. */
  readonly bindings: Map<string, { readonly exchange: string; readonly routingKey: string }>;
}

/** `D` is the delivery callback's type, kept opaque so this module stays free of amqplib. */
export class SubscriptionRecord<D> {
  /** Queue name → record, in first-use order (Map keeps insertion order). */
  readonly #queues = new Map<string, QueueRecord>();
  readonly #consumers = new Map<string, ConsumerRecipe<D>>();
  #prefetch = 0;

  /** queue.declare succeeded; `name` is the broker's answer (generated when spec.name is ''). */
  declared(name: string, spec: QueueSpec): void {
    const known = this.#queues.get(name);
    const serverNamed = spec.name === '';
    const origin: QueueOrigin = { kind: 'declared', spec: serverNamed ? { ...spec, name } : spec };
    if (known === undefined) this.#queues.set(name, { origin, serverNamed, bindings: new Map() });
    else known.origin = origin;
  }

  /** A passive declare succeeded. A queue this session declared stays "declared". */
  checked(name: string): void {
    if (this.#queues.has(name)) return;
    this.#queues.set(name, { origin: { kind: 'checked' }, serverNamed: false, bindings: new Map() });
  }

  bound(queue: string, exchange: string, routingKey: string): void {
    let record = this.#queues.get(queue);
    if (record === undefined) {
      // Bound without this session declaring or checking it: it existed, so checking is the replay.
      record = { origin: { kind: 'checked' }, serverNamed: false, bindings: new Map() };
      this.#queues.set(queue, record);
    }
    record.bindings.set(`${exchange}\u0000${routingKey}`, { exchange, routingKey });
  }

  prefetch(count: number): void {
    this.#prefetch = count;
  }

  consumed(tag: string, queue: string, options: ConsumeOptions, onDelivery: D): void {
    this.#consumers.set(tag, { tag, queue, prefetch: this.#prefetch, options, onDelivery });
    if (!this.#queues.has(queue)) this.checked(queue);
  }

  /**
   * A consumer ended: by basic.cancel, or by the broker (`queueGone`: its queue was deleted or its
   * node went down). An auto-delete queue goes with its last consumer, and a merely checked one has
   * nothing left to replay: both are forgotten once no consumer of this session remains on them.
   */
  cancelled(tag: string, queueGone: boolean): void {
    const recipe = this.#consumers.get(tag);
    if (recipe === undefined) return;
    this.#consumers.delete(tag);
    const record = this.#queues.get(recipe.queue);
    if (record === undefined) return;
    if (queueGone) {
      this.#queues.delete(recipe.queue);
      return;
    }
    if (this.#consumed(recipe.queue)) return;
    if (record.origin.kind === 'checked' || record.origin.spec.autoDelete) this.#queues.delete(recipe.queue);
  }

  /** queue.delete: the queue, its bindings and its consumers are gone. */
  deleted(queue: string): void {
    this.#queues.delete(queue);
    for (const [tag, recipe] of this.#consumers) if (recipe.queue === queue) this.#consumers.delete(tag);
  }

  consumerTags(): string[] {
    return [...this.#consumers.keys()];
  }

  /** A queue RabbitMQ named that must be replayed, which makes the session unrestorable. */
  serverNamedQueue(): string | undefined {
    for (const [name, record] of this.#queues) if (record.serverNamed) return name;
    return undefined;
  }

  /**
   * The calls that rebuild this state on a fresh channel (whose prefetch is 0): each queue is
   * declared (or, when consumed, checked) and bound, then each consumer starts under its own prefetch, and the
   * prefetch in force now is restored last (it applies to consumers started later).
   */
  replay(): Array<ReplayStep<D>> {
    const steps: Array<ReplayStep<D>> = [];
    for (const [name, record] of this.#queues) {
      if (record.origin.kind === 'declared') steps.push({ kind: 'declare', spec: record.origin.spec });
      // Checking a queue nothing consumes here would only let its absence fail the restore.
      else if (this.#consumed(name)) steps.push({ kind: 'check', queue: name });
      else continue;
      for (const b of record.bindings.values()) steps.push({ kind: 'bind', queue: name, ...b });
    }
    let prefetch = 0;
    for (const recipe of this.#consumers.values()) {
      if (recipe.prefetch !== prefetch) {
        prefetch = recipe.prefetch;
        steps.push({ kind: 'qos', prefetch });
      }
      steps.push({ kind: 'consume', recipe });
    }
    if (this.#prefetch !== prefetch) steps.push({ kind: 'qos', prefetch: this.#prefetch });
    return steps;
  }

  #consumed(queue: string): boolean {
    for (const recipe of this.#consumers.values()) if (recipe.queue === queue) return true;
    return false;
  }
}
