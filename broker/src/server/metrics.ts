// Prometheus metrics for one gateway: its own prom-client Registry (several gateways may share a
// process in tests), the default process/nodejs metrics, and `thumper_*` instruments fed by the
// session, the auth chain, the HTTP auth backend and the AMQP engine. Every label takes values
// from a closed set (transport kinds, STOMP commands, error codes…): never a user or destination.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuthStep, DecisionObserver } from '../auth/chain.js';
import type { BackendPath, RequestObserver } from '../auth/http-backend.js';
import type { CloseReason, ErrorCode } from '../errors.js';
import type { StompVersion } from '../stomp/frame.js';
import type { TransportKind } from '../transport/transport.js';
import type { HttpMount } from './http-server.js';
import { Tally, type TallySlot } from './tally.js';

/** STOMP 1.2 client and server commands; anything else is counted as OTHER. */
const STOMP_COMMANDS: ReadonlySet<string> = new Set([
  'CONNECT', 'STOMP', 'CONNECTED', 'SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'BEGIN', 'COMMIT',
  'ABORT', 'DISCONNECT', 'MESSAGE', 'RECEIPT', 'ERROR',
]);

/** A bare EOL between frames (STOMP 1.2 §Heart-beating), counted with the frames. */
export const HEARTBEAT_COMMAND = 'HEARTBEAT';

export function commandLabel(command: string): string {
  return command === HEARTBEAT_COMMAND || STOMP_COMMANDS.has(command) ? command : 'OTHER';
}

/** What one session reports; a no-op when metrics are off (NO_SESSION_METER). */
export interface SessionMeter {
  bytesIn(n: number): void;
  frameIn(command: string): void;
  bytesOut(n: number): void;
  frameOut(command: string): void;
  connected(version: StompVersion): void;
  published(): void;
  delivered(): void;
  error(code: ErrorCode): void;
  /** The session ends because its client reads too slowly for an auto-ack subscription. */
  slowConsumer(): void;
  /** outbound: ack-mode deliveries paused (client not reading); inbound: reading paused (inbox full). */
  flowPaused(direction: FlowDirection): void;
  /** Idempotent: the first call counts. */
  closed(reason: CloseReason): void;
}

export type FlowDirection = 'outbound' | 'inbound';

/** The session's view of the metrics: one meter per connection. */
export interface SessionMetrics {
  session(transport: TransportKind): SessionMeter;
}

export const NO_SESSION_METER: SessionMeter = {
  bytesIn: () => undefined,
  frameIn: () => undefined,
  bytesOut: () => undefined,
  frameOut: () => undefined,
  connected: () => undefined,
  published: () => undefined,
  delivered: () => undefined,
  error: () => undefined,
  slowConsumer: () => undefined,
  flowPaused: () => undefined,
  closed: () => undefined,
};

/** Read at scrape time, so nothing is double counted or kept in two places. */
export interface MetricSources {
  /** The HTTP decision cache's running totals (undefined without the http backend). */
  authCache?: () => { hits: number; misses: number; coalesced: number } | undefined;
  /** AMQP connections as the pool holds them (open: the handshake finished). */
  amqpConnections?: () => ReadonlyArray<{ open: boolean; load: number }>;
  /** Outbound bytes queued in each live transport. */
  bufferedBytes?: () => Iterable<number>;
  /** The AMQP engine's shared subscription queues, their bound keys and their subscribers. */
  sharedFanout?: () => { queues: number; bindings: number; subscribers: number };
}

export interface Metrics extends SessionMetrics {
  readonly registry: Registry;
  /** For createAuthChain's onDecision. */
  readonly authDecision: DecisionObserver;
  /** For createHttpBackend's onRequest. */
  readonly authBackendRequest: RequestObserver;
  /** Seconds from basic.publish to the broker's confirm. */
  readonly publishConfirmed: (seconds: number) => void;
  /** Seconds a shared subscription key waited for its queue.bind (or queue.unbind) to take effect. */
  readonly sharedKeyBound: (kind: 'bind' | 'unbind', seconds: number) => void;
  /** How one AMQP session's restore after a lost connection ended. */
  readonly amqpSessionRestored: (result: 'restored' | 'failed') => void;
  /** Counted by the slow-consumer protection when it disconnects a session. */
  readonly slowConsumerDisconnected: () => void;
  /** A connection refused on arrival (limits.maxConnectionsPerAddress), by transport. */
  readonly connectionRefused: (transport: TransportKind) => void;
  /** Wires the scrape-time sources (they exist only once the engine and auth are built). */
  setSources(sources: MetricSources): void;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let sources: MetricSources = {};
  const registers = [registry];

