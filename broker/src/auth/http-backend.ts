// Client side of RabbitMQ's rabbitmq-auth-backend-http protocol (reference §5.1): the four paths
// with RabbitMQ's parameter names, order and form encoding, over keep-alive node:http(s). Every
// failure (status, garbage, size, connection, timeout) becomes an `unavailable` answer, logged
// without secrets; nothing here throws once constructed.

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import type { Permission } from '../destination/types.js';

export type BackendAnswer =
  | { readonly kind: 'allow'; readonly tags: string[] }
  | { readonly kind: 'deny' }
  | { readonly kind: 'unavailable'; readonly detail: string };

export type BackendPath = 'user' | 'vhost' | 'resource' | 'topic';

/** Longest answer accepted by default: a real answer is a few words (`allow management`). */
export const DEFAULT_MAX_ANSWER_BYTES = 4096;

export interface HttpBackendOptions {
  /** Full http:// or https:// URLs, as `auth_http.user_path` and friends. */
  readonly userPath: string;
  readonly vhostPath: string;
  readonly resourcePath: string;
  readonly topicPath: string;
  /** `auth_http.http_method`; RabbitMQ's default is get. */
  readonly method: 'get' | 'post';
  /** Whole request, queueing for a socket included, per attempt (RabbitMQ default 15000). */
  readonly requestTimeoutMs: number;
  /** TCP connect of a new socket (RabbitMQ default 15000). */
  readonly connectTimeoutMs: number;
  /** Sockets per backend origin; requests beyond it wait for a free one. */
  readonly maxSockets: number;
  readonly log: Logger;
  /** Longer answers are `unavailable` (default DEFAULT_MAX_ANSWER_BYTES). */
  readonly maxAnswerBytes?: number;
  /** Told each request's path, outcome and duration (the retry included), for metrics. */
  readonly onRequest?: RequestObserver;
}

export type RequestObserver = (path: BackendPath, outcome: BackendAnswer['kind'], seconds: number) => void;

export interface HttpBackend {
  user(username: string, password: string, vhost: string): Promise<BackendAnswer>;
  vhost(username: string, vhost: string, ip: string, tags: readonly string[]): Promise<BackendAnswer>;
  resource(
    username: string,
    vhost: string,
    resource: 'exchange' | 'queue',
    name: string,
    permission: Permission,
    tags: readonly string[],
  ): Promise<BackendAnswer>;
  topic(
    username: string,
    vhost: string,
    exchange: string,
    permission: 'read' | 'write',
    tags: readonly string[],
    routingKey: string,
  ): Promise<BackendAnswer>;
  /** Destroys the keep-alive sockets; requests in flight answer `unavailable`. */
  close(): void;
}

// Form encoding as RabbitMQ's rabbit_http_util:quote_plus: unreserved bytes as is, space as `+`,
// every other UTF-8 byte as uppercase %XX (so `*`, `!`, `'`, `(`, `)` are encoded, `~` is not).
const UNRESERVED = /^[A-Za-z0-9_.~-]$/;
const HEX = '0123456789ABCDEF';

export function formEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    if (byte < 0x80 && UNRESERVED.test(char)) out += char;
    else if (byte === 0x20) out += '+';
    else out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/** `k=v&k=v` in the given order (RabbitMQ's order matters to backends that log or sign it). */
export function formQuery(params: ReadonlyArray<readonly [string, string]>): string {
  return params.map(([name, value]) => `${name}=${formEncode(value)}`).join('&');
}

export function userQuery(username: string, password: string, vhost: string): string {
  return formQuery([['username', username], ['password', password], ['vhost', vhost]]);
}

export function vhostQuery(username: string, vhost: string, ip: string, tags: readonly string[]): string {
  return formQuery([['username', username], ['vhost', vhost], ['ip', ip], ['tags', tags.join(' ')]]);
}

export function resourceQuery(
  username: string,
  vhost: string,
  resource: 'exchange' | 'queue',
  name: string,
  permission: Permission,
  tags: readonly string[],
): string {
  return formQuery([
    ['username', username],
    ['vhost', vhost],
    ['resource', resource],
    ['name', name],
    ['permission', permission],
    ['tags', tags.join(' ')],
  ]);
}

export function topicQuery(
  username: string,
  vhost: string,
  exchange: string,
  permission: 'read' | 'write',
  tags: readonly string[],
  routingKey: string,
): string {
  return formQuery([
    ['username', username],
    ['vhost', vhost],
    ['resource', 'topic'],
    ['name', exchange],
    ['permission', permission],
    ['tags', tags.join(' ')],
    ['routing_key', routingKey],
    ['variable_map.username', username],
    ['variable_map.vhost', vhost],
  ]);
}

const ANSWER_SNIPPET_CHARS = 60;

/**
 * Reads an answer body as RabbitMQ does, but trimming all whitespace (3.10.8 trims only spaces, so
 * `allow\n` broke every path but user). Case-insensitive, and tags come back lower-cased like
 * RabbitMQ's (it lower-cases the whole body). `deny <reason>` is RabbitMQ 4.3's. `secret` (the
 * password) is cut out of the snippet an unexpected answer is described with.
 */
export function parseAnswer(path: BackendPath, body: string, secret?: string): BackendAnswer {
  const words = body.trim().toLowerCase().split(/\s+/);
  const [verb, ...rest] = words;
  if (verb === 'deny') return { kind: 'deny' };
  if (verb === 'allow' && (path === 'user' || rest.length === 0)) return { kind: 'allow', tags: rest };
  const trimmed = redact(body, secret).trim();
  const snippet = trimmed.length > ANSWER_SNIPPET_CHARS ? `${trimmed.slice(0, ANSWER_SNIPPET_CHARS)}…` : trimmed;
  return { kind: 'unavailable', detail: `unexpected answer ${JSON.stringify(snippet)}` };
}

