// One `ws` WebSocket as a Transport: inbound messages (text or binary) become Buffers for the STOMP
// decoder, each outbound STOMP frame (or heart-beat EOL) becomes exactly one WebSocket message
// (reference §4, "Frames out"), and close() flushes what was sent before the close frame. The frames
// of one tick share one socket write (tick-cork.ts); each is still its own WebSocket message.

import { isUtf8 } from 'node:buffer';
import type { RawData, WebSocket } from 'ws';
import type { Transport, TransportHandlers, WaterMarks } from './transport.js';
import { TransportLifecycle } from './transport-lifecycle.js';
import type { WaterMarkOptions } from './transport-lifecycle.js';
import { TickCork, type Corkable } from './tick-cork.js';

export interface WsTransportOptions extends WaterMarkOptions {
  readonly remoteAddress: string;
  readonly bearerToken?: string | undefined;
  /** STOMP versions from the Sec-WebSocket-Protocol offer, highest first. */
  readonly offeredVersions: readonly string[];
  /** close() terminates the socket if the closing handshake is not done by then (default 5 s). */
  readonly closeTimeoutMs?: number;
  /** The upgraded socket under `ws`: corked per tick so a burst of frames leaves in one write. */
  readonly socket?: Corkable | undefined;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of which hold the code. */
const MAX_CLOSE_REASON_BYTES = 123;

export class WsTransport implements Transport {
  readonly kind = 'ws' as const;
  readonly remoteAddress: string;
  readonly bearerToken: string | undefined;
  readonly offeredVersions: readonly string[];
  /** Resolves once the socket is closed, whoever closed it. */
  readonly closed: Promise<void>;
  #ws: WebSocket;
  #life: TransportLifecycle;
  #alive = true;
  /** Messages handed to ws whose write callback has not run yet. */
  #pendingFrames = 0;
  /** Reading stopped by pause(): the peer cannot answer pings meanwhile and is not held to them. */
  #paused = false;
  #cork: TickCork | undefined;

  constructor(ws: WebSocket, options: WsTransportOptions) {
    this.#ws = ws;
    this.remoteAddress = options.remoteAddress;
    this.bearerToken = options.bearerToken;
    this.offeredVersions = options.offeredVersions;
    this.#cork = options.socket ? new TickCork(options.socket) : undefined;
    this.#life = new TransportLifecycle(options, DEFAULT_CLOSE_TIMEOUT_MS);
    this.closed = this.#life.closed;
    ws.on('message', (data: RawData) => this.#onData(toBuffer(data)));
    ws.on('pong', () => {
      this.#alive = true;
    });
    ws.on('close', () => this.#life.notifyClosed(this.#pingTimedOut ? 'ping-timeout' : undefined));
    // 'close' always follows 'error' (bad UTF-8 → 1007, too big → 1009, reset): the session learns
    // of the end from the close handler; the listener only keeps the error from being thrown.
    ws.on('error', () => {});
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#life.setHandlers(handlers);
  }

  send(data: Buffer): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return true; // dropped: the close handler is on its way
    // Text when the bytes are valid UTF-8, binary otherwise: a browser fails the whole connection on
    // invalid UTF-8 in a text message (RFC 6455 §8.1), and STOMP bodies may be arbitrary bytes.
    // (RabbitMQ sends text regardless, reference §4; this is the one behaviour we change on purpose.)
    this.#pendingFrames += 1;
    this.#cork?.hold();
    this.#ws.send(data, { binary: !isUtf8(data) }, this.#afterWrite);
    this.#cork?.wrote(this.#ws.bufferedAmount);
    return this.#life.noteBacklog(this.#ws.bufferedAmount, this.#pendingFrames);
  }

  bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  bufferedFrames(): number {
    return this.#pendingFrames;
  }

  setWaterMarks(marks: WaterMarks): void {
    this.#life.setWaterMarks(marks);
  }

  /** Pauses the underlying socket: TCP flow control then holds the client's further messages. */
  pause(): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return true;
    this.#paused = true;
    this.#ws.pause();
    return true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Time spent paused by us is no silence of the peer's.
    this.#alive = true;
    this.#ws.resume();
  }

  close(code = 1000, reason = ''): void {
    // The closing handshake needs the peer's close frame read.
    this.resume();
    this.#life.requestClose(
      // ws queues the close frame behind every message already sent, then waits for the peer's reply.
      () => this.#ws.close(validCloseCode(code), truncateReason(reason)),
      () => this.terminate(),
    );
  }

  /** Drops the connection at once, without a closing handshake. */
  terminate(): void {
    this.#cork?.release();
    this.#ws.terminate();
  }

  /**
   * One ping-interval tick: a peer that answered nothing (no pong, no message) since the previous
   * tick is dead and terminated (returns false); otherwise it is pinged again.
   */
  #pingTimedOut = false;

  pingTick(): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return true;
    // A pong cannot be read while we hold the socket paused: the peer is not dead for that.
    if (this.#paused) return true;
    if (!this.#alive) {
      this.#pingTimedOut = true;
      this.terminate();
      return false;
    }
    this.#alive = false;
    this.#ws.ping();
    return true;
  }

  #afterWrite = (): void => {
    this.#pendingFrames = Math.max(0, this.#pendingFrames - 1);
    this.#life.noteFlushed(this.#ws.bufferedAmount, this.#pendingFrames);
  };

  #onData(chunk: Buffer): void {
    // Any inbound message proves the peer alive: a pong may be queued behind a large upload.
    this.#alive = true;
    this.#life.deliver(chunk);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Codes an endpoint may send (RFC 6455 §7.4); anything else becomes 1000. */
function validCloseCode(code: number): number {
  const ok = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
  return ok ? code : 1000;
}

function truncateReason(reason: string): string {
  let out = reason.slice(0, MAX_CLOSE_REASON_BYTES);
  while (Buffer.byteLength(out) > MAX_CLOSE_REASON_BYTES) out = out.slice(0, -1);
  return out;
}
