// `npm run bench`: the load generator. Runs each scenario against Thumper (AMQP engine, embedded
// engine) and RabbitMQ's Web-STOMP on one throwaway RabbitMQ node, alternating the targets round by
// round, with the same client code, and prints a table per scenario with Thumper/Web-STOMP ratios.
// Loopback only; every loop bounded in count and time. See docs/benchmarks.md.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { USAGE, parseArgs, type BenchOptions, type Sizes } from './args.js';
import { openBenchRabbit, type BenchRabbit } from './bench-rabbit.js';
import { amqpPublisher, stompPublisher } from './publisher.js';
import { BenchClient } from './stomp-ws-client.js';
import { FD_LIMIT, RAISE_FD_LIMIT, startThumperProcess, type ThumperProcess } from './thumper-process.js';
import { formatMachine, formatScenario, machineInfo, type RunRecord } from './report.js';
import { fanout } from './scenario-fanout.js';
import { feed } from './scenario-feed.js';
import { connections } from './scenario-connections.js';
import { queue } from './scenario-queue.js';
import { reconnect } from './scenario-reconnect.js';
import { warmupCount, type Scenario, type ScenarioName, type Target, type TargetName } from './scenario.js';

const SCENARIO_RUNNERS: Record<ScenarioName, Scenario> = { fanout, feed, connections, reconnect, queue };
/**
 * Scenarios that read Thumper's RSS growth start it afresh: a heap grown by earlier runs would take
 * new connections into pages it already holds. (RabbitMQ's figure is live data after a full GC.)
 */
const FRESH_THUMPER: ReadonlySet<ScenarioName> = new Set(['connections']);
const REEXEC_ENV = 'THUMPER_BENCH_FD_RAISED';
const AUTH_NOTE =
  'auth: Web-STOMP logs in guest/guest against RabbitMQ’s internal database; Thumper verifies an HS256 JWT (passcode) with full scopes — one signature check per CONNECT on both sides';

function title(scenario: ScenarioName, s: Sizes): string {
  switch (scenario) {
    case 'fanout':
      return `fanout — ${s.subscribers} subscribers on one topic × ${s.messages} messages of ${s.bodyBytes} B, published as fast as confirms allow`;
    case 'feed':
      return `feed — ${s.users} users on /exchange/feed/user_i, ${s.rate} msg/s in total for ${s.duration} s (${s.bodyBytes} B)`;
    case 'connections':
      return `connections — ${s.connections} idle connections, each subscribed to /exchange/feed/user_i, ${s.inFlight} opening at once after ${warmupCount(s, s.connections)} warm-up, held ${s.hold} s`;
    case 'reconnect':
      return `reconnect — ${s.connections} connections on /exchange/feed/<run>_user_i dropped at once and back with the same subscriptions, ${s.inFlight} opening at once (after ${warmupCount(s, s.connections)} warm-up)`;
    case 'queue':
      return `queue — ${s.queueMessages} SENDs of ${s.bodyBytes} B to one /queue, each with a receipt (64 outstanding), one consumer`;
  }
}

function softFdLimit(): { soft: number; hard: string } {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const match = /Max open files\s+(\d+)\s+(\S+)/.exec(limits);
  return { soft: Number(match?.[1] ?? 0), hard: match?.[2] ?? '?' };
}

/** The load generator needs a descriptor per client: re-run this process with the limit raised when it can be. */
function reexecWithMoreFds(): boolean {
  const { soft, hard } = softFdLimit();
  const canRaise = hard === 'unlimited' || Number(hard) > soft;
  if (soft >= FD_LIMIT || !canRaise || process.env[REEXEC_ENV] === '1') return false;
  const script = `${RAISE_FD_LIMIT}\nexec "$@"`;
  const result = spawnSync('bash', ['-c', script, 'bench', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC_ENV]: '1' },
  });
  process.exitCode = result.status ?? 1;
  return true;
}

