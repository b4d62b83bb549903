// One SockJS session (`sockjs` 0.3) as a Transport. SockJS carries text messages over whichever
// transport the browser managed to open (websocket, xhr-streaming, xhr-polling, eventsource,
// htmlfile, jsonp); a SockJS session outlives the HTTP requests of the polling transports, so one
// SockJS session is one STOMP session. Each outbound STOMP frame, and each heart-beat EOL, is one
// SockJS message: STOMP heart-beats therefore work over every SockJS transport (RabbitMQ's SockJS
// endpoint could not send them and had to disable heart-beats, reference §7).

import { isUtf8 } from 'node:buffer';
import type { Connection } from 'sockjs';
import type { Logger } from 'pino';
import type { Transport, TransportHandlers, WaterMarks } from './transport.js';
import { TransportLifecycle } from './transport-lifecycle.js';

export interface SockjsTransportOptions {
  readonly remoteAddress: string;
  readonly bearerToken?: string | undefined;
  /** A decoded inbound message over this many UTF-8 bytes closes the session with 1009. */
  readonly maxMessageBytes: number;
  /** send() returns false once about this many bytes wait (default 1 MiB). */
  readonly highWaterBytes?: number;
  /** `drain` fires when the backlog falls back under this (default 256 KiB). */
  readonly lowWaterBytes?: number;
  /** How often a transport over the high-water mark looks again for `drain` (default 50 ms). */
  readonly drainCheckMs?: number;
  /**
   * close() drops the session if it has not ended by then (default 10 s). SockJS ends a closed
   * session itself after its disconnect delay; this bounds the raw WebSocket endpoint too.
   */
  readonly closeTimeoutMs?: number;
  /** Warned once per session when a frame is not valid UTF-8 (see send()). */
  readonly log?: Logger;
}

const DEFAULT_DRAIN_CHECK_MS = 50;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/**
 * The parts of `sockjs` 0.3's (undocumented) session objects this transport reads: the messages
 * waiting for the next poll, the receiver (HTTP response or WebSocket) currently attached, and the
 * socket under it. Every field is optional and checked: a sockjs upgrade that moves them only
 * makes bufferedBytes() report less and terminate() fall back to close().
 */
interface SockjsSessionInternals {
  session_id?: string | null;
  readyState?: number;
  send_buffer?: string[];
  to_tref?: NodeJS.Timeout | null;
  recv?: SockjsReceiverInternals | null;
  /** Only on the raw WebSocket endpoint's session. */
  ws?: { close(code?: number, reason?: string): void } | null;
  didTimeout?: () => void;
}

interface SockjsReceiverInternals {
  /** The socket the receiver listens on (HTTP request socket or WebSocket socket). */
  thingy?: SocketLike | null;
  /** The raw WebSocket endpoint keeps its socket here. */
  connection?: SocketLike | null;
}

interface SocketLike {
  readonly writableLength?: number;
  destroy(): void;
}

/** `sockjs` Transport.CLOSED. */
const SOCKJS_CLOSED = 3;

export class SockjsTransport implements Transport {
  readonly kind = 'sockjs' as const;
  readonly remoteAddress: string;
  readonly bearerToken: string | undefined;
  /** SockJS has no subprotocol: the version comes from CONNECT's accept-version alone. */
  readonly offeredVersions: readonly string[] = [];
  /** Resolves once the SockJS session has ended, whoever ended it. */
  readonly closed: Promise<void>;
  #conn: Connection;
  #life: TransportLifecycle;
  #maxMessageBytes: number;
  #drainCheckMs: number;
  #log: Logger | undefined;
  #warnedLossy = false;
  #drainTimer: NodeJS.Timeout | undefined;

