// A session wired to the embedded engine over an in-memory transport: the unit-test rig for
// everything above the codec.

import pino from 'pino';
import { allowAllAuthorizer } from '../../broker/src/auth/allow-all.js';
import type { Authorizer } from '../../broker/src/auth/authorizer.js';
import type { Engine, EngineSession } from '../../broker/src/engine/engine.js';
import { MemoryEngine } from '../../broker/src/engine/memory/memory-engine.js';
import type { SessionMetrics } from '../../broker/src/server/metrics.js';
import { startSession, type SessionHandle } from '../../broker/src/session/session.js';
import { DEFAULT_HEART_BEAT, type SessionOptions } from '../../broker/src/session/options.js';
import { DEFAULT_DECODER_LIMITS } from '../../broker/src/stomp/decoder.js';
import { TestClient } from './memory-transport.js';

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export const TEST_SESSION_OPTIONS: SessionOptions = {
  serverName: 'Thumper/test',
  defaultVhost: '/',
  defaultTopicExchange: 'amq.topic',
  decoder: DEFAULT_DECODER_LIMITS,
  heartBeat: DEFAULT_HEART_BEAT,
  loginTimeoutMs: 0,
  maxSubscriptions: 100,
  maxTransactions: 4,
  maxTransactionFrames: 16,
};

export async function memoryEngine(): Promise<Engine> {
  const engine = new MemoryEngine(
    { vhosts: ['/'], exchanges: [{ name: 'feed', type: 'topic' }], maxQueueMessages: 10_000 },
    silentLog,
  );
  await engine.start();
  return engine;
}

export interface Rig {
  readonly engine: Engine;
  client(): TestClient & { session: SessionHandle };
  /** A client that has completed CONNECT (STOMP 1.2 unless asked otherwise). */
  connected(headers?: Record<string, string>): Promise<TestClient & { session: SessionHandle }>;
  close(): Promise<void>;
}

export async function rig(
  overrides: Partial<SessionOptions> = {},
  authorizer: Authorizer = allowAllAuthorizer(),
  metrics?: SessionMetrics,
): Promise<Rig> {
  const engine = await memoryEngine();
  const options = { ...TEST_SESSION_OPTIONS, ...overrides };
  const client = () => {
    const c = new TestClient() as TestClient & { session: SessionHandle };
    c.session = startSession({ transport: c.transport, engine, authorizer, options, log: silentLog, ...(metrics ? { metrics } : {}) });
    return c;
  };
  return {
    engine,
    client,
    async connected(headers = {}) {
      const c = client();
      c.send('CONNECT', { 'accept-version': '1.2', host: '/', ...headers });
      await c.waitFor((f) => f.command === 'CONNECTED' || f.command === 'ERROR', 'CONNECTED');
      const v = c.frames.find((f) => f.command === 'CONNECTED')?.headers.find(([k]) => k === 'version')?.[1];
      if (v === '1.0' || v === '1.1' || v === '1.2') c.version = v;
      return c;
    },
    async close() {
      await engine.stop();
    },
  };
}

/**
 * `engine` whose sessions are the real ones with some methods replaced: `replace(inner)` gives the
 * replacements, which usually call through to `inner`.
 */
function wrappingSessions(engine: Engine, replace: (inner: EngineSession) => Partial<EngineSession>): Engine {
  return {
    kind: engine.kind,
    start: () => engine.start(),
    stop: () => engine.stop(),
    isReady: () => engine.isReady(),
    exchangeType: (vhost, name) => engine.exchangeType(vhost, name),
    async openSession(ctx, events) {
      const inner = await engine.openSession(ctx, events);
      const replaced: Partial<EngineSession> = replace(inner);
      // Bound to the real session: its methods use private fields.
      return new Proxy(inner, {
        get: (target, key) => {
          if (Object.hasOwn(replaced, key)) return (replaced as Record<string | symbol, unknown>)[key];
          const value: unknown = Reflect.get(target, key);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }) as EngineSession;
    },
  };
}

/** `engine` whose sessions run `hold` before closing: a broker slow to answer channel.close. */
export function holdingCloses(engine: Engine, hold: () => Promise<void>): Engine {
  return wrappingSessions(engine, (inner) => ({
    async close() {
      await hold();
      await inner.close();
    },
  }));
}

/** `engine` whose sessions publish at once but answer a confirmed publish only once `hold` settles: a late confirm. */
export function holdingConfirms(engine: Engine, hold: () => Promise<void>): Engine {
  return wrappingSessions(engine, (inner) => ({
    async publish(exchange, routingKey, message, confirm) {
      await inner.publish(exchange, routingKey, message, confirm);
      if (confirm) await hold();
    },
  }));
}