  const connections = new Gauge({
    name: 'thumper_connections',
    help: 'Open client connections, by transport and negotiated STOMP version ("none" before CONNECTED).',
    labelNames: ['transport', 'version'] as const,
    registers,
  });
  const opened = new Counter({ name: 'thumper_connections_opened_total', help: 'Client connections accepted.', labelNames: ['transport'] as const, registers });
  const closed = new Counter({ name: 'thumper_sessions_closed_total', help: 'Sessions ended, by close reason.', labelNames: ['reason'] as const, registers });
  // Counted per frame: plain-number tallies, handed to prom-client at scrape time (tally.ts).
  const framesIn = new Tally({
    name: 'thumper_frames_received_total',
    help: 'STOMP frames received, by command (HEARTBEAT: a bare EOL; OTHER: not a STOMP command).',
    labelName: 'command',
    registers,
  });
  const framesOut = new Tally({ name: 'thumper_frames_sent_total', help: 'STOMP frames sent, by command (HEARTBEAT: a bare EOL).', labelName: 'command', registers });
  const bytesIn = new Tally({ name: 'thumper_received_bytes_total', help: 'Bytes received from clients.', labelName: 'transport', registers });
  const bytesOut = new Tally({ name: 'thumper_sent_bytes_total', help: 'Bytes handed to client transports.', labelName: 'transport', registers });
  const published = new Tally({ name: 'thumper_messages_published_total', help: 'Messages the engine accepted from SEND (and COMMIT).', registers }).slot('');
  const delivered = new Tally({ name: 'thumper_messages_delivered_total', help: 'MESSAGE frames sent to subscribers.', registers }).slot('');
  const messagesOut = framesOut.slot('MESSAGE');
  const errors = new Counter({ name: 'thumper_errors_total', help: 'ERROR frames sent, by error code.', labelNames: ['code'] as const, registers });
  const decisions = new Counter({
    name: 'thumper_auth_decisions_total',
    help: 'Auth decisions, by backend, step (connect, vhost, permission) and result (allow, deny, unavailable).',
    labelNames: ['backend', 'step', 'result'] as const,
    registers,
  });
  new Counter({
    name: 'thumper_auth_cache_lookups_total',
    help: 'HTTP auth decision cache lookups: hit, miss (asked the backend), coalesced (joined a request in flight).',
    labelNames: ['result'] as const,
    registers,
    collect() {
      const stats = sources.authCache?.();
      this.reset();
      if (stats === undefined) return;
      this.inc({ result: 'hit' }, stats.hits);
      this.inc({ result: 'miss' }, stats.misses);
      this.inc({ result: 'coalesced' }, stats.coalesced);
    },
  });
  const backendLatency = new Histogram({
    name: 'thumper_auth_backend_request_duration_seconds',
    help: 'HTTP auth backend requests (retry included), by path and outcome (allow, deny, unavailable).',
    labelNames: ['path', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const restores = new Counter({
    name: 'thumper_amqp_session_restores_total',
    help: 'Sessions restored on a new AMQP channel after a lost connection, by result (restored, failed).',
    labelNames: ['result'] as const,
    registers,
  });
  const confirmLatency = new Histogram({
    name: 'thumper_publish_confirm_duration_seconds',
    help: 'Time from basic.publish to RabbitMQ\'s publisher confirm (SEND with a receipt).',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  new Gauge({
    name: 'thumper_amqp_connections',
    help: 'AMQP connections in the pool, by state (open, connecting).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const list = sources.amqpConnections?.();
      this.reset();
      if (list === undefined) return;
      const open = list.filter((c) => c.open).length;
      this.set({ state: 'open' }, open);
      this.set({ state: 'connecting' }, list.length - open);
    },
  });
  new Gauge({
    name: 'thumper_amqp_channels',
    help: 'AMQP channels open or being opened (one per STOMP session).',
    registers,
    collect() {
      const list = sources.amqpConnections?.() ?? [];
      this.set(list.reduce((sum, c) => sum + c.load, 0));
    },
  });
  const bindLatency = new Histogram({
    name: 'thumper_shared_bind_duration_seconds',
    help: 'Shared subscriptions: from a key\'s queue.bind (kind=bind, a SUBSCRIBE waits for it) or queue.unbind being asked for to RabbitMQ having done it. RabbitMQ adds bindings to one exchange one at a time, so this is what a storm of new subscribers waits on.',
    labelNames: ['kind'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const sharedGauge = (name: string, help: string, pick: (s: { queues: number; bindings: number; subscribers: number }) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const stats = sources.sharedFanout?.();
        this.set(stats === undefined ? 0 : pick(stats));
      },
    });
  };
  sharedGauge('thumper_shared_queues', 'Shared subscription queues this node holds in RabbitMQ (one per vhost and exchange in use).', (s) => s.queues);
  sharedGauge(
    'thumper_shared_bindings',
    'Keys bound on the shared queues, including keys kept bound for amqp.sharedUnbindDelayMs after their last subscriber left.',
    (s) => s.bindings,
  );
  sharedGauge('thumper_shared_subscribers', 'Subscriptions served from the shared queues, routed in this node.', (s) => s.subscribers);
  new Gauge({
    name: 'thumper_outbound_buffered_bytes',
    help: 'Bytes queued for clients in all transports, not yet written to the network.',
    registers,
    collect() {
      let sum = 0;
      for (const n of sources.bufferedBytes?.() ?? []) sum += n;
      this.set(sum);
    },
  });
  const slowConsumers = new Counter({
    name: 'thumper_slow_consumer_disconnects_total',
    help: 'Sessions closed (ERROR "slow consumer") because an auto-ack subscription\'s client did not read within stomp.maxOutboundBytes/Frames.',
    registers,
  });
  const flowPauses = new Counter({
    name: 'thumper_flow_pauses_total',
    help: 'Backpressure: outbound = a session paused its ack-mode deliveries (client not reading); inbound = a session stopped reading its client (inbox full).',
    labelNames: ['direction'] as const,
    registers,
  });

  const refused = new Counter({
    name: 'thumper_connections_refused_total',
    help: 'Connections refused on arrival because their address had limits.maxConnectionsPerAddress open, by transport.',
    labelNames: ['transport'] as const,
    registers,
  });

  const counters: MeterCounters = { connections, opened, closed, framesIn, framesOut, messagesOut, bytesIn, bytesOut, published, delivered, errors, slowConsumers, flowPauses };
  const session = (transport: TransportKind): SessionMeter => new Meter(counters, transport);

  return {
    registry,
    session,
    authDecision: (backend: string, step: AuthStep, result) => decisions.inc({ backend, step, result }),
    authBackendRequest: (path: BackendPath, outcome, seconds) => backendLatency.observe({ path, outcome }, seconds),
    publishConfirmed: (seconds) => confirmLatency.observe(seconds),
    sharedKeyBound: (kind, seconds) => bindLatency.observe({ kind }, seconds),
    amqpSessionRestored: (result) => restores.inc({ result }),
    slowConsumerDisconnected: () => slowConsumers.inc(),
    connectionRefused: (transport) => refused.inc({ transport }),
    setSources(s) {
      sources = s;
    },
    render: () => registry.metrics(),
  };
}

/** `GET /metrics` (and HEAD) in the Prometheus text format. */
export function metricsMount(metrics: Metrics, path = '/metrics'): HttpMount {
  return {
    name: 'metrics',
    matches: (pathname) => pathname === path,
    handleRequest(req: IncomingMessage, res: ServerResponse) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('Method Not Allowed\n');
        return;
      }
      metrics.render().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    },
  };
}

/**
 * The engine session with its successful publishes counted. A Proxy keeps every other method as
 * is (bound to the real session, whose #private fields need it).
 */
export function countPublishes<T extends { publish(...args: never[]): Promise<void> }>(target: T, onPublished: () => void): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function') return value;
      if (prop === 'publish') {
        return (...args: never[]) => obj.publish(...args).then(() => onPublished());
      }
      return (value as (...a: unknown[]) => unknown).bind(obj);
    },
  });
}

