// A throwaway RabbitMQ node for integration tests, started from the Debian install as nats.js's `nst`
// starts a real nats-server: own node name, loopback ports, epmd, data/log dirs, config and cookie,
// so it never touches (or clashes with) a system node or a parallel test run. Logins the internal
// database does not know go to an HTTP auth service on one more reserved port (authBackendPort).
// A node started here can be killed (SIGKILL) and restarted on its data, for broker-loss tests;
// rabbitmq-cluster.ts clusters several. useRabbit() prefers a node handed down by the test runner
// (THUMPER_TEST_RABBIT, see rabbitmq-cli.ts) or AMQP_URL, and otherwise boots one for this process.
// The OS side lives in rabbitmq-process.ts, the configuration in rabbitmq-config.ts, one node's
// boot/kill/stop in rabbitmq-instance.ts.

import { randomBytes } from 'node:crypto';
import { checkInstall } from './rabbitmq-config.js';
import { GUEST_AUTH, NodeInstance, type RabbitNodeState } from './rabbitmq-instance.js';
import { runCtl, sleep } from './rabbitmq-process.js';

export { ENABLED_PLUGINS, INSTALL_COMMAND } from './rabbitmq-config.js';
export { stopNode, type RabbitNodeState } from './rabbitmq-instance.js';

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

export interface StartOptions {
  /** true: the node outlives this process (the CLI); false: it is killed when this process exits. */
  readonly detach?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Starting a node

/** A node this process started: it can also be killed and restarted. */
export interface PrivateRabbitNode extends RabbitNode {
  /** The current boot's state (its pid changes on restart). */
  readonly state: RabbitNodeState;
  /**
   * Writes RabbitMQ's metadata (queues, exchanges, bindings) to disk now. Mnesia appends its
   * transaction log asynchronously (OTP ERL-831), so a durable queue declared moments before a
   * kill() can be missing after the restart, messages and all. A test that asserts what survives a
   * kill calls this first: it tests the harness or Thumper, not that window of RabbitMQ's.
   */
  syncMetadata(): Promise<void>;
  /** SIGKILL the node's OS processes (beam, its epmd); the data dir stays. Resolves when they are gone. */
  kill(): Promise<void>;
  /** Boots again with the same node name, ports, data dir, cookie and config; resolves when ready. */
  restart(): Promise<void>;
}

export async function startRabbitNode(options: StartOptions = {}): Promise<PrivateRabbitNode> {
  await checkInstall();
  const instance = await NodeInstance.create({
    nodeName: `thumper-${randomBytes(4).toString('hex')}@localhost`,
    cookie: randomBytes(16).toString('hex'),
    ...(options.detach === undefined ? {} : { detach: options.detach }),
  });
  await bootOrClean(instance);
  return privateNode(instance);
}

/** Boots a fresh instance; when that fails, nothing of it is left behind. */
export async function bootOrClean(instance: NodeInstance): Promise<void> {
  try {
    await instance.boot();
  } catch (err) {
    await instance.stop().catch(() => {});
    throw err;
  }
}

/** The RabbitNode view of an instance this process runs, with its kill and restart. */
export function privateNode(instance: NodeInstance): PrivateRabbitNode {
  const node = nodeFromState(instance.state, () => instance.stop());
  return {
    ...node,
    get state() {
      return instance.state;
    },
    async syncMetadata() {
      const reply = (await node.rabbitmqctl('eval', 'mnesia:sync_log().')).trim();
      if (reply !== 'ok') throw new Error(`mnesia:sync_log() on ${instance.state.nodeName} answered ${reply}`);
    },
    kill: () => instance.kill(),
    restart: () => instance.restart(),
  };
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
