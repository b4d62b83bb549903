// `npm run bench` flags: which scenarios, which targets, the sizes, rounds and where raw results go.
// Pure: argv in, options or a usage error out.

import { SCENARIOS, TARGETS, type ScenarioName, type TargetName } from './scenario.js';

export interface Sizes {
  /** fan-out: subscribers on the one topic, and messages published. */
  readonly subscribers: number;
  readonly messages: number;
  /** feed: users (one connection and one /exchange/feed/user_i subscription each), total publish rate, seconds. */
  readonly users: number;
  readonly rate: number;
  readonly duration: number;
  /** connections: idle subscribed connections, held for `hold` seconds after they are all up; reconnect: as many dropped and back. */
  readonly connections: number;
  readonly hold: number;
  /** connections: clients opening at once (each opens, subscribes, then the next starts). */
  readonly inFlight: number;
  /** connections, reconnect: subscribed connections opened first, kept open, not measured (at most as many as measured). */
  readonly warmup: number;
  /** queue: SENDs with a receipt each. */
  readonly queueMessages: number;
  /** Message body bytes. */
  readonly bodyBytes: number;
  /** After the last publish: how long no new delivery means "done" (loss = what is still missing). */
  readonly settleMs: number;
  /** Any single connect, subscribe or receipt wait. */
  readonly timeoutMs: number;
}

export interface BenchOptions {
  readonly scenarios: readonly ScenarioName[];
  readonly targets: readonly TargetName[];
  readonly sizes: Sizes;
  readonly rounds: number;
  readonly json: string | undefined;
  /** A harness state (JSON or file) of an existing RabbitMQ node; default: a private node. */
  readonly rabbitState: string | undefined;
  /** Directory for Thumper CPU profiles (node --cpu-prof). */
  readonly cpuProf: string | undefined;
  readonly smoke: boolean;
}

export const DEFAULT_SIZES: Sizes = {
  subscribers: 100,
  messages: 2000,
  users: 200,
  rate: 500,
  duration: 10,
  connections: 1000,
  hold: 5,
  inFlight: 64,
  warmup: 50,
  queueMessages: 5000,
  bodyBytes: 128,
  settleMs: 3000,
  timeoutMs: 30_000,
};

export const SMOKE_SIZES: Sizes = {
  subscribers: 3,
  messages: 20,
  users: 3,
  rate: 30,
  duration: 1,
  connections: 5,
  hold: 0,
  inFlight: 2,
  warmup: 2,
  queueMessages: 20,
  bodyBytes: 128,
  settleMs: 1000,
  timeoutMs: 15_000,
};

export const USAGE = `Usage: npm run bench -- [options]
  --scenario fanout|feed|connections|reconnect|queue|all   (default all; comma-separated list allowed)
  --target thumper-amqp|thumper-memory|web-stomp|all   (default all; comma-separated list allowed)
  --subscribers N   fan-out subscribers (default ${DEFAULT_SIZES.subscribers})
  --messages N      fan-out messages (default ${DEFAULT_SIZES.messages})
  --users N         feed users (default ${DEFAULT_SIZES.users})
  --rate N          feed publish rate, messages/s in total (default ${DEFAULT_SIZES.rate})
  --duration S      feed publishing time in seconds (default ${DEFAULT_SIZES.duration})
  --connections N   idle subscribed connections (default ${DEFAULT_SIZES.connections})
  --hold S          seconds the idle connections are held (default ${DEFAULT_SIZES.hold})
  --in-flight N     connections opening at once (default ${DEFAULT_SIZES.inFlight})
  --warmup N        warm-up connections before those measured, at most as many (default ${DEFAULT_SIZES.warmup})
  --queue-messages N  queue SENDs with receipts (default ${DEFAULT_SIZES.queueMessages})
  --rounds N        alternate the targets N times (A,B,C,A,B,C; default 1); tables show medians
  --json FILE       also write every raw result as JSON
  --rabbit-state S  use an existing harness node (state JSON or file) instead of a private one
  --cpu-prof DIR    run Thumper with node --cpu-prof, profiles written to DIR
  --smoke           tiny sizes (a check that the bench runs, not a measurement)
`;

const NUMERIC: Record<string, keyof Sizes> = {
  '--subscribers': 'subscribers',
  '--messages': 'messages',
  '--users': 'users',
  '--rate': 'rate',
  '--duration': 'duration',
  '--connections': 'connections',
  '--hold': 'hold',
  '--in-flight': 'inFlight',
  '--warmup': 'warmup',
  '--queue-messages': 'queueMessages',
};

/** Upper bounds: every loop in the bench is bounded by these. */
const MAX: Partial<Record<keyof Sizes, number>> = {
  subscribers: 20_000,
  messages: 10_000_000,
  users: 20_000,
  rate: 1_000_000,
  duration: 3600,
  connections: 100_000,
  hold: 3600,
  inFlight: 10_000,
  warmup: 100_000,
  queueMessages: 10_000_000,
};

function pickList<T extends string>(value: string, all: readonly T[], what: string): T[] {
  if (value === 'all') return [...all];
  const picked = value.split(',').map((s) => s.trim());
  for (const p of picked) if (!(all as readonly string[]).includes(p)) throw new Error(`unknown ${what} "${p}" (${all.join(', ')}, all)`);
  return picked as T[];
}

export function parseArgs(argv: readonly string[]): BenchOptions | { help: true } {
  const smoke = argv.includes('--smoke');
  const sizes: Record<keyof Sizes, number> = { ...(smoke ? SMOKE_SIZES : DEFAULT_SIZES) };
  let scenarios: ScenarioName[] = [...SCENARIOS];
  let targets: TargetName[] = [...TARGETS];
  let rounds = 1;
  let json: string | undefined;
  let rabbitState: string | undefined;
  let cpuProf: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') return { help: true };
    if (flag === '--smoke') continue;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    i++;
    const key = NUMERIC[flag];
    if (key !== undefined) {
      const n = Number(value);
      const min = key === 'hold' || key === 'warmup' ? 0 : 1;
      if (!Number.isFinite(n) || n < min || n > (MAX[key] ?? Number.MAX_SAFE_INTEGER)) throw new Error(`${flag}: expected a number from ${min} to ${MAX[key]}, got "${value}"`);
      sizes[key] = key === 'duration' || key === 'hold' ? n : Math.floor(n);
      continue;
    }
    switch (flag) {
      case '--scenario':
        scenarios = pickList(value, SCENARIOS, 'scenario');
        break;
      case '--target':
        targets = pickList(value, TARGETS, 'target');
        break;
      case '--rounds':
        rounds = Number(value);
        if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error(`--rounds: expected 1 to 20, got "${value}"`);
        break;
      case '--json':
        json = value;
        break;
      case '--rabbit-state':
        rabbitState = value;
        break;
      case '--cpu-prof':
        cpuProf = value;
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  return { scenarios, targets, sizes, rounds, json, rabbitState, cpuProf, smoke };
}
