// Thumper's configuration: one zod schema for the optional JSON config file, the same keys from
// THUMPER_* environment variables, validated once at start-up. Precedence, highest first:
// environment (THUMPER_AMQP_URL before AMQP_URL) > config file > defaults. Errors name the key, the
// variable when the value came from one, and the expected form, so a bad deployment fails loudly.

import * as z from 'zod';
import { fail, ok } from '../errors.js';
import type { Result } from '../errors.js';
import type { EngineKind } from '../engine/engine.js';
import type { SessionOptions } from '../session/options.js';
import { DEFAULT_DECODER_LIMITS } from '../stomp/decoder.js';
import { CONFIG_FILE_ENV, envNameFor, isPlainObject, overlay, parseCommandLine, readConfigFile, readEnv, readPackageVersion } from './config-env.js';
import type { EnvKey, EnvSource, ValueKind } from './config-env.js';
import { redactUrlPasswords } from './logger.js';

export const THUMPER_VERSION = readPackageVersion();

interface KeyMeta {
  readonly meaning: string;
  /** The accepted form, worded for error messages and docs. */
  readonly expected: string;
  readonly kind: ValueKind;
  /** For defaults that depend on other keys. */
  readonly defaultText?: string;
  readonly env?: string;
  readonly fallbackEnv?: string;
}

const keyMeta = z.registry<KeyMeta>();
/** setTimeout's largest delay. */
const MAX_MS = 2_147_483_647;
const MAX_COUNT = 2_147_483_647;
const GIB = 1_073_741_824;

const intKey = (min: number, max: number, def: number, meaning: string) =>
  z.int().min(min).max(max).default(def).register(keyMeta, { meaning, expected: `an integer from ${min} to ${max}`, kind: 'int' });
const textKey = (def: string, meaning: string, extra: Partial<KeyMeta> = {}) =>
  z.string().min(1).default(def).register(keyMeta, { meaning, expected: 'a non-empty string', kind: 'string', ...extra });
const boolKey = (def: boolean, meaning: string) =>
  z.boolean().default(def).register(keyMeta, { meaning, expected: 'true or false', kind: 'boolean' });

