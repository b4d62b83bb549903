// One engine session = one AMQP ConfirmChannel, as RabbitMQ's STOMP plugin has one channel per
// STOMP connection, so a broker channel error ends the whole STOMP session (reference §8.1).
// A channel failure is reported exactly once: to the calls in flight (they reject with it) or,
// when none is in flight to blame, through events.onClosed.
// Sessions share pooled connections, but RabbitMQ scopes exclusive queues to a connection; the
// session restores per-STOMP-connection exclusivity itself (see #lockedElsewhere, #teardown).

import type { Channel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { Logger } from 'pino';
import {
  EngineError,
  type ConsumeOptions,
  type EngineSession,
  type EngineSessionContext,
  type EngineSessionEvents,
} from '../engine.js';
import { stompError, type StompError } from '../../errors.js';
import type { QueueSpec } from '../../destination/types.js';
import type { Delivery, OutboundMessage } from '../message.js';
import { amqpErrorToStomp, resourceLocked } from './amqp-errors.js';
import { fitsShortstr, oversizedProperty, toAmqpArgs, toDelivery, toPublishOptions } from './amqp-args.js';
import type { Lease } from './connection-pool.js';

type State = 'open' | 'closing' | 'closed';

const sessionClosed = (): StompError => stompError('ENGINE_ERROR', 'the engine session is closed');

function tooLong(what: string, value: string): StompError {
  const shown = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return stompError('INVALID_DESTINATION', `${what} '${shown}' is longer than 255 bytes, the AMQP limit`);
}

export class AmqpSession implements EngineSession {
  readonly #channel: ConfirmChannel;
  readonly #lease: Lease;
  readonly #vhost: string;
  readonly #events: EngineSessionEvents;
  readonly #log: Logger;
  readonly #onEnd: () => void;
  readonly #onConfirm: ((seconds: number) => void) | undefined;
  #state: State = 'open';
  /** Calls awaiting the broker: a channel failure is theirs to report while any are in flight. */
  #pending = 0;
  /** Why the channel ended, once it did (or is being torn down for a local failure). */
  #failure: StompError | undefined;
  /** The failure reached the user, by onClosed or by a rejected call. */
  #reported = false;
  #finished: Promise<void> | undefined;
  #drained: Promise<void> | undefined;
  /** Exclusive queues this session declared: deleted when it ends, as a connection close would. */
  readonly #ownedExclusive = new Set<string>();
  /** The owned ones that are also auto-delete: the broker drops them with their last consumer. */
  readonly #ownedAutoDelete = new Set<string>();
  /** Consumer tag → queue, to know when an owned queue is gone without us deleting it. */
  readonly #consumerQueues = new Map<string, string>();

  constructor(
    channel: ConfirmChannel,
    lease: Lease,
    ctx: EngineSessionContext,
    events: EngineSessionEvents,
    onEnd: () => void,
    onConfirm?: (seconds: number) => void,
  ) {
    this.#channel = channel;
    this.#lease = lease;
    this.#vhost = ctx.vhost;
    this.#events = events;
    this.#log = ctx.log;
    this.#onEnd = onEnd;
    this.#onConfirm = onConfirm;
    // The broker's reason arrives as 'error' just before 'close'; a lost connection sends 'close' only.
    channel.on('error', (err: Error) => {
      this.#failure ??= amqpErrorToStomp(err);
    });
    channel.on('close', () => this.#onChannelClosed());
    // basic.cancel from the broker: the queue was deleted (or its node went down).
    channel.on('cancel', (fields: { consumerTag: string }) => {
      this.#log.info({ consumerTag: fields.consumerTag }, 'RabbitMQ cancelled a consumer');
      this.#consumerGone(fields.consumerTag, true);
      this.#guard('onCancelled', () => this.#events.onCancelled(fields.consumerTag));
    });
    channel.on('handler-error', (err: Error, event: string) => {
      this.#log.error({ err: err.message, event }, 'amqplib channel handler failed');
    });
  }

  publish(exchange: string, routingKey: string, message: OutboundMessage, confirm: boolean): Promise<void> {
    if (!fitsShortstr(exchange)) return rejectWith(tooLong('exchange', exchange));
    if (!fitsShortstr(routingKey)) return rejectWith(tooLong('routing key', routingKey));
    const property = oversizedProperty(message.properties);
    if (property !== undefined) {
      return rejectWith(stompError('INVALID_HEADER', `AMQP property ${property} is longer than 255 bytes`));
    }
    return this.#run(undefined, async () => {
      const options = toPublishOptions(message);
      if (!confirm) {
        if (!this.#publish(exchange, routingKey, message, options)) {
          await this.#drain();
          // Drain also ends when the channel closes: then this publish is the call to blame.
          if (this.#state !== 'open') throw new Error('channel closed');
        }
        return;
      }
      const started = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        this.#publish(exchange, routingKey, message, options, (err: unknown) => {
          this.#onConfirm?.(Number(process.hrtime.bigint() - started) / 1e9);
          if (err === null || err === undefined) resolve();
          else reject(err instanceof Error ? err : new Error(String(err)));
        });
      });
    });
  }

  /** amqplib encodes the whole frame before writing, so an encoding failure leaves the channel clean. */
  #publish(
    exchange: string,
    routingKey: string,
    message: OutboundMessage,
    options: Options.Publish,
    onConfirm?: (err: unknown) => void,
  ): boolean {
    try {
      return onConfirm === undefined
        ? this.#channel.publish(exchange, routingKey, message.body, options)
        : this.#channel.publish(exchange, routingKey, message.body, options, onConfirm);
    } catch (err) {
      if (err instanceof RangeError) {
        // amqplib ≥ 2.3.1: the headers table does not fit its 64 KiB encoding buffer.
        throw new EngineError(stompError('INVALID_HEADER', `message headers too large for AMQP: ${err.message}`));
      }
      throw err;
    }
  }

  declareQueue(spec: QueueSpec): Promise<string> {
    if (!fitsShortstr(spec.name)) return rejectWith(tooLong('queue', spec.name));
    return this.#run(spec.name === '' ? undefined : spec.name, async () => {
      const ok = await this.#channel.assertQueue(spec.name, {
        durable: spec.durable,
        autoDelete: spec.autoDelete,
        exclusive: spec.exclusive,
        arguments: toAmqpArgs(spec.arguments),
      });
      if (spec.exclusive && !this.#lease.exclusiveOwners.has(ok.queue)) {
        this.#lease.exclusiveOwners.set(ok.queue, this);
        this.#ownedExclusive.add(ok.queue);
        if (spec.autoDelete) this.#ownedAutoDelete.add(ok.queue);
      }
      return ok.queue;
    });
  }

  checkQueue(name: string): Promise<void> {
    if (!fitsShortstr(name)) return rejectWith(tooLong('queue', name));
    return this.#run(name, async () => {
      await this.#channel.checkQueue(name);
    });
  }

  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    for (const [what, value] of [['queue', queue], ['exchange', exchange], ['routing key', routingKey]] as const) {
      if (!fitsShortstr(value)) return rejectWith(tooLong(what, value));
    }
    return this.#run(queue, async () => {
      await this.#channel.bindQueue(queue, exchange, routingKey);
    });
  }

  deleteQueue(name: string): Promise<void> {
    if (!fitsShortstr(name)) return rejectWith(tooLong('queue', name));
    return this.#run(name, async () => {
      await this.#channel.deleteQueue(name);
      this.#disown(name);
    });
  }

  setPrefetch(count: number): Promise<void> {
    return this.#run(undefined, async () => {
      // basic.qos global=false: per consumer, for consumers started after it (RabbitMQ ≥ 3.3).
      await this.#channel.prefetch(count, false);
    });
  }

  consume(queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): Promise<string> {
    if (!fitsShortstr(queue)) return rejectWith(tooLong('queue', queue));
    return this.#run(queue, async () => {
      const ok = await this.#channel.consume(
        queue,
        // null = server cancel, reported by the channel's 'cancel' listener with its tag.
        (msg: ConsumeMessage | null) => {
          if (msg !== null) this.#guard('onDelivery', () => onDelivery(toDelivery(msg)));
        },
        { noAck: options.noAck, arguments: toAmqpArgs(options.args) },
      );
      this.#consumerQueues.set(ok.consumerTag, queue);
      return ok.consumerTag;
    });
  }

  cancel(consumerTag: string): Promise<void> {
    return this.#run(undefined, async () => {
      await this.#channel.cancel(consumerTag);
      this.#consumerGone(consumerTag, false);
    });
  }

  ack(deliveryTag: number, multiple: boolean): void {
    if (this.#state !== 'open') return;
    try {
      this.#channel.ack(tagOnly(deliveryTag), multiple);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'ack on a closing channel dropped');
    }
  }

  nack(deliveryTag: number, multiple: boolean, requeue: boolean): void {
    if (this.#state !== 'open') return;
    try {
      this.#channel.nack(tagOnly(deliveryTag), multiple, requeue);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'nack on a closing channel dropped');
    }
  }

  close(): Promise<void> {
    if (this.#state === 'open') this.#state = 'closing';
    return this.#teardown(true);
  }

  /** Engine stop: report `error` as for a broker failure, then close the channel. */
  terminate(error: StompError): Promise<void> {
    if (this.#state === 'open') {
      this.#failure ??= error;
      this.#state = 'closing';
      this.#report();
    }
    return this.#teardown(true);
  }

  /** Runs one broker call, mapping any failure to the single error this channel reports. */
  async #run<T>(queue: string | undefined, call: () => Promise<T>): Promise<T> {
    if (this.#state !== 'open') throw new EngineError(this.#failure ?? sessionClosed());
    if (queue !== undefined && this.#lockedElsewhere(queue)) {
      // What RabbitMQ does to a second connection touching an exclusive queue: a channel error.
      const failure = resourceLocked(queue, this.#vhost);
      this.#failure = failure;
      this.#reported = true;
      this.#state = 'closing';
      void this.#teardown(true);
      throw new EngineError(failure);
    }
    this.#pending += 1;
    try {
      return await call();
    } catch (err) {
      const failure = this.#failureFor(err);
      if (failure === this.#failure) this.#reported = true;
      throw new EngineError(failure);
    } finally {
      this.#pending -= 1;
      // Calls in flight when the channel died may still have succeeded (their reply came in the
      // same read as the close): then nobody carried the failure and onClosed must.
      if (this.#pending === 0 && this.#state !== 'open') this.#report();
    }
  }

  /**
   * Forget an owned exclusive queue the broker has deleted by itself (server cancel; last consumer
   * of an auto-delete one gone), so teardown never deletes a namesake declared since.
   */
  #consumerGone(consumerTag: string, queueDeleted: boolean): void {
    const queue = this.#consumerQueues.get(consumerTag);
    this.#consumerQueues.delete(consumerTag);
    if (queue === undefined || !this.#ownedExclusive.has(queue)) return;
    const stillConsumed = [...this.#consumerQueues.values()].includes(queue);
    if (queueDeleted || (this.#ownedAutoDelete.has(queue) && !stillConsumed)) this.#disown(queue);
  }

  #disown(queue: string): void {
    if (!this.#ownedExclusive.delete(queue)) return;
    this.#ownedAutoDelete.delete(queue);
    if (this.#lease.exclusiveOwners.get(queue) === this) this.#lease.exclusiveOwners.delete(queue);
  }

  #lockedElsewhere(queue: string): boolean {
    const owner = this.#lease.exclusiveOwners.get(queue);
    return owner !== undefined && owner !== this;
  }

  #failureFor(err: unknown): StompError {
    if (this.#failure !== undefined) return this.#failure;
    if (this.#state !== 'open') return sessionClosed();
    // Refused before anything reached the wire: the channel is fine.
    if (err instanceof EngineError) return err.error;
    if (err instanceof Error && err.message === 'message nacked') {
      // basic.nack: the broker could not take the message (e.g. x-overflow reject-publish); the
      // channel itself is fine.
      return stompError('ENGINE_ERROR', 'RabbitMQ rejected the message (basic.nack)');
    }
    // A local failure with the channel still open (e.g. an argument table amqplib cannot encode):
    // amqplib may now wait forever for a reply to an RPC it never sent, so the channel is done.
    this.#log.warn({ err: (err as Error).message }, 'AMQP call failed locally; closing the channel');
    this.#failure = amqpErrorToStomp(err);
    this.#state = 'closing';
    void this.#teardown(true);
    return this.#failure;
  }

  #onChannelClosed(): void {
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    if (wasOpen) {
      // No 'error' before 'close': the connection went (or the engine is stopping).
      this.#failure ??= this.#lease.lostReason();
      this.#log.info({ code: this.#failure.code, detail: this.#failure.detail }, 'AMQP channel closed');
      this.#report();
    }
    void this.#teardown(false);
  }

  /** onClosed only when no call in flight will carry the failure (never both). */
  #report(): void {
    const failure = this.#failure;
    if (failure === undefined || this.#reported || this.#pending > 0) return;
    this.#reported = true;
    this.#guard('onClosed', () => this.#events.onClosed(failure));
  }

  /**
   * Once per session: delete its exclusive queues (a connection close would have), close the
   * channel, free the slot. `channelUsable` false: the channel is gone, use a spare one.
   */
  #teardown(channelUsable: boolean): Promise<void> {
    this.#finished ??= (async () => {
      if (channelUsable) {
        await this.#deleteOwned(this.#channel);
        try {
          await this.#channel.close();
        } catch {
          // Already closed by the broker or with the connection.
        }
      } else if (this.#ownedExclusive.size > 0) {
        await this.#deleteOwnedOnSpareChannel();
      }
      this.#state = 'closed';
      for (const name of [...this.#ownedExclusive]) this.#disown(name);
      this.#consumerQueues.clear();
      this.#lease.release();
      this.#onEnd();
    })();
    return this.#finished;
  }

  async #deleteOwned(channel: Channel): Promise<void> {
    for (const name of this.#ownedExclusive) {
      try {
        await channel.deleteQueue(name);
      } catch (err) {
        this.#log.debug({ queue: name, err: (err as Error).message }, 'could not delete an exclusive queue');
        return;
      }
    }
  }

  async #deleteOwnedOnSpareChannel(): Promise<void> {
    let spare: Channel;
    try {
      spare = await this.#lease.connection.createChannel();
    } catch {
      // The connection is gone too, and RabbitMQ deleted its exclusive queues with it.
      return;
    }
    spare.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'cleanup channel failed'));
    await this.#deleteOwned(spare);
    try {
      await spare.close();
    } catch {
      // Closed by the broker after a failed delete.
    }
  }

  /** Drain waiters share one promise; it also settles if the channel closes meanwhile. */
  #drain(): Promise<void> {
    this.#drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.#channel.off('drain', done);
        this.#channel.off('close', done);
        this.#drained = undefined;
        resolve();
      };
      this.#channel.on('drain', done);
      this.#channel.on('close', done);
    });
    return this.#drained;
  }

  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ err }, `${what} handler threw`);
    }
  }
}

function rejectWith(error: StompError): Promise<never> {
  return Promise.reject(new EngineError(error));
}

/** amqplib's ack/nack read only `fields.deliveryTag` from the message they are given. */
function tagOnly(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as Message;
}
