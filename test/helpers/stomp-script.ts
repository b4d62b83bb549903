// A minimal scripted STOMP client for integration tests, usable against any endpoint (Thumper,
// RabbitMQ's Web-STOMP over `ws`, RabbitMQ's STOMP plugin over raw TCP). It writes exactly the
// bytes a script asks for and records every frame it receives, decoded with Thumper's own
// StompDecoder, so a differential test can compare what two servers said, frame for frame.
// `normalize` removes what legitimately differs between two servers or two runs.

import { connect as netConnect } from 'node:net';
import { isUtf8 } from 'node:buffer';
import { WebSocket } from 'ws';
import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import type { Frame, StompVersion } from '../../broker/src/stomp/frame.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { StompError } from '../../broker/src/errors.js';

/** Default bound on every wait. */
export const DEFAULT_DEADLINE_MS = 5000;

export type HeaderInput = ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string>>;

export interface CloseInfo {
  /** WebSocket close code; undefined for TCP. */
  readonly code: number | undefined;
  readonly reason: string;
}

export interface SendOptions {
  /**
   * true: header names and values are written as given (the script does its own escaping).
   * Default: escaped by STOMP 1.2 rules, except on CONNECT/STOMP (STOMP 1.2 §CONNECT is not escaped).
   */
  readonly raw?: boolean;
  /** Add `content-length` (last) for a non-empty body. Default true when the body holds a NUL byte. */
  readonly contentLength?: boolean;
}

export interface StompConn {
  /** Every frame received so far, in arrival order. */
  readonly frames: readonly Frame[];
  /** Heart-beat EOLs received between frames. */
  readonly heartbeats: number;
  /** The negotiated WebSocket subprotocol ('' for none or TCP). */
  readonly protocol: string;
  /** Resolves once the peer or we closed the connection. */
  readonly closed: Promise<CloseInfo>;
  readonly isClosed: boolean;
  send(command: string, headers?: HeaderInput, body?: string | Buffer, options?: SendOptions): void;
  sendRaw(bytes: string | Buffer): void;
  /** The earliest not yet taken frame that matches, waiting for it up to the deadline; takes it. */
  next(pred?: FramePredicate, deadlineMs?: number): Promise<Frame>;
  /** `next` with a required predicate. */
  waitFor(pred: FramePredicate, deadlineMs?: number): Promise<Frame>;
  /** Frames received but not yet taken by next/waitFor. */
  untaken(): Frame[];
  /** Sends `frame` with a `receipt` header and waits for its RECEIPT (or fails on ERROR). */
  request(command: string, headers?: HeaderInput, body?: string | Buffer): Promise<Frame>;
  /** Resolves with the close info, or rejects after the deadline. */
  waitClosed(deadlineMs?: number): Promise<CloseInfo>;
  close(): Promise<void>;
}

export type FramePredicate = (frame: Frame) => boolean;

export const isCommand =
  (command: string): FramePredicate =>
  (f) =>
    f.command === command;
export const isReceipt =
  (id: string): FramePredicate =>
  (f) =>
    f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === id;
export const isError: FramePredicate = (f) => f.command === 'ERROR';
export const isMessage: FramePredicate = (f) => f.command === 'MESSAGE';
export const isMessageFor =
  (subscription: string): FramePredicate =>
  (f) =>
    f.command === 'MESSAGE' && getHeader(f, 'subscription') === subscription;

export interface ConnOptions {
  /** Header unescaping of received frames. Default 1.2. */
  readonly version?: StompVersion;
}

