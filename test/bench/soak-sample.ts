// One soak sample from outside the processes: Thumper's RSS (VmRSS) and open file descriptors from
// /proc/<pid>, its V8 heap and session count from the /metrics it already serves, and RabbitMQ's
// mem_used and object totals (queues, connections, channels) from the management API.

import { readFileSync, readdirSync } from 'node:fs';

const MIB = 1024 * 1024;
const HTTP_TIMEOUT_MS = 10_000;

export interface ProcessFigures {
  /** undefined when the process is gone. */
  readonly rssMiB: number | undefined;
  readonly fds: number | undefined;
}

export function processFigures(pid: number): ProcessFigures {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { rssMiB: rss ? Number(rss[1]) / 1024 : undefined, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rssMiB: undefined, fds: undefined };
  }
}

export interface ThumperMetrics {
  readonly heapUsedMiB: number | undefined;
  /** thumper_connections summed over transports. */
  readonly sessions: number | undefined;
}

/** Sums every series of `name` in a Prometheus text exposition (labels or none). */
export function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

export async function thumperMetrics(httpUrl: string): Promise<ThumperMetrics> {
  try {
    const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) return { heapUsedMiB: undefined, sessions: undefined };
    const heap = metricSum(text, 'nodejs_heap_size_used_bytes');
    return { heapUsedMiB: heap === undefined ? undefined : heap / MIB, sessions: metricSum(text, 'thumper_connections') };
  } catch {
    return { heapUsedMiB: undefined, sessions: undefined };
  }
}

export interface RabbitFigures {
  readonly memMiB: number | undefined;
  readonly queues: number | undefined;
  readonly connections: number | undefined;
  readonly channels: number | undefined;
}

export async function rabbitFigures(managementUrl: string, authorization: string): Promise<RabbitFigures> {
  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(`${managementUrl}${path}`, { headers: { authorization }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`GET ${path} → ${res.status}`);
    return res.json();
  };
  try {
    const [overview, nodes] = await Promise.all([get('/api/overview'), get('/api/nodes?columns=mem_used')]);
    const totals = (overview as { object_totals?: Record<string, number> }).object_totals ?? {};
    const mem = (nodes as Array<{ mem_used?: number }>)[0]?.mem_used;
    return { memMiB: mem === undefined ? undefined : mem / MIB, queues: totals['queues'], connections: totals['connections'], channels: totals['channels'] };
  } catch {
    return { memMiB: undefined, queues: undefined, connections: undefined, channels: undefined };
  }
}
