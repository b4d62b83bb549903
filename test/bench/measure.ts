// What the bench measures with, besides the clients: latency samples and their percentiles, the
// timestamp carried in message bodies, process RSS and CPU from /proc, and small bounded waits.

import { readFileSync, readdirSync } from 'node:fs';

/** A fixed-capacity sample buffer (no growth during a run); extra samples are counted, not kept. */
export class LatencyRecorder {
  readonly #samples: Float64Array;
  #count = 0;
  #dropped = 0;

  constructor(capacity: number) {
    this.#samples = new Float64Array(Math.max(1, capacity));
  }

  record(ms: number): void {
    if (this.#count < this.#samples.length) this.#samples[this.#count++] = ms;
    else this.#dropped++;
  }

  get count(): number {
    return this.#count + this.#dropped;
  }

  /** Nearest-rank percentile (0 < p ≤ 100) of the kept samples; NaN when there are none. */
  percentiles(ps: readonly number[]): number[] {
    const sorted = this.#samples.slice(0, this.#count).sort();
    return ps.map((p) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!));
  }
}

/**
 * A 128-byte (or `size`) body that starts with the send time in ms (performance.now(), with
 * three decimals) and a space; publisher and subscribers run in this one process, so one
 * monotonic clock serves both ends.
 */
export function timestampedBody(size: number, now: number, seq: number): Buffer {
  const head = `${now.toFixed(3)} ${seq} `;
  const body = Buffer.alloc(Math.max(size, head.length), 0x78);
  body.write(head, 0, 'latin1');
  return body;
}

/** The send time a timestampedBody carries, or NaN. */
export function bodyTimestamp(body: Buffer): number {
  const space = body.indexOf(0x20);
  return space <= 0 ? Number.NaN : Number(body.toString('latin1', 0, space));
}

const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcSample {
  /** Resident set size in bytes. */
  readonly rssBytes: number;
  /** User + system CPU time in seconds. */
  readonly cpuSeconds: number;
}

/** VmRSS and utime+stime of one process; zeros when it is gone. */
export function sampleProcess(pid: number): ProcSample {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: index 11 = utime, 12 = stime (proc(5) fields 14 and 15).
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssBytes: rss ? Number(rss[1]) * 1024 : 0, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
  } catch {
    return { rssBytes: 0, cpuSeconds: 0 };
  }
}

/** The summed samples of every process in a process group (a RabbitMQ node: beam.smp, epmd, …). */
export function sampleProcessGroup(pgid: number): ProcSample {
  let rssBytes = 0;
  let cpuSeconds = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[2] = pgrp (proc(5) field 5).
      if (Number(fields[2]) !== pgid) continue;
    } catch {
      continue;
    }
    const s = sampleProcess(Number(entry));
    rssBytes += s.rssBytes;
    cpuSeconds += s.cpuSeconds;
  }
  return { rssBytes, cpuSeconds };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `done` every `everyMs` until it is true, `progress` has not changed for `quietMs`, or
 * `maxMs` passed. Returns whether `done` held.
 */
export async function settle(done: () => boolean, progress: () => number, quietMs: number, maxMs: number, everyMs = 20): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  let last = progress();
  let lastChange = performance.now();
  while (!done()) {
    const now = performance.now();
    if (now > deadline) return false;
    const p = progress();
    if (p !== last) {
      last = p;
      lastChange = now;
    } else if (now - lastChange > quietMs) {
      return false;
    }
    await sleep(everyMs);
  }
  return true;
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight; returns the failures. */
export async function runPool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<Error[]> {
  const failures: Error[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failures.push(err as Error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return failures;
}
