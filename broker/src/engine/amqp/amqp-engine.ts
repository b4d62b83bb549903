// The RabbitMQ engine: each STOMP session gets one ConfirmChannel on a pooled connection for its
// vhost (see connection-pool.ts), and the engine primitives map 1:1 onto AMQP methods.

import type { Logger } from 'pino';
import {
  BUILT_IN_EXCHANGE_TYPES,
  EngineError,
  type Engine,
  type EngineSession,
  type EngineSessionContext,
  type EngineSessionEvents,
} from '../engine.js';
import { stompError } from '../../errors.js';
import { AmqpSession } from './amqp-session.js';
import { ConnectionPool } from './connection-pool.js';
import { redactUrl } from './amqp-url.js';

export interface AmqpEngineOptions {
  /** One or more AMQP URLs (cluster nodes); the vhost comes from the session, not the URL path. */
  readonly urls: readonly string[];
  /** Channels (= sessions) per connection; RabbitMQ's channel_max default is 2047. */
  readonly channelsPerConnection: number;
  /** AMQP heartbeat. */
  readonly heartbeatSeconds: number;
  /** connection_name client property, shown in the management UI. */
  readonly connectionName: string;
  /** Full-jitter backoff between reconnect attempts. */
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  /** Told how long each publisher confirm took, in seconds (metrics). */
  readonly onConfirm?: (seconds: number) => void;
}

export const DEFAULT_AMQP_ENGINE_OPTIONS = {
  channelsPerConnection: 500,
  heartbeatSeconds: 30,
  connectionName: 'thumper',
  reconnect: { initialMs: 500, maxMs: 30_000 },
} as const satisfies Omit<AmqpEngineOptions, 'urls'>;

export class AmqpEngine implements Engine {
  readonly kind = 'amqp' as const;
  readonly #pool: ConnectionPool;
  readonly #log: Logger;
  readonly #urls: readonly string[];
  readonly #sessions = new Set<AmqpSession>();
  readonly #onConfirm: ((seconds: number) => void) | undefined;

  constructor(options: AmqpEngineOptions, log: Logger) {
    this.#log = log.child({ component: 'amqp-engine' });
    this.#urls = options.urls;
    this.#onConfirm = options.onConfirm;
    this.#pool = new ConnectionPool(options, this.#log);
  }

  async start(): Promise<void> {
    this.#log.info({ urls: this.#urls.map(redactUrl) }, 'connecting to RabbitMQ');
    await this.#pool.start();
    this.#log.info('connected to RabbitMQ');
  }

  async stop(): Promise<void> {
    const shutdown = stompError('SERVER_SHUTDOWN', 'Thumper is shutting down');
    await Promise.all([...this.#sessions].map((s) => s.terminate(shutdown)));
    await this.#pool.stop();
    this.#log.info('disconnected from RabbitMQ');
  }

  isReady(): boolean {
    return this.#pool.isReady();
  }

  /** AMQP cannot ask for a type without side effects: only the built-in exchanges are known. */
  exchangeType(_vhost: string, name: string): string | undefined {
    return BUILT_IN_EXCHANGE_TYPES.get(name);
  }

  async openSession(ctx: EngineSessionContext, events: EngineSessionEvents): Promise<EngineSession> {
    const lease = await this.#pool.acquire(ctx.vhost);
    let channel;
    try {
      channel = await lease.connection.createConfirmChannel();
    } catch (err) {
      lease.release();
      this.#log.warn({ vhost: ctx.vhost, err: (err as Error).message }, 'could not open an AMQP channel');
      throw new EngineError(lease.lostReason());
    }
    const session: AmqpSession = new AmqpSession(channel, lease, ctx, events, () => this.#sessions.delete(session), this.#onConfirm);
    this.#sessions.add(session);
    return session;
  }

  /** Connections and their channel counts, per vhost (tests, metrics). */
  connections(): Array<{ vhost: string; id: number; load: number; open: boolean }> {
    return this.#pool.snapshot();
  }
}
