// A throwaway RabbitMQ node for integration tests, started from the Debian install as nats.js's `nst`
// starts a real nats-server: own node name, loopback ports, epmd, data/log dirs, config and cookie,
// so it never touches (or clashes with) a system node or a parallel test run. Logins the internal
// database does not know go to an HTTP auth service on one more reserved port (authBackendPort).
// useRabbit() prefers a node handed down by the test runner (THUMPER_TEST_RABBIT, see
// rabbitmq-cli.ts) or AMQP_URL, and otherwise boots one for this process.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
const SERVER = join(RABBIT_BIN, 'rabbitmq-server');
const CTL = join(RABBIT_BIN, 'rabbitmqctl');
export const INSTALL_COMMAND = 'apt-get update && apt-get install -y rabbitmq-server';
const BOOT_DEADLINE_MS = 60_000;
const CTL_TIMEOUT_MS = 60_000;
// Each ships with Debian's rabbitmq-server 3.10.8 (in /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins;
// startRabbitNode checks before booting, so a missing one is named instead of a failed boot).
export const ENABLED_PLUGINS = ['rabbitmq_management', 'rabbitmq_stomp', 'rabbitmq_web_stomp', 'rabbitmq_auth_backend_http'] as const;
const RABBIT_LIB = '/usr/lib/rabbitmq/lib';
const GUEST_AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;

export interface QueueInfo {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: Record<string, unknown>;
}

export interface RabbitNode {
  readonly amqpUrl: string;
  /** RabbitMQ's own STOMP plugin (for differential tests). */
  readonly stompPort: number | undefined;
  readonly webStompUrl: string | undefined;
  readonly managementUrl: string | undefined;
  /**
   * The loopback port this node's `rabbitmq_auth_backend_http` asks (`http://127.0.0.1:<port>/auth/
   * user|vhost|resource|topic`, GET). Nothing listens there until a test starts an auth service on
   * it; undefined for a node this harness did not configure (`$AMQP_URL`, an old state file).
   */
  readonly authBackendPort: number | undefined;
  rabbitmqctl(...args: string[]): Promise<string>;
  /** Management API: the queues of a vhost (default '/'). */
  listQueues(vhost?: string): Promise<QueueInfo[]>;
  /** Stops a node this process started; a no-op for an external node. */
  stop(): Promise<void>;
}

/** What the CLI writes to its state file and exports as THUMPER_TEST_RABBIT. */
export interface RabbitNodeState {
  readonly amqpUrl: string;
  readonly stompPort: number;
  readonly webStompUrl: string;
  readonly managementUrl: string;
  /** See RabbitNode.authBackendPort. */
  readonly authBackendPort: number;
  readonly nodeName: string;
  readonly pid: number;
  readonly dataDir: string;
  /** The environment rabbitmqctl needs to reach this node (node name, epmd port, HOME). */
  readonly env: Record<string, string>;
}

