// Thumper as the bench runs it: a separate OS process running what ships (the Dockerfile's
// `node dist/broker/src/main.js`: compiled once per bench run by tsc into a scratch directory), so
// its RSS and CPU can be read from /proc, with the open-file limit raised in the shell that execs
// it. Not `tsx`: its keep-names helper gives every closure a property store, which cost about 6 KiB
// of heap per connection and some CPU (docs/benchmarks.md). Auth is JWT (HS256, one shared secret): a per-CONNECT signature check, about the cost of
// RabbitMQ's internal guest/guest password check that Web-STOMP does.

import { execFileSync, spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { sleep } from './measure.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 15_000;
export const FD_LIMIT = 65_536;

/** Raise the soft limit to FD_LIMIT, or to the hard limit when that is lower. */
export const RAISE_FD_LIMIT = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"`;

export interface ThumperProcess {
  readonly pid: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** The JWT every bench client presents as its passcode. */
  readonly token: string;
  /** The soft open-file limit the process got. */
  readonly fdLimit: number;
  stop(): Promise<void>;
}

export interface ThumperOptions {
  /** RabbitMQ URL for the amqp engine; undefined: the embedded engine. */
  readonly amqpUrl: string | undefined;
  /** Directory for a V8 CPU profile (node --cpu-prof), written when the process exits. */
  readonly cpuProfDir?: string | undefined;
  /** Extra THUMPER_* settings, applied last (experiments: e.g. another log level). */
  readonly env?: Readonly<Record<string, string>> | undefined;
}

const running = new Set<number>();
process.once('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

let built: string | undefined;

/** Compiles Thumper as the image's build stage does (tsconfig.build.json), once per process. */
function buildOnce(): string {
  if (built !== undefined) return built;
  const out = mkdtempSync(join(ROOT, '.tmp-build-bench-'));
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { stdio: 'pipe' });
  built = join(out, 'broker/src/main.js');
  return built;
}

export function benchToken(secret: string): string {
  // Every permission on every vhost, exchange, queue and routing key: the same reach guest has.
  const scope = ['configure', 'write', 'read'].flatMap((p) => [`rabbitmq.${p}:*/*`, `rabbitmq.${p}:*/*/*`]).join(' ');
  return jwt.sign({ scope }, secret, { algorithm: 'HS256', subject: 'bench', expiresIn: '1d' });
}

export async function startThumperProcess(options: ThumperOptions): Promise<ThumperProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'thumper-bench-'));
  const logFile = join(dir, 'thumper.log');
  const secret = randomBytes(32).toString('hex');
  const env: Record<string, string> = {
    ...(Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('THUMPER_') && k !== 'AMQP_URL')) as Record<string, string>),
    THUMPER_HTTP_HOST: '127.0.0.1',
    THUMPER_HTTP_PORT: '0',
    THUMPER_TCP_ENABLED: 'false',
    THUMPER_SHUTDOWN_DRAIN_WINDOW_MS: '0',
    THUMPER_AUTH_BACKENDS: 'jwt',
    THUMPER_AUTH_JWT_ALGORITHMS: 'HS256',
    THUMPER_AUTH_JWT_SECRET: secret,
    THUMPER_LOG_LEVEL: 'info',
    // Every bench client comes from 127.0.0.1; Web-STOMP has no per-address limit either.
    THUMPER_LIMITS_MAX_CONNECTIONS_PER_ADDRESS: '0',
  };
  if (options.amqpUrl !== undefined) {
    env['THUMPER_ENGINE'] = 'amqp';
    env['THUMPER_AMQP_URL'] = options.amqpUrl;
    // The bench declares `feed` as a topic exchange; telling Thumper lets feed subscriptions share a queue.
    env['THUMPER_AMQP_EXCHANGE_TYPES'] = 'feed:topic';
  } else {
    env['THUMPER_ENGINE'] = 'memory';
  }
  Object.assign(env, options.env, experimentEnv());
  const profArgs = options.cpuProfDir === undefined ? '' : ` --cpu-prof --cpu-prof-dir=${JSON.stringify(options.cpuProfDir)}`;
  // Experiments only (e.g. `--trace-gc`): word-split by the shell, as typed.
  const nodeArgs = process.env['BENCH_THUMPER_NODE_ARGS'] ? ` ${process.env['BENCH_THUMPER_NODE_ARGS']}` : '';
  const script = `${RAISE_FD_LIMIT}\nexec ${JSON.stringify(process.execPath)}${profArgs}${nodeArgs} ${JSON.stringify(buildOnce())}`;
  const out = openSync(logFile, 'a');
  let pid: number | undefined;
  let exited: string | undefined;
  try {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, env, stdio: ['ignore', out, out] });
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${String(code)}`}`;
      if (child.pid !== undefined) running.delete(child.pid);
    });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(out);
  }
  if (pid === undefined) throw new Error('could not spawn Thumper');
  running.add(pid);
  const thePid = pid;
  const stop = async (): Promise<void> => {
    try {
      process.kill(thePid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    const deadline = Date.now() + STOP_DEADLINE_MS;
    while (exited === undefined && Date.now() < deadline) await sleep(50);
    if (exited === undefined) {
      try {
        process.kill(thePid, 'SIGKILL');
      } catch {
        // Gone between the check and the kill.
      }
    }
    running.delete(thePid);
    const keepLog = process.env['BENCH_KEEP_LOG'];
    if (keepLog) await copyFile(logFile, `${keepLog}-${thePid}.log`).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + START_DEADLINE_MS;
    let wsUrl: string | undefined;
    while (wsUrl === undefined) {
      if (exited !== undefined) throw new Error(`Thumper ${exited}:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`Thumper did not start within ${START_DEADLINE_MS / 1000} s`);
      const match = /"url":"(ws:\/\/[^"]+)"/.exec(readFileSync(logFile, 'utf8'));
      if (match) wsUrl = match[1];
      else await sleep(100);
    }
    const httpUrl = wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
    while (!(await ready(httpUrl))) {
      if (exited !== undefined || Date.now() > deadline) throw new Error(`Thumper never became ready (${exited ?? 'timeout'})`);
      await sleep(100);
    }
    const limits = readFileSync(`/proc/${thePid}/limits`, 'utf8');
    const fdLimit = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 0);
    return { pid: thePid, wsUrl, httpUrl, token: benchToken(secret), fdLimit, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function ready(httpUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** BENCH_THUMPER_ENV="THUMPER_X=1,THUMPER_Y=2": Thumper settings for an experiment, THUMPER_* only. */
function experimentEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env['BENCH_THUMPER_ENV'] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    if (eq < 1 || !name.startsWith('THUMPER_')) throw new Error(`BENCH_THUMPER_ENV: expected THUMPER_NAME=value pairs, got "${pair}"`);
    out[name] = pair.slice(eq + 1);
  }
  return out;
}