interface MeterCounters {
  readonly connections: Gauge<'transport' | 'version'>;
  readonly opened: Counter<'transport'>;
  readonly closed: Counter<'reason'>;
  readonly framesIn: Tally;
  readonly framesOut: Tally;
  readonly messagesOut: TallySlot;
  readonly bytesIn: Tally;
  readonly bytesOut: Tally;
  readonly published: TallySlot;
  readonly delivered: TallySlot;
  readonly errors: Counter<'code'>;
  readonly slowConsumers: Counter;
  readonly flowPauses: Counter<'direction'>;
}

/** One session's meter: a class, so a connection costs one small object rather than a closure per method. */
class Meter implements SessionMeter {
  readonly #c: MeterCounters;
  readonly #transport: TransportKind;
  readonly #bytesIn: TallySlot;
  readonly #bytesOut: TallySlot;
  #version: StompVersion | 'none' = 'none';
  #ended = false;

  constructor(counters: MeterCounters, transport: TransportKind) {
    this.#c = counters;
    this.#transport = transport;
    this.#bytesIn = counters.bytesIn.slot(transport);
    this.#bytesOut = counters.bytesOut.slot(transport);
    counters.opened.inc({ transport });
    counters.connections.inc({ transport, version: this.#version });
  }

  bytesIn(n: number): void {
    this.#bytesIn.n += n;
  }

  frameIn(command: string): void {
    this.#c.framesIn.add(commandLabel(command));
  }

  bytesOut(n: number): void {
    this.#bytesOut.n += n;
  }

  frameOut(command: string): void {
    if (command === 'MESSAGE') this.#c.messagesOut.n += 1;
    else this.#c.framesOut.add(commandLabel(command));
  }

  connected(version: StompVersion): void {
    if (this.#ended) return;
    this.#c.connections.dec({ transport: this.#transport, version: this.#version });
    this.#version = version;
    this.#c.connections.inc({ transport: this.#transport, version });
  }

  published(): void {
    this.#c.published.n += 1;
  }

  delivered(): void {
    this.#c.delivered.n += 1;
  }

  error(code: ErrorCode): void {
    this.#c.errors.inc({ code });
  }

  slowConsumer(): void {
    this.#c.slowConsumers.inc();
  }

  flowPaused(direction: FlowDirection): void {
    this.#c.flowPauses.inc({ direction });
  }

  closed(reason: CloseReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#c.connections.dec({ transport: this.#transport, version: this.#version });
    this.#c.closed.inc({ reason });
  }
}
