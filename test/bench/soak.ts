// `npm run soak -- --minutes 30 --out docs/soak-30min.md`: the soak run (a benchmark script, not a
// test). It starts a private throwaway RabbitMQ node and Thumper (amqp engine) as its own OS
// process, runs mixed traffic with churn for --minutes, samples Thumper's RSS and open fds and
// RabbitMQ's memory, queues, connections and channels every --sample-seconds, then prints a
// Markdown report whose verdict says whether they stayed flat and nothing was lost. Exit 0: pass;
// 1: the verdict failed (or Thumper died); 2: usage or start-up error. The node and Thumper are
// stopped on every path, and killed if this process is interrupted.

import { writeFile } from 'node:fs/promises';
import amqp from 'amqplib';
import { startRabbitNode, type PrivateRabbitNode } from '../harness/rabbitmq.js';
import { GUEST_AUTH } from '../harness/rabbitmq-instance.js';
import { msgOf, startThumperProcess, type ThumperNode } from '../helpers/thumper-process.js';
import { sleep } from './measure.js';
import { amqpPublisher, type Publisher } from './publisher.js';
import { parseSoakArgs, SOAK_USAGE, type SoakOptions } from './soak-args.js';
import { BadInputTrickle } from './soak-bad-input.js';
import { renderReport, type SoakSample } from './soak-report.js';
import { processFigures, rabbitFigures, thumperMetrics } from './soak-sample.js';
import { SoakTraffic } from './soak-traffic.js';

const SETTLE_MS = 30_000;
const log = (line: string): void => void process.stderr.write(`[soak] ${line}\n`);

async function main(): Promise<number> {
  const parsed = parseSoakArgs(process.argv.slice(2));
  if (!parsed.ok) {
    process.stderr.write('help' in parsed ? SOAK_USAGE : `${parsed.error}\n\n${SOAK_USAGE}`);
    return 'help' in parsed ? 0 : 2;
  }
  const options = parsed.options;
  let rabbit: PrivateRabbitNode | undefined;
  let thumper: ThumperNode | undefined;
  killThumperOnSignal(() => thumper);
  let publisher: Publisher | undefined;
  try {
    log('starting a private RabbitMQ node');
    rabbit = await startRabbitNode();
    await declareFeed(rabbit.amqpUrl);
    log(`RabbitMQ at ${rabbit.amqpUrl}; starting Thumper (amqp engine)`);
    thumper = await startThumperProcess({ THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl, THUMPER_AMQP_EXCHANGE_TYPES: 'feed:topic', THUMPER_LOG_LEVEL: 'info' });
    const tcpPort = await tcpPortOf(thumper);
    publisher = await amqpPublisher(rabbit.amqpUrl);
    return await soak(options, rabbit, thumper, tcpPort, publisher);
  } catch (err) {
    log(`start-up failed: ${(err as Error).stack ?? String(err)}`);
    return 2;
  } finally {
    await publisher?.close().catch(() => {});
    if (thumper !== undefined) log(`Thumper stopped (exit ${String(await thumper.stop())})`);
    await rabbit?.stop().catch((err: unknown) => log(`RabbitMQ stop failed: ${String(err)}`));
  }
}

/**
 * On SIGINT/SIGTERM, SIGKILL Thumper at once (exit hooks do not run when a signal ends the process);
 * the harness's own signal hook then kills the RabbitMQ node and re-raises the signal. Registered
 * before the node starts, so this one runs first; without the harness's hook it re-raises itself.
 */
