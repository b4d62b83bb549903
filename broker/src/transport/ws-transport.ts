// One `ws` WebSocket as a Transport: inbound messages (text or binary) become Buffers for the STOMP
// decoder, each outbound STOMP frame (or heart-beat EOL) becomes exactly one WebSocket message
// (reference §4, "Frames out"), and close() flushes what was sent before the close frame.

import { isUtf8 } from 'node:buffer';
import type { RawData, WebSocket } from 'ws';
import type { Transport, TransportHandlers } from './transport.js';

export interface WsTransportOptions {
  readonly remoteAddress: string;
  readonly bearerToken?: string | undefined;
  /** STOMP versions from the Sec-WebSocket-Protocol offer, highest first. */
  readonly offeredVersions: readonly string[];
  /** send() returns false once this many bytes wait in the socket (default 1 MiB). */
  readonly highWaterBytes?: number;
  /** `drain` fires when the backlog falls back under this (default 256 KiB). */
  readonly lowWaterBytes?: number;
  /** close() terminates the socket if the closing handshake is not done by then (default 5 s). */
  readonly closeTimeoutMs?: number;
}

const DEFAULT_HIGH_WATER = 1024 * 1024;
const DEFAULT_LOW_WATER = 256 * 1024;
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
  #highWater: number;
  #lowWater: number;
  #closeTimeoutMs: number;
  #handlers: TransportHandlers | undefined;
  /** Chunks that arrived before setHandlers (normally none: handlers are set synchronously). */
  #early: Buffer[] = [];
  #isClosed = false;
  #closeNotified = false;
  #closeRequested = false;
  #needDrain = false;
  #alive = true;
  #closeTimer: NodeJS.Timeout | undefined;
  #resolveClosed: () => void = () => {};

  constructor(ws: WebSocket, options: WsTransportOptions) {
    this.#ws = ws;
    this.remoteAddress = options.remoteAddress;
    this.bearerToken = options.bearerToken;
    this.offeredVersions = options.offeredVersions;
    this.#highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER;
    this.#lowWater = Math.min(options.lowWaterBytes ?? DEFAULT_LOW_WATER, this.#highWater);
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    ws.on('message', (data: RawData) => this.#onData(toBuffer(data)));
    ws.on('pong', () => {
      this.#alive = true;
    });
    ws.on('close', () => this.#onClose());
    // 'close' always follows 'error' (bad UTF-8 → 1007, too big → 1009, reset): the session learns
    // of the end from the close handler; the listener only keeps the error from being thrown.
    ws.on('error', () => {});
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#handlers = handlers;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) handlers.data(chunk);
    if (this.#isClosed) this.#notifyClose();
  }

  send(data: Buffer): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return true; // dropped: the close handler is on its way
    // Text when the bytes are valid UTF-8, binary otherwise: a browser fails the whole connection on
    // invalid UTF-8 in a text message (RFC 6455 §8.1), and STOMP bodies may be arbitrary bytes.
    // (RabbitMQ sends text regardless, reference §4; this is the one behaviour we change on purpose.)
    this.#ws.send(data, { binary: !isUtf8(data) }, this.#afterWrite);
    if (this.#ws.bufferedAmount < this.#highWater) return true;
    this.#needDrain = true;
    return false;
  }

  bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  close(code = 1000, reason = ''): void {
    if (this.#closeRequested || this.#isClosed) return;
    this.#closeRequested = true;
    // ws queues the close frame behind every message already sent, then waits for the peer's reply.
    this.#ws.close(validCloseCode(code), truncateReason(reason));
    this.#closeTimer = setTimeout(() => this.#ws.terminate(), this.#closeTimeoutMs);
    this.#closeTimer.unref();
  }

  /** Drops the connection at once, without a closing handshake. */
  terminate(): void {
    this.#ws.terminate();
  }

  /**
   * One ping-interval tick: a peer that answered nothing (no pong, no message) since the previous
   * tick is dead and terminated (returns false); otherwise it is pinged again.
   */
  pingTick(): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return true;
    if (!this.#alive) {
      this.#ws.terminate();
      return false;
    }
    this.#alive = false;
    this.#ws.ping();
    return true;
  }

  #afterWrite = (): void => {
    if (!this.#needDrain || this.#ws.bufferedAmount >= this.#lowWater) return;
    this.#needDrain = false;
    this.#handlers?.drain();
  };

  #onData(chunk: Buffer): void {
    // Any inbound message proves the peer alive: a pong may be queued behind a large upload.
    this.#alive = true;
    if (this.#handlers) this.#handlers.data(chunk);
    else this.#early.push(chunk);
  }

  #onClose(): void {
    this.#isClosed = true;
    if (this.#closeTimer) clearTimeout(this.#closeTimer);
    this.#resolveClosed();
    if (this.#handlers) this.#notifyClose();
  }

  #notifyClose(): void {
    if (this.#closeNotified) return;
    this.#closeNotified = true;
    this.#handlers?.close();
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
