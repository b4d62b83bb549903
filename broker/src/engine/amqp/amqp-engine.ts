// The RabbitMQ engine: each STOMP session gets one ConfirmChannel on a pooled connection for its
// vhost (see connection-pool.ts), and the engine primitives map 1:1 onto AMQP methods. After a lost
// connection it hands restoring sessions a new channel once the pool reconnects, and logs one
// summary per loss.

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
import type { ChannelLease, OnConnectionLoss, RestoreObserver } from './amqp-session-options.js';
import { ConnectionPool, type Lease } from './connection-pool.js';
import { redactUrl } from './amqp-url.js';
import { fullJitterDelay } from './backoff.js';
import { pause } from './abortable.js';
import type { BindKind } from './bind-pipe.js';
import { SharedFanout, type FanoutStats } from './shared-fanout.js';
import { SharingSession } from './sharing-session.js';

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
  /** Told how long each shared key's bind or unbind took, in seconds (metrics). */
  readonly onBind?: (kind: BindKind, seconds: number) => void;
  /** After a lost connection: restore each session on a new one, or end it with an ERROR. Default restore. */
  readonly onConnectionLoss?: OnConnectionLoss;
  /** A session not restored by then ends with its ERROR. */
  readonly restoreTimeoutMs?: number;
  /** How long a publish waits while RabbitMQ blocks the connection (resource alarm). */
  readonly blockedPublishTimeoutMs?: number;
  /** Told how each session restore ended (metrics). */
  readonly onRestore?: (result: 'restored' | 'failed') => void;
  /** Serve shareable subscriptions from one queue per exchange and node (shared-fanout.ts). Default true. */
  readonly sharedSubscriptions?: boolean;
  /** A shared key left without subscribers stays bound this long (SharedFanoutOptions.unbindDelayMs). Default 0. */
  readonly sharedUnbindDelayMs?: number;
  /** Exchange types the operator vouches for (vhost undefined: every vhost); amq.* are always known. */
  readonly exchangeTypes?: readonly KnownExchange[];
}

export interface KnownExchange {
  readonly name: string;
  readonly type: string;
  readonly vhost?: string | undefined;
}

// A shared queue left by a node that died unclean is gone after this long without a consumer.
const SHARED_QUEUE_EXPIRES_MS = 60_000;

export const DEFAULT_AMQP_ENGINE_OPTIONS = {
  channelsPerConnection: 500,
  heartbeatSeconds: 30,
  connectionName: 'thumper',
  reconnect: { initialMs: 500, maxMs: 30_000 },
  onConnectionLoss: 'restore',
  restoreTimeoutMs: 30_000,
  blockedPublishTimeoutMs: 10_000,
} as const satisfies Omit<AmqpEngineOptions, 'urls'>;

/** The sessions restoring after one connection loss, for the summary line. */
interface RestoreEpisode {
  readonly started: number;
  active: number;
  restored: number;
  failed: number;
}

export class AmqpEngine implements Engine {
  readonly kind = 'amqp' as const;
  readonly #pool: ConnectionPool;
  readonly #log: Logger;
  readonly #urls: readonly string[];
  readonly #sessions = new Set<AmqpSession>();
  readonly #sharingSessions = new Set<SharingSession>();
  readonly #options: AmqpEngineOptions;
  readonly #fanout: SharedFanout | undefined;
  /** `vhost\0name` or `\0name` (every vhost) → type. */
  readonly #knownTypes = new Map<string, string>();
  #episode: RestoreEpisode | undefined;

  constructor(options: AmqpEngineOptions, log: Logger) {
    this.#log = log.child({ component: 'amqp-engine' });
    this.#urls = options.urls;
    this.#options = options;
    this.#pool = new ConnectionPool(options, this.#log);
    for (const e of options.exchangeTypes ?? []) this.#knownTypes.set(`${e.vhost ?? ''}\0${e.name}`, e.type);
    this.#fanout =
      options.sharedSubscriptions === false
        ? undefined
        : new SharedFanout(
            this.#pool,
            {
              queueExpiresMs: SHARED_QUEUE_EXPIRES_MS,
              restoreTimeoutMs: options.restoreTimeoutMs ?? DEFAULT_AMQP_ENGINE_OPTIONS.restoreTimeoutMs,
              onConnectionLoss: options.onConnectionLoss ?? DEFAULT_AMQP_ENGINE_OPTIONS.onConnectionLoss,
              reconnect: options.reconnect,
              unbindDelayMs: options.sharedUnbindDelayMs ?? 0,
              onBind: options.onBind,
            },
            this.#log,
          );
  }

  async start(): Promise<void> {
    this.#log.info({ urls: this.#urls.map(redactUrl) }, 'connecting to RabbitMQ');
    await this.#pool.start();
    this.#log.info('connected to RabbitMQ');
  }

