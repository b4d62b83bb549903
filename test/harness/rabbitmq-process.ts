// The OS side of the test RabbitMQ nodes: free loopback ports, spawning a command in its own process
// group, killing and waiting on that group, a stand-alone epmd, rabbitmqctl, and the exit hook that
// takes every node this process started down with it (even on SIGINT/SIGTERM).

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';

export const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
const CTL = `${RABBIT_BIN}/rabbitmqctl`;
const CTL_TIMEOUT_MS = 60_000;
const EPMD_DEADLINE_MS = 10_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Distinct free loopback ports, by name: all held open at once so none is handed out twice. */
export async function freePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const servers: Server[] = [];
  try {
    const ports = {} as Record<K, number>;
    for (const name of names) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      ports[name] = address.port;
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** This process's environment without any RABBITMQ_* / ERL_* that could point at another node. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('RABBITMQ_') && !k.startsWith('ERL_')) env[k] = v;
  }
  return env;
}

/** env undefined: an external node, reached with this process's own environment. */
export function runCtl(env: Record<string, string> | undefined, args: string[]): Promise<string> {
  const fullEnv = env === undefined ? process.env : { ...cleanEnv(), ...env };
  return new Promise((resolve, reject) => {
    execFile(CTL, args, { env: fullEnv, timeout: CTL_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export interface SpawnedGroup {
  /** The group leader's pid, which is also the process group id. */
  readonly pid: number;
  /** Why the leader exited ('exited with SIGKILL'), or undefined while it runs. */
  exited(): string | undefined;
}

/**
 * Runs `command args` as the leader of a new process group with stdout and stderr appended to
 * `logFile`. It never keeps this process alive: exit cleanup (registerExitCleanup) kills it instead.
 */
export function spawnGroup(command: string, args: readonly string[], env: Record<string, string>, logFile: string): SpawnedGroup {
  const out = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { env: { ...cleanEnv(), ...env }, detached: true, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${command}`);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? `code ${String(code)}`}`;
  });
  child.unref();
  return { pid, exited: () => exited };
}

// pid 0 stands for a node never booted: process.kill(-0) would signal this process's own group.
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 0) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // No such group: already gone.
  }
}

/** The live (not zombie: a container's init may be slow to reap) processes of a process group. */
export function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  if (pgid <= 0) return pids;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields !== undefined && fields.state !== 'Z' && fields.pgrp === pgid) pids.push(Number(entry));
  }
  return pids;
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const fields = statFields(pid);
  return fields === undefined || fields.state !== 'Z';
}

function statFields(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state ppid pgrp …; comm may hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '', pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  return waitUntil(() => !isAlive(pid), ms);
}

/** SIGKILL a whole process group and wait (bounded) until none of its processes is left. */
export async function killGroupAndWait(pgid: number, ms = 10_000): Promise<void> {
  killGroup(pgid, 'SIGKILL');
  if (!(await waitUntil(() => groupPids(pgid).length === 0, ms))) {
    throw new Error(`process group ${pgid} still has ${groupPids(pgid).join(', ')} ${ms / 1000} s after SIGKILL`);
  }
}

async function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (done()) return true;
    await sleep(100);
  }
  return done();
}

/**
 * An epmd on `port` (loopback) in its own process group, in the foreground so that killing its
 * group ends it: shared by cluster members, so killing one member's group leaves it to the others.
 */
export async function startEpmd(port: number, logFile: string): Promise<SpawnedGroup> {
  const epmd = spawnGroup('epmd', ['-port', String(port), '-address', '127.0.0.1'], {}, logFile);
  const deadline = Date.now() + EPMD_DEADLINE_MS;
  while (!(await portOpen(port))) {
    const why = epmd.exited();
    if (why !== undefined || Date.now() > deadline) {
      killGroup(epmd.pid, 'SIGKILL');
      throw new Error(`epmd on port ${port} did not start: ${why ?? `not listening after ${EPMD_DEADLINE_MS / 1000} s`}`);
    }
    await sleep(50);
  }
  return epmd;
}

// ---------------------------------------------------------------------------------------------
// Exit cleanup: a node started for this process dies with it, even on SIGINT/SIGTERM.

const exitCleanups = new Set<() => void>();
let exitHooksInstalled = false;

function runExitCleanups(): void {
  for (const fn of exitCleanups) {
    try {
      fn();
    } catch {
      // Best effort at exit.
    }
  }
  exitCleanups.clear();
}

export function registerExitCleanup(fn: () => void): void {
  exitCleanups.add(fn);
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', runExitCleanups);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      runExitCleanups();
      process.kill(process.pid, signal);
    });
  }
}

export function unregisterExitCleanup(fn: () => void): void {
  exitCleanups.delete(fn);
}
