// One engine session = one AMQP ConfirmChannel, as RabbitMQ's STOMP plugin has one channel per
// STOMP connection, so a broker channel error ends the whole STOMP session (reference §8.1).
// A channel failure is reported exactly once: to the calls in flight (they reject with it) or,
// when none is in flight to blame, through events.onClosed.
// Sessions share pooled connections, but RabbitMQ scopes exclusive queues to a connection; the
// session restores per-STOMP-connection exclusivity itself (exclusive-queues.ts).
// When the connection (not the channel) is lost and nothing is in flight, the session restores
// itself on a new channel (amqp.onConnectionLoss=restore): it replays what subscription-record.ts
// kept, reuses its own consumer tags, and shows the session above one increasing sequence of
// delivery tags across channels (delivery-tags.ts). The session layer never sees the switch.

import type { Channel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { Logger } from 'pino';
import {
  EngineError,
  type ConsumeOptions,
  type EngineSession,
  type EngineSessionEvents,
} from '../engine.js';
import { stompError, type StompError } from '../../errors.js';
import type { QueueSpec } from '../../destination/types.js';
import type { Delivery, OutboundMessage } from '../message.js';
import { amqpErrorToStomp, parseAmqpError, resourceLocked, restoreFailed, unrestorableQueue } from './amqp-errors.js';
import { fitsShortstr, oversizedProperty, toAmqpArgs, toDelivery, toPublishOptions, tooLong } from './amqp-args.js';
import { abortReason, untilAborted } from './abortable.js';
import { boundWhileBlocked, whenUnblocked } from './blocked-publish.js';
import type { Lease } from './connection-pool.js';
import { DeliveryTags } from './delivery-tags.js';
import { ExclusiveQueues } from './exclusive-queues.js';
import { SubscriptionRecord, type ConsumerRecipe } from './subscription-record.js';
import type { AmqpSessionOptions } from './amqp-session-options.js';
import { randomToken } from '../../random-pool.js';

type State = 'open' | 'restoring' | 'closing' | 'closed';


type OnDelivery = (d: Delivery) => void;

const sessionClosed = (): StompError => stompError('ENGINE_ERROR', 'the engine session is closed');

export class AmqpSession implements EngineSession {
  #channel: ConfirmChannel;
  #lease: Lease;
  /** The current channel has not closed. */
  #channelOpen = true;
  readonly #options: AmqpSessionOptions;
  readonly #vhost: string;
  readonly #events: EngineSessionEvents;
  readonly #log: Logger;
  #state: State = 'open';
  /** Calls awaiting the broker: a channel failure is theirs to report while any are in flight. */
  #pending = 0;
  /** Why the channel ended, once it did (or is being torn down for a local failure). */
  #failure: StompError | undefined;
  /** The failure reached the user, by onClosed or by a rejected call. */
  #reported = false;
  #finished: Promise<void> | undefined;
  #drained: Promise<void> | undefined;
  /** Settles (never rejects) when a restore in progress has ended either way. */
  #restoring: Promise<void> | undefined;
  #restoreAbort: AbortController | undefined;
  readonly #exclusive: ExclusiveQueues;
  readonly #record = new SubscriptionRecord<OnDelivery>();
  readonly #tags = new DeliveryTags();
  /** Unique per session, as RabbitMQ's generated amq.ctag-… tags are: tags are compared across sessions. */
  readonly #tagPrefix = `thumper.ctag-${randomToken(9)}`;
  #nextConsumer = 1;
  /** setFlow's last state, re-applied on a restored channel. */
  #flowActive = true;

  constructor(options: AmqpSessionOptions) {
    this.#options = options;
    this.#channel = options.channel;
    this.#lease = options.lease;
    this.#vhost = options.ctx.vhost;
    this.#events = options.events;
    this.#log = options.ctx.log;
    this.#exclusive = new ExclusiveQueues(this, options.lease, options.ctx.log);
    this.#attach(options.channel);
  }

  publish(exchange: string, routingKey: string, message: OutboundMessage, confirm: boolean): Promise<void> {
    if (!fitsShortstr(exchange)) return rejectWith(tooLong('exchange', exchange));
    if (!fitsShortstr(routingKey)) return rejectWith(tooLong('routing key', routingKey));
    const property = oversizedProperty(message.properties);
    if (property !== undefined) {
      return rejectWith(stompError('INVALID_HEADER', `AMQP property ${property} is longer than 255 bytes`));
    }
    return this.#run(undefined, async () => {
      const lease = this.#lease;
      const bound = this.#options.blockedPublishTimeoutMs;
      await whenUnblocked(lease, bound);
      const options = toPublishOptions(message);
      if (!confirm) {
        if (!this.#publish(exchange, routingKey, message, options)) {
          await boundWhileBlocked(lease, bound, this.#drain());
          // Drain also ends when the channel closes: then this publish is the call to blame.
          if (this.#state !== 'open') throw new Error('channel closed');
        }
        return;
      }
      const started = process.hrtime.bigint();
      const confirmed = new Promise<void>((resolve, reject) => {
        this.#publish(exchange, routingKey, message, options, (err: unknown) => {
          this.#options.onConfirm?.(Number(process.hrtime.bigint() - started) / 1e9);
          if (err === null || err === undefined) resolve();
          else reject(err instanceof Error ? err : new Error(String(err)));
        });
      });
      await boundWhileBlocked(lease, bound, confirmed);
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
      const name = await this.#declareOn(this.#channel, spec);
      this.#record.declared(name, spec);
      return name;
    });
  }

  async #declareOn(channel: Channel, spec: QueueSpec): Promise<string> {
    const ok = await channel.assertQueue(spec.name, {
      durable: spec.durable,
      autoDelete: spec.autoDelete,
      exclusive: spec.exclusive,
      arguments: toAmqpArgs(spec.arguments),
    });
    // A replay abandoned mid-way may still get its answer after teardown: it owns nothing then.
    const live = channel === this.#channel && (this.#state === 'open' || this.#state === 'restoring');
    if (live) this.#exclusive.declared(ok.queue, spec);
    return ok.queue;
  }

  checkQueue(name: string): Promise<void> {
    if (!fitsShortstr(name)) return rejectWith(tooLong('queue', name));
    return this.#run(name, async () => {
      await this.#channel.checkQueue(name);
      this.#record.checked(name);
    });
  }

  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    for (const [what, value] of [['queue', queue], ['exchange', exchange], ['routing key', routingKey]] as const) {
      if (!fitsShortstr(value)) return rejectWith(tooLong(what, value));
    }
    return this.#run(queue, async () => {
      await this.#channel.bindQueue(queue, exchange, routingKey);
      this.#record.bound(queue, exchange, routingKey);
    });
  }

  deleteQueue(name: string): Promise<void> {
    if (!fitsShortstr(name)) return rejectWith(tooLong('queue', name));
    return this.#run(name, async () => {
      await this.#channel.deleteQueue(name);
      this.#record.deleted(name);
      this.#exclusive.disown(name);
    });
  }

  setPrefetch(count: number): Promise<void> {
    return this.#run(undefined, async () => {
      // basic.qos global=false: per consumer, for consumers started after it (RabbitMQ ≥ 3.3).
      await this.#channel.prefetch(count, false);
      this.#record.prefetch(count);
    });
  }

  consume(queue: string, options: ConsumeOptions, onDelivery: OnDelivery): Promise<string> {
    if (!fitsShortstr(queue)) return rejectWith(tooLong('queue', queue));
    // Our own tag, so a restored consumer keeps it and the session's subscription map stays valid.
    const tag = `${this.#tagPrefix}-${this.#nextConsumer++}`;
    return this.#run(queue, async () => {
      await this.#consumeOn(this.#channel, { tag, queue, options, onDelivery });
      this.#record.consumed(tag, queue, options, onDelivery);
      return tag;
    });
  }

  async #consumeOn(channel: Channel, recipe: Omit<ConsumerRecipe<OnDelivery>, 'prefetch'>): Promise<void> {
    const { tag, queue, options, onDelivery } = recipe;
    await channel.consume(
      queue,
      // null = server cancel, reported by the channel's 'cancel' listener with its tag.
      (msg: ConsumeMessage | null) => {
        if (msg === null || channel !== this.#channel) return;
        const delivery = { ...toDelivery(msg), deliveryTag: this.#tags.toVirtual(msg.fields.deliveryTag) };
        this.#guard('onDelivery', () => onDelivery(delivery));
      },
      { noAck: options.noAck, arguments: toAmqpArgs(options.args), consumerTag: tag },
    );
    this.#exclusive.consumed(tag, queue);
  }

  cancel(consumerTag: string): Promise<void> {
    return this.#run(undefined, async () => {
      await this.#channel.cancel(consumerTag);
      this.#record.cancelled(consumerTag, false);
      this.#exclusive.consumerGone(consumerTag, false);
    });
  }

  ack(deliveryTag: number, multiple: boolean): void {
    const tag = this.#settleable(deliveryTag);
    if (tag === undefined) return;
    try {
      this.#channel.ack(tagOnly(tag), multiple);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'ack on a closing channel dropped');
    }
  }

  nack(deliveryTag: number, multiple: boolean, requeue: boolean): void {
    const tag = this.#settleable(deliveryTag);
    if (tag === undefined) return;
    try {
      this.#channel.nack(tagOnly(tag), multiple, requeue);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'nack on a closing channel dropped');
    }
  }

  /**
   * The current channel's tag for a settlement, or undefined to drop it: the channel is gone, or the
   * tag is from a channel before a restore (RabbitMQ requeued that delivery and sends it again).
   * Deliveries of a channel being restored may be settled as soon as they arrive.
   */
  #settleable(deliveryTag: number): number | undefined {
    if ((this.#state !== 'open' && this.#state !== 'restoring') || !this.#channelOpen) return undefined;
    return this.#tags.toChannel(deliveryTag);
  }

  /**
   * Slow-consumer flow control: basic.qos(global=true) limits the whole channel and RabbitMQ applies
   * it to existing consumers at once (the per-consumer global=false limits stay in force besides).
   * Paused = 1: nothing more is sent while any delivery is un-acked (0 would mean unlimited).
   * noAck consumers ignore qos, which is why the session ends auto subscriptions that fall behind.
   */
  setFlow(active: boolean): Promise<void> {
    return this.#run(undefined, async () => {
      await this.#channel.prefetch(active ? 0 : 1, true);
      this.#flowActive = active;
    });
  }

  close(): Promise<void> {
    if (this.#state === 'open' || this.#state === 'restoring') this.#state = 'closing';
    this.#restoreAbort?.abort(new EngineError(sessionClosed()));
    return this.#teardown();
  }

  /** Engine stop: report `error` as for a broker failure, then close the channel. */
  terminate(error: StompError): Promise<void> {
    if (this.#state === 'open' || this.#state === 'restoring') {
      this.#failure ??= error;
      this.#state = 'closing';
      this.#report();
    }
    this.#restoreAbort?.abort(new EngineError(error));
    return this.#teardown();
  }

  /** Runs one broker call, mapping any failure to the single error this channel reports. */
  async #run<T>(queue: string | undefined, call: () => Promise<T>): Promise<T> {
    // Called while restoring: run on the new channel, or fail as the restore did.
    if (this.#state === 'restoring') await this.#restoring;
    if (this.#state !== 'open') throw new EngineError(this.#failure ?? sessionClosed());
    if (queue !== undefined && this.#exclusive.lockedElsewhere(queue)) {
      // What RabbitMQ does to a second connection touching an exclusive queue: a channel error.
      const failure = resourceLocked(queue, this.#vhost);
      this.#failure = failure;
      this.#reported = true;
      this.#state = 'closing';
      void this.#teardown();
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

  #failureFor(err: unknown): StompError {
    if (this.#failure !== undefined) return this.#failure;
    if (this.#state !== 'open') return sessionClosed();
    // Refused before anything reached the wire (or a publish bounded by a resource alarm): the
    // channel is fine.
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
    void this.#teardown();
    return this.#failure;
  }

  /** Listeners for one channel; events of a channel replaced by a restore are ignored. */
  #attach(channel: ConfirmChannel): void {
    let errored = false;
    // The broker's reason arrives as 'error' just before 'close'; a lost connection sends 'close' only.
    channel.on('error', (err: Error) => {
      errored = true;
      // While restoring, the replay step that provoked it fails with the same text.
      if (channel === this.#channel && this.#state !== 'restoring') this.#failure ??= amqpErrorToStomp(err);
    });
    channel.on('close', () => {
      if (channel === this.#channel) this.#onChannelClosed(errored);
    });
    // basic.cancel from the broker: the queue was deleted (or its node went down).
    channel.on('cancel', (fields: { consumerTag: string }) => {
      if (channel !== this.#channel) return;
      this.#log.info({ consumerTag: fields.consumerTag }, 'RabbitMQ cancelled a consumer');
      this.#record.cancelled(fields.consumerTag, true);
      this.#exclusive.consumerGone(fields.consumerTag, true);
      this.#guard('onCancelled', () => this.#events.onCancelled(fields.consumerTag));
    });
    channel.on('handler-error', (err: Error, event: string) => {
      this.#log.error({ err: err.message, event }, 'amqplib channel handler failed');
    });
  }

  #onChannelClosed(errored: boolean): void {
    this.#channelOpen = false;
    // A replay step fails with it; the restore decides what follows.
    if (this.#state === 'restoring') return;
    const wasOpen = this.#state === 'open';
    if (wasOpen && !errored && this.#restorable()) {
      this.#startRestore();
      return;
    }
    this.#state = 'closed';
    if (wasOpen && !errored && this.#options.onConnectionLoss === 'restore' && !this.#lease.stopping()) {
      // Not restorable (a call in flight, a server-named queue): counted as a failed restore, once
      // the other sessions of the lost connection (closed in the same turn) have started theirs,
      // so the summary line counts them together.
      const observer = this.#options.restoreObserver;
      observer?.started();
      queueMicrotask(() => observer?.ended('failed', 0));
    }
    if (wasOpen) {
      // No 'error' before 'close': the connection went (or the engine is stopping).
      this.#failure ??= this.#unrestorableReason() ?? this.#lease.lostReason();
      this.#log.info({ code: this.#failure.code, detail: this.#failure.detail }, 'AMQP channel closed');
      this.#report();
    }
    void this.#teardown();
  }

  /**
   * Calls in flight (a publish awaiting its confirm, a SUBSCRIBE declaring) fail with the channel, so
   * the session ends as it would without restore: every SEND in flight gets its ERROR.
   */
  #restorable(): boolean {
    return (
      this.#options.onConnectionLoss === 'restore' &&
      !this.#lease.stopping() &&
      this.#pending === 0 &&
      this.#unrestorableReason() === undefined
    );
  }

  #unrestorableReason(): StompError | undefined {
    if (this.#options.onConnectionLoss !== 'restore' || this.#lease.stopping()) return undefined;
    const queue = this.#record.serverNamedQueue();
    return queue === undefined ? undefined : unrestorableQueue(queue);
  }

  #startRestore(): void {
    this.#state = 'restoring';
    const started = performance.now();
    this.#options.restoreObserver?.started();
    // RabbitMQ deleted the lost connection's exclusive queues; the replay declares them again.
    this.#exclusive.forgetAll();
    this.#lease.release();
    this.#tags.newGeneration();
    const abort = new AbortController();
    this.#restoreAbort = abort;
    const limit = this.#options.restoreTimeoutMs;
    const timer = setTimeout(() => abort.abort(new Error(`not restored within ${limit} ms`)), limit);
    const restoring: Promise<void> = this.#restore(abort.signal).then(
      () => {
        this.#restoreEnded(restoring, timer);
        const ms = Math.round(performance.now() - started);
        this.#options.restoreObserver?.ended('restored', ms);
        if (this.#state === 'restoring') this.#state = 'open';
        this.#log.debug({ ms, consumers: this.#record.consumerTags().length }, 'AMQP session restored on a new channel');
      },
      (err: unknown) => {
        this.#restoreEnded(restoring, timer);
        this.#options.restoreObserver?.ended('failed', Math.round(performance.now() - started));
        // close() or terminate() ended the session meanwhile and said (or did not say) why.
        if (this.#state !== 'restoring') return;
        this.#failure ??= restoreFailed(restoreFailureText(err));
        this.#log.info({ detail: this.#failure.detail }, 'AMQP session not restored');
        this.#state = 'closing';
        this.#report();
        void this.#teardown();
      },
    );
    this.#restoring = restoring;
  }

  #restoreEnded(restoring: Promise<void>, timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    // Waiters already hold the promise; a later restore installs its own.
    if (this.#restoring !== restoring) return;
    this.#restoring = undefined;
    this.#restoreAbort = undefined;
  }

  /** New channels until one takes the whole replay; a broker refusal or the signal ends it. */
  async #restore(signal: AbortSignal): Promise<void> {
    // Bounded by the signal's timeout: each round waits for the pool to be ready again.
    for (;;) {
      const { lease, channel } = await this.#options.reopen(signal);
      if (signal.aborted || this.#state !== 'restoring') {
        lease.release();
        channel.close().catch(() => {});
        throw abortReason(signal);
      }
      this.#lease = lease;
      this.#exclusive.moveTo(lease);
      this.#channel = channel;
      this.#channelOpen = true;
      this.#attach(channel);
      try {
        await untilAborted(this.#replay(channel), signal);
      } catch (err) {
        // The broker said no (or time ran out): final. Only a connection lost again is retried.
        if (signal.aborted || this.#channelOpen || parseAmqpError(err).code !== undefined) throw err;
      }
      if (this.#channelOpen) return;
      this.#log.debug('lost the connection again while restoring');
      this.#exclusive.forgetAll();
      this.#tags.newGeneration();
      lease.release();
    }
  }

  /** Order matters: queues exist and are bound before their consumers start under their prefetch. */
  async #replay(channel: ConfirmChannel): Promise<void> {
    if (!this.#flowActive) await channel.prefetch(1, true);
    for (const step of this.#record.replay()) {
      switch (step.kind) {
        case 'qos':
          await channel.prefetch(step.prefetch, false);
          break;
        case 'declare':
          if (step.spec.exclusive && this.#exclusive.lockedElsewhere(step.spec.name)) {
            throw new EngineError(resourceLocked(step.spec.name, this.#vhost));
          }
          await this.#declareOn(channel, step.spec);
          break;
        case 'check':
          await channel.checkQueue(step.queue);
          break;
        case 'bind':
          await channel.bindQueue(step.queue, step.exchange, step.routingKey);
          break;
        case 'consume':
          await this.#consumeOn(channel, step.recipe);
          break;
      }
    }
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
   * channel, free the slot. A channel already gone: use a spare one for the deletes.
   */
  #teardown(): Promise<void> {
    this.#finished ??= (async () => {
      // A restore being abandoned settles first, leaving #channel and #lease to tear down.
      await this.#restoring;
      await this.#exclusive.deleteAll(this.#channelOpen ? this.#channel : undefined);
      if (this.#channelOpen) {
        try {
          await this.#channel.close();
        } catch {
          // Already closed by the broker or with the connection.
        }
      }
      this.#state = 'closed';
      this.#exclusive.forgetAll();
      this.#lease.release();
      this.#options.onEnd();
    })();
    return this.#finished;
  }

  /** Drain waiters share one promise; it also settles if the channel closes meanwhile. */
  #drain(): Promise<void> {
    const channel = this.#channel;
    this.#drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        channel.off('drain', done);
        channel.off('close', done);
        this.#drained = undefined;
        resolve();
      };
      channel.on('drain', done);
      channel.on('close', done);
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

/** The broker's reply text when it refused a step, else what went wrong. */
function restoreFailureText(err: unknown): string {
  if (err instanceof EngineError) return err.error.detail;
  return parseAmqpError(err).replyText;
}
