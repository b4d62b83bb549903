// The embedded engine: AMQP 0-9-1 exchanges, queues and acks in this process, so Thumper runs
// without RabbitMQ (`npm start`'s default). Same interface and contract tests as the AMQP engine;
// it is for development and tests, not durability: nothing survives a restart.

import type { Logger } from 'pino';
import type { Engine, EngineSession, EngineSessionContext, EngineSessionEvents } from '../engine.js';
import { BUILT_IN_EXCHANGE_TYPES, EngineError } from '../engine.js';
import { memoryErrors } from './amqp-errors.js';
import type { ExchangeType } from './exchange.js';
import { MemorySession } from './memory-session.js';
import { VirtualHost } from './vhost.js';

export interface MemoryEngineOptions {
  /** Virtual hosts that exist; a session for any other is refused. Default `['/']`. */
  readonly vhosts: readonly string[];
  /**
   * Extra exchanges, declared in every listed vhost (or only in `vhost`). amq.direct, amq.topic and
   * amq.fanout always exist. Default none.
   */
  readonly exchanges: ReadonlyArray<{ name: string; type: ExchangeType; vhost?: string }>;
  /**
   * Safety bound on ready messages per queue when x-max-length is absent or larger: beyond it the
   * oldest are dropped (or dead-lettered), so an unconsumed queue cannot eat the heap. Default 100000.
   */
  readonly maxQueueMessages: number;
}

export const DEFAULT_MEMORY_ENGINE_OPTIONS: MemoryEngineOptions = {
  vhosts: ['/'],
  exchanges: [],
  maxQueueMessages: 100_000,
};

export class MemoryEngine implements Engine {
  readonly kind = 'memory' as const;
  readonly #options: MemoryEngineOptions;
  readonly #log: Logger;
  #vhosts = new Map<string, VirtualHost>();
  readonly #sessions = new Set<MemorySession>();
  #running = false;

  /** Throws on an inconsistent configuration (a startup error, not a client-facing one). */
  constructor(options: Partial<MemoryEngineOptions>, log: Logger) {
    this.#options = { ...DEFAULT_MEMORY_ENGINE_OPTIONS, ...options };
    this.#log = log;
    const { vhosts, exchanges, maxQueueMessages } = this.#options;
    if (vhosts.length === 0) throw new Error('memory engine: at least one vhost is required');
    if (!Number.isInteger(maxQueueMessages) || maxQueueMessages < 1) {
      throw new Error(`memory engine: maxQueueMessages must be a positive integer, got ${maxQueueMessages}`);
    }
    for (const exchange of exchanges) {
      if (exchange.name === '') throw new Error('memory engine: the default exchange cannot be configured');
      if (exchange.vhost !== undefined && !vhosts.includes(exchange.vhost)) {
        throw new Error(`memory engine: exchange '${exchange.name}' names unknown vhost '${exchange.vhost}'`);
      }
    }
    this.#vhosts = this.#buildVhosts();
  }

  async start(): Promise<void> {
    if (this.#running) return;
    if (this.#vhosts.size === 0) this.#vhosts = this.#buildVhosts();
    this.#running = true;
    this.#log.info({ vhosts: [...this.#vhosts.keys()] }, 'memory engine started');
  }

  /** Every session gets onClosed(ENGINE_UNAVAILABLE); all queues and their timers are dropped. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const error = memoryErrors.shuttingDown();
    for (const session of [...this.#sessions]) session.terminate(error);
    this.#sessions.clear();
    for (const vhost of this.#vhosts.values()) vhost.clear();
    this.#vhosts.clear();
    // Let the onClosed notifications (queued as microtasks) run before stop() resolves.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#log.info('memory engine stopped');
  }

  isReady(): boolean {
    return this.#running;
  }

  async openSession(ctx: EngineSessionContext, events: EngineSessionEvents): Promise<EngineSession> {
    if (!this.#running) throw new EngineError(memoryErrors.notStarted());
    const vhost = this.#vhosts.get(ctx.vhost);
    if (vhost === undefined) throw new EngineError(memoryErrors.unknownVhost(ctx.vhost));
    const session = new MemorySession(ctx, events, vhost, (s) => this.#sessions.delete(s));
    this.#sessions.add(session);
    return session;
  }

  exchangeType(vhost: string, name: string): string | undefined {
    return this.#vhosts.get(vhost)?.exchange(name === 'amq.default' ? '' : name)?.type ?? BUILT_IN_EXCHANGE_TYPES.get(name);
  }

  /** Open sessions and queues, for /metrics and tests. */
  stats(): { sessions: number; queues: number } {
    let queues = 0;
    for (const vhost of this.#vhosts.values()) queues += vhost.queueCount;
    return { sessions: this.#sessions.size, queues };
  }

  #buildVhosts(): Map<string, VirtualHost> {
    const map = new Map<string, VirtualHost>();
    for (const name of this.#options.vhosts) {
      map.set(name, new VirtualHost(name, this.#options.maxQueueMessages, this.#log.child({ vhost: name })));
    }
    for (const { name, type, vhost } of this.#options.exchanges) {
      for (const [vhostName, host] of map) {
        if (vhost !== undefined && vhost !== vhostName) continue;
        if (!host.declareExchange(name, type)) {
          throw new Error(`memory engine: exchange '${name}' in vhost '${vhostName}' already exists with another type`);
        }
      }
    }
    return map;
  }
}