const isAmqpUrl = (s: string): boolean => URL.canParse(s) && /^amqps?:$/.test(new URL(s).protocol);
const ORIGIN = /^(null|[a-z][a-z0-9+.-]*:\/\/[^/\s?#]+)\/?$/i;
const WS_PATH = /^\/([^/?#\s]+(\/[^/?#\s]+)*)?$/;

const exchangeSchema = z.strictObject({
  name: z.string().min(1),
  type: z.enum(['direct', 'topic', 'fanout']),
  vhost: z.string().min(1).optional(),
});

/** The config file's shape; environment variables fill the same shape. */
export const configSchema = z.strictObject({
  http: z
    .strictObject({
      host: textKey('0.0.0.0', 'Address the HTTP server (WebSocket, health) listens on; `::` for IPv6.'),
      port: intKey(0, 65535, 15674, 'HTTP port; 0 picks a free one (the start-up log line shows it).'),
    })
    .prefault({}),
  ws: z
    .strictObject({
      path: z.string().regex(WS_PATH).default('/ws').register(keyMeta, {
        meaning: 'WebSocket endpoint; `<path>/` is accepted too. Other paths get 404.',
        expected: 'a URL path starting with "/" and without a trailing "/", e.g. "/ws"',
        kind: 'string',
      }),
      allowedOrigins: z.array(z.string().regex(ORIGIN)).default([]).register(keyMeta, {
        meaning: 'Origins allowed to open a WebSocket (exact match). Empty allows all; when set, a request without an Origin header is refused (403) too.',
        expected: 'a list of origins like "https://app.example.com" (comma-separated in the environment)',
        kind: 'list',
      }),
      pingIntervalMs: intKey(0, MAX_MS, 30000, 'WebSocket ping interval; a peer that sent nothing since the previous ping is disconnected. 0 disables.'),
      maxPayloadBytes: z.int().min(1).max(GIB).optional().register(keyMeta, {
        meaning: 'Largest WebSocket message accepted (larger: close 1009).',
        expected: `an integer from 1 to ${GIB}`,
        kind: 'int',
        defaultText: 'stomp.maxFrameBytes + 4096',
      }),
      perMessageDeflate: boolKey(false, 'Negotiate permessage-deflate (costs memory and CPU per connection).'),
    })
    .prefault({}),
  engine: z.enum(['memory', 'amqp']).optional().register(keyMeta, {
    meaning: '`amqp` bridges to RabbitMQ; `memory` is the embedded engine for development.',
    expected: 'one of "memory", "amqp"',
    kind: 'string',
    defaultText: 'amqp when an AMQP URL is set, else memory',
  }),
  amqp: z
    .strictObject({
      urls: z.array(z.string().refine(isAmqpUrl)).default([]).register(keyMeta, {
        meaning: 'RabbitMQ URLs (`amqp[s]://user:pass@host:port/vhost`); several = cluster nodes tried in turn. Env: THUMPER_AMQP_URL, else AMQP_URL.',
        expected: 'a list of amqp:// or amqps:// URLs (comma-separated in the environment)',
        kind: 'list',
        env: 'THUMPER_AMQP_URL',
        fallbackEnv: 'AMQP_URL',
      }),
      channelsPerConnection: intKey(1, 65535, 500, 'STOMP sessions (one AMQP channel each) per AMQP connection.'),
      heartbeatSeconds: intKey(0, 65535, 30, 'AMQP heartbeat; 0 disables.'),
      reconnectInitialMs: intKey(1, MAX_MS, 500, 'First delay before reconnecting to RabbitMQ; doubles per attempt.'),
      reconnectMaxMs: intKey(1, MAX_MS, 30000, 'Largest delay between reconnect attempts.'),
    })
    .prefault({}),
  memory: z
    .strictObject({
      vhosts: z.array(z.string().min(1)).min(1).default(['/']).register(keyMeta, {
        meaning: 'Virtual hosts of the embedded engine.',
        expected: 'a non-empty list of vhost names (comma-separated in the environment)',
        kind: 'list',
      }),
      exchanges: z.array(exchangeSchema).default([{ name: 'feed', type: 'topic' }]).register(keyMeta, {
        meaning: 'Exchanges the embedded engine declares at start (besides the `amq.*` defaults).',
        expected: 'a list of {name, type (direct, topic or fanout), vhost?} (environment: "name:type[@vhost],…" or JSON)',
        kind: 'exchanges',
      }),
      maxQueueMessages: intKey(1, MAX_COUNT, 100000, 'Most messages one embedded queue holds.'),
    })
    .prefault({}),
  stomp: z
    .strictObject({
      defaultVhost: textKey('/', 'Virtual host when CONNECT has no `host` header.'),
      defaultTopicExchange: textKey('amq.topic', 'Exchange behind `/topic/<name>`.'),
      serverName: textKey(`Thumper/${THUMPER_VERSION}`, 'The CONNECTED frame\'s `server` header.', {
        defaultText: 'Thumper/<version>',
      }),
      maxFrameBytes: intKey(1, GIB, DEFAULT_DECODER_LIMITS.maxFrameBytes, 'Largest STOMP frame after CONNECT.'),
      maxFrameBytesBeforeConnect: intKey(1, GIB, DEFAULT_DECODER_LIMITS.maxFrameBytesBeforeConnect, 'Largest STOMP frame before CONNECT succeeds (never more than stomp.maxFrameBytes).'),
      maxHeaders: intKey(1, 100000, DEFAULT_DECODER_LIMITS.maxHeaders, 'Most header lines in one frame (repeats included).'),
      maxHeaderLineBytes: intKey(1, GIB, DEFAULT_DECODER_LIMITS.maxHeaderLineBytes, 'Longest header line (name and value).'),
      loginTimeoutMs: intKey(1, MAX_MS, 10000, 'A connection without a successful CONNECT by then is closed.'),
      heartBeatMinSendMs: intKey(0, MAX_MS, 1000, 'Smallest server heart-beat interval; client wishes below it are raised.'),
      heartBeatMinReceiveMs: intKey(0, MAX_MS, 1000, 'Smallest client heart-beat interval the server expects.'),
      heartBeatTolerance: z.number().min(1).max(100).default(2).register(keyMeta, {
        meaning: 'A client is dead after this many receive intervals without a byte.',
        expected: 'a number from 1 to 100',
        kind: 'number',
      }),
      maxSubscriptions: intKey(1, MAX_COUNT, 1000, 'Subscriptions per session.'),
      maxTransactions: intKey(1, MAX_COUNT, 16, 'Open transactions per session.'),
      maxTransactionFrames: intKey(1, MAX_COUNT, 1024, 'Frames buffered per open transaction.'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').register(keyMeta, {
        meaning: 'Log level.',
        expected: 'one of fatal, error, warn, info, debug, trace, silent',
        kind: 'string',
      }),
      pretty: boolKey(false, 'Human-readable `LEVEL message key=value` lines instead of JSON.'),
    })
    .prefault({}),
});

type ParsedConfig = z.output<typeof configSchema>;

/** The validated configuration, with key-dependent defaults (engine, ws.maxPayloadBytes) resolved. */
export type Config = Omit<ParsedConfig, 'engine' | 'ws'> & {
  readonly engine: EngineKind;
  readonly ws: Omit<ParsedConfig['ws'], 'maxPayloadBytes'> & { readonly maxPayloadBytes: number };
};

interface Leaf extends EnvKey {
  readonly meta: KeyMeta;
  readonly schema: z.ZodType;
}

/** Every key of the schema, in schema order. */
const LEAVES: readonly Leaf[] = collectLeaves(configSchema, []);

function collectLeaves(schema: z.ZodObject, prefix: readonly string[]): Leaf[] {
  const out: Leaf[] = [];
  for (const [name, child] of Object.entries(schema.shape) as Array<[string, z.ZodType]>) {
    const path = [...prefix, name];
    const meta = keyMeta.get(child);
    if (meta) {
      const key = path.join('.');
      const fallback = meta.fallbackEnv !== undefined ? { fallbackEnv: meta.fallbackEnv } : {};
      out.push({ key, env: meta.env ?? envNameFor(key), kind: meta.kind, meta, schema: child, ...fallback });
    } else {
      const inner = child instanceof z.ZodPrefault ? child.unwrap() : child;
      if (inner instanceof z.ZodObject) out.push(...collectLeaves(inner, path));
    }
  }
  return out;
}

export const CONFIG_ENV_KEYS: readonly EnvKey[] = LEAVES;

export interface ConfigKeyDoc {
  readonly key: string;
  readonly env: string;
  readonly default: string;
  readonly meaning: string;
  readonly expected: string;
}

/** One row per key, as docs/configuration.md and `--help` list them. */
export function describeConfigKeys(): ConfigKeyDoc[] {
  return LEAVES.map((leaf) => {
    const parsed = leaf.schema.safeParse(undefined);
    const value: unknown = parsed.success ? parsed.data : undefined;
    const shown = typeof value === 'string' ? value : JSON.stringify(value);
    return { key: leaf.key, env: leaf.env, default: leaf.meta.defaultText ?? shown, meaning: leaf.meta.meaning, expected: leaf.meta.expected };
  });
}

export interface LoadInput {
  /** Arguments after the script name. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Reads the config file named by --config or THUMPER_CONFIG (if any), overlays the environment, validates. */
export function loadConfig({ argv, env }: LoadInput): Result<Config, string> {
  const cli = parseCommandLine(argv);
  if (!cli.ok) return fail(`Invalid command line: ${cli.error}`);
  const file = cli.value.configFile ?? nonBlank(env[CONFIG_FILE_ENV]);
  let fileValues: Record<string, unknown> = {};
  if (file !== undefined) {
    const read = readConfigFile(file);
    if (!read.ok) return read;
    fileValues = read.value;
  }
  const fromEnv = readEnv(LEAVES, env);
  const merged = overlay(structuredClone(fileValues), fromEnv.values);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    return fail(formatIssues(parsed.error.issues, { file, fileValues, sources: fromEnv.sources }));
  }
  return resolveConfig(parsed.data, fromEnv.sources, file);
}

function nonBlank(s: string | undefined): string | undefined {
  return s !== undefined && s.trim() !== '' ? s : undefined;
}

interface IssueContext {
  readonly file: string | undefined;
  readonly fileValues: Record<string, unknown>;
  readonly sources: ReadonlyMap<string, EnvSource>;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): string {
  const lines = new Set<string>();
  for (const issue of issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) lines.add(unknownKeyLine([...path, k], ctx.file));
      continue;
    }
    const leaf = findLeaf(path);
    if (!leaf) {
      const section = path.join('.');
      const known = LEAVES.filter((l) => l.key.startsWith(`${section}.`)).map((l) => l.key.slice(section.length + 1));
      lines.add(`${section}${inFile(ctx.file)}: expected an object with keys ${known.join(', ')}, got ${show(valueAt(ctx.fileValues, path))}`);
      continue;
    }
    const source = ctx.sources.get(leaf.key);
    const name = source ? `${source.env} (${leaf.key})` : `${leaf.key}${inFile(ctx.file)}`;
    const got = source ? source.raw : valueAt(ctx.fileValues, leaf.key.split('.'));
    lines.add(`${name}: expected ${leaf.meta.expected}, got ${show(got)}`);
  }
  return [...lines].map((line) => `Invalid configuration: ${line}`).join('\n');
}

function unknownKeyLine(path: readonly string[], file: string | undefined): string {
  const parent = path.slice(0, -1).join('.');
  const siblings = LEAVES.map((l) => l.key)
    .filter((k) => (parent === '' ? true : k.startsWith(`${parent}.`)))
    .map((k) => (parent === '' ? k.split('.')[0] : k.slice(parent.length + 1)));
  const known = [...new Set(siblings)].join(', ');
  return `unknown key "${path.join('.')}"${inFile(file)}; known keys${parent === '' ? '' : ` in ${parent}`}: ${known}`;
}

function findLeaf(path: readonly string[]): Leaf | undefined {
  for (let n = path.length; n > 0; n--) {
    const key = path.slice(0, n).join('.');
    const leaf = LEAVES.find((l) => l.key === key);
    if (leaf) return leaf;
  }
  return undefined;
}

const inFile = (file: string | undefined): string => (file === undefined ? '' : ` (in ${file})`);

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const part of path) node = isPlainObject(node) ? node[part] : undefined;
  return node;
}