export interface StartOptions {
  /** true: the node outlives this process (the CLI); false: it is killed when this process exits. */
  readonly detach?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Starting a node

export async function startRabbitNode(options: StartOptions = {}): Promise<RabbitNode & { readonly state: RabbitNodeState }> {
  try {
    await access(SERVER, fsConstants.X_OK);
  } catch {
    throw new Error(INSTALL_COMMAND);
  }
  const missing = await missingPlugins();
  if (missing.length > 0) throw new Error(`RabbitMQ plugins not installed under ${RABBIT_LIB}: ${missing.join(', ')}`);
  const dataDir = await mkdtemp(join(tmpdir(), 'thumper-rabbit-'));
  const { amqpPort, distPort, stompPort, webStompPort, mgmtPort, epmdPort, authBackendPort } = await freePorts([
    'amqpPort',
    'distPort',
    'stompPort',
    'webStompPort',
    'mgmtPort',
    'epmdPort',
    'authBackendPort',
  ] as const);
  const nodeName = `thumper-${randomBytes(4).toString('hex')}@localhost`;
  const home = join(dataDir, 'home');
  const logDir = join(dataDir, 'log');
  await mkdir(home, { recursive: true });
  await mkdir(logDir, { recursive: true });

  await writeFile(join(dataDir, 'rabbitmq.conf'), nodeConfig({ amqpPort, stompPort, webStompPort, mgmtPort, authBackendPort }));
  await writeFile(join(dataDir, 'enabled_plugins'), `[${ENABLED_PLUGINS.join(',')}].\n`);
  // An empty env file so /etc/rabbitmq/rabbitmq-env.conf is never read.
  await writeFile(join(dataDir, 'rabbitmq-env.conf'), '');

  const env: Record<string, string> = {
    HOME: home,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_CONF_ENV_FILE: join(dataDir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dataDir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dataDir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dataDir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dataDir, 'mnesia'),
    RABBITMQ_PLUGINS_EXPAND_DIR: join(dataDir, 'plugins-expand'),
    RABBITMQ_LOG_BASE: logDir,
    RABBITMQ_LOGS: join(logDir, 'rabbit.log'),
    RABBITMQ_PID_FILE: join(dataDir, 'rabbit.pid'),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    // Erlang distribution on loopback only.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
  };

  // epmd runs in the foreground in the same process group as the node, so killing the group
  // leaves nothing behind (an epmd the node starts itself would daemonize and linger).
  const script = [
    'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"',
    'epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 &',
    'for i in $(seq 1 100); do epmd -port "$ERL_EPMD_PORT" -names >/dev/null 2>&1 && break; sleep 0.05; done',
    `exec ${SERVER}`,
  ].join('\n');
  const consoleLog = join(logDir, 'console.log');
  const out = openSync(consoleLog, 'a');
  let child: ChildProcess;
  try {
    child = spawn('bash', ['-c', script], {
      env: { ...cleanEnv(), ...env },
      detached: true,
      stdio: ['ignore', out, out],
    });
  } finally {
    closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn rabbitmq-server');
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? `code ${String(code)}`}`;
  });
  const killAtExit = (): void => {
    killGroup(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  // Never keeps this process alive: a forgotten stop() is caught by the exit cleanup instead.
  child.unref();
  if (options.detach !== true) registerExitCleanup(killAtExit);

  const state: RabbitNodeState = {
    amqpUrl: `amqp://guest:guest@127.0.0.1:${amqpPort}`,
    stompPort,
    webStompUrl: `ws://127.0.0.1:${webStompPort}/ws`,
    managementUrl: `http://127.0.0.1:${mgmtPort}`,
    authBackendPort,
    nodeName,
    pid,
    dataDir,
    env,
  };

  try {
    await waitUntilReady(state, () => exited);
  } catch (err) {
    const tail = await logTail(dataDir);
    unregisterExitCleanup(killAtExit);
    killGroup(pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`RabbitMQ node ${nodeName} did not start: ${(err as Error).message}\n--- log tail ---\n${tail}`);
  }

  const node = nodeFromState(state, async () => {
    unregisterExitCleanup(killAtExit);
    await stopNode(state);
  });
  return { ...node, state };
}

interface NodePorts {
  readonly amqpPort: number;
  readonly stompPort: number;
  readonly webStompPort: number;
  readonly mgmtPort: number;
  readonly authBackendPort: number;
}

function nodeConfig(p: NodePorts): string {
  const auth = `http://127.0.0.1:${p.authBackendPort}/auth`;
  return [
    `listeners.tcp.default = 127.0.0.1:${p.amqpPort}`,
    'loopback_users = none',
    `stomp.listeners.tcp.1 = 127.0.0.1:${p.stompPort}`,
    `web_stomp.tcp.port = ${p.webStompPort}`,
    'web_stomp.tcp.ip = 127.0.0.1',
    `management.tcp.port = ${p.mgmtPort}`,
    'management.tcp.ip = 127.0.0.1',
    'management.rates_mode = none',
    'log.console = false',
    'log.file.level = info',
    // Shared test machines: a low free-disk default alarm would block every publisher.
    'disk_free_limit.absolute = 10MB',
    // Internal first, HTTP second. RabbitMQ tries the backends in order until one accepts the login
    // ("the first positive result returned by a backend in the chain is considered to be final",
    // rabbitmq-website access-control.md §Combining Backends; rabbit_access_control:check_user_login
    // folds over auth_backends while the result is `refused`), and the backend that accepted the
    // login also answers every later check. So guest (internal) never reaches the HTTP service and
    // every existing test keeps working, while a user the internal database does not know (user_x)
    // is refused by `internal` and then asked of the auth service on authBackendPort. Nothing listens
    // there unless a test starts one: such logins are then refused (connection refused = deny).
    'auth_backends.1 = internal',
    'auth_backends.2 = http',
    'auth_http.http_method = get',
    `auth_http.user_path = ${auth}/user`,
    `auth_http.vhost_path = ${auth}/vhost`,
    `auth_http.resource_path = ${auth}/resource`,
    `auth_http.topic_path = ${auth}/topic`,
    '',
  ].join('\n');
}

