// Picks the engine the configuration names: RabbitMQ through amqplib, or the embedded in-memory
// engine for development. The only place that knows both constructors.

import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../server/config.js';
import { THUMPER_VERSION } from '../server/config.js';
import { AmqpEngine } from './amqp/amqp-engine.js';
import type { BindKind } from './amqp/bind-pipe.js';
import type { Engine } from './engine.js';
import { MemoryEngine } from './memory/memory-engine.js';

/**
 * AMQP only (metrics): onConfirm is told each publisher confirm's latency in seconds, onRestore each
 * session restore's result, onBind each shared key's bind or unbind wait in seconds.
 */
export interface EngineObservers {
  readonly onConfirm?: (seconds: number) => void;
  readonly onBind?: (kind: BindKind, seconds: number) => void;
  readonly onRestore?: (result: 'restored' | 'failed') => void;
}

export function createEngine(config: Config, log: Logger, observers: EngineObservers = {}): Engine {
  if (config.engine === 'amqp') {
    const { amqp } = config;
    return new AmqpEngine(
      {
        urls: amqp.urls,
        channelsPerConnection: amqp.channelsPerConnection,
        heartbeatSeconds: amqp.heartbeatSeconds,
        // Shown in RabbitMQ's management UI, so operators can tell which gateway node holds a connection.
        connectionName: `Thumper ${THUMPER_VERSION} on ${hostname()} (pid ${process.pid})`,
        reconnect: { initialMs: amqp.reconnectInitialMs, maxMs: amqp.reconnectMaxMs },
        onConnectionLoss: amqp.onConnectionLoss,
        restoreTimeoutMs: amqp.restoreTimeoutMs,
        blockedPublishTimeoutMs: amqp.blockedPublishTimeoutMs,
        sharedSubscriptions: amqp.sharedSubscriptions,
        sharedUnbindDelayMs: amqp.sharedUnbindDelayMs,
        exchangeTypes: amqp.exchangeTypes,
        ...(observers.onConfirm ? { onConfirm: observers.onConfirm } : {}),
        ...(observers.onRestore ? { onRestore: observers.onRestore } : {}),
        ...(observers.onBind ? { onBind: observers.onBind } : {}),
      },
      log,
    );
  }
  const { memory } = config;
  return new MemoryEngine(
    {
      vhosts: memory.vhosts,
      exchanges: memory.exchanges.map(({ name, type, vhost }) => (vhost === undefined ? { name, type } : { name, type, vhost })),
      maxQueueMessages: memory.maxQueueMessages,
    },
    log,
  );
}