function killThumperOnSignal(current: () => ThumperNode | undefined): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: killing Thumper and the RabbitMQ node`);
      current()?.process.child.kill('SIGKILL');
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

async function declareFeed(url: string): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.assertExchange('feed', 'topic', { durable: true });
  } finally {
    await connection.close();
  }
}

/** The TCP listener's port, from the start-up line that lists the other listeners. */
async function tcpPortOf(thumper: ThumperNode): Promise<number> {
  const line = await thumper.process.waitForLine(/"tcp":\d+/, 10_000);
  const port = (JSON.parse(line) as { tcp?: number }).tcp;
  if (port === undefined) throw new Error(`no TCP port in ${msgOf(line)}`);
  return port;
}

async function soak(options: SoakOptions, rabbit: PrivateRabbitNode, thumper: ThumperNode, tcpPort: number, publisher: Publisher): Promise<number> {
  const managementUrl = rabbit.managementUrl;
  if (managementUrl === undefined) throw new Error('the private RabbitMQ node has no management URL');
  const target = { wsUrl: thumper.wsUrl, sockjsUrl: `${thumper.httpUrl}/stomp`, tcpPort, login: 'guest', passcode: 'guest' };
  const traffic = new SoakTraffic(options, target, publisher);
  const bad = new BadInputTrickle(thumper.wsUrl, tcpPort);
  const startedAt = new Date().toISOString();
  const versions = await versionLine(managementUrl);
  let thumperDied: string | undefined;
  void thumper.process.exited.then((code) => (thumperDied ??= `Thumper exited (${code === null ? `signal ${String(thumper.process.child.signalCode)}` : `code ${code}`})`));

  log(`opening ${options.witnesses} witnesses and ${options.clients} clients`);
  await traffic.open();
  const samples: SoakSample[] = [];
  let lastMessages = traffic.counters.messages;
  let lastT = 0;
  const loadStart = performance.now();
  const elapsed = (): number => (performance.now() - loadStart) / 1000;
  const sample = async (final = false): Promise<void> => {
    const t = elapsed();
    const proc = processFigures(thumper.pid);
    const [metrics, rmq] = await Promise.all([thumperMetrics(thumper.httpUrl), rabbitFigures(managementUrl, GUEST_AUTH)]);
    const c = traffic.counters;
    const s: SoakSample = {
      t,
      final,
      rssMiB: proc.rssMiB,
      heapMiB: metrics.heapUsedMiB,
      fds: proc.fds,
      sessions: metrics.sessions,
      rabbitMemMiB: rmq.memMiB,
      queues: rmq.queues,
      connections: rmq.connections,
      channels: rmq.channels,
      clients: traffic.connected,
      msgsPerSec: t > lastT ? (c.messages - lastMessages) / (t - lastT) : 0,
      receipts: c.receipts,
      errors: bad.counters.answered,
      unexpected: c.unexpected + bad.counters.failed,
      lost: traffic.witnessGaps + c.churnerGaps,
    };
    lastMessages = c.messages;
    lastT = t;
    samples.push(s);
    log(
      `t=${t.toFixed(0)}s rss=${s.rssMiB?.toFixed(1) ?? "–"}MiB fds=${s.fds} rabbit=${s.rabbitMemMiB?.toFixed(1) ?? "–"}MiB queues=${s.queues} ` +
        `channels=${s.channels} clients=${s.clients} msgs/s=${s.msgsPerSec.toFixed(0)} unexpected=${s.unexpected} lost=${s.lost}`,
    );
  };

  await sample();
  traffic.start();
  bad.start(options.badEvery);
  log(`load running for ${options.minutes} min`);
  const endAt = options.minutes * 60;
  let nextSample = options.sampleSeconds;
  while (elapsed() < endAt && thumperDied === undefined) {
    await sleep(Math.min(1000, Math.max(10, (nextSample - elapsed()) * 1000)));
    if (elapsed() >= nextSample && thumperDied === undefined) {
      await sample();
      nextSample += options.sampleSeconds;
    }
  }
  const loadSeconds = elapsed();
  log(thumperDied ?? 'load done; stopping publishers, SENDs and churn');
  await traffic.stop();
  await bad.stop();
  const settled = thumperDied === undefined && (await traffic.settle(SETTLE_MS));
  if (thumperDied === undefined) await sample(true);
  await traffic.closeAll();

  const { markdown, passed } = renderReport({
    options,
    startedAt,
    versions,
    loadSeconds,
    samples,
    witnesses: traffic.witnessResults(),
    work: traffic.work.totals(),
    sent: traffic.sent,
    connects: traffic.counters.connects,
    messages: traffic.counters.messages,
    churnerGaps: traffic.counters.churnerGaps,
    churnerDisorder: traffic.counters.churnerDisorder,
    badInput: bad.counters,
    unexpected: traffic.counters.unexpected,
    unexpectedExamples: traffic.counters.examples,
    thumperDied,
    settled,
  });
  process.stdout.write(markdown);
  if (options.out !== undefined) {
    await writeFile(options.out, markdown);
    log(`report written to ${options.out}`);
  }
  log(passed ? 'PASS' : 'FAIL');
  return passed ? 0 : 1;
}

async function versionLine(managementUrl: string): Promise<string> {
  try {
    const res = await fetch(`${managementUrl}/api/overview`, { headers: { authorization: GUEST_AUTH }, signal: AbortSignal.timeout(10_000) });
    const o = (await res.json()) as { rabbitmq_version?: string; erlang_version?: string };
    return `Node ${process.version}, RabbitMQ ${o.rabbitmq_version ?? '?'} on Erlang ${o.erlang_version ?? '?'}`;
  } catch {
    return `Node ${process.version}`;
  }
}

// Sockets of abandoned clients may still hold the event loop: exit explicitly once cleanup is done.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${String(err)}`);
    process.exit(2);
  },
);