export interface WsConnOptions extends ConnOptions {
  readonly protocols?: string[];
  /** Extra headers on the upgrade request (e.g. `Authorization: Bearer …`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Opens a WebSocket to `url`; resolves once open. */
export async function connectWs(url: string, options: WsConnOptions = {}, deadlineMs = DEFAULT_DEADLINE_MS): Promise<StompConn> {
  // RabbitMQ's Web-STOMP sends binary bodies in text messages (reference §4): accept them as bytes.
  const ws = new WebSocket(url, options.protocols ?? ['v12.stomp', 'v11.stomp', 'v10.stomp'], {
    skipUTF8Validation: true,
    ...(options.headers ? { headers: { ...options.headers } } : {}),
  });
  ws.binaryType = 'nodebuffer';
  const conn = new ScriptedConn(options.version ?? '1.2', {
    write: (bytes) => ws.send(bytes),
    close: () => {
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
    protocol: () => ws.protocol,
  });
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => conn.receive(toBuffer(data)));
  ws.on('close', (code, reason) => conn.closedBy({ code, reason: reason.toString('utf8') }));
  ws.on('error', (err) => conn.closedBy({ code: undefined, reason: `error: ${err.message}` }));
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade to ${url} refused: HTTP ${String(res.statusCode)}`)));
    }),
    deadlineMs,
    `WebSocket ${url} did not open`,
  );
  return conn;
}

/** Opens a raw TCP connection to a STOMP port on 127.0.0.1; resolves once connected. */
export async function connectTcp(port: number, options: ConnOptions = {}, deadlineMs = DEFAULT_DEADLINE_MS): Promise<StompConn> {
  const socket = netConnect({ host: '127.0.0.1', port });
  const conn = new ScriptedConn(options.version ?? '1.2', {
    write: (bytes) => socket.write(bytes),
    close: () => socket.end(),
    protocol: () => '',
  });
  socket.on('data', (chunk: Buffer) => conn.receive(chunk));
  socket.on('close', () => conn.closedBy({ code: undefined, reason: 'closed' }));
  socket.on('error', (err) => conn.closedBy({ code: undefined, reason: `error: ${err.message}` }));
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    }),
    deadlineMs,
    `TCP 127.0.0.1:${port} did not connect`,
  );
  return conn;
}

export interface StompLogin {
  readonly acceptVersion?: string;
  readonly heartBeat?: string;
  readonly login?: string;
  readonly passcode?: string;
  readonly host?: string;
  /** Extra CONNECT headers, after the above. */
  readonly headers?: HeaderInput;
}

/** Sends CONNECT (guest/guest on vhost '/', accept-version 1.2 unless told) and waits for CONNECTED; fails on ERROR. */
export async function login(conn: StompConn, opts: StompLogin = {}): Promise<Frame> {
  const headers: Array<readonly [string, string]> = [['accept-version', opts.acceptVersion ?? '1.2']];
  headers.push(['host', opts.host ?? '/']);
  headers.push(['login', opts.login ?? 'guest'], ['passcode', opts.passcode ?? 'guest']);
  if (opts.heartBeat !== undefined) headers.push(['heart-beat', opts.heartBeat]);
  headers.push(...headerList(opts.headers ?? []));
  conn.send('CONNECT', headers);
  const reply = await conn.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
  if (reply.command !== 'CONNECTED') throw new Error(`CONNECT refused: ${describeFrame(reply)}`);
  return reply;
}

interface Wire {
  write(bytes: Buffer): void;
  close(): void;
  protocol(): string;
}

interface Waiter {
  readonly pred: FramePredicate;
  readonly resolve: (frame: Frame) => void;
}

class ScriptedConn implements StompConn {
  readonly #wire: Wire;
  readonly #decoder: StompDecoder;
  readonly #frames: Frame[] = [];
  readonly #taken = new Set<number>();
  readonly #waiters = new Set<Waiter>();
  #heartbeats = 0;
  #decodeError: StompError | undefined;
  #closeInfo: CloseInfo | undefined;
  #resolveClosed!: (info: CloseInfo) => void;
  #receiptSeq = 0;
  readonly closed: Promise<CloseInfo>;

  constructor(version: StompVersion, wire: Wire) {
    this.#wire = wire;
    this.#decoder = new StompDecoder({ maxFrameBytes: 256 * 1024 * 1024, maxHeaders: 100_000 });
    this.#decoder.setVersion(version);
    this.#decoder.setAuthenticated();
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get frames(): readonly Frame[] {
    return this.#frames;
  }

  get heartbeats(): number {
    return this.#heartbeats;
  }

  get protocol(): string {
    return this.#wire.protocol();
  }

  get isClosed(): boolean {
    return this.#closeInfo !== undefined;
  }

  receive(chunk: Buffer): void {
    const result = this.#decoder.push(chunk);
    for (const event of result.events) {
      if (event.type === 'heartbeat') {
        this.#heartbeats++;
        continue;
      }
      // Bodies may be views of the chunk: keep a copy that later chunks cannot alias.
      const frame: Frame = { command: event.frame.command, headers: event.frame.headers, body: Buffer.from(event.frame.body) };
      this.#frames.push(frame);
      this.#offer(this.#frames.length - 1);
    }
    if (result.error && !this.#decodeError) this.#decodeError = result.error;
  }

  closedBy(info: CloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    this.#resolveClosed(info);
  }

  #offer(index: number): void {
    const frame = this.#frames[index]!;
    for (const waiter of this.#waiters) {
      if (waiter.pred(frame)) {
        this.#waiters.delete(waiter);
        this.#taken.add(index);
        waiter.resolve(frame);
        return;
      }
    }
  }

  send(command: string, headers: HeaderInput = [], body: string | Buffer = '', options: SendOptions = {}): void {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const escape = options.raw !== true && command !== 'CONNECT' && command !== 'STOMP';
    let head = command + '\n';
    for (const [name, value] of headerList(headers)) {
      head += (escape ? escapeHeader12(name) : name) + ':' + (escape ? escapeHeader12(value) : value) + '\n';
    }
    const addLength = options.contentLength ?? bytes.includes(0);
    if (addLength && bytes.length > 0) head += `content-length:${bytes.length}\n`;
    this.sendRaw(Buffer.concat([Buffer.from(head + '\n', 'utf8'), bytes, Buffer.from([0])]));
  }

  sendRaw(bytes: string | Buffer): void {
    if (this.#closeInfo) throw new Error(`cannot send on a closed connection (${describeClose(this.#closeInfo)})`);
    this.#wire.write(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes);
  }

  untaken(): Frame[] {
    return this.#frames.filter((_, i) => !this.#taken.has(i));
  }

  next(pred: FramePredicate = () => true, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Frame> {
    for (let i = 0; i < this.#frames.length; i++) {
      if (this.#taken.has(i)) continue;
      const frame = this.#frames[i]!;
      if (pred(frame)) {
        this.#taken.add(i);
        return Promise.resolve(frame);
      }
    }
    return new Promise<Frame>((resolve, reject) => {
      let settled = false;
      const waiter: Waiter = {
        pred,
        resolve: (frame) => {
          settled = true;
          clearTimeout(timer);
          clearInterval(poll);
          resolve(frame);
        },
      };
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        clearInterval(poll);
        reject(new Error(`${why}; frames so far:\n${this.#frames.map(describeFrame).join('\n') || '(none)'}`));
      };
      const timer = setTimeout(() => fail(`no matching frame within ${deadlineMs} ms`), deadlineMs);
      // A closed connection or a framing error ends the wait early: nothing more can arrive.
      const poll = setInterval(() => {
        if (this.#decodeError) fail(`the received bytes did not decode: ${this.#decodeError.detail}`);
        else if (this.#closeInfo) fail(`connection closed (${describeClose(this.#closeInfo)}) before a matching frame`);
      }, 20);
      this.#waiters.add(waiter);
    });
  }

  waitFor(pred: FramePredicate, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Frame> {
    return this.next(pred, deadlineMs);
  }

  async request(command: string, headers: HeaderInput = [], body: string | Buffer = ''): Promise<Frame> {
    const id = `r-${++this.#receiptSeq}`;
    this.send(command, [...headerList(headers), ['receipt', id]], body);
    const reply = await this.next((f) => isReceipt(id)(f) || f.command === 'ERROR');
    if (reply.command === 'ERROR') throw new Error(`${command} failed: ${describeFrame(reply)}`);
    return reply;
  }

  waitClosed(deadlineMs = DEFAULT_DEADLINE_MS): Promise<CloseInfo> {
    return withDeadline(this.closed, deadlineMs, 'connection still open');
  }

  async close(): Promise<void> {
    if (this.#closeInfo) return;
    this.#wire.close();
    try {
      await withDeadline(this.closed, 2000, 'close');
    } catch {
      this.closedBy({ code: undefined, reason: 'abandoned' });
    }
  }
}

function headerList(headers: HeaderInput): Array<readonly [string, string]> {
  return Array.isArray(headers) ? [...(headers as ReadonlyArray<readonly [string, string]>)] : Object.entries(headers);
}

function escapeHeader12(text: string): string {
  return text.replace(/[\\:\n\r]/g, (ch) => ({ '\\': '\\\\', ':': '\\c', '\n': '\\n', '\r': '\\r' })[ch] ?? ch);
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} (after ${ms} ms)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function describeClose(info: CloseInfo): string {
  return info.code === undefined ? info.reason : `${info.code} ${JSON.stringify(info.reason)}`;
}

/** One line per frame for failure messages. */
export function describeFrame(frame: Frame): string {
  const headers = frame.headers.map(([k, v]) => `${k}:${JSON.stringify(v)}`).join(' ');
  return `${frame.command} ${headers} body=${JSON.stringify(bodyText(frame.body))}`;
}

// ---------------------------------------------------------------------------------------------
// Normalization

export interface NormalizedFrame {
  readonly command: string;
  readonly headers: Array<[string, string]>;
  /** UTF-8 text, or `hex:<bytes>` for a body that is not valid UTF-8. */
  readonly body: string;
}

export interface NormalizeOptions {
  /** Literal substrings to replace in header values and bodies, e.g. a run's random suffix → 'RUN'. */
  readonly aliases?: Readonly<Record<string, string>>;
  /** `stomp-subscription-…` names to keep (durable ones, which are deterministic). */
  readonly keepQueueNames?: readonly string[];
}

const DROPPED_HEADERS = new Set(['server', 'session', 'content-length']);
const AMQ_GEN = /amq\.gen-[A-Za-z0-9_-]+/g;
const SUBSCRIPTION_QUEUE = /stomp-subscription-[A-Za-z0-9_-]{22}/g;
// RabbitMQ's session ids: `session-` + 22 base64url characters; they also appear inside error bodies.
const SESSION_ID = /session-[A-Za-z0-9_-]{22}/g;

/**
 * Makes frames from two servers (or two runs) comparable: drops `server`, `session` and
 * `content-length`; keeps only the consumer-tag part of `message-id` and `ack`
 * (`T_sub@@<session>@@<n>` → `T_sub@@*@@*`); replaces `amq.gen-…` names, random
 * `stomp-subscription-…` names and RabbitMQ-style `session-…` ids (in error bodies) with
 * placeholders; applies the aliases. Header order is kept.
 */
export function normalize(frame: Frame, options: NormalizeOptions = {}): NormalizedFrame {
  const keep = new Set(options.keepQueueNames ?? []);
  const text = (s: string): string => {
    let out = s;
    for (const [from, to] of Object.entries(options.aliases ?? {})) out = out.split(from).join(to);
    out = out.replace(AMQ_GEN, 'amq.gen-*').replace(SESSION_ID, 'session-*');
    return out.replace(SUBSCRIPTION_QUEUE, (name) => (keep.has(name) ? name : 'stomp-subscription-*'));
  };
  const headers: Array<[string, string]> = [];
  for (const [name, value] of frame.headers) {
    if (DROPPED_HEADERS.has(name)) continue;
    if (name === 'message-id' || name === 'ack') headers.push([name, text(consumerTagPart(value))]);
    else headers.push([name, text(value)]);
  }
  return { command: frame.command, headers, body: text(bodyText(frame.body)) };
}

export function normalizeAll(frames: readonly Frame[], options: NormalizeOptions = {}): NormalizedFrame[] {
  return frames.map((f) => normalize(f, options));
}

/** `T_sub@@session-x@@7` → `T_sub@@*@@*`; a value without that shape is kept. */
function consumerTagPart(value: string): string {
  const parts = value.split('@@');
  if (parts.length < 3) return value;
  return `${parts.slice(0, -2).join('@@')}@@*@@*`;
}

function bodyText(body: Buffer): string {
  return isUtf8(body) ? body.toString('utf8') : `hex:${body.toString('hex')}`;
}
