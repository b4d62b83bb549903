// Remembers auth decisions in front of a slow decider (the HTTP backend), like RabbitMQ's
// rabbitmq_auth_backend_cache (reference §5.2): allows for one TTL, denials for another, failures
// (`unavailable`) never. Concurrent identical misses share one computation, so a burst of 1,000
// identical checks costs the backend one request. Bounded by entry count, least recently used first.

import type { AuthDecision } from './authorizer.js';

export interface DecisionCacheOptions {
  /** How long an allow is reused, in ms; 0 never caches allows. RabbitMQ's default is 15000. */
  readonly allowTtlMs: number;
  /** How long a deny is reused, in ms; 0 never caches denials (RabbitMQ's default: cache_refusals=false). */
  readonly denyTtlMs: number;
  /** Most entries kept; past it the least recently used goes. 0 caches nothing. */
  readonly maxEntries: number;
  /** Clock in epoch ms; injected by tests. Default Date.now. */
  readonly now?: () => number;
}

export interface DecisionCacheStats {
  /** Answered from a fresh entry. */
  readonly hits: number;
  /** Computed (each miss is one call of `compute`). */
  readonly misses: number;
  /** Joined a computation already in flight for the same key. */
  readonly coalesced: number;
  /** Entries held, including expired ones not yet dropped (they go when a newer decision is stored). */
  readonly size: number;
}

interface Entry {
  readonly decision: AuthDecision<unknown>;
  readonly expiresAt: number;
}

/**
 * One cache may serve several kinds of decision (principals for logins, `true` for permissions):
 * the key decides the kind, so callers namespace their keys (`["user", …]`, `["queue", …]`).
 */
export class DecisionCache {
  readonly #allowTtlMs: number;
  readonly #denyTtlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** Map order is recency order: a hit re-inserts, so the first key is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<AuthDecision<unknown>>>();
  /** Bumped by clear(), so a computation started before it cannot store its stale answer. */
  #generation = 0;
  #hits = 0;
  #misses = 0;
  #coalesced = 0;

  constructor(options: DecisionCacheOptions) {
    for (const name of ['allowTtlMs', 'denyTtlMs', 'maxEntries'] as const) {
      const value = options[name];
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`DecisionCache: ${name} must be a finite number >= 0`);
    }
    this.#allowTtlMs = options.allowTtlMs;
    this.#denyTtlMs = options.denyTtlMs;
    this.#maxEntries = Math.floor(options.maxEntries);
    this.#now = options.now ?? Date.now;
  }

  /**
   * The decision for `key`: a fresh cached one, the one already being computed, or `compute()`'s.
   * The key must name everything the decision depends on, its kind included: an entry is handed
   * back as the T of whoever asks for the key. A rejection of `compute` reaches every caller
   * waiting on it and is not cached.
   */
  get<T>(key: string, compute: () => Promise<AuthDecision<T>>): Promise<AuthDecision<T>> {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      if (this.#now() < entry.expiresAt) {
        this.#entries.set(key, entry);
        this.#hits++;
        return Promise.resolve(entry.decision as AuthDecision<T>);
      }
    }
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) {
      this.#coalesced++;
      return pending as Promise<AuthDecision<T>>;
    }
    this.#misses++;
    const generation = this.#generation;
    // compute runs a microtask later, after the promise is registered, so even a synchronous throw
    // goes through the same cleanup.
    const promise: Promise<AuthDecision<T>> = Promise.resolve()
      .then(compute)
      .then((decision) => {
        if (generation === this.#generation) this.#store(key, decision);
        return decision;
      })
      .finally(() => {
        if (this.#inFlight.get(key) === promise) this.#inFlight.delete(key);
      });
    this.#inFlight.set(key, promise);
    return promise;
  }

  stats(): DecisionCacheStats {
    return { hits: this.#hits, misses: this.#misses, coalesced: this.#coalesced, size: this.#entries.size };
  }

  /** Drops every entry (like `rabbitmqctl clear_auth_backend_cache`); computations in flight still answer their callers. */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
    this.#inFlight.clear();
  }

  #store(key: string, decision: AuthDecision<unknown>): void {
    const ttl = decision.ok ? this.#allowTtlMs : decision.unavailable === true ? 0 : this.#denyTtlMs;
    if (ttl <= 0 || this.#maxEntries <= 0) return;
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, { decision, expiresAt: now + ttl });
    // Most keys are asked once (every SUBSCRIBE names a fresh random subscription queue), so expired
    // entries must not wait for a lookup that never comes: drop them from the least recently used
    // end, and memory under steady churn stays at what the TTLs hold instead of creeping to maxEntries.
    for (const [oldest, entry] of this.#entries) {
      if (entry.expiresAt > now) break;
      this.#entries.delete(oldest);
    }
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }
}
