// A few connections with many channels, not a connection per client: per vhost, a list of AMQP
// connections (service-user credentials from the configured URL), each carrying up to
// channelsPerConnection channels. A lease is one channel slot on the least-loaded connection.
// When a connection is lost the pool reconnects in the background with full-jitter backoff,
// trying the cluster URLs in turn; while no connection can be made it reports not ready.
// RabbitMQ's connection.blocked (a memory or disk alarm) is tracked per connection and shown on
// its leases, so publishers can wait for connection.unblocked within a bound.

import { Socket } from 'node:net';
import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { EngineError } from '../engine.js';
import { stompError, type StompError } from '../../errors.js';
import { connectionLost } from './amqp-errors.js';
import { redactUrl, urlVhost, vhostUrl } from './amqp-url.js';
import { fullJitterDelay, type BackoffOptions } from './backoff.js';
import { abortReason } from './abortable.js';
import { corkWritesPerTick } from '../../transport/tick-cork.js';

export interface PoolOptions {
  readonly urls: readonly string[];
  readonly channelsPerConnection: number;
  readonly heartbeatSeconds: number;
  readonly connectionName: string;
  readonly reconnect: BackoffOptions;
}

/** One channel slot on one connection. */
export interface Lease {
  readonly connection: ChannelModel;
  /**
   * Exclusive queues declared on this connection, by name → owning session. RabbitMQ scopes
   * exclusivity to the connection; sessions sharing one enforce it among themselves here.
   */
  readonly exclusiveOwners: Map<string, object>;
  /** Why a channel on this connection closed without a channel error: lost, or we are stopping. */
  lostReason(): StompError;
  /** The pool is stopping: a closed channel is not a loss to recover from. */
  stopping(): boolean;
  /** RabbitMQ's reason while it blocks this connection (connection.blocked), else undefined. */
  blockedReason(): string | undefined;
  /** Called on every blocked/unblocked change of this connection (and when it closes). Returns an unsubscribe. */
  onBlockedChange(listener: () => void): () => void;
  /** Idempotent. */
  release(): void;
}

// An unreachable host would otherwise hold a connect attempt for the OS TCP timeout (minutes).
const CONNECT_TIMEOUT_MS = 10_000;

interface PooledConnection {
  readonly id: number;
  readonly vhost: string;
  model: ChannelModel | undefined;
  ready: Promise<ChannelModel>;
  /** Channels open or being opened on it. */
  load: number;
  readonly exclusiveOwners: Map<string, object>;
  /** We are closing it (idle trim or stop): its close is not a loss. */
  closing: boolean;
  dead: boolean;
  /** connection.blocked's reason until connection.unblocked. */
  blocked: string | undefined;
  readonly blockListeners: Set<() => void>;
}

export class ConnectionPool {
  readonly #options: PoolOptions;
  readonly #log: Logger;
  readonly #byVhost = new Map<string, PooledConnection[]>();
  /** The vhost of the first configured URL: start() and the reconnect loop probe it. */
  readonly #controlVhost: string;
  #nextId = 1;
  /** Index of the URL that last worked: new connections try it first. */
  #preferredUrl = 0;
  #ready = false;
  #stopping = false;
  #recovering = false;
  #recoveryRun = 0;
  #wakeRecovery: (() => void) | undefined;
  /** whenReady() callers, settled when recovery succeeds or the pool stops. */
  readonly #readyWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();

  constructor(options: PoolOptions, log: Logger) {
    if (options.urls.length === 0) throw new Error('AMQP engine: at least one URL is required');
    if (!(options.channelsPerConnection >= 1)) throw new Error('AMQP engine: channelsPerConnection must be ≥ 1');
    this.#options = options;
    this.#log = log;
    this.#controlVhost = urlVhost(options.urls[0] ?? '');
  }

  isReady(): boolean {
    return this.#ready && !this.#stopping;
  }

