// The session's subscriptions and the deliveries still waiting for an ACK/NACK.
// Pending deliveries are indexed by delivery tag for the whole session (tags are per engine session,
// like an AMQP channel's) so an ACK still works after UNSUBSCRIBE, and so a cumulative `client` ACK
// can tell whether one `multiple` ack would also settle another subscription's messages.

import type { AckMode, Destination } from '../destination/types.js';

export interface Subscription {
  /** The client's `id`; undefined for STOMP 1.0 subscriptions without one. */
  readonly id: string | undefined;
  /** Key used by UNSUBSCRIBE and in message-ids: `T_<id>` or `Q_<destination>` (RabbitMQ's consumer tag). */
  readonly tag: string;
  readonly destinationHeader: string;
  readonly destination: Destination;
  readonly ack: AckMode;
  readonly queue: string;
  /** Engine consumer tag once consuming. */
  consumerTag: string | undefined;
  /** Thumper's own subscription for a `/temp-queue` reply queue: clients cannot UNSUBSCRIBE it. */
  readonly internal: boolean;
  /** Delivery tags awaiting settlement, ascending. */
  readonly pending: number[];
  active: boolean;
}

export class SubscriptionRegistry {
  readonly #byTag = new Map<string, Subscription>();
  readonly #byConsumer = new Map<string, Subscription>();
  readonly #pending = new Map<number, Subscription>();

  get size(): number {
    return this.#byTag.size;
  }

  has(tag: string): boolean {
    return this.#byTag.has(tag);
  }

  get(tag: string): Subscription | undefined {
    return this.#byTag.get(tag);
  }

  byConsumerTag(consumerTag: string): Subscription | undefined {
    return this.#byConsumer.get(consumerTag);
  }

  add(sub: Subscription): void {
    this.#byTag.set(sub.tag, sub);
  }

  setConsumer(sub: Subscription, consumerTag: string): void {
    sub.consumerTag = consumerTag;
    this.#byConsumer.set(consumerTag, sub);
  }

  /** Stops routing to the subscription; its pending deliveries stay ackable. */
  remove(sub: Subscription): void {
    sub.active = false;
    if (this.#byTag.get(sub.tag) === sub) this.#byTag.delete(sub.tag);
    if (sub.consumerTag !== undefined && this.#byConsumer.get(sub.consumerTag) === sub) {
      this.#byConsumer.delete(sub.consumerTag);
    }
  }

  all(): IterableIterator<Subscription> {
    return this.#byTag.values();
  }

  track(sub: Subscription, deliveryTag: number): void {
    sub.pending.push(deliveryTag);
    this.#pending.set(deliveryTag, sub);
  }

  pendingOwner(deliveryTag: number): Subscription | undefined {
    return this.#pending.get(deliveryTag);
  }

  /**
   * Removes and returns the tags a settlement of `deliveryTag` covers: for `client` mode every
   * pending tag of that subscription up to it (STOMP 1.2 §ACK: cumulative), else just the one.
   */
  settle(sub: Subscription, deliveryTag: number): number[] {
    let settled: number[];
    if (sub.ack === 'client') {
      let n = 0;
      while (n < sub.pending.length && sub.pending[n]! <= deliveryTag) n++;
      settled = sub.pending.splice(0, n);
    } else {
      const i = sub.pending.indexOf(deliveryTag);
      settled = i >= 0 ? sub.pending.splice(i, 1) : [];
    }
    for (const t of settled) this.#pending.delete(t);
    return settled;
  }

  /** True when no other subscription has a pending tag below `deliveryTag` (so `multiple` is safe). */
  onlyOwnerBelow(sub: Subscription, deliveryTag: number): boolean {
    for (const [tag, owner] of this.#pending) {
      if (owner !== sub && tag < deliveryTag) return false;
    }
    return true;
  }

  clear(): void {
    this.#byTag.clear();
    this.#byConsumer.clear();
    this.#pending.clear();
  }
}

/** RabbitMQ's consumer tag: `T_<id>`, or `Q_<destination>` for an id-less 1.0 subscription (reference §2.6). */
export function subscriptionTag(id: string | undefined, destinationHeader: string): string {
  return id !== undefined ? `T_${id}` : `Q_${destinationHeader}`;
}

/** `<consumer tag>@@<session>@@<delivery tag>` (reference §2.7). */
export function formatMessageId(tag: string, sessionId: string, deliveryTag: number): string {
  return `${tag}@@${sessionId}@@${deliveryTag}`;
}

/** The consumer tag may itself contain `@@` (it can hold a destination), so parse from the right. */
export function parseMessageId(id: string): { tag: string; deliveryTag: number } | undefined {
  const last = id.lastIndexOf('@@');
  if (last < 0) return undefined;
  const prev = id.lastIndexOf('@@', last - 1);
  if (prev < 0) return undefined;
  const n = id.slice(last + 2);
  if (!/^[0-9]{1,15}$/.test(n)) return undefined;
  return { tag: id.slice(0, prev), deliveryTag: Number(n) };
}
