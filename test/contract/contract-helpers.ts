// Helpers for the engine contract suite: per-test sessions and queues that are always cleaned up,
// delivery inboxes that resolve on the N-th delivery (or fail at a generous deadline: a deadline,
// never a timing assertion), and assertions on engine errors. Everything here must behave the same
// against the memory engine and against a real RabbitMQ shared with other tests.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { ArgTable, QueueSpec } from '../../broker/src/destination/types.js';
import { EngineError, type Engine, type EngineSession } from '../../broker/src/engine/engine.js';
import type { Delivery, MessageProperties, OutboundMessage } from '../../broker/src/engine/message.js';
import type { ErrorCode, StompError } from '../../broker/src/errors.js';

/** What a target hands the suite. */
export interface ContractEnv {
  readonly engine: Engine;
  readonly vhost: string;
  /** Pre-declared exchanges available (RabbitMQ: amq.topic, amq.direct, amq.fanout). */
  readonly topicExchange: string;
  readonly directExchange: string;
  readonly fanoutExchange: string;
  cleanup(): Promise<void>;
}

/** How long anything asynchronous may take before the test fails. Generous: machines are shared. */
export const DEADLINE_MS = 5_000;
export const TEST_TIMEOUT_MS = 30_000;

const silentLog = pino({ level: 'silent' });

/** A name no other test (or run) uses, so a shared RabbitMQ is safe. */
export function uniqueName(prefix = 'contract'): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

export function queueSpec(name: string, overrides: Partial<Omit<QueueSpec, 'name'>> = {}): QueueSpec {
  return { name, durable: false, autoDelete: false, exclusive: false, arguments: {}, ...overrides };
}

export function message(body: string | Buffer, properties: Partial<MessageProperties> = {}): OutboundMessage {
  return {
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
    properties: { headers: {}, ...properties },
  };
}

export const text = (d: Delivery): string => d.body.toString('utf8');

/** Resolves `promise`, or fails the test with `what` once the deadline passes. */
export async function withDeadline<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${ms} ms passed waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects deliveries; `accept` filters out traffic from other tests on shared exchanges. */
export class Inbox {
  readonly deliveries: Delivery[] = [];
  readonly #accept: (d: Delivery) => boolean;
  #waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly onDelivery = (d: Delivery): void => {
    if (!this.#accept(d)) return;
    this.deliveries.push(d);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.deliveries.length < w.n) return true;
      w.resolve();
      return false;
    });
  };

  constructor(accept: (d: Delivery) => boolean = () => true) {
    this.#accept = accept;
  }

  get bodies(): string[] {
    return this.deliveries.map(text);
  }

  /** Resolves with the first n deliveries once there are at least n. */
  async waitFor(n: number, what = `${n} deliveries`): Promise<Delivery[]> {
    if (this.deliveries.length < n) {
      const arrived = new Promise<void>((resolve) => this.#waiters.push({ n, resolve }));
      await withDeadline(arrived, `${what} (got ${JSON.stringify(this.bodies)})`);
    }
    return this.deliveries.slice(0, n);
  }
}

/** One engine session plus what its events reported. */
export class Peer {
  readonly session: EngineSession;
  readonly closed: StompError[] = [];
  readonly cancelled: string[] = [];
  #wake: Array<() => void> = [];

  constructor(session: EngineSession) {
    this.session = session;
  }

  notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }

  /** Waits until `check` holds, re-checking on every event of this session. */
  async until(check: () => boolean, what: string): Promise<void> {
    if (check()) return;
    const loop = async (): Promise<void> => {
      while (!check()) await new Promise<void>((resolve) => this.#wake.push(resolve));
    };
    await withDeadline(loop(), what);
  }

  async waitClosed(): Promise<StompError> {
    await this.until(() => this.closed.length > 0, 'events.onClosed');
    return this.closed[0] as StompError;
  }
}

/** Per-test fixture: opens sessions and names queues, and removes all of it after the test. */
export class Fixture {
  readonly env: ContractEnv;
  readonly #peers: Peer[] = [];
  readonly #queues = new Set<string>();