/** The ENABLED_PLUGINS with no `<name>-<version>` directory (or .ez) in the installed server. */
async function missingPlugins(): Promise<string[]> {
  const installed: string[] = [];
  for (const server of (await readdir(RABBIT_LIB)).filter((d) => d.startsWith('rabbitmq_server-'))) {
    installed.push(...(await readdir(join(RABBIT_LIB, server, 'plugins')).catch(() => [])));
  }
  return ENABLED_PLUGINS.filter((name) => !installed.some((entry) => entry.startsWith(`${name}-`)));
}

/** Distinct free loopback ports, by name: all held open at once so none is handed out twice. */
async function freePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
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

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('RABBITMQ_') && !k.startsWith('ERL_')) env[k] = v;
  }
  return env;
}

async function waitUntilReady(state: RabbitNodeState, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + BOOT_DEADLINE_MS;
  const amqpPort = Number(new URL(state.amqpUrl).port);
  const webStompPort = Number(new URL(state.webStompUrl).port);
  for (let attempt = 0; ; attempt++) {
    const why = exited();
    if (why !== undefined) throw new Error(`the node ${why}`);
    if (Date.now() > deadline) throw new Error(`not ready after ${BOOT_DEADLINE_MS / 1000} s`);
    const up =
      (await portOpen(amqpPort)) &&
      (await portOpen(state.stompPort)) &&
      (await portOpen(webStompPort)) &&
      (await managementUp(state.managementUrl));
    if (up) return;
    await sleep(Math.min(500, 100 + attempt * 20));
  }
}

