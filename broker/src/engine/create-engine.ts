// Picks the engine the configuration names: RabbitMQ through amqplib, or the embedded in-memory
// engine for development. The only place that knows both constructors.

import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../server/config.js';
import { THUMPER_VERSION } from '../server/config.js';
import { AmqpEngine } from './amqp/amqp-engine.js';
import type { Engine } from './engine.js';
import { MemoryEngine } from './memory/memory-engine.js';

/** onConfirm: told each publisher confirm's latency in seconds (AMQP only; metrics). */
export function createEngine(config: Config, log: Logger, observers: { onConfirm?: (seconds: number) => void } = {}): Engine {
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
        ...(observers.onConfirm ? { onConfirm: observers.onConfirm } : {}),
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
