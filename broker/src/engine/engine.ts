// The one interface both engines implement. Primitives mirror an AMQP 0-9-1 channel because that is
// what RabbitMQ's STOMP plugin drives (one channel per STOMP connection); the session's plan executor
// composes them, so ordering rules (declare → qos → consume → bind) live in one place.

import type { Logger } from 'pino';
import type { StompError } from '../errors.js';
import type { ArgTable, Binding, QueueSpec } from '../destination/types.js';
import type { Delivery, OutboundMessage } from './message.js';

/** A rejected engine promise carries a client-ready error; `error.fatal` says if the session dies. */
export class EngineError extends Error {
  readonly error: StompError;
  constructor(error: StompError) {
    super(`${error.message}: ${error.detail}`);
    this.name = 'EngineError';
    this.error = error;
  }
}

export interface EngineSessionContext {
  readonly vhost: string;
  readonly username: string;
  readonly sessionId: string;
  readonly log: Logger;
}

export interface ConsumeOptions {
  /** auto ack mode: the broker forgets the message once sent. */
  readonly noAck: boolean;
  readonly args: ArgTable;
}

export interface EngineSessionEvents {
  /** The session's channel died (broker error, connection lost). Always fatal for the STOMP session. */
  onClosed(error: StompError): void;
  /** The broker cancelled a consumer (queue deleted): non-fatal ERROR to the client. */
  onCancelled(consumerTag: string): void;
}

export interface EngineSession {
  /** Resolves when the broker took the message; with confirm=true, after its publisher confirm. */
  publish(exchange: string, routingKey: string, message: OutboundMessage, confirm: boolean): Promise<void>;
  /** Returns the queue's name (generated when spec.name is ''). Re-declaring must be equivalent. */
  declareQueue(spec: QueueSpec): Promise<string>;
  /** Fails with NOT_FOUND when the queue does not exist (passive declare). */
  checkQueue(name: string): Promise<void>;
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void>;
  deleteQueue(name: string): Promise<void>;
  /** basic.qos(prefetch, global=false): applies to consumers started after it. 0 = unlimited. */
  setPrefetch(count: number): Promise<void>;
  consume(queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): Promise<string>;
  cancel(consumerTag: string): Promise<void>;
  /**
   * Optional: serves an auto-ack subscription with this one binding from a queue shared by the node
   * (destination/shared-binding.ts says which qualify), delivering exactly what a queue of its own
   * would. Resolves to the consumer tag (cancel() takes it), or undefined when this engine cannot
   * share it (e.g. the exchange's type is unknown): then the caller runs the ordinary plan.
   */
  consumeShared?(binding: Binding, onDelivery: (d: Delivery) => void): Promise<string | undefined>;
  ack(deliveryTag: number, multiple: boolean): void;
  nack(deliveryTag: number, multiple: boolean, requeue: boolean): void;
  /**
   * Outbound flow for this session's ack-mode (noAck=false) consumers: false = the client is not
   * reading, send no further un-acked deliveries; true = resume. Deliveries the broker sent before
   * the pause took effect still arrive. noAck consumers are not affected (the session protects
   * itself from those by other means). Idempotent.
   */
  setFlow(active: boolean): Promise<void>;
  /** Idempotent. Unacked deliveries go back to their queues; exclusive/auto-delete rules apply. */
  close(): Promise<void>;
}

export type EngineKind = 'amqp' | 'memory';

export interface Engine {
  readonly kind: EngineKind;
  start(): Promise<void>;
  /** Closes every session and the broker connections. */
  stop(): Promise<void>;
  /** True while the engine can serve new sessions (for /readyz). */
  isReady(): boolean;
  openSession(ctx: EngineSessionContext, events: EngineSessionEvents): Promise<EngineSession>;
  /**
   * The exchange's type when the engine knows it without asking the broker (undefined: unknown).
   * The authorizer skips topic checks on exchanges known not to be topic exchanges, as RabbitMQ does.
   */
  exchangeType(vhost: string, name: string): string | undefined;
}

/** Exchanges every RabbitMQ vhost has, by the name the authorizer sees. */
export const BUILT_IN_EXCHANGE_TYPES: ReadonlyMap<string, string> = new Map([
  ['', 'direct'],
  ['amq.default', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
  ['amq.rabbitmq.trace', 'topic'],
]);