function portOpen(port: number): Promise<boolean> {
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

async function managementUp(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/api/overview`, {
      headers: { authorization: GUEST_AUTH },
      signal: AbortSignal.timeout(2000),
    });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function logTail(dataDir: string, lines = 40): Promise<string> {
  const parts: string[] = [];
  for (const file of ['log/rabbit.log', 'log/console.log']) {
    try {
      const text = await readFile(join(dataDir, file), 'utf8');
      parts.push(`[${file}]\n${text.split('\n').slice(-lines).join('\n')}`);
    } catch {
      // A log that was never written has no tail.
    }
  }
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Talking to a node

export function nodeFromState(state: RabbitNodeState, stop: () => Promise<void>): RabbitNode {
  return {
    amqpUrl: state.amqpUrl,
    stompPort: state.stompPort,
    webStompUrl: state.webStompUrl,
    managementUrl: state.managementUrl,
    // A state file written before the auth backend existed has no port: no HTTP backend on that node.
    authBackendPort: typeof state.authBackendPort === 'number' ? state.authBackendPort : undefined,
    rabbitmqctl: (...args) => runCtl(state.env, ['-n', state.nodeName, ...args]),
    listQueues: (vhost) => listQueues(state.managementUrl, vhost),
    stop,
  };
}

/** env undefined: an external node, reached with this process's own environment. */
function runCtl(env: Record<string, string> | undefined, args: string[]): Promise<string> {
  const fullEnv = env === undefined ? process.env : { ...cleanEnv(), ...env };
  return new Promise((resolve, reject) => {
    execFile(CTL, args, { env: fullEnv, timeout: CTL_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function listQueues(managementUrl: string | undefined, vhost = '/'): Promise<QueueInfo[]> {
  if (managementUrl === undefined) throw new Error('this RabbitMQ node has no management URL (set MANAGEMENT_URL)');
  const url = new URL(`/api/queues/${encodeURIComponent(vhost)}`, managementUrl);
  const auth = url.username === '' ? GUEST_AUTH : `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  url.username = '';
  url.password = '';
  url.searchParams.set('columns', 'name,durable,auto_delete,exclusive,arguments');
  const res = await fetch(url, { headers: { authorization: auth }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url.pathname} → ${res.status} ${await res.text()}`);
  const body = (await res.json()) as Array<Partial<QueueInfo>>;
  return body.map((q) => ({
    name: String(q.name),
    durable: q.durable === true,
    auto_delete: q.auto_delete === true,
    exclusive: q.exclusive === true,
    arguments: q.arguments ?? {},
  }));
}

/** rabbitmqctl stop, then the process group (epmd, stragglers), then the data dir. */
export async function stopNode(state: RabbitNodeState): Promise<void> {
  if (isAlive(state.pid)) {
    try {
      await runCtl(state.env, ['-n', state.nodeName, 'stop']);
    } catch {
      // The node may be wedged or already gone: the signals below finish the job.
    }
    await waitForExit(state.pid, 15_000);
  }
  killGroup(state.pid, 'SIGTERM');
  if (!(await waitForExit(state.pid, 5000))) killGroup(state.pid, 'SIGKILL');
  killGroup(state.pid, 'SIGKILL');
  await rm(state.dataDir, { recursive: true, force: true });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // No such group: already gone.
  }
}

/** Alive and not a zombie (a container's init may be slow to reap). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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

function registerExitCleanup(fn: () => void): void {
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

function unregisterExitCleanup(fn: () => void): void {
  exitCleanups.delete(fn);
}

// ---------------------------------------------------------------------------------------------
// The auth backend port: one listener at a time

const CLAIM_DEADLINE_MS = 180_000;

/**
 * Runs `listen` (which starts a server on the node's authBackendPort) until it gets the port. Test
 * files run in parallel processes against one node, and each file that logs in as a non-internal
 * user needs its own auth service on that one port: a file waits while another holds it.
 * `listen` must reject with an EADDRINUSE error (its `code`, or its message) when the port is taken.
 */
export async function claimAuthBackendPort<T>(listen: () => Promise<T>, deadlineMs = CLAIM_DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await listen();
    } catch (err) {
      if (!isAddrInUse(err) || Date.now() > deadline) throw err;
    }
    await sleep(250);
  }
}

function isAddrInUse(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' || err.message.includes('EADDRINUSE')) return true;
  return err.cause !== undefined && isAddrInUse(err.cause);
}

// ---------------------------------------------------------------------------------------------
// useRabbit: the node every integration test file shares

let shared: { node: Promise<RabbitNode>; users: number } | undefined;

export async function useRabbit(): Promise<RabbitNode> {
  const external = externalNode();
  if (external !== undefined) return external;
  if (shared === undefined) {
    const entry = { node: startRabbitNode() as Promise<RabbitNode>, users: 0 };
    shared = entry;
    entry.node.catch(() => {
      if (shared === entry) shared = undefined;
    });
  }
  const entry = shared;
  const node = await entry.node;
  entry.users += 1;
  let stopped = false;
  return {
    ...node,
    // Reference-counted: the node stops when its last user does (or at process exit).
    stop: async () => {
      if (stopped) return;
      stopped = true;
      entry.users -= 1;
      if (entry.users === 0 && shared === entry) {
        shared = undefined;
        await node.stop();
      }
    },
  };
}

function externalNode(): RabbitNode | undefined {
  const json = process.env['THUMPER_TEST_RABBIT'];
  if (json !== undefined && json !== '') {
    const state = JSON.parse(json) as RabbitNodeState;
    return nodeFromState(state, async () => {});
  }
  const amqpUrl = process.env['AMQP_URL'];
  if (amqpUrl === undefined || amqpUrl === '') return undefined;
  const stompPort = process.env['STOMP_PORT'];
  const managementUrl = process.env['MANAGEMENT_URL'] || undefined;
  const ctlArgs = process.env['RABBITMQ_NODENAME'] ? ['-n', process.env['RABBITMQ_NODENAME']] : [];
  return {
    amqpUrl,
    stompPort: stompPort ? Number(stompPort) : undefined,
    webStompUrl: process.env['WEB_STOMP_URL'] || undefined,
    managementUrl,
    // An external node's auth backends are its own business: the HTTP-auth tests skip.
    authBackendPort: undefined,
    rabbitmqctl: (...args) => runCtl(undefined, [...ctlArgs, ...args]),
    listQueues: (vhost) => listQueues(managementUrl, vhost),
    stop: async () => {},
  };
}