  constructor(env: ContractEnv, t: TestContext) {
    this.env = env;
    t.after(() => this.#dispose());
  }

  async open(): Promise<Peer> {
    let peer: Peer | undefined;
    const session = await this.env.engine.openSession(
      { vhost: this.env.vhost, username: 'contract', sessionId: uniqueName('session'), log: silentLog },
      {
        onClosed: (error) => {
          peer?.closed.push(error);
          peer?.notify();
        },
        onCancelled: (tag) => {
          peer?.cancelled.push(tag);
          peer?.notify();
        },
      },
    );
    peer = new Peer(session);
    this.#peers.push(peer);
    return peer;
  }

  /** A fresh queue name, deleted after the test. */
  queueName(prefix = 'contract'): string {
    const name = uniqueName(prefix);
    this.#queues.add(name);
    return name;
  }

  /** Registers a name the engine chose (server-named queue) for deletion. */
  track(name: string): string {
    this.#queues.add(name);
    return name;
  }

  /** Declares a uniquely named queue on `peer`. */
  async declare(peer: Peer, overrides: Partial<Omit<QueueSpec, 'name'>> = {}, args: ArgTable = {}): Promise<string> {
    const name = this.queueName();
    return peer.session.declareQueue(queueSpec(name, { ...overrides, arguments: { ...overrides.arguments, ...args } }));
  }

  /**
   * What is left in the queue: a fresh session consumes it (manual ack) after publishing an `end`
   * marker, so the marker's arrival proves every earlier message was delivered too.
   */
  async remaining(queue: string, expected: number): Promise<Inbox> {
    const peer = await this.open();
    const inbox = new Inbox();
    await peer.session.consume(queue, { noAck: false, args: {} }, inbox.onDelivery);
    await peer.session.publish('', queue, message('end'), true);
    await inbox.waitFor(expected + 1);
    return inbox;
  }

  /**
   * True once a fresh session sees NOT_FOUND for the queue (exclusive/auto-delete/expiry ran);
   * RESOURCE_LOCKED means it exists as another session's exclusive queue.
   */
  async queueGone(name: string): Promise<boolean> {
    const probe = await this.open();
    try {
      await probe.session.checkQueue(name);
      return false;
    } catch (err) {
      if (err instanceof EngineError && err.error.code === 'RESOURCE_LOCKED') return false;
      assertEngineError(err, 'NOT_FOUND');
      return true;
    } finally {
      await probe.session.close();
    }
  }

  /** Polls `queueGone` (bounded in count and time) until the broker has removed the queue. */
  async waitQueueGone(name: string, pollMs = 50): Promise<void> {
    const started = Date.now();
    for (let attempt = 0; attempt < 100 && Date.now() - started < DEADLINE_MS; attempt++) {
      if (await this.queueGone(name)) return;
      await sleep(pollMs);
    }
    assert.fail(`queue ${name} still exists after ${DEADLINE_MS} ms`);
  }

  async #dispose(): Promise<void> {
    for (const peer of this.#peers) await peer.session.close().catch(() => undefined);
    let cleaner: EngineSession | undefined;
    for (const name of this.#queues) {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          cleaner ??= await this.#openQuiet();
          await cleaner.deleteQueue(name);
          break;
        } catch {
          // A fatal error closed the cleaner (e.g. the queue is still someone's exclusive queue).
          await cleaner?.close().catch(() => undefined);
          cleaner = undefined;
        }
      }
    }
    await cleaner?.close().catch(() => undefined);
  }

  #openQuiet(): Promise<EngineSession> {
    return this.env.engine.openSession(
      { vhost: this.env.vhost, username: 'contract', sessionId: uniqueName('cleanup'), log: silentLog },
      { onClosed: () => undefined, onCancelled: () => undefined },
    );
  }
}

export function assertEngineError(err: unknown, code: ErrorCode, detail?: string | RegExp): StompError {
  assert.ok(err instanceof EngineError, `expected an EngineError, got ${String(err)}`);
  assert.equal(err.error.code, code, `error code (detail: ${err.error.detail})`);
  if (typeof detail === 'string') assert.equal(err.error.detail, detail);
  else if (detail !== undefined) assert.match(err.error.detail, detail);
  return err.error;
}

/** The call rejects with a fatal EngineError of `code`. */
export async function expectFatal(
  call: Promise<unknown>,
  code: ErrorCode,
  detail?: string | RegExp,
): Promise<StompError> {
  let caught: unknown;
  try {
    await call;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected ${code}, but the call succeeded`);
  const error = assertEngineError(caught, code, detail);
  assert.equal(error.fatal, true, `${code} must be fatal`);
  return error;
}

/**
 * A channel error that an AMQP client may learn either as the call's failure or later as a channel
 * close: it must be reported exactly once, through one of the two, and be fatal.
 */
export async function expectSessionDeath(
  peer: Peer,
  call: Promise<unknown>,
  code: ErrorCode,
  detail: string,
): Promise<void> {
  let rejected: unknown;
  try {
    await call;
  } catch (err) {
    rejected = err;
  }
  if (rejected !== undefined) {
    const error = assertEngineError(rejected, code, detail);
    assert.equal(error.fatal, true);
  } else {
    const error = await peer.waitClosed();
    assert.equal(error.code, code);
    assert.equal(error.detail, detail);
    assert.equal(error.fatal, true);
  }
  // Either way the session is dead: the next call fails, and the error was not reported twice.
  await assert.rejects(peer.session.setPrefetch(0), EngineError);
  assert.equal(peer.closed.length, rejected === undefined ? 1 : 0, 'reported exactly once');
}
