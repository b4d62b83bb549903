// Thumper's configuration: one zod schema for the optional JSON config file, the same keys from
// THUMPER_* environment variables, validated once at start-up. Precedence, highest first:
// environment (THUMPER_AMQP_URL before AMQP_URL) > config file > defaults. Errors name the key, the
// variable when the value came from one, and the expected form, so a bad deployment fails loudly.

import * as z from 'zod';
import { fail, ok } from '../errors.js';
import type { Result } from '../errors.js';
import type { AuthBackendName } from '../auth/authorizer.js';
import type { AuthzChoice } from '../auth/chain.js';
import type { EngineKind } from '../engine/engine.js';
import { DEFAULT_FLOW_OPTIONS, type SessionOptions } from '../session/options.js';
import { DEFAULT_DECODER_LIMITS } from '../stomp/decoder.js';
import { DEFAULT_MAX_TRANSACTION_BYTES } from '../session/transactions.js';
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
const isHttpUrl = (s: string): boolean => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol);
const httpUrlKey = (meaning: string, defaultText: string) =>
  z.string().refine(isHttpUrl).optional().register(keyMeta, { meaning, expected: 'an http:// or https:// URL', kind: 'string', defaultText });
const optionalText = (meaning: string, extra: Partial<KeyMeta> = {}) =>
  z.string().min(1).optional().register(keyMeta, { meaning, expected: 'a non-empty string', kind: 'string', defaultText: 'unset', ...extra });

