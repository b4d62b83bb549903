// Per-STOMP-connection exclusivity on a shared AMQP connection. RabbitMQ scopes an exclusive queue to
// the connection that declared it, but sessions share pooled connections: each session records the
// exclusive queues it declared in its lease's owner map (so another session touching one gets
// RESOURCE_LOCKED, as a second connection would) and deletes them when it ends, as a connection
// close would. A restored session moves to another lease: the old connection took its queues along.

import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';

/** The part of a pool lease this needs. */
export interface OwnerScope {
  readonly connection: ChannelModel;
  readonly exclusiveOwners: Map<string, object>;
}

export class ExclusiveQueues {
  readonly #owner: object;
  readonly #log: Logger;
  #scope: OwnerScope;
  /** Exclusive queues this session declared. */
  readonly #owned = new Set<string>();
  /** The owned ones that are also auto-delete: the broker drops them with their last consumer. */
  readonly #autoDelete = new Set<string>();
  /** Consumer tag → queue, to know when an owned queue is gone without us deleting it. */
  readonly #consumerQueues = new Map<string, string>();

  constructor(owner: object, scope: OwnerScope, log: Logger) {
    this.#owner = owner;
    this.#scope = scope;
    this.#log = log;
  }

  get size(): number {
    return this.#owned.size;
  }

  /** The connection (and with it every owned queue) is gone; later declarations count on `scope`. */
  moveTo(scope: OwnerScope): void {
    this.forgetAll();
    this.#scope = scope;
  }

  lockedElsewhere(queue: string): boolean {
    const owner = this.#scope.exclusiveOwners.get(queue);
    return owner !== undefined && owner !== this.#owner;
  }

  declared(queue: string, spec: { readonly exclusive: boolean; readonly autoDelete: boolean }): void {
    if (!spec.exclusive || this.#scope.exclusiveOwners.has(queue)) return;
    this.#scope.exclusiveOwners.set(queue, this.#owner);
    this.#owned.add(queue);
    if (spec.autoDelete) this.#autoDelete.add(queue);
  }

  consumed(consumerTag: string, queue: string): void {
    this.#consumerQueues.set(consumerTag, queue);
  }

  /**
   * Forget an owned queue the broker has deleted by itself (server cancel; last consumer of an
   * auto-delete one gone), so teardown never deletes a namesake declared since.
   */
  consumerGone(consumerTag: string, queueDeleted: boolean): void {
    const queue = this.#consumerQueues.get(consumerTag);
    this.#consumerQueues.delete(consumerTag);
    if (queue === undefined || !this.#owned.has(queue)) return;
    const stillConsumed = [...this.#consumerQueues.values()].includes(queue);
    if (queueDeleted || (this.#autoDelete.has(queue) && !stillConsumed)) this.disown(queue);
  }

  disown(queue: string): void {
    if (!this.#owned.delete(queue)) return;
    this.#autoDelete.delete(queue);
    if (this.#scope.exclusiveOwners.get(queue) === this.#owner) this.#scope.exclusiveOwners.delete(queue);
  }

  forgetAll(): void {
    for (const name of [...this.#owned]) this.disown(name);
    this.#consumerQueues.clear();
  }

  /** Deletes every owned queue on `channel`, or on a spare channel of the connection when undefined. */
  async deleteAll(channel: Channel | undefined): Promise<void> {
    if (channel !== undefined) {
      await this.#deleteOn(channel);
      return;
    }
    if (this.#owned.size === 0) return;
    let spare: Channel;
    try {
      spare = await this.#scope.connection.createChannel();
    } catch {
      // The connection is gone too, and RabbitMQ deleted its exclusive queues with it.
      return;
    }
    spare.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'cleanup channel failed'));
    await this.#deleteOn(spare);
    try {
      await spare.close();
    } catch {
      // Closed by the broker after a failed delete.
    }
  }

  async #deleteOn(channel: Channel): Promise<void> {
    for (const name of this.#owned) {
      try {
        await channel.deleteQueue(name);
      } catch (err) {
        this.#log.debug({ queue: name, err: (err as Error).message }, 'could not delete an exclusive queue');
        return;
      }
    }
  }
}