/** Quotes a rejected value for the message; URL passwords never reach stderr. */
function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  const short = text.length > 120 ? `${text.slice(0, 117)}...` : text;
  return redactUrlPasswords(short);
}

function resolveConfig(parsed: ParsedConfig, sources: ReadonlyMap<string, EnvSource>, file: string | undefined): Result<Config, string> {
  const where = (key: string): string => {
    const source = sources.get(key);
    return source ? `${source.env} (${key})` : `${key}${inFile(file)}`;
  };
  const engine: EngineKind = parsed.engine ?? (parsed.amqp.urls.length > 0 ? 'amqp' : 'memory');
  if (engine === 'amqp' && parsed.amqp.urls.length === 0) {
    return fail(`Invalid configuration: ${where('engine')}: engine "amqp" needs an AMQP URL (THUMPER_AMQP_URL or amqp.urls)`);
  }
  if (parsed.amqp.reconnectInitialMs > parsed.amqp.reconnectMaxMs) {
    return fail(`Invalid configuration: ${where('amqp.reconnectInitialMs')}: expected at most amqp.reconnectMaxMs (${parsed.amqp.reconnectMaxMs}), got ${parsed.amqp.reconnectInitialMs}`);
  }
  const allowedOrigins = parsed.ws.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, ''));
  const maxPayloadBytes = parsed.ws.maxPayloadBytes ?? parsed.stomp.maxFrameBytes + 4096;
  // A smaller frame limit also caps the pre-CONNECT one, so lowering only maxFrameBytes just works.
  const maxFrameBytesBeforeConnect = Math.min(parsed.stomp.maxFrameBytesBeforeConnect, parsed.stomp.maxFrameBytes);
  return ok({
    ...parsed,
    engine,
    ws: { ...parsed.ws, allowedOrigins, maxPayloadBytes },
    stomp: { ...parsed.stomp, maxFrameBytesBeforeConnect },
  });
}

/** The session's view of the configuration. */
export function toSessionOptions(config: Config): SessionOptions {
  const { stomp } = config;
  return {
    serverName: stomp.serverName,
    defaultVhost: stomp.defaultVhost,
    defaultTopicExchange: stomp.defaultTopicExchange,
    decoder: {
      maxFrameBytes: stomp.maxFrameBytes,
      maxFrameBytesBeforeConnect: stomp.maxFrameBytesBeforeConnect,
      maxHeaders: stomp.maxHeaders,
      maxHeaderLineBytes: stomp.maxHeaderLineBytes,
    },
    heartBeat: {
      minSendMs: stomp.heartBeatMinSendMs,
      minReceiveMs: stomp.heartBeatMinReceiveMs,
      tolerance: stomp.heartBeatTolerance,
    },
    loginTimeoutMs: stomp.loginTimeoutMs,
    maxSubscriptions: stomp.maxSubscriptions,
    maxTransactions: stomp.maxTransactions,
    maxTransactionFrames: stomp.maxTransactionFrames,
  };
}

