// Random bytes for session ids and generated queue names, drawn from a pool refilled 4 KiB at a
// time: one getrandom call per ~250 ids instead of one per id. Three such ids per connection cost
// ~2.5% of Thumper's CPU while connecting (docs/benchmarks.md). Same source (the OS CSPRNG).

import { randomBytes, randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;

let pool = Buffer.alloc(0);
let offset = 0;

/** `n` fresh random bytes, a copy (never a view that would keep the pool alive). */
export function pooledRandomBytes(n: number): Buffer {
  if (n > POOL_BYTES / 8) return randomBytes(n);
  if (offset + n > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  offset += n;
  return out;
}

/** `n` random bytes as base64url text (an id's random part). */
export function randomToken(n: number): string {
  return pooledRandomBytes(n).toString('base64url');
}