  constructor(conn: Connection, options: SockjsTransportOptions) {
    this.#conn = conn;
    this.remoteAddress = options.remoteAddress;
    this.bearerToken = options.bearerToken;
    this.#life = new TransportLifecycle(options, DEFAULT_CLOSE_TIMEOUT_MS);
    this.closed = this.#life.closed;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#drainCheckMs = options.drainCheckMs ?? DEFAULT_DRAIN_CHECK_MS;
    this.#log = options.log;
    conn.on('data', (message: unknown) => this.#onMessage(message));
    conn.on('close', () => this.#onClose());
  }

  /** The SockJS transport that opened the session: `websocket`, `xhr-streaming`, `xhr-polling`… */
  get protocol(): string {
    return String(this.#conn.protocol ?? '');
  }

  /** SockJS's session id from the URL (absent for the websocket transports, which have no URL id). */
  get sessionId(): string | undefined {
    return this.#internals()?.session_id ?? undefined;
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#life.setHandlers(handlers);
  }

  /**
   * One STOMP frame (or heart-beat EOL) as one SockJS message. SockJS messages are text (JSON
   * strings on the wire), so a frame must be valid UTF-8 to arrive intact. A frame that is not (a
   * binary body, e.g. published over AMQP) is sent decoded as UTF-8 with each invalid sequence
   * replaced by U+FFFD: the session stays up but that body is altered (and its content-length no
   * longer matches). Clients that need binary bodies must use the WebSocket endpoint, which sends
   * such frames as binary messages.
   */
  send(data: Buffer): boolean {
    if (this.#ending()) return true; // dropped: the session is ending
    if (!this.#warnedLossy && !isUtf8(data)) {
      this.#warnedLossy = true;
      this.#log?.warn('frame is not valid UTF-8: sent over SockJS with replacement characters');
    }
    this.#conn.write(data.toString('utf8'));
    if (this.#life.noteBacklog(this.bufferedBytes(), this.bufferedFrames())) return true;
    this.#watchDrain();
    return false;
  }

  /**
   * Approximate backlog: messages SockJS holds for the next poll (counted in UTF-16 units, which is
   * cheap and close enough for a water mark) plus bytes queued in the socket of the receiver that
   * is attached now. 0 when sockjs exposes neither.
   */
  bufferedBytes(): number {
    const s = this.#internals();
    if (!s) return 0;
    let pending = 0;
    for (const m of s.send_buffer ?? []) pending += m.length;
    return pending + (this.#socket(s)?.writableLength ?? 0);
  }

  /** Messages SockJS holds for the next poll; those already written to a socket are not counted. */
  bufferedFrames(): number {
    return this.#internals()?.send_buffer?.length ?? 0;
  }

  setWaterMarks(marks: WaterMarks): void {
    this.#life.setWaterMarks(marks);
  }

  /**
   * SockJS cannot stop its peer: messages come in HTTP requests (xhr_send, jsonp_send) that must be
   * answered, and the websocket transports' sockets are sockjs's own. Each message is bounded by
   * maxMessageBytes; the session bounds how many it holds (see session/inbound-flow.ts).
   */
  pause(): boolean {
    return false;
  }

  resume(): void {}

  /**
   * Closes after what was already sent: SockJS delivers its buffered messages before the close
   * frame, on the open stream or on the client's next poll; a client that never polls again is
   * dropped after SockJS's disconnect delay (or closeTimeoutMs, whichever is first).
   */
  close(code = 1000, reason = ''): void {
    this.#life.requestClose(
      () => {
        this.#stopDrainWatch();
        // The close frame reaches browsers as CloseEvent.code/reason; keep it to what they accept.
        // On the raw /websocket endpoint faye-websocket throws on any other code (1007, 1008,
        // 1011…) after marking the session closing, which would crash the process.
        const allowed = this.protocol !== 'websocket-raw' || code === 1000 || (code >= 3000 && code <= 4999);
        const wireCode = allowed ? code : 1000;
        (this.#conn.close as (code?: number, reason?: string) => boolean)(wireCode, reason);
      },
      () => this.terminate(),
    );
  }

  /** Drops the session at once: destroys the attached socket, or times the session out now. */
  terminate(): void {
    if (this.#life.isClosed) return;
    const s = this.#internals();
    const socket = s ? this.#socket(s) : undefined;
    if (socket) {
      // The receiver sees its socket close and ends the session without a disconnect delay.
      socket.destroy();
      return;
    }
    if (s?.didTimeout && !s.recv && s.readyState !== SOCKJS_CLOSED) {
      if (s.to_tref) clearTimeout(s.to_tref);
      s.to_tref = null;
      s.didTimeout();
      return;
    }
    (this.#conn.close as (code?: number, reason?: string) => boolean)(1001, 'terminated');
  }

  #internals(): SockjsSessionInternals | undefined {
    const session = (this.#conn as unknown as { _session?: SockjsSessionInternals | null })._session;
    return session ?? undefined;
  }

  #socket(s: SockjsSessionInternals): SocketLike | undefined {
    return s.recv?.thingy ?? s.recv?.connection ?? undefined;
  }

  #watchDrain(): void {
    if (this.#drainTimer) return;
    // SockJS has no drain event and swaps sockets between polls: look again until under low water.
    this.#drainTimer = setInterval(() => {
      this.#life.noteFlushed(this.bufferedBytes(), this.bufferedFrames());
      // Still owed when a drain handler went over the high-water mark again: keep looking.
      if (!this.#life.drainPending) this.#stopDrainWatch();
    }, this.#drainCheckMs);
    this.#drainTimer.unref();
  }

  #stopDrainWatch(): void {
    if (this.#drainTimer) clearInterval(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  #ending(): boolean {
    return this.#life.isClosed || this.#life.closeRequested;
  }

  #onMessage(message: unknown): void {
    if (this.#ending()) return;
    let chunk: Buffer;
    if (typeof message === 'string') chunk = Buffer.from(message, 'utf8');
    else if (Buffer.isBuffer(message)) chunk = message; // a binary message on the raw WebSocket endpoint
    else {
      // sockjs JSON-parses each message; sockjs-client only ever sends strings.
      this.close(1007, 'SockJS messages must be strings');
      return;
    }
    if (chunk.length > this.#maxMessageBytes) {
      this.close(1009, 'Message too big');
      return;
    }
    this.#life.deliver(chunk);
  }

  #onClose(): void {
    this.#stopDrainWatch();
    this.#life.notifyClosed();
  }
}