  async stop(): Promise<void> {
    const shutdown = stompError('SERVER_SHUTDOWN', 'Thumper is shutting down');
    await Promise.all([...this.#sharingSessions].map((s) => s.terminate(shutdown)));
    await Promise.all([...this.#sessions].map((s) => s.terminate(shutdown)));
    await this.#fanout?.stop();
    await this.#pool.stop();
    this.#log.info('disconnected from RabbitMQ');
  }

  isReady(): boolean {
    return this.#pool.isReady();
  }

  /** AMQP cannot ask for a type without side effects: the built-in exchanges and amqp.exchangeTypes are known. */
  exchangeType(vhost: string, name: string): string | undefined {
    return BUILT_IN_EXCHANGE_TYPES.get(name) ?? this.#knownTypes.get(`${vhost}\0${name}`) ?? this.#knownTypes.get(`\0${name}`);
  }

  /** Shared subscriptions and queues (tests, metrics). */
  sharedStats(): FanoutStats {
    return this.#fanout?.stats() ?? { queues: 0, bindings: 0, subscribers: 0 };
  }

  async openSession(ctx: EngineSessionContext, events: EngineSessionEvents): Promise<EngineSession> {
    const fanout = this.#fanout;
    if (fanout === undefined) return this.#openChannelSession(ctx, events);
    // The channel waits for the first call that needs one; CONNECT still fails as RabbitMQ's plugin
    // does when the broker is unreachable or refuses the vhost.
    (await this.#pool.acquire(ctx.vhost)).release();
    const session: SharingSession = new SharingSession(
      ctx.vhost,
      (name) => this.exchangeType(ctx.vhost, name),
      fanout,
      events,
      (channelEvents) => this.#openChannelSession(ctx, channelEvents),
      () => this.#sharingSessions.delete(session),
    );
    this.#sharingSessions.add(session);
    return session;
  }

  async #openChannelSession(ctx: EngineSessionContext, events: EngineSessionEvents): Promise<AmqpSession> {
    const lease = await this.#pool.acquire(ctx.vhost);
    let channel;
    try {
      channel = await lease.connection.createConfirmChannel();
    } catch (err) {
      lease.release();
      this.#log.warn({ vhost: ctx.vhost, err: (err as Error).message }, 'could not open an AMQP channel');
      throw new EngineError(lease.lostReason());
    }
    const options = this.#options;
    const session: AmqpSession = new AmqpSession({
      channel,
      lease,
      ctx,
      events,
      onEnd: () => this.#sessions.delete(session),
      onConfirm: options.onConfirm,
      onConnectionLoss: options.onConnectionLoss ?? DEFAULT_AMQP_ENGINE_OPTIONS.onConnectionLoss,
      restoreTimeoutMs: options.restoreTimeoutMs ?? DEFAULT_AMQP_ENGINE_OPTIONS.restoreTimeoutMs,
      blockedPublishTimeoutMs: options.blockedPublishTimeoutMs ?? DEFAULT_AMQP_ENGINE_OPTIONS.blockedPublishTimeoutMs,
      reopen: (signal) => this.#reopen(ctx.vhost, signal),
      restoreObserver: this.#restoreObserver(),
    });
    this.#sessions.add(session);
    return session;
  }

  /**
   * A channel for a restoring session: waits until the pool has reconnected (to whichever URL
   * answered), then acquires as openSession does. A race with a further loss is retried after a
   * jittered pause; a refusal (vhost gone, no access) or the engine stopping is final.
   */
  async #reopen(vhost: string, signal: AbortSignal): Promise<ChannelLease> {
    for (let attempt = 0; ; attempt++) {
      await this.#pool.whenReady(signal);
      let lease: Lease | undefined;
      try {
        lease = await this.#pool.acquire(vhost);
        const channel = await lease.connection.createConfirmChannel();
        return { lease, channel };
      } catch (err) {
        lease?.release();
        if (err instanceof EngineError && err.error.code !== 'ENGINE_UNAVAILABLE') throw err;
        await pause(fullJitterDelay(attempt, this.#options.reconnect), signal);
      }
    }
  }

  /** Sessions lost together restore together: one summary line when the last of them is done. */
  #restoreObserver(): RestoreObserver {
    return {
      started: () => {
        this.#episode ??= { started: performance.now(), active: 0, restored: 0, failed: 0 };
        this.#episode.active += 1;
      },
      ended: (result) => {
        this.#options.onRestore?.(result);
        const episode = this.#episode;
        if (episode === undefined) return;
        episode.active -= 1;
        episode[result] += 1;
        if (episode.active > 0) return;
        this.#episode = undefined;
        const ms = Math.round(performance.now() - episode.started);
        const line = `restored ${episode.restored} sessions in ${ms} ms, ${episode.failed} failed`;
        const fields = { restored: episode.restored, failed: episode.failed, ms };
        if (episode.failed > 0) this.#log.warn(fields, line);
        else this.#log.info(fields, line);
      },
    };
  }

  /** Connections and their channel counts, per vhost (tests, metrics). */
  connections(): Array<{ vhost: string; id: number; load: number; open: boolean }> {
    return this.#pool.snapshot();
  }
}
