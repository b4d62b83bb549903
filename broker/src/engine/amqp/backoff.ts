// Reconnect delays: "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): a
// uniform draw below an exponentially growing, capped ceiling, so a fleet of Thumper nodes that lost
// the same broker does not reconnect in lock-step.

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Delay before reconnect attempt `attempt` (0-based). `random` returns [0, 1). */
export function fullJitterDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  // Clamp the exponent so 2 ** attempt never overflows into Infinity.
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
