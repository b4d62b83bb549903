// A private RabbitMQ cluster for tests that lose a broker: `size` nodes built like startRabbitNode's
// (own data dir, loopback ports, dist port, config) that share one Erlang cookie and one epmd. That
// epmd runs on its own, outside every node's process group, so killing node A leaves node B its
// epmd. Nodes 2..n join node 1; every node can be killed (SIGKILL) and restarted, and rejoins.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { checkInstall } from './rabbitmq-config.js';
import { NodeInstance } from './rabbitmq-instance.js';
import { freePorts, groupPids, killGroup, killGroupAndWait, registerExitCleanup, runCtl, sleep, startEpmd, unregisterExitCleanup } from './rabbitmq-process.js';
import { bootOrClean, privateNode, type PrivateRabbitNode } from './rabbitmq.js';

const MAX_NODES = 26;
const CLUSTERED_DEADLINE_MS = 60_000;

export interface ClusterNode extends Omit<PrivateRabbitNode, 'stop'> {
  /** The Erlang node name, `thumper-<hex>-a@localhost`. */
  readonly nodeName: string;
  /** Boots the node again on its data; resolves when it answers and every running member lists it as running. */
  restart(): Promise<void>;
}

export interface RabbitCluster {
  readonly nodes: readonly ClusterNode[];
  /** The pid (and process group) of the epmd the members share. */
  readonly epmdPid: number;
  /** Stops every member, deletes every data dir, then stops the shared epmd. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** How long to wait for every member to list every other as running (default 60 s). */
  readonly clusteredDeadlineMs?: number;
}

export async function startRabbitCluster(size = 2, options: ClusterOptions = {}): Promise<RabbitCluster> {
  if (!Number.isInteger(size) || size < 1 || size > MAX_NODES) throw new Error(`cluster size must be 1..${MAX_NODES}, got ${size}`);
  await checkInstall();
  const clusteredDeadlineMs = options.clusteredDeadlineMs ?? CLUSTERED_DEADLINE_MS;
  const id = randomBytes(4).toString('hex');
  const cookie = randomBytes(16).toString('hex');
  const { epmdPort } = await freePorts(['epmdPort'] as const);
  const instances: NodeInstance[] = [];
  for (let i = 0; i < size; i++) {
    const letter = String.fromCharCode('a'.charCodeAt(0) + i);
    instances.push(await NodeInstance.create({ nodeName: `thumper-${id}-${letter}@localhost`, cookie, sharedEpmdPort: epmdPort }));
  }
  const first = instances[0];
  if (first === undefined) throw new Error('no nodes');

  let epmdPid: number | undefined;
  const killEpmdAtExit = (): void => {
    if (epmdPid !== undefined) killGroup(epmdPid, 'SIGKILL');
  };
  const stop = async (): Promise<void> => {
    await Promise.all(instances.map((instance) => instance.stop()));
    unregisterExitCleanup(killEpmdAtExit);
    if (epmdPid !== undefined) await killGroupAndWait(epmdPid);
  };

  try {
    epmdPid = (await startEpmd(epmdPort, join(first.state.dataDir, 'log', 'epmd.log'))).pid;
    registerExitCleanup(killEpmdAtExit);
    await Promise.all(instances.map((instance) => bootOrClean(instance)));
    for (const instance of instances.slice(1)) {
      const ctl = (...args: string[]): Promise<string> => runCtl(instance.state.env, ['-n', instance.state.nodeName, ...args]);
      await ctl('stop_app');
      await ctl('join_cluster', first.state.nodeName);
      await ctl('start_app');
      await instance.whenReady();
    }
    await waitClustered(instances, clusteredDeadlineMs);
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  const nodes = instances.map((instance): ClusterNode => {
    const { stop: _standaloneStop, ...view } = privateNode(instance);
    return {
      ...view,
      nodeName: instance.state.nodeName,
      get state() {
        return instance.state;
      },
      restart: async () => {
        await instance.restart();
        await waitClustered(instances, clusteredDeadlineMs);
      },
    };
  });
  return { nodes, epmdPid: epmdPid ?? 0, stop };
}

/** Waits (bounded) until every member that is up lists every member that is up as running. */
async function waitClustered(instances: readonly NodeInstance[], deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let last = '';
  for (;;) {
    const up = instances.filter((instance) => groupPids(instance.state.pid).length > 0);
    const names = up.map((instance) => instance.state.nodeName).sort();
    let agreed = true;
    for (const instance of up) {
      const running = await runningNodes(instance).catch((err: unknown) => [`(${String(err)})`]);
      if (running.slice().sort().join(',') !== names.join(',')) {
        agreed = false;
        last = `${instance.state.nodeName} lists ${running.join(', ')}`;
        break;
      }
    }
    if (agreed) return;
    if (Date.now() > deadline) throw new Error(`cluster not formed after ${deadlineMs / 1000} s: ${last}; expected ${names.join(', ')}`);
    await sleep(250);
  }
}

async function runningNodes(instance: NodeInstance): Promise<string[]> {
  const out = await runCtl(instance.state.env, ['-n', instance.state.nodeName, 'cluster_status', '--formatter', 'json']);
  const status = JSON.parse(out) as { running_nodes?: unknown };
  return Array.isArray(status.running_nodes) ? status.running_nodes.map(String) : [];
}
