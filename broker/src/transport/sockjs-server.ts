// The SockJS endpoint (`/stomp` by default) as a mount on the shared HTTP server, built from the
// `sockjs` 0.3 package's request handler: /info, the iframe page, and the websocket, xhr-streaming,
// xhr-polling, eventsource, htmlfile and jsonp transports (plus sockjs's raw WebSocket at
// `<prefix>/websocket`, the URL RabbitMQ ≤ 3.6 documented). Each SockJS session becomes a
// SockjsTransport handed to `onConnection`. Around sockjs this adds what it lacks: a body limit
// on the send endpoints, a stop switch, pino logging with tokens redacted, and escaping that keeps
// message text from closing the htmlfile transport's <script> blocks.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import sockjs from 'sockjs';
import type { Connection } from 'sockjs';
import type { HttpMount } from '../server/http-server.js';
import { DEFAULT_DECODER_LIMITS } from '../stomp/decoder.js';
import { bearerTokenOf, clientIp } from './credentials.js';
import { refuseUpgrade } from './refuse-upgrade.js';
import { SockjsTransport } from './sockjs-transport.js';

export interface SockjsServerOptions {
  /** Where SockJS lives (default `/stomp`, RabbitMQ ≤ 3.6's path). No trailing slash. */
  readonly prefix?: string;
  readonly log: Logger;
  /**
   * The sockjs-client script the iframe page loads (iframe-based transports: htmlfile and
   * cross-origin polling in old browsers). Default `/vendor/sockjs.min.js`, served from this origin.
   */
  readonly sockjsClientUrl?: string;
  /** SockJS's own `h` frames on idle streams, which keep proxies from cutting them (default 25000). */
  readonly heartbeatDelayMs?: number;
  /** A session with no receiving request for this long is over (default 5000). */
  readonly disconnectDelayMs?: number;
  /** Largest inbound message, decoded, in UTF-8 bytes (default stomp.maxFrameBytes default + 4096). */
  readonly maxMessageBytes?: number;
  /** Offer the websocket transport (default true); false leaves the HTTP transports only. */
  readonly websocket?: boolean;
  /**
   * Set a `JSESSIONID` cookie and advertise `cookie_needed` in /info (default false): lets a load
   * balancer that pins on that cookie keep a session's polling requests on one node.
   */
  readonly jsessionid?: boolean;
  /** Passed to each SockjsTransport (tests use small values). */
  readonly highWaterBytes?: number;
  readonly lowWaterBytes?: number;
  readonly onConnection: (transport: SockjsTransport, info: SockjsConnectionInfo) => void;
}

export interface SockjsConnectionInfo {
  /** `address:port` of the peer of the request that opened the session, for logs. */
  readonly remote: string;
  /** The SockJS transport that opened the session (`websocket`, `xhr-streaming`, `websocket-raw`…). */
  readonly protocol: string;
}

export interface SockjsServer {
  /** Give to createHttpServer's `mounts`: serves `prefix` and everything under it. */
  readonly mount: HttpMount;
  readonly connectionCount: number;
  /** Live sessions, e.g. to terminate the ones still open at shutdown. */
  readonly transports: ReadonlySet<SockjsTransport>;
  /** Stops accepting new sessions (503); open sessions are the caller's to close. */
  close(): void;
}

const DEFAULT_PREFIX = '/stomp';
const DEFAULT_CLIENT_URL = '/vendor/sockjs.min.js';
const DEFAULT_HEARTBEAT_DELAY_MS = 25_000;
const DEFAULT_DISCONNECT_DELAY_MS = 5_000;
const DEFAULT_MAX_MESSAGE_BYTES = DEFAULT_DECODER_LIMITS.maxFrameBytes + 4096;
/**
 * Bodies of xhr_send / jsonp_send and websocket messages are JSON arrays of messages; JSON escaping
 * makes a character at most 6 bytes (`\u0000`), so one largest message plus slack always fits.
 */
const JSON_EXPANSION = 6;
const BODY_SLACK_BYTES = 64 * 1024;

/** What `sockjs` 0.3 has beyond its typings: `server.listener(options).getHandler()`. */
interface SockjsListenerServer {
  listener(options?: Record<string, unknown>): { getHandler(): (req: IncomingMessage, res: ServerResponse | Duplex, head?: Buffer) => boolean };
  on(event: 'connection', listener: (conn: Connection | null) => void): unknown;
}

/** `<prefix>/<server>/<session>/<transport>`: the requests that receive for a session. */
const RECEIVE_TRANSPORTS = 'xhr|xhr_streaming|eventsource|htmlfile|jsonp|websocket';

