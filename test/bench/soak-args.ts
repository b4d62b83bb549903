// `npm run soak` flags: how long, how often to sample, how much traffic and churn, the flatness
// limits the verdict applies, and where the Markdown report goes. Pure: argv in, options or a
// usage error out.

export interface SoakOptions {
  /** Run length (traffic phase), minutes; fractions allowed for a quick check. */
  readonly minutes: number;
  readonly sampleSeconds: number;
  /** Churning clients held open at once (each on /exchange/feed/user_i and /topic/news). */
  readonly clients: number;
  /** Clients that never churn and must miss nothing. */
  readonly witnesses: number;
  /** AMQP publishes per second to the `feed` exchange, round-robin over every client's key. */
  readonly feedRate: number;
  /** AMQP publishes per second to amq.topic `news`. */
  readonly newsRate: number;
  /** STOMP SENDs per second (each with a receipt) to /queue/soak-work. */
  readonly workRate: number;
  /** Clients closed and replaced per second. */
  readonly churn: number;
  /** Seconds between two bad-input connections (malformed frame, unknown command). */
  readonly badEvery: number;
  /** Flatness limits per 10 minutes over the second half (judged only when that half is ≥ 5 min). */
  readonly maxRssSlopeMiB: number;
  readonly maxFdSlope: number;
  readonly maxQueueSlope: number;
  readonly maxChannelSlope: number;
  readonly out: string | undefined;
}

export const DEFAULT_SOAK: SoakOptions = {
  minutes: 30,
  sampleSeconds: 30,
  clients: 200,
  witnesses: 20,
  feedRate: 200,
  newsRate: 20,
  workRate: 20,
  churn: 4,
  badEvery: 5,
  maxRssSlopeMiB: 16,
  maxFdSlope: 10,
  maxQueueSlope: 10,
  maxChannelSlope: 10,
  out: undefined,
};

/** Hard caps, so a typo cannot turn the soak into a load test on a shared machine. */
const CAPS = { clients: 2000, witnesses: 200, feedRate: 5000, newsRate: 200, workRate: 1000, churn: 50 } as const;

const NUMERIC: Record<string, keyof SoakOptions> = {
  '--minutes': 'minutes',
  '--sample-seconds': 'sampleSeconds',
  '--clients': 'clients',
  '--witnesses': 'witnesses',
  '--feed-rate': 'feedRate',
  '--news-rate': 'newsRate',
  '--work-rate': 'workRate',
  '--churn': 'churn',
  '--bad-every': 'badEvery',
  '--max-rss-slope-mib': 'maxRssSlopeMiB',
  '--max-fd-slope': 'maxFdSlope',
  '--max-queue-slope': 'maxQueueSlope',
  '--max-channel-slope': 'maxChannelSlope',
};

export const SOAK_USAGE = `usage: npm run soak -- [--minutes 30] [--sample-seconds 30] [--out file.md]
  [--clients 200] [--witnesses 20] [--feed-rate 200] [--news-rate 20] [--work-rate 20]
  [--churn 4] [--bad-every 5]
  [--max-rss-slope-mib 16] [--max-fd-slope 10] [--max-queue-slope 10] [--max-channel-slope 10]
Starts a private RabbitMQ node and Thumper (amqp engine) as its own process, runs mixed traffic
with churn, samples memory and handle counts, prints a Markdown report; exit 0 when flat and
nothing was lost, 1 when the verdict fails, 2 on a usage or start-up error.
`;

export type ParseResult = { ok: true; options: SoakOptions } | { ok: false; error: string } | { ok: false; help: true };

export function parseSoakArgs(argv: readonly string[]): ParseResult {
  const options: Record<string, number | string | undefined> = { ...DEFAULT_SOAK };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') return { ok: false, help: true };
    const [name, inline] = flag.includes('=') ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)] : [flag, undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) return { ok: false, error: `${name} needs a value` };
    if (name === '--out') {
      options['out'] = value;
      continue;
    }
    const key = NUMERIC[name];
    if (key === undefined) return { ok: false, error: `unknown flag ${name}` };
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) return { ok: false, error: `${name} must be a number ≥ 0, got ${JSON.stringify(value)}` };
    options[key] = n;
  }
  const o = options as unknown as SoakOptions;
  if (o.minutes <= 0) return { ok: false, error: '--minutes must be > 0' };
  if (o.sampleSeconds < 1) return { ok: false, error: '--sample-seconds must be ≥ 1' };
  if (o.badEvery !== 0 && o.badEvery < 1) return { ok: false, error: '--bad-every must be 0 (off) or ≥ 1' };
  for (const [key, cap] of Object.entries(CAPS)) {
    const n = o[key as keyof typeof CAPS];
    if (n > cap) return { ok: false, error: `--${kebab(key)} is capped at ${cap}` };
  }
  for (const key of ['clients', 'witnesses'] as const) {
    if (!Number.isInteger(o[key])) return { ok: false, error: `--${key} must be an integer` };
  }
  if (o.witnesses < 1) return { ok: false, error: '--witnesses must be ≥ 1 (they are what proves nothing was lost)' };
  if (o.churn > o.clients) return { ok: false, error: '--churn cannot exceed --clients' };
  return { ok: true, options: o };
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