export const AUTH_BACKENDS = ['http', 'jwt', 'allow-all'] as const;
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const;
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
  sockjs: z
    .strictObject({
      enabled: boolKey(true, 'Serve SockJS (websocket, xhr-streaming, xhr-polling, eventsource, htmlfile, jsonp) on the HTTP port.'),
      path: z.string().regex(WS_PATH).default('/stomp').register(keyMeta, {
        meaning: 'SockJS prefix (`new SockJS(\'http://host:15674/stomp\')`).',
        expected: 'a URL path starting with "/" and without a trailing "/", e.g. "/stomp"',
        kind: 'string',
      }),
      heartbeatDelayMs: intKey(1000, MAX_MS, 25000, 'SockJS\'s own keep-alive frame interval (keeps proxies from closing idle HTTP streams; STOMP heart-beats work besides).'),
      disconnectDelayMs: intKey(100, MAX_MS, 5000, 'How long a polling SockJS session may go without a request before it is closed.'),
      examplePage: boolKey(true, 'Serve the browser example (client-examples/browser) at `/`.'),
    })
    .prefault({}),
  tcp: z
    .strictObject({
      enabled: boolKey(true, 'Listen for STOMP over plain TCP.'),
      host: textKey('0.0.0.0', 'Address the STOMP TCP listener binds.'),
      port: intKey(0, 65535, 61613, 'STOMP TCP port; 0 picks a free one.'),
      keepAliveMs: intKey(0, MAX_MS, 60000, 'TCP keepalive idle time before probes, against half-open peers (TCP and TLS); 0 disables.'),
    })
    .prefault({}),
  tls: z
    .strictObject({
      enabled: boolKey(false, 'Listen for STOMP over TLS (needs tls.certFile and tls.keyFile).'),
      host: textKey('0.0.0.0', 'Address the STOMP TLS listener binds.'),
      port: intKey(0, 65535, 61614, 'STOMP TLS port; 0 picks a free one.'),
      certFile: optionalText('PEM certificate chain of the TLS listener.'),
      keyFile: optionalText('PEM private key of the TLS listener.'),
      caFile: optionalText('PEM CA bundle client certificates are verified against.'),
      requestClientCert: boolKey(false, 'Ask clients for a certificate (verified against tls.caFile when given).'),
      requireClientCert: boolKey(false, 'Refuse TLS clients without a valid certificate (needs tls.caFile).'),
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
      onConnectionLoss: z.enum(['restore', 'close']).default('restore').register(keyMeta, {
        meaning: 'When the AMQP connection is lost: `restore` = reconnect (to any of amqp.urls) and restore each session\'s subscriptions on a new channel; `close` = end each session with an ERROR telling the client to reconnect. A session with a call in flight (e.g. a SEND awaiting its confirm) always gets the ERROR.',
        expected: 'one of restore, close',
        kind: 'string',
      }),
      restoreTimeoutMs: intKey(1, MAX_MS, 30000, 'A session not restored this long after the connection loss gets the ERROR (so clients go elsewhere while RabbitMQ is down).'),
      blockedPublishTimeoutMs: intKey(1, MAX_MS, 10000, 'How long a SEND waits while RabbitMQ blocks publishing (memory or disk alarm) before it gets an ERROR.'),
      sharedSubscriptions: boolKey(true, 'Serve non-durable auto-ack `/topic` and `/exchange` subscriptions (no x- arguments, no x-queue-name) on exchanges of known type from one queue per exchange and Thumper node, routed in the node: one binding per distinct key instead of a queue, a binding and a consumer per subscription. Clients see the same frames.'),
      sharedUnbindDelayMs: intKey(0, MAX_MS, 10000, 'A shared key whose last subscriber left stays bound this long, so a client that reconnects (page reload, network drop) finds it bound; its messages are dropped meanwhile. 0 unbinds at once.'),
      exchangeTypes: z.array(exchangeSchema).default([]).register(keyMeta, {
        meaning: 'Types of exchanges that exist in RabbitMQ (e.g. the application\'s `feed:topic`); AMQP cannot tell Thumper an exchange\'s type. A known type lets subscriptions on it share a queue (amqp.sharedSubscriptions) and spares topic checks on non-topic exchanges, as RabbitMQ does. It must match RabbitMQ. The `amq.*` exchanges are always known.',
        expected: 'a list of {name, type (direct, topic or fanout), vhost?} (environment: "name:type[@vhost],…" or JSON)',
        kind: 'exchanges',
      }),
    })
    .prefault({}),
  memory: z
    .strictObject({
      vhosts: z.array(z.string().min(1)).min(1).default(['/']).register(keyMeta, {
        meaning: 'Virtual hosts of the embedded engine.',
        expected: 'a non-empty list of vhost names (comma-separated in the environment)',
        kind: 'list',
      }),
      exchanges: z.array(exchangeSchema).default([
        { name: 'feed', type: 'topic' },
        { name: 'replies', type: 'topic' },
      ]).register(keyMeta, {
        meaning: 'Exchanges the embedded engine declares at start (besides the `amq.*` defaults): the seed\'s `feed` (backend → users) and `replies` (users → backend).',
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
      maxTransactionBytes: intKey(1, MAX_COUNT, DEFAULT_MAX_TRANSACTION_BYTES, 'Bytes (bodies and headers) all open transactions of one session may hold; the transaction that would go past it is aborted.'),
      maxOutboundBytes: intKey(1024, GIB, DEFAULT_FLOW_OPTIONS.maxOutboundBytes, 'Bytes a session may have waiting for its client to read. At the limit an auto-ack subscription ends the session (ERROR "slow consumer"); client-ack subscriptions pause until half of it is read. One frame always fits, however large.'),
      maxOutboundFrames: intKey(1, MAX_COUNT, DEFAULT_FLOW_OPTIONS.maxOutboundFrames, 'The same limit counted in frames not yet written to the network.'),
      maxInboxFrames: intKey(1, MAX_COUNT, DEFAULT_FLOW_OPTIONS.maxInboxFrames, 'Frames received and not yet handled (e.g. SENDs while RabbitMQ blocks publishers): past this the session stops reading its client (SockJS, which cannot pause, is closed at 16 times it).'),
      maxInboxBytes: intKey(1024, GIB, DEFAULT_FLOW_OPTIONS.maxInboxBytes, 'The same limit in bytes of frames (16 times it plus stomp.maxFrameBytes for SockJS).'),
    })
    .prefault({}),
  auth: z
    .strictObject({
      backends: z.array(z.enum(AUTH_BACKENDS)).min(1).optional().register(keyMeta, {
        meaning: 'Authenticators, tried in order: `jwt` takes a token (CONNECT passcode, `Authorization: Bearer` or `?access_token=` on the WebSocket URL), `http` takes a login and passcode (rabbitmq-auth-backend-http), `allow-all` lets anyone in (embedded engine only).',
        expected: 'a non-empty list of http, jwt, allow-all (comma-separated in the environment)',
        kind: 'list',
        defaultText: 'allow-all with the embedded engine; required with amqp',
      }),
      authz: z.enum(['same', 'http', 'jwt']).default('same').register(keyMeta, {
        meaning: 'Who decides the vhost and every permission: `same` = the backend that authenticated the client (RabbitMQ\'s rule); `http` = the HTTP backend, with a token\'s subject as username; `jwt` = the token\'s scopes.',
        expected: 'one of same, http, jwt',
        kind: 'string',
      }),
      http: z
        .strictObject({
          baseUrl: httpUrlKey('Base URL of the auth service; paths not set below become `<baseUrl>/user`, `/vhost`, `/resource`, `/topic`.', 'unset'),
          userPath: httpUrlKey('URL of the user path (rabbitmq-auth-backend-http `user_path`).', '<baseUrl>/user'),
          vhostPath: httpUrlKey('URL of the vhost path (`vhost_path`).', '<baseUrl>/vhost'),
          resourcePath: httpUrlKey('URL of the resource path (`resource_path`).', '<baseUrl>/resource'),
          topicPath: httpUrlKey('URL of the topic path (`topic_path`).', '<baseUrl>/topic'),
          method: z.enum(['get', 'post']).default('get').register(keyMeta, {
            meaning: 'HTTP method: `get` (query string) or `post` (form-encoded body), as `auth_http.http_method`.',
            expected: 'get or post',
            kind: 'string',
          }),
          requestTimeoutMs: intKey(1, MAX_MS, 5000, 'A backend answer slower than this denies ("auth service unavailable").'),
          connectTimeoutMs: intKey(1, MAX_MS, 2000, 'Connecting to the backend longer than this denies.'),
          maxSockets: intKey(1, 65535, 64, 'Keep-alive connections to the backend, at most.'),
        })
        .prefault({}),
      cache: z
        .strictObject({
          allowTtlMs: intKey(0, MAX_MS, 15000, 'How long an HTTP backend `allow` is reused (RabbitMQ\'s auth_cache default); 0 disables.'),
          denyTtlMs: intKey(0, MAX_MS, 5000, 'How long a `deny` is reused; 0 disables. "Unavailable" answers are never cached.'),
          maxEntries: intKey(1, MAX_COUNT, 100000, 'Decisions kept, least recently used dropped first.'),
        })
        .prefault({}),
      jwt: z
        .strictObject({
          algorithms: z.array(z.enum(JWT_ALGORITHMS)).default([]).register(keyMeta, {
            meaning: 'Accepted signature algorithms (required for jwt). HS* with a secret, or RS/ES/PS* with a public key, never both: `none` is never accepted.',
            expected: `a list of ${JWT_ALGORITHMS.join(', ')} (comma-separated in the environment)`,
            kind: 'list',
          }),
          secret: optionalText('HMAC secret for HS* (32 bytes or more).', { defaultText: 'unset' }),
          secretFile: optionalText('File holding the HMAC secret (trailing newline ignored); instead of jwt.secret.'),
          publicKeyFile: optionalText('PEM public key (RSA for RS/PS, EC for ES).'),
          issuer: optionalText('Required `iss` claim, when set.'),
          audience: optionalText('Required `aud` claim (one of its values), when set; RabbitMQ\'s resource_server_id.'),
          usernameClaims: z.array(z.string().min(1)).min(1).default(['sub', 'client_id']).register(keyMeta, {
            meaning: 'Claims tried in order for the user name.',
            expected: 'a non-empty list of claim names (comma-separated in the environment)',
            kind: 'list',
          }),
          scopePrefix: z.string().default('rabbitmq.').register(keyMeta, {
            meaning: 'Only scopes starting with this are used, prefix removed (RabbitMQ OAuth 2 format `<prefix>read:<vhost>/<name>[/<routing key>]`).',
            expected: 'a string (may be empty)',
            kind: 'string',
          }),
          clockToleranceSeconds: intKey(0, 3600, 0, 'Leeway for `exp` and `nbf` against clock skew.'),
        })
        .prefault({}),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxConnectionsPerAddress: intKey(
        0,
        MAX_COUNT,
        1000,
        'Open connections from one client IP, all transports together; more are refused (WebSocket: HTTP 429; SockJS, TCP, TLS: ERROR "Too many connections"). 0 = unlimited. Behind a proxy every client has the proxy\'s IP: set 0 or high.',
      ),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      enabled: boolKey(true, 'Serve Prometheus metrics at `GET /metrics` on the HTTP port.'),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      drainWindowMs: intKey(0, MAX_MS, 5000, 'On SIGTERM/SIGINT, sessions are closed (ERROR "Server shutting down", reconnect) at random moments within this window, so clients do not reconnect in one burst.'),
      confirmWaitMs: intKey(0, MAX_MS, 2000, 'How long a closing session waits for broker confirms of SENDs already accepted, so their RECEIPTs go out.'),
      deadlineMs: intKey(1000, MAX_MS, 15000, 'The process exits (code 1) if shutdown takes longer than this.'),
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
export type Config = Omit<ParsedConfig, 'engine' | 'ws' | 'auth'> & {
  readonly engine: EngineKind;
  readonly ws: Omit<ParsedConfig['ws'], 'maxPayloadBytes'> & { readonly maxPayloadBytes: number };
  readonly auth: AuthConfig;
};

type ParsedAuth = ParsedConfig['auth'];

/** The four URLs of the rabbitmq-auth-backend-http protocol, all resolved. */
export type HttpAuthConfig = Omit<ParsedAuth['http'], 'baseUrl'> & {
  readonly userPath: string;
  readonly vhostPath: string;
  readonly resourcePath: string;
  readonly topicPath: string;
};

export interface AuthConfig {
  readonly backends: readonly AuthBackendName[];
  readonly authz: AuthzChoice;
  /** Set when `http` authenticates or authorizes. */
  readonly http: HttpAuthConfig | undefined;
  readonly cache: ParsedAuth['cache'];
  readonly jwt: ParsedAuth['jwt'];
}

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
  const auth = resolveAuth(parsed.auth, engine, where);
  if (!auth.ok) return auth;
  if (parsed.tls.enabled && (parsed.tls.certFile === undefined || parsed.tls.keyFile === undefined)) {
    return fail(`Invalid configuration: ${where('tls.enabled')}: the TLS listener needs tls.certFile and tls.keyFile`);
  }
  if (parsed.tls.requireClientCert && parsed.tls.caFile === undefined) {
    return fail(`Invalid configuration: ${where('tls.requireClientCert')}: client certificates are verified against tls.caFile; set it`);
  }
  if (parsed.shutdown.deadlineMs <= parsed.shutdown.drainWindowMs + parsed.shutdown.confirmWaitMs) {
    return fail(`Invalid configuration: ${where('shutdown.deadlineMs')}: expected more than shutdown.drainWindowMs + shutdown.confirmWaitMs (${parsed.shutdown.drainWindowMs + parsed.shutdown.confirmWaitMs}), got ${parsed.shutdown.deadlineMs}`);
  }
  if (parsed.sockjs.enabled && parsed.sockjs.path === parsed.ws.path) {
    return fail(`Invalid configuration: ${where('sockjs.path')}: must differ from ws.path (${parsed.ws.path})`);
  }
  const allowedOrigins = parsed.ws.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, ''));
  const maxPayloadBytes = parsed.ws.maxPayloadBytes ?? parsed.stomp.maxFrameBytes + 4096;
  // A smaller frame limit also caps the pre-CONNECT one, so lowering only maxFrameBytes just works.
  const maxFrameBytesBeforeConnect = Math.min(parsed.stomp.maxFrameBytesBeforeConnect, parsed.stomp.maxFrameBytes);
  return ok({
    ...parsed,
    engine,
    auth: auth.value,
    ws: { ...parsed.ws, allowedOrigins, maxPayloadBytes },
    stomp: { ...parsed.stomp, maxFrameBytesBeforeConnect },
  });
}

/**
 * Cross-key rules of the auth section. allow-all is for the embedded development engine only: a
 * gateway in front of RabbitMQ that lets everyone in must be a deliberate, visible decision, and we
 * offer no such switch.
 */
function resolveAuth(parsed: ParsedAuth, engine: EngineKind, where: (key: string) => string): Result<AuthConfig, string> {
  const bad = (key: string, text: string) => fail(`Invalid configuration: ${where(key)}: ${text}`);
  const backends = parsed.backends ?? (engine === 'memory' ? ['allow-all' as const] : undefined);
  if (backends === undefined) {
    return bad('auth.backends', 'engine "amqp" needs an auth backend: set THUMPER_AUTH_BACKENDS to http, jwt or jwt,http (allow-all is only for the embedded engine)');
  }
  if (new Set(backends).size !== backends.length) return bad('auth.backends', `each backend at most once, got ${backends.join(',')}`);
  if (engine === 'amqp' && backends.includes('allow-all')) {
    return bad('auth.backends', 'allow-all is only for the embedded engine; in front of RabbitMQ use http or jwt');
  }
  const uses = (name: AuthBackendName) => backends.includes(name) || parsed.authz === name;
  if (parsed.authz === 'jwt' && backends.some((b) => b !== 'jwt')) {
    return bad('auth.authz', 'jwt authorization needs every client to bring a token: auth.backends must be just jwt');
  }
  let http: HttpAuthConfig | undefined;
  if (uses('http')) {
    const { baseUrl, userPath, vhostPath, resourcePath, topicPath, ...rest } = parsed.http;
    const base = baseUrl?.replace(/\/+$/, '');
    const path = (value: string | undefined, suffix: string) => value ?? (base === undefined ? undefined : `${base}/${suffix}`);
    const paths = { userPath: path(userPath, 'user'), vhostPath: path(vhostPath, 'vhost'), resourcePath: path(resourcePath, 'resource'), topicPath: path(topicPath, 'topic') };
    const missing = Object.entries(paths).filter(([, v]) => v === undefined).map(([k]) => `auth.http.${k}`);
    if (missing.length > 0) return bad('auth.http.baseUrl', `the http backend needs auth.http.baseUrl or ${missing.join(', ')}`);
    http = { ...rest, ...(paths as Record<keyof typeof paths, string>) };
  }
  if (uses('jwt')) {
    const { algorithms, secret, secretFile, publicKeyFile } = parsed.jwt;
    if (algorithms.length === 0) return bad('auth.jwt.algorithms', 'the jwt backend needs an explicit list of algorithms, e.g. HS256 or RS256');
    if (secret !== undefined && secretFile !== undefined) return bad('auth.jwt.secretFile', 'set auth.jwt.secret or auth.jwt.secretFile, not both');
    if (secret === undefined && secretFile === undefined && publicKeyFile === undefined) {
      return bad('auth.jwt.algorithms', 'the jwt backend needs auth.jwt.secret (HS*) or auth.jwt.publicKeyFile (RS/ES/PS*)');
    }
  }
  return ok({ backends, authz: parsed.authz, http, cache: parsed.cache, jwt: parsed.jwt });
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
    maxTransactionBytes: stomp.maxTransactionBytes,
    flow: {
      maxOutboundBytes: stomp.maxOutboundBytes,
      maxOutboundFrames: stomp.maxOutboundFrames,
      maxInboxFrames: stomp.maxInboxFrames,
      maxInboxBytes: stomp.maxInboxBytes,
    },
  };
}

