// Heart-beat negotiation (pure) and the timers that enforce it (STOMP 1.2 §Heart-beating).

import { fail, ok, stompError, type Result } from '../errors.js';
import type { HeartBeatOptions } from './options.js';

export interface HeartBeatPlan {
  /** How often the server must send something (ms); 0 = never. */
  readonly sendMs: number;
  /** How often the client promised to send something (ms); 0 = not checked. */
  readonly receiveMs: number;
}

/**
 * Client `cx,cy`: it can send every cx ms and wants to receive every cy ms. The server answers with
 * its own pair; both sides then use max(). We answer with the client's wishes raised to our minimums,
 * so the client's max() lands on exactly the values we enforce (RabbitMQ mirrors the same way).
 */
export function negotiateHeartBeat(header: string | undefined, opts: HeartBeatOptions): Result<HeartBeatPlan> {
  if (header === undefined || header.trim() === '') return ok({ sendMs: 0, receiveMs: 0 });
  const m = /^\s*(\d{1,10})\s*,\s*(\d{1,10})\s*$/.exec(header);
  if (!m) return fail(stompError('PROCESSING_ERROR', `Invalid heart-beat header '${header}': expected "<cx>,<cy>" in ms`));
  const cx = roundToSeconds(Number(m[1]));
  const cy = roundToSeconds(Number(m[2]));
  return ok({
    sendMs: cy === 0 ? 0 : Math.max(cy, opts.minSendMs),
    receiveMs: cx === 0 ? 0 : Math.max(cx, opts.minReceiveMs),
  });
}

/** RabbitMQ's rounding (reference §2.5): 1..999 ms → 1 s, else whole seconds, rounded down. */
function roundToSeconds(ms: number): number {
  if (ms <= 0) return 0;
  return ms < 1000 ? 1000 : Math.floor(ms / 1000) * 1000;
}

export function heartBeatHeader(plan: HeartBeatPlan): string {
  return `${plan.sendMs},${plan.receiveMs}`;
}

export interface HeartBeatClock {
  /** ms since the last byte written / read. */
  sinceLastWrite(): number;
  sinceLastRead(): number;
  sendBeat(): void;
  peerDead(silentMs: number): void;
}

/** Starts the timers; returns a stop function. */
export function startHeartBeats(plan: HeartBeatPlan, tolerance: number, clock: HeartBeatClock): () => void {
  const timers: NodeJS.Timeout[] = [];
  if (plan.sendMs > 0) {
    // Checking at half the interval keeps the longest silence under sendMs.
    const half = Math.max(1, Math.floor(plan.sendMs / 2));
    timers.push(
      setInterval(() => {
        if (clock.sinceLastWrite() >= half) clock.sendBeat();
      }, half),
    );
  }
  if (plan.receiveMs > 0) {
    const limit = plan.receiveMs * tolerance;
    timers.push(
      setInterval(() => {
        const silent = clock.sinceLastRead();
        if (silent >= limit) clock.peerDead(silent);
      }, plan.receiveMs),
    );
  }
  return () => {
    for (const t of timers) clearInterval(t);
    timers.length = 0;
  };
}