async function openTarget(name: TargetName, rabbit: BenchRabbit, options: BenchOptions): Promise<{ target: Target; thumper: ThumperProcess | undefined }> {
  if (name === 'web-stomp') {
    const credentials = { login: 'guest', passcode: 'guest', host: '/' };
    return {
      target: { name, wsUrl: rabbit.webStompUrl, credentials, thumperPid: undefined, usesRabbit: true, publisher: () => amqpPublisher(rabbit.node.amqpUrl) },
      thumper: undefined,
    };
  }
  const usesRabbit = name === 'thumper-amqp';
  const thumper = await startThumperProcess({ amqpUrl: usesRabbit ? rabbit.node.amqpUrl : undefined, cpuProfDir: options.cpuProf });
  const credentials = { login: 'bench', passcode: thumper.token, host: '/' };
  const target: Target = {
    name,
    wsUrl: thumper.wsUrl,
    credentials,
    thumperPid: thumper.pid,
    usesRabbit,
    publisher: usesRabbit
      ? () => amqpPublisher(rabbit.node.amqpUrl)
      : async () => stompPublisher(await BenchClient.connect(thumper.wsUrl, credentials, options.sizes.timeoutMs)),
  };
  return { target, thumper };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if ('help' in parsed) {
    process.stdout.write(USAGE);
    return;
  }
  const options = parsed;
  if (reexecWithMoreFds()) return;
  const log = (message: string): void => {
    process.stderr.write(`[bench] ${message}\n`);
  };

  log(options.rabbitState === undefined ? 'starting a private RabbitMQ node (Web-STOMP, management)' : 'using the given RabbitMQ node');
  const rabbit = await openBenchRabbit(options.rabbitState);
  const records: RunRecord[] = [];
  let fdNote = '';
  try {
    await rabbit.declareFeed();
    const rabbitFds = rabbit.pgid === undefined ? '?' : fdLimitOfGroupLeader(rabbit.pgid);
    const own = softFdLimit();
    fdNote = `load generator ${own.soft} (hard ${own.hard}), RabbitMQ ${rabbitFds}`;
    let thumperFds: number | undefined;
    // One Thumper process per target for the whole run (except FRESH_THUMPER), as the one RabbitMQ
    // node serves Web-STOMP for the whole run: both sides carry what earlier runs left behind.
    const opened = new Map<TargetName, { target: Target; thumper: ThumperProcess | undefined }>();
    try {
      for (const scenario of options.scenarios) {
        for (let round = 1; round <= options.rounds; round++) {
          for (const targetName of options.targets) {
            const runId = `${randomBytes(4).toString('hex')}`;
            log(`${scenario} round ${round}/${options.rounds} on ${targetName}`);
            const queuesBefore = await rabbit.queueNames();
            try {
              let entry = opened.get(targetName);
              if (entry?.thumper !== undefined && FRESH_THUMPER.has(scenario)) {
                await entry.thumper.stop();
                opened.delete(targetName);
                entry = undefined;
              }
              if (entry === undefined) {
                entry = await openTarget(targetName, rabbit, options);
                opened.set(targetName, entry);
              }
              const result = await SCENARIO_RUNNERS[scenario]({
                target: entry.target,
                rabbit,
                sizes: options.sizes,
                runId,
                progress: (m) => log(`  ${m}`),
              });
              records.push({ scenario, target: targetName, round, metrics: result.metrics, notes: result.notes });
            } catch (err) {
              const message = err instanceof Error ? err.message : String(err);
              log(`  failed: ${message}`);
              records.push({ scenario, target: targetName, round, metrics: {}, notes: [], error: message });
            } finally {
              // The next target starts from a node without this run's subscription queues.
              await rabbit.waitForNewQueuesGone(queuesBefore, options.sizes.timeoutMs);
            }
          }
        }
      }
    } finally {
      for (const { thumper } of opened.values()) {
        if (thumper === undefined) continue;
        thumperFds ??= thumper.fdLimit;
        await thumper.stop();
      }
    }
    if (thumperFds !== undefined) fdNote += `, Thumper ${thumperFds}`;
    const machine = machineInfo(await rabbit.version(), fdNote);
    const out: string[] = [
      formatMachine(machine),
      AUTH_NOTE,
      'clients: ws (no permessage-deflate), STOMP 1.2, heart-beat 10000,10000, the broker’s own decoder/encoder; all on 127.0.0.1',
      `order: ${options.rounds} round(s) of ${options.targets.join(', ')} per scenario; values are medians over rounds; ↑ higher is better, ↓ lower is better`,
      '',
    ];
    for (const scenario of options.scenarios) out.push(formatScenario(scenario, title(scenario, options.sizes), records, options.targets), '');
    process.stdout.write(`${out.join('\n')}\n`);
    if (options.json !== undefined) {
      await writeFile(options.json, `${JSON.stringify({ machine, options, records }, null, 2)}\n`);
      log(`raw results written to ${options.json}`);
    }
  } finally {
    await rabbit.stop();
  }
}

function fdLimitOfGroupLeader(pgid: number): string {
  // The group leader is the shell that raised the limit and exec'd the server, so it holds the limit.
  try {
    return /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pgid}/limits`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`[bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