  /** Connects once; rejects naming the URLs (without passwords) when none answers. */
  async start(): Promise<void> {
    if (this.#ready) return;
    const conn = this.#open(this.#controlVhost);
    await conn.ready;
    this.#ready = true;
  }

  /**
   * Resolves once the pool is ready and not recovering from a lost connection (a session restoring
   * after a loss acquires only then); rejects when the pool stops or `signal` aborts.
   */
  whenReady(signal: AbortSignal): Promise<void> {
    if (this.#stopping) return Promise.reject(new EngineError(stompError('SERVER_SHUTDOWN', 'the AMQP engine is stopping')));
    if (signal.aborted) return Promise.reject(abortReason(signal));
    if (this.#ready && !this.#recovering) return Promise.resolve();
    // Not ready and nobody trying: a failed start or acquire left it so; try again.
    this.#startRecovery();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        this.#readyWaiters.delete(waiter);
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#readyWaiters.add(waiter);
    });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ready = false;
    this.#wakeRecovery?.();
    this.#settleWaiters(new EngineError(stompError('SERVER_SHUTDOWN', 'the AMQP engine is stopping')));
    const all = [...this.#byVhost.values()].flat();
    this.#byVhost.clear();
    await Promise.all(all.map((conn) => this.#close(conn)));
  }

  /** A channel slot for `vhost`: the least-loaded connection with room, or a new connection. */
  async acquire(vhost: string): Promise<Lease> {
    if (this.#stopping) throw new EngineError(stompError('SERVER_SHUTDOWN', 'the AMQP engine is stopping'));
    const pool = this.#pool(vhost);
    let conn: PooledConnection | undefined;
    for (const candidate of pool) {
      if (candidate.dead || candidate.closing || candidate.load >= this.#options.channelsPerConnection) continue;
      if (conn === undefined || candidate.load < conn.load) conn = candidate;
    }
    if (conn === undefined) {
      if (!this.#ready) throw new EngineError(stompError('ENGINE_UNAVAILABLE', 'RabbitMQ is unreachable'));
      conn = this.#open(vhost);
    }
    const chosen = conn;
    // Counted before the await, so concurrent acquires spread out and never overfill.
    chosen.load += 1;
    let model: ChannelModel;
    try {
      model = await chosen.ready;
    } catch (err) {
      chosen.load -= 1;
      // The broker stopped answering: find out in the background when it is back.
      if (err instanceof EngineError && err.error.code === 'ENGINE_UNAVAILABLE') this.#startRecovery();
      throw err;
    }
    if (chosen.dead) {
      chosen.load -= 1;
      throw new EngineError(connectionLost());
    }
    let released = false;
    return {
      connection: model,
      exclusiveOwners: chosen.exclusiveOwners,
      lostReason: () =>
        this.#stopping ? stompError('SERVER_SHUTDOWN', 'Thumper is shutting down') : connectionLost(),
      stopping: () => this.#stopping,
      blockedReason: () => chosen.blocked,
      onBlockedChange: (listener) => {
        chosen.blockListeners.add(listener);
        return () => chosen.blockListeners.delete(listener);
      },
      release: () => {
        if (released) return;
        released = true;
        chosen.load -= 1;
        this.#trimIdle(chosen);
      },
    };
  }

  /** Connections per vhost with their loads, for tests and metrics (open: the handshake finished). */
  snapshot(): Array<{ vhost: string; id: number; load: number; open: boolean }> {
    return [...this.#byVhost.values()].flat().map((c) => ({ vhost: c.vhost, id: c.id, load: c.load, open: c.model !== undefined && !c.dead }));
  }

  #pool(vhost: string): PooledConnection[] {
    let pool = this.#byVhost.get(vhost);
    if (pool === undefined) {
      pool = [];
      this.#byVhost.set(vhost, pool);
    }
    return pool;
  }

  #open(vhost: string): PooledConnection {
    const conn: PooledConnection = {
      id: this.#nextId++,
      vhost,
      model: undefined,
      ready: this.#connectAny(vhost).then(
        (model) => this.#attach(conn, model),
        (err: unknown) => {
          conn.dead = true;
          this.#remove(conn);
          throw err;
        },
      ),
      load: 0,
      exclusiveOwners: new Map(),
      closing: false,
      dead: false,
      blocked: undefined,
      blockListeners: new Set(),
    };
    // Every waiter handles the rejection; this keeps an unawaited one from being "unhandled".
    conn.ready.catch(() => {});
    this.#pool(vhost).push(conn);
    return conn;
  }

  #attach(conn: PooledConnection, model: ChannelModel): ChannelModel {
    conn.model = model;
    const stream = (model.connection as unknown as { stream?: unknown }).stream;
    if (stream instanceof Socket) corkWritesPerTick(stream);
    const log = this.#log.child({ connection: conn.id, vhost: conn.vhost });
    model.on('error', (err: Error) => log.warn({ err: err.message }, 'AMQP connection error'));
    model.on('blocked', (reason: string) => {
      log.warn({ reason }, 'RabbitMQ blocked the connection (resource alarm)');
      conn.blocked = typeof reason === 'string' && reason !== '' ? reason : 'resource alarm';
      notifyBlocked(conn);
    });
    model.on('unblocked', () => {
      log.info('RabbitMQ unblocked the connection');
      conn.blocked = undefined;
      notifyBlocked(conn);
    });
    model.on('close', () => {
      conn.dead = true;
      this.#remove(conn);
      conn.blocked = undefined;
      notifyBlocked(conn);
      if (conn.closing || this.#stopping) return;
      log.warn({ sessions: conn.load }, 'lost the AMQP connection');
      this.#startRecovery();
    });
    if (this.#stopping) {
      void this.#close(conn);
      throw new EngineError(stompError('SERVER_SHUTDOWN', 'the AMQP engine is stopping'));
    }
    log.info('AMQP connection open');
    return model;
  }

  /** Tries each URL once, starting with the one that last worked. */
  async #connectAny(vhost: string): Promise<ChannelModel> {
    const { urls } = this.#options;
    const failures: string[] = [];
    for (let i = 0; i < urls.length; i++) {
      const index = (this.#preferredUrl + i) % urls.length;
      const base = urls[index] ?? '';
      try {
        const model = await amqp.connect(
          vhostUrl(base, vhost, {
            heartbeatSeconds: this.#options.heartbeatSeconds,
            channelMax: this.#options.channelsPerConnection,
          }),
          // noDelay: amqplib leaves Nagle on, which held publishes back behind the broker's delayed
          // ACKs (receipt p50 15 ms in the queue benchmark, docs/benchmarks.md).
          { clientProperties: { connection_name: this.#options.connectionName }, timeout: CONNECT_TIMEOUT_MS, noDelay: true },
        );
        this.#preferredUrl = index;
        return model;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (refusedDuringOpen(err)) {
          // The broker answered and said no (vhost missing, no access): another node would too.
          throw new EngineError(
            stompError(
              'ACCESS_REFUSED',
              `RabbitMQ at ${redactUrl(base)} refused the service user access to vhost '${vhost}'`,
            ),
          );
        }
        failures.push(`${redactUrl(base)}: ${reason}`);
      }
    }
    throw new EngineError(stompError('ENGINE_UNAVAILABLE', `cannot connect to RabbitMQ (${failures.join('; ')})`));
  }

  #remove(conn: PooledConnection): void {
    const pool = this.#byVhost.get(conn.vhost);
    if (pool === undefined) return;
    const i = pool.indexOf(conn);
    if (i >= 0) pool.splice(i, 1);
  }

  /** Keeps one idle connection per vhost warm; closes an idle one when another has room. */
  #trimIdle(conn: PooledConnection): void {
    if (conn.load > 0 || conn.dead || conn.closing || conn.model === undefined) return;
    const pool = this.#byVhost.get(conn.vhost) ?? [];
    const other = pool.some(
      (c) => c !== conn && !c.dead && !c.closing && c.model !== undefined && c.load < this.#options.channelsPerConnection,
    );
    if (other) void this.#close(conn);
  }

  async #close(conn: PooledConnection): Promise<void> {
    conn.closing = true;
    this.#remove(conn);
    let model: ChannelModel;
    try {
      model = conn.model ?? (await conn.ready);
    } catch {
      return;
    }
    try {
      await model.close();
    } catch {
      // Already closed or the socket is gone: nothing left to release.
    }
  }

  #settleWaiters(err: Error | undefined): void {
    const waiters = [...this.#readyWaiters];
    this.#readyWaiters.clear();
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  #startRecovery(): void {
    if (this.#recovering || this.#stopping) return;
    this.#recovering = true;
    // A success clears #recovering synchronously (its waiters acquire at once); the run number
    // keeps this late cleanup from clearing the flag of a recovery started since.
    const run = ++this.#recoveryRun;
    void this.#recover().finally(() => {
      if (this.#recoveryRun === run) this.#recovering = false;
    });
  }

  async #recover(): Promise<void> {
    for (let attempt = 0; !this.#stopping; attempt++) {
      try {
        const conn = this.#open(this.#controlVhost);
        await conn.ready;
        this.#ready = true;
        this.#log.info({ attempt }, 'reconnected to RabbitMQ');
        this.#trimIdle(conn);
        // Waiters acquire right away: they must see recovery over, not wait for it again.
        this.#recovering = false;
        this.#settleWaiters(undefined);
        return;
      } catch (err) {
        if (this.#stopping) return;
        this.#ready = false;
        const delay = fullJitterDelay(attempt, this.#options.reconnect);
        this.#log.warn({ attempt, delayMs: delay, err: (err as Error).message }, 'RabbitMQ unreachable; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wakeRecovery = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeRecovery = undefined;
      }
    }
  }
}

function notifyBlocked(conn: PooledConnection): void {
  for (const listener of [...conn.blockListeners]) {
    try {
      listener();
    } catch {
      // A listener's failure is its own; the others still hear.
    }
  }
}

/**
 * amqplib reports a broker's refusal of the vhost during the opening handshake as a protocol
 * surprise rather than a coded error: `Expected ConnectionOpenOk; got <ConnectionClose channel:0>`.
 */
function refusedDuringOpen(err: unknown): boolean {
  const message = err instanceof Error ? err.message : '';
  return /^Expected ConnectionOpenOk; got <ConnectionClose\b/.test(message);
}
