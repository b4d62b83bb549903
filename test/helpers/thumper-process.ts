// Thumper as its own OS process (`node --import tsx broker/src/main.ts`), for tests that need what
// an in-process gateway cannot show: start-up lines, exit codes, signals, and several Thumper nodes
// that share nothing but RabbitMQ. The child is killed when the test process exits.

import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import { GUEST_RULES_FILE } from './thumper-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ThumperProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** stdout lines (JSON log lines unless THUMPER_LOG_PRETTY). */
  readonly lines: string[];
  readonly stderr: string[];
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
  readonly exited: Promise<number | null>;
}

const running = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** The parent's environment without anything that would configure Thumper (e.g. AMQP_URL from npm test). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('THUMPER_') && k !== 'AMQP_URL') env[k] = v;
  return { ...env, ...extra };
}

export function runThumper(args: string[], env: Record<string, string>): ThumperProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'broker/src/main.ts', ...args], { cwd: ROOT, env: cleanEnv(env), stdio: 'pipe' });
  running.add(child);
  const lines: string[] = [];
  const stderr: string[] = [];
  const listeners: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const l of listeners.splice(0)) l();
  });
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => {
    running.delete(child);
    return code as number | null;
  });
  return {
    child,
    lines,
    stderr,
    exited,
    waitForLine(pattern, ms = 20000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${ms} ms; got:\n${lines.join('\n')}\n${stderr.join('')}`)), ms);
        const check = (): void => {
          const found = lines.find((line) => pattern.test(line));
          if (found !== undefined) {
            clearTimeout(timer);
            resolve(found);
          } else listeners.push(check);
        };
        check();
        void exited.then(() => setTimeout(check, 0));
      });
    },
  };
}

export function msgOf(line: string): string {
  return (JSON.parse(line) as { msg?: string }).msg ?? '';
}

export interface ThumperNode {
  readonly process: ThumperProcess;
  readonly pid: number;
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** SIGTERM, then the exit code (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * A running Thumper process on loopback, free ports, JSON logs. With the RabbitMQ engine and no
 * THUMPER_AUTH_BACKENDS, an auth-backend in this test process answers with guest's stock rule.
 */
export async function startThumperProcess(env: Record<string, string>): Promise<ThumperNode> {
  const needsAuth = env['THUMPER_ENGINE'] === 'amqp' && env['THUMPER_AUTH_BACKENDS'] === undefined;
  const authBackend = needsAuth
    ? await startAuthBackend({ host: '127.0.0.1', port: 0, rulesFile: GUEST_RULES_FILE, jwtSecret: 'test-secret-for-the-guest-auth-backend-000' })
    : undefined;
  const proc = runThumper([], {
    THUMPER_HTTP_HOST: '127.0.0.1',
    THUMPER_HTTP_PORT: '0',
    THUMPER_TCP_HOST: '127.0.0.1',
    THUMPER_TCP_PORT: '0',
    THUMPER_SHUTDOWN_DRAIN_WINDOW_MS: '0',
    ...(authBackend ? { THUMPER_AUTH_BACKENDS: 'http', THUMPER_AUTH_HTTP_BASE_URL: `${authBackend.url}/auth` } : {}),
    ...env,
  });
  const stopAuth = async (): Promise<void> => {
    await authBackend?.close();
  };
  let port: number;
  try {
    const listening = await proc.waitForLine(/listening: STOMP over WebSocket/, 30_000);
    const match = /at ws:\/\/[^:]+:(\d+)\//.exec(msgOf(listening));
    if (match === null) throw new Error(`unexpected listening line: ${listening}`);
    port = Number(match[1]);
  } catch (err) {
    proc.child.kill('SIGKILL');
    await stopAuth();
    throw err;
  }
  const pid = proc.child.pid ?? 0;
  return {
    process: proc,
    pid,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: async (graceMs = 20_000) => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM');
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
      const code = await proc.exited;
      clearTimeout(timer);
      await stopAuth();
      return code;
    },
  };
}