export function createSockjsServer(options: SockjsServerOptions): SockjsServer {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(prefix) || prefix.endsWith('/') || prefix.includes('//')) {
    throw new RangeError(`SockJS prefix must be a path like "/stomp", got "${prefix}"`);
  }
  const { log } = options;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxBodyBytes = maxMessageBytes * JSON_EXPANSION + BODY_SLACK_BYTES;
  const escapedPrefix = escapeRegExp(prefix);
  const receivePath = new RegExp(`^${escapedPrefix}/[^/.]+/([^/.]+)/(${RECEIVE_TRANSPORTS})/?$`);
  const sendPath = new RegExp(`^${escapedPrefix}/[^/.]+/[^/.]+/(xhr_send|jsonp_send)/?$`);
  const htmlfilePath = new RegExp(`^${escapedPrefix}/[^/.]+/[^/.]+/htmlfile/?$`);
  const newSessionPath = new RegExp(`^${escapedPrefix}/(info|websocket)/?$`);

  const transports = new Set<SockjsTransport>();
  /** SockJS session ids of live sessions: their polls are served even after close(). */
  const liveIds = new Map<string, SockjsTransport>();
  let accepting = true;

  const server = sockjs.createServer({
    // sockjs builds its routes as regular expressions from the prefix.
    prefix: escapedPrefix,
    sockjs_url: options.sockjsClientUrl ?? DEFAULT_CLIENT_URL,
    heartbeat_delay: options.heartbeatDelayMs ?? DEFAULT_HEARTBEAT_DELAY_MS,
    disconnect_delay: options.disconnectDelayMs ?? DEFAULT_DISCONNECT_DELAY_MS,
    websocket: options.websocket ?? true,
    jsessionid: options.jsessionid ?? false,
    log: (severity: string, line: string) => {
      // sockjs logs every request with its URL, which may carry ?access_token=.
      const text = redactTokens(line);
      if (severity === 'error') log.warn({ sockjs: text }, 'sockjs error');
      else log.debug({ sockjs: text }, 'sockjs');
    },
  }) as unknown as SockjsListenerServer;
  const handler = server.listener({ faye_server_options: { maxLength: maxBodyBytes } }).getHandler();

  server.on('connection', (conn) => {
    if (!conn) return; // the session timed out before its open event was delivered
    const transport = new SockjsTransport(conn, {
      remoteAddress: clientIp(conn.remoteAddress),
      // sockjs keeps only a few headers (no Authorization): the token can only come in the URL.
      bearerToken: bearerTokenOf({}, conn.url),
      maxMessageBytes,
      log,
      ...(options.highWaterBytes !== undefined ? { highWaterBytes: options.highWaterBytes } : {}),
      ...(options.lowWaterBytes !== undefined ? { lowWaterBytes: options.lowWaterBytes } : {}),
    });
    if (!accepting) {
      // Opened by a request that was already past the gate when close() was called.
      transport.close(1001, 'Server shutting down');
      return;
    }
    transports.add(transport);
    const id = transport.sessionId;
    if (id !== undefined) liveIds.set(id, transport);
    void transport.closed.then(() => {
      transports.delete(transport);
      if (id !== undefined && liveIds.get(id) === transport) liveIds.delete(id);
    });
    options.onConnection(transport, { remote: `${conn.remoteAddress ?? 'unknown'}:${conn.remotePort ?? 0}`, protocol: transport.protocol });
  });

  /** Once closed, refuse whatever would open a session; requests of live sessions go through. */
  function refusesNewSession(pathname: string): boolean {
    if (accepting) return false;
    if (newSessionPath.test(pathname)) return true;
    const receive = receivePath.exec(pathname);
    return receive !== null && (receive[2] === 'websocket' || !liveIds.has(receive[1] ?? ''));
  }

  const mount: HttpMount = {
    name: 'sockjs',
    matches: (pathname) => pathname === prefix || pathname.startsWith(`${prefix}/`),
    handleRequest(req, res) {
      const pathname = pathnameOf(req.url);
      if (refusesNewSession(pathname)) {
        sendText(res, 503, 'Server shutting down\n');
        return;
      }
      if (req.method === 'POST' && sendPath.test(pathname) && !limitBody(req, res, maxBodyBytes)) return;
      if (req.method === 'GET' && htmlfilePath.test(pathname)) escapeHtmlfileScripts(res);
      try {
        if (!handler(req, res)) sendText(res, 404, 'Not Found\n');
      } catch (err) {
        log.warn({ err, path: pathname }, 'sockjs request failed');
        if (!res.headersSent) sendText(res, 500, 'Internal Server Error\n');
        else res.destroy();
      }
    },
    handleUpgrade(req, socket, head) {
      socket.on('error', () => {}); // a reset during the handshake is the peer's business
      if (refusesNewSession(pathnameOf(req.url))) {
        refuseUpgrade(socket, 503, 'Server shutting down');
        return;
      }
      try {
        if (!handler(req, socket, head)) refuseUpgrade(socket, 404, 'Not Found');
      } catch (err) {
        log.warn({ err }, 'sockjs upgrade failed');
        socket.destroy();
      }
    },
  };

  return {
    mount,
    get connectionCount() {
      return transports.size;
    },
    transports,
    close() {
      accepting = false;
    },
  };
}

/**
 * sockjs buffers a whole send body before parsing it: answer 413 to a declared length over the
 * limit, and drop the request if a chunked body grows past it. false: already answered.
 */
function limitBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    res.setHeader('Connection', 'close');
    sendText(res, 413, 'Payload Too Large\n');
    req.resume();
    return false;
  }
  let seen = 0;
  // Added before sockjs's own listener. Destroying the request (not only its socket) also drops
  // an `end` already parsed from the same read, so sockjs never parses the oversized body.
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) req.destroy();
  });
  return true;
}

/**
 * sockjs writes each htmlfile frame as `<script>\np("<json>");\n</script>` into an HTML page on
 * our origin without escaping `<`, so a message containing `</script>` would end the block and
 * run the rest as markup and script. `\u003c` inside the JSON string is the same text to the
 * client and cannot close a tag.
 */
function escapeHtmlfileScripts(res: ServerResponse): void {
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const head = '<script>\np(';
  const tail = ');\n</script>\r\n';
  (res as unknown as { write: (chunk: unknown, ...rest: unknown[]) => boolean }).write = (chunk, ...rest) => {
    if (typeof chunk === 'string' && chunk.startsWith(head) && chunk.endsWith(tail)) {
      const json = chunk.slice(head.length, chunk.length - tail.length);
      return write(head + json.replace(/</g, '\\u003c') + tail, ...rest);
    }
    return write(chunk, ...rest);
  };
}

function redactTokens(line: string): string {
  return line.replace(/(access_token=)[^&\s]*/gi, '$1[redacted]');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function pathnameOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0] ?? '/';
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