interface Target {
  readonly path: BackendPath;
  readonly url: URL;
  readonly request: (options: RequestOptions) => ClientRequest;
  readonly agent: HttpAgent;
}

type Attempt =
  | { readonly kind: 'answer'; readonly body: string }
  | { readonly kind: 'failed'; readonly detail: string; readonly retryable: boolean };

export function createHttpBackend(options: HttpBackendOptions): HttpBackend {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);
  const maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  const post = options.method === 'post';
  let closed = false;

  const target = (path: BackendPath, raw: string): Target => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error(`auth http: ${path} path is not a URL`);
    }
    if (url.protocol === 'http:') return { path, url, request: httpRequest, agent: httpAgent };
    if (url.protocol === 'https:') return { path, url, request: httpsRequest, agent: httpsAgent };
    throw new Error(`auth http: ${path} path must be an http:// or https:// URL`);
  };
  const targets = {
    user: target('user', options.userPath),
    vhost: target('vhost', options.vhostPath),
    resource: target('resource', options.resourcePath),
    topic: target('topic', options.topicPath),
  } as const;

  const attempt = (t: Target, query: string): Promise<Attempt> =>
    new Promise((resolve) => {
      const search = t.url.search;
      const path = post ? `${t.url.pathname}${search}` : `${t.url.pathname}${search === '' ? '?' : `${search}&`}${query}`;
      const body = post ? Buffer.from(query, 'utf8') : undefined;
      const headers: Record<string, string | number> =
        body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length };
      const req = t.request({
        hostname: t.url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: t.url.port,
        path,
        method: post ? 'POST' : 'GET',
        agent: t.agent,
        headers,
      });
      let settled = false;
      let responded = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const finish = (result: Attempt): void => {
        if (settled) return;
        settled = true;
        clearTimeout(requestTimer);
        clearTimeout(connectTimer);
        // A failed request's socket is in an unknown state: destroy it rather than return it to the pool.
        if (result.kind === 'failed') req.destroy();
        resolve(result);
      };
      const fail = (detail: string, retryable = false): void => finish({ kind: 'failed', detail, retryable });
      const requestTimer = setTimeout(() => fail(`timed out after ${options.requestTimeoutMs} ms`), options.requestTimeoutMs);

      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => fail(`connect timed out after ${options.connectTimeoutMs} ms`), options.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        // The keep-alive race RabbitMQ also retries: the server closed an idle pooled socket just as
        // we reused it, so the request never reached it. Anything else may have been seen: no retry.
        const retryable = !responded && req.reusedSocket && error.code === 'ECONNRESET';
        fail(describeError(error), retryable);
      });
      req.on('response', (res: IncomingMessage) => {
        responded = true;
        res.on('error', () => fail('connection closed during the answer'));
        res.on('aborted', () => fail('connection closed during the answer'));
        const status = res.statusCode ?? 0;
        if (status !== 200 && status !== 201) {
          fail(`HTTP ${status}`);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxAnswerBytes) fail(`answer longer than ${maxAnswerBytes} bytes`);
          else chunks.push(chunk);
        });
        res.on('end', () => finish({ kind: 'answer', body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.end(body);
    });

  const send = async (path: BackendPath, query: string, context: { username: string; secret?: string }): Promise<BackendAnswer> => {
    const t = targets[path];
    let answer: BackendAnswer;
    if (closed) {
      answer = { kind: 'unavailable', detail: 'backend closed' };
    } else {
      const started = process.hrtime.bigint();
      let result = await attempt(t, query);
      if (result.kind === 'failed' && result.retryable) result = await attempt(t, query);
      answer = result.kind === 'failed' ? { kind: 'unavailable', detail: result.detail } : parseAnswer(path, result.body, context.secret);
      options.onRequest?.(path, answer.kind, Number(process.hrtime.bigint() - started) / 1e9);
    }
    if (answer.kind !== 'unavailable') return answer;
    const detail = `${path} path: ${answer.detail}`;
    options.log.error({ authPath: path, user: context.username, detail }, 'auth backend unavailable');
    return { kind: 'unavailable', detail };
  };

  return {
    user: (username, password, vhost) => send('user', userQuery(username, password, vhost), { username, secret: password }),
    vhost: (username, vhost, ip, tags) => send('vhost', vhostQuery(username, vhost, ip, tags), { username }),
    resource: (username, vhost, resource, name, permission, tags) =>
      send('resource', resourceQuery(username, vhost, resource, name, permission, tags), { username }),
    topic: (username, vhost, exchange, permission, tags, routingKey) =>
      send('topic', topicQuery(username, vhost, exchange, permission, tags, routingKey), { username }),
    close() {
      closed = true;
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function describeError(error: NodeJS.ErrnoException): string {
  // Only the code: node's messages carry host:port, never the query, but a code is all one needs.
  if (error.code === 'ECONNREFUSED') return 'connection refused';
  if (error.code === 'ECONNRESET') return 'connection reset';
  return `connection error ${error.code ?? error.name}`;
}

/** A backend that echoes its query back must not put the password into our logs. */
function redact(text: string, secret: string | undefined): string {
  if (secret === undefined || secret === '') return text;
  return text.split(secret).join('***').split(formEncode(secret)).join('***');
}
