// One accepted TCP or TLS socket as a Transport: STOMP is a byte stream here, so inbound chunks go
// to the decoder as they come (it splits frames) and each outbound frame is one write. close()
// ends the socket behind what was already written, so an ERROR frame reaches the client first.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Transport, TransportHandlers } from './transport.js';

export interface TcpTransportOptions {
  readonly kind: 'tcp' | 'tls';
  readonly remoteAddress: string;
  /** The subject CN of a verified client certificate (TLS only). */
  readonly peerCommonName?: string | undefined;
  /** send() returns false once this many bytes wait in the socket (default 1 MiB). */
  readonly highWaterBytes?: number;
  /** `drain` fires when the backlog falls back under this (default 256 KiB). */
  readonly lowWaterBytes?: number;
  /** close() destroys the socket if the peer has not finished closing by then (default 5 s). */
  readonly closeTimeoutMs?: number;
}

const DEFAULT_HIGH_WATER = 1024 * 1024;
const DEFAULT_LOW_WATER = 256 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

export class TcpTransport implements Transport {
  readonly kind: 'tcp' | 'tls';
  readonly remoteAddress: string;
  readonly bearerToken: undefined = undefined;
  /** Raw STOMP has no subprotocol offer: accept-version alone decides. */
  readonly offeredVersions: readonly string[] = [];
  /**
   * The subject CN of the client certificate when the TLS listener verified one; for a future
   * certificate login (RabbitMQ's ssl_cert_login). Nothing authenticates with it today.
   */
  readonly peerCommonName?: string;
  /** Resolves once the socket is closed, whoever closed it. */
  readonly closed: Promise<void>;
  #socket: Socket;
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
  #closeTimer: NodeJS.Timeout | undefined;
  #resolveClosed: () => void = () => {};

  constructor(socket: Socket, options: TcpTransportOptions) {
    this.#socket = socket;
    this.kind = options.kind;
    this.remoteAddress = options.remoteAddress;
    if (options.peerCommonName !== undefined) this.peerCommonName = options.peerCommonName;
    this.#highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER;
    this.#lowWater = Math.min(options.lowWaterBytes ?? DEFAULT_LOW_WATER, this.#highWater);
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => this.#onClose());
    // 'close' always follows 'error' (reset, TLS alert): the session learns of the end from the
    // close handler; the listener only keeps the error from being thrown.
    socket.on('error', () => {});
    if (socket.destroyed) queueMicrotask(() => this.#onClose());
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#handlers = handlers;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) handlers.data(chunk);
    if (this.#isClosed) this.#notifyClose();
  }

  send(data: Buffer): boolean {
    // Dropped after close(): the close handler is on its way.
    if (this.#isClosed || this.#socket.destroyed || this.#socket.writableEnded) return true;
    this.#socket.write(data, this.#afterWrite);
    if (this.#socket.writableLength < this.#highWater) return true;
    this.#needDrain = true;
    return false;
  }

  bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  /** TCP has no close code or reason (they are WebSocket's); taken so callers can treat transports alike. */
  close(_code?: number, _reason?: string): void {
    if (this.#closeRequested || this.#isClosed) return;
    this.#closeRequested = true;
    // end() sends FIN after every pending write. Reading goes on (bytes are discarded) until the
    // peer's FIN: closing with unread bytes would send RST, and a RST makes the client's kernel drop
    // what it has not read yet, the ERROR frame among it.
    this.#socket.end();
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), this.#closeTimeoutMs);
    this.#closeTimer.unref();
  }

  /** Drops the connection at once, pending writes included. */
  terminate(): void {
    this.#socket.destroy();
  }

  #afterWrite = (): void => {
    if (!this.#needDrain || this.#isClosed || this.#socket.writableLength >= this.#lowWater) return;
    this.#needDrain = false;
    this.#handlers?.drain();
  };

  #onData(chunk: Buffer): void {
    if (this.#closeRequested) return;
    if (this.#handlers) this.#handlers.data(chunk);
    else this.#early.push(chunk);
  }

  #onClose(): void {
    if (this.#isClosed) return;
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

/** The subject CN of a client certificate the TLS layer verified against the CA; else undefined. */
export function verifiedPeerCommonName(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}
