// The engine session the AMQP engine hands out: shared subscriptions go to the node's SharedFanout,
// everything else to a channel-backed AmqpSession that is opened only when first needed. A browser
// tab that only subscribes to its feed then costs RabbitMQ no channel at all (RabbitMQ's plugin
// holds a connection, a channel, a queue and a consumer per such tab).

import { sharedBindingOf } from '../../destination/shared-binding.js';
import type { Binding, QueueSpec } from '../../destination/types.js';
import { stompError, type StompError } from '../../errors.js';
import { EngineError, type ConsumeOptions, type EngineSession, type EngineSessionEvents } from '../engine.js';
import type { Delivery, OutboundMessage } from '../message.js';
import type { FanoutHandle, SharedFanout } from './shared-fanout.js';

const SHARED_TAG_PREFIX = 'thumper.shared.';

export class SharingSession implements EngineSession {
  readonly #openChannelSession: (events: EngineSessionEvents) => Promise<EngineSession>;
  readonly #fanout: SharedFanout;
  readonly #vhost: string;
  readonly #exchangeType: (exchange: string) => string | undefined;
  readonly #events: EngineSessionEvents;
  readonly #onEnd: () => void;
  #channelSession: Promise<EngineSession> | undefined;
  /** The channel session once open, for the synchronous ack/nack. */
  #opened: EngineSession | undefined;
  readonly #shared = new Map<string, FanoutHandle>();
  #nextShared = 1;
  /** Shared deliveries are numbered per session, as a channel numbers its own. */
  #nextDeliveryTag = 1;
  #flowActive = true;
  #ended = false;
  /** Why the session ended, when a failure ended it: later calls reject with it, as a dead channel's would. */
  #failure: StompError | undefined;

  constructor(
    vhost: string,
    exchangeType: (exchange: string) => string | undefined,
    fanout: SharedFanout,
    events: EngineSessionEvents,
    openChannelSession: (events: EngineSessionEvents) => Promise<EngineSession>,
    onEnd: () => void,
  ) {
    this.#vhost = vhost;
    this.#exchangeType = exchangeType;
    this.#fanout = fanout;
    this.#events = events;
    this.#onEnd = onEnd;
    this.#openChannelSession = openChannelSession;
  }

  async consumeShared(candidate: Binding, onDelivery: (d: Delivery) => void): Promise<string | undefined> {
    this.#assertOpen();
    const binding = sharedBindingOf(candidate, this.#exchangeType(candidate.exchange));
    if (binding === undefined) return undefined;
    const consumerTag = `${SHARED_TAG_PREFIX}${this.#nextShared++}`;
    const handle = await this.#fanout.subscribe(this.#vhost, binding, {
      deliver: (m) => {
        if (this.#ended) return;
        // A literal, not a spread: spreading the shared message was 5% of Thumper's CPU in the feed benchmark.
        onDelivery({
          consumerTag,
          deliveryTag: this.#nextDeliveryTag++,
          redelivered: m.redelivered,
          exchange: m.exchange,
          routingKey: m.routingKey,
          body: m.body,
          properties: m.properties,
        });
      },
      lost: (error) => this.#fail(error),
    });
    if (this.#ended) {
      await handle.release();
      throw new EngineError(this.#failure ?? sessionClosed());
    }
    this.#shared.set(consumerTag, handle);
    return consumerTag;
  }

  async publish(exchange: string, routingKey: string, message: OutboundMessage, confirm: boolean): Promise<void> {
    return (await this.#channel()).publish(exchange, routingKey, message, confirm);
  }

  async declareQueue(spec: QueueSpec): Promise<string> {
    return (await this.#channel()).declareQueue(spec);
  }

  async checkQueue(name: string): Promise<void> {
    return (await this.#channel()).checkQueue(name);
  }

  async bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    return (await this.#channel()).bindQueue(queue, exchange, routingKey);
  }

  async deleteQueue(name: string): Promise<void> {
    return (await this.#channel()).deleteQueue(name);
  }

  async setPrefetch(count: number): Promise<void> {
    return (await this.#channel()).setPrefetch(count);
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): Promise<string> {
    return (await this.#channel()).consume(queue, options, onDelivery);
  }

  async cancel(consumerTag: string): Promise<void> {
    const handle = this.#shared.get(consumerTag);
    if (handle !== undefined) {
      this.#shared.delete(consumerTag);
      await handle.release();
      return;
    }
    return (await this.#channel()).cancel(consumerTag);
  }

  // Deliveries that can be settled come only from the channel session, so it is open by then; a
  // tag settled without one is unknown, which RabbitMQ answers with a channel error.
  ack(deliveryTag: number, multiple: boolean): void {
    if (this.#opened !== undefined) this.#opened.ack(deliveryTag, multiple);
    else this.#unknownTag(deliveryTag, multiple);
  }

  nack(deliveryTag: number, multiple: boolean, requeue: boolean): void {
    if (this.#opened !== undefined) this.#opened.nack(deliveryTag, multiple, requeue);
    else this.#unknownTag(deliveryTag, multiple);
  }

  #unknownTag(deliveryTag: number, multiple: boolean): void {
    // basic.ack multiple with tag 0 settles "everything outstanding": nothing, which is fine.
    if (this.#ended || (deliveryTag === 0 && multiple)) return;
    this.#fail(stompError('PRECONDITION_FAILED', `PRECONDITION_FAILED - unknown delivery tag ${deliveryTag}`));
  }

  async setFlow(active: boolean): Promise<void> {
    this.#flowActive = active;
    // Shared subscriptions acknowledge automatically: flow control does not apply to them.
    if (this.#opened !== undefined) await this.#opened.setFlow(active);
  }

  async close(): Promise<void> {
    this.#ended = true;
    this.#onEnd();
    const handles = [...this.#shared.values()];
    this.#shared.clear();
    await Promise.all(handles.map((h) => h.release()));
    const pending = this.#channelSession;
    if (pending === undefined) return;
    try {
      await (await pending).close();
    } catch {
      // It never opened: nothing to close.
    }
  }

  /** Engine stop: report `error` as a broker failure would, then release everything. */
  async terminate(error: StompError): Promise<void> {
    this.#fail(error);
    await this.close();
  }

  #channel(): Promise<EngineSession> {
    this.#assertOpen();
    this.#channelSession ??= this.#openChannelSession({
      onClosed: (error) => this.#fail(error),
      onCancelled: (tag) => this.#events.onCancelled(tag),
    }).then(async (session) => {
      this.#opened = session;
      if (!this.#flowActive) await session.setFlow(false);
      return session;
    });
    return this.#channelSession;
  }

  #assertOpen(): void {
    if (this.#ended) throw new EngineError(this.#failure ?? sessionClosed());
  }

  /** Once: the STOMP session ends with this error, and closes us. */
  #fail(error: StompError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#failure = error;
    this.#events.onClosed(error);
  }
}

function sessionClosed(): StompError {
  return stompError('ENGINE_ERROR', 'the engine session is closed');
}
