// One accepted TCP or TLS socket as a Transport: STOMP is a byte stream here, so inbound chunks go
// to the decoder as they come (it splits frames) and each outbound frame is one write. close()
// ends the socket behind what was already written, so an ERROR frame reaches the client first.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Transport, TransportHandlers, WaterMarks } from './transport.js';
import { TransportLifecycle } from './transport-lifecycle.js';
import type { WaterMarkOptions } from './transport-lifecycle.js';
import { TickCork } from './tick-cork.js';

export interface TcpTransportOptions extends WaterMarkOptions {
  readonly kind: 'tcp' | 'tls';
  readonly remoteAddress: string;
  /** The subject CN of a verified client certificate (TLS only). */
  readonly peerCommonName?: string | undefined;
  /** close() destroys the socket if the peer has not finished closing by then (default 5 s). */
  readonly closeTimeoutMs?: number;
}

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
  #life: TransportLifecycle;
  /** Writes whose callback has not run yet. */
  #pendingFrames = 0;
  #cork: TickCork;

  constructor(socket: Socket, options: TcpTransportOptions) {
    this.#socket = socket;
    this.#cork = new TickCork(socket);
    this.kind = options.kind;
    this.remoteAddress = options.remoteAddress;
    if (options.peerCommonName !== undefined) this.peerCommonName = options.peerCommonName;
    this.#life = new TransportLifecycle(options, DEFAULT_CLOSE_TIMEOUT_MS);
    this.closed = this.#life.closed;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => this.#life.notifyClosed());
    // The server allows half-open sockets: a client that stops sending still reads its answers.
    socket.on('end', () => {
      if (!this.#life.closeRequested && !this.#life.peerEnded()) this.close();
    });
    // 'close' always follows 'error' (reset, TLS alert): the session learns of the end from the
    // close handler; the listener only keeps the error from being thrown.
    socket.on('error', () => {});
    if (socket.destroyed) queueMicrotask(() => this.#life.notifyClosed());
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#life.setHandlers(handlers);
  }

  send(data: Buffer): boolean {
    // Dropped after close(): the close handler is on its way.
    if (this.#life.isClosed || this.#socket.destroyed || this.#socket.writableEnded) return true;
    this.#pendingFrames += 1;
    this.#cork.hold();
    this.#socket.write(data, this.#afterWrite);
    this.#cork.wrote(this.#socket.writableLength);
    return this.#life.noteBacklog(this.#socket.writableLength, this.#pendingFrames);
  }

  bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  bufferedFrames(): number {
    return this.#pendingFrames;
  }

  setWaterMarks(marks: WaterMarks): void {
    this.#life.setWaterMarks(marks);
  }

  /** Stops reading: the kernel's receive window fills and TCP holds the client's sends. */
  pause(): boolean {
    this.#socket.pause();
    return true;
  }

  resume(): void {
    this.#socket.resume();
  }

  /** TCP has no close code or reason (they are WebSocket's); taken so callers can treat transports alike. */
  close(_code?: number, _reason?: string): void {
    // end() sends FIN after every pending write. Reading goes on (bytes are discarded) until the
    // peer's FIN: closing with unread bytes would send RST, and a RST makes the client's kernel drop
    // what it has not read yet, the ERROR frame among it.
    this.#life.requestClose(
      () => {
        this.#socket.resume();
        this.#socket.end();
      },
      () => this.terminate(),
    );
  }

  /** Drops the connection at once, pending writes included. */
  terminate(): void {
    this.#cork.release();
    this.#socket.destroy();
  }

  #afterWrite = (): void => {
    this.#pendingFrames = Math.max(0, this.#pendingFrames - 1);
    // A write callback after close (with its error) owes no drain.
    if (!this.#life.isClosed) this.#life.noteFlushed(this.#socket.writableLength, this.#pendingFrames);
  };

  #onData(chunk: Buffer): void {
    if (!this.#life.closeRequested) this.#life.deliver(chunk);
  }
}

/** The subject CN of a client certificate the TLS layer verified against the CA; else undefined. */
export function verifiedPeerCommonName(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}
