// One private RabbitMQ node's life on its own data dir: prepared once (ports, config, cookie), then
// booted, killed with SIGKILL, booted again on the same mnesia, and finally stopped and deleted.
// Its OS processes form one process group led by the launching shell, so a kill or a stop reaches
// the beam, its helpers and (for a node with its own epmd) that epmd, and nothing else.

import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_PORT_NAMES, SERVER, nodeEnv, writeNodeFiles, type NodePorts } from './rabbitmq-config.js';
import {
  freePorts,
  groupPids,
  isAlive,
  killGroup,
  killGroupAndWait,
  portOpen,
  registerExitCleanup,
  runCtl,
  sleep,
  spawnGroup,
  unregisterExitCleanup,
  waitForExit,
  type SpawnedGroup,
} from './rabbitmq-process.js';

const BOOT_DEADLINE_MS = 60_000;
export const GUEST_AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;

/** What the CLI writes to its state file and exports as THUMPER_TEST_RABBIT. */
export interface RabbitNodeState {
  readonly amqpUrl: string;
  readonly stompPort: number;
  readonly webStompUrl: string;
  readonly managementUrl: string;
  /** See RabbitNode.authBackendPort. */
  readonly authBackendPort: number;
  readonly nodeName: string;
  /** The process group leader (and group id) of the current boot. */
  readonly pid: number;
  readonly dataDir: string;
  /** The environment rabbitmqctl needs to reach this node (node name, epmd port, HOME). */
  readonly env: Record<string, string>;
}

export interface InstanceOptions {
  readonly nodeName: string;
  readonly cookie: string;
  /** A running epmd shared with other nodes; without one the node runs its own in its process group. */
  readonly sharedEpmdPort?: number;
  /** true: the node outlives this process (the CLI); false: it is killed when this process exits. */
  readonly detach?: boolean;
}

export class NodeInstance {
  #state: RabbitNodeState;
  #group: SpawnedGroup | undefined;
  readonly #ownEpmd: boolean;
  readonly #detach: boolean;
  readonly #killAtExit = (): void => {
    killGroup(this.#state.pid, 'SIGKILL');
    rmSync(this.#state.dataDir, { recursive: true, force: true });
  };

  private constructor(state: RabbitNodeState, ownEpmd: boolean, detach: boolean) {
    this.#state = state;
    this.#ownEpmd = ownEpmd;
    this.#detach = detach;
  }

  /** Ports, data dir and files; nothing runs yet (pid 0 until boot). */
  static async create(options: InstanceOptions): Promise<NodeInstance> {
    const dataDir = await mkdtemp(join(tmpdir(), 'thumper-rabbit-'));
    const shared = options.sharedEpmdPort;
    const own = await freePorts(NODE_PORT_NAMES.filter((name) => shared === undefined || name !== 'epmdPort'));
    const ports: NodePorts = { ...own, epmdPort: shared ?? own.epmdPort };
    await writeNodeFiles(dataDir, ports, options.cookie);
    const state: RabbitNodeState = {
      amqpUrl: `amqp://guest:guest@127.0.0.1:${ports.amqpPort}`,
      stompPort: ports.stompPort,
      webStompUrl: `ws://127.0.0.1:${ports.webStompPort}/ws`,
      managementUrl: `http://127.0.0.1:${ports.mgmtPort}`,
      authBackendPort: ports.authBackendPort,
      nodeName: options.nodeName,
      pid: 0,
      dataDir,
      env: nodeEnv(dataDir, options.nodeName, ports),
    };
    return new NodeInstance(state, shared === undefined, options.detach === true);
  }

  get state(): RabbitNodeState {
    return this.#state;
  }

  /** Starts rabbitmq-server on the data dir and resolves once AMQP, STOMP, Web-STOMP and management answer. */
  async boot(): Promise<void> {
    // A node's own epmd runs in the foreground in the node's process group, so killing the group
    // leaves nothing behind (an epmd the node starts itself would daemonize and linger).
    const ownEpmd = this.#ownEpmd
      ? [
          'epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 &',
          'for i in $(seq 1 100); do epmd -port "$ERL_EPMD_PORT" -names >/dev/null 2>&1 && break; sleep 0.05; done',
        ]
      : [];
    const script = ['ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"', ...ownEpmd, `exec ${SERVER}`].join('\n');
    const group = spawnGroup('bash', ['-c', script], this.#state.env, join(this.#state.dataDir, 'log', 'console.log'));
    this.#state = { ...this.#state, pid: group.pid };
    this.#group = group;
    // Never keeps this process alive: a forgotten stop() is caught by the exit cleanup instead.
    if (!this.#detach) registerExitCleanup(this.#killAtExit);
    try {
      await waitUntilReady(this.#state, group);
    } catch (err) {
      const tail = await logTail(this.#state.dataDir);
      await killGroupAndWait(group.pid).catch(() => {});
      throw new Error(`RabbitMQ node ${this.#state.nodeName} did not start: ${(err as Error).message}\n--- log tail ---\n${tail}`);
    }
  }

  /** Resolves once the booted node answers again (after rabbitmqctl start_app, say). */
  async whenReady(): Promise<void> {
    if (this.#group === undefined) throw new Error(`${this.#state.nodeName} was never booted`);
    await waitUntilReady(this.#state, this.#group);
  }

  /** SIGKILL every process of the node (no shutdown, as a crash or OOM kill); the data dir stays. */
  async kill(): Promise<void> {
    await killGroupAndWait(this.#state.pid);
  }

  /** Boots again on the same name, ports, data dir, cookie and config; a running node is stopped first. */
  async restart(): Promise<void> {
    if (groupPids(this.#state.pid).length > 0) await stopProcesses(this.#state);
    await this.boot();
  }

  /** Stops the node and deletes its data dir. */
  async stop(): Promise<void> {
    unregisterExitCleanup(this.#killAtExit);
    await stopNode(this.#state);
  }
}

/** rabbitmqctl stop, then the process group (epmd, stragglers), then the data dir. */
export async function stopNode(state: RabbitNodeState): Promise<void> {
  await stopProcesses(state);
  await rm(state.dataDir, { recursive: true, force: true });
}

async function stopProcesses(state: RabbitNodeState): Promise<void> {
  if (isAlive(state.pid)) {
    try {
      await runCtl(state.env, ['-n', state.nodeName, 'stop']);
    } catch {
      // The node may be wedged or already gone: the signals below finish the job.
    }
    await waitForExit(state.pid, 15_000);
  }
  killGroup(state.pid, 'SIGTERM');
  await waitForExit(state.pid, 5000);
  await killGroupAndWait(state.pid);
}

async function waitUntilReady(state: RabbitNodeState, group: SpawnedGroup): Promise<void> {
  const deadline = Date.now() + BOOT_DEADLINE_MS;
  const amqpPort = Number(new URL(state.amqpUrl).port);
  const webStompPort = Number(new URL(state.webStompUrl).port);
  for (let attempt = 0; ; attempt++) {
    const why = group.exited();
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
