// The raw STOMP listeners: plain TCP (RabbitMQ's port 61613) and TLS (61614), with TCP keepalive so
// a peer that vanished without a FIN (a half-open connection) is found even when no heart-beat was
// negotiated. Each accepted socket becomes a TcpTransport handed to `onConnection`.

import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { clientIp } from './credentials.js';
import { TcpTransport, verifiedPeerCommonName } from './tcp-transport.js';

export interface TcpTlsOptions {
  /** PEM private key and certificate chain of the server. */
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  /** PEM CA certificates client certificates are verified against (default: Node's root CAs). */
  readonly ca?: string | Buffer;
  /** Ask clients for a certificate; one that does not verify is accepted without a peerCommonName. */
  readonly requestClientCert: boolean;
  /** Refuse the handshake unless the client presents a certificate that verifies (implies request). */
  readonly requireClientCert: boolean;
}

export interface TcpServerOptions {
  readonly host: string;
  /** 0 picks a free port (see `address`). */
  readonly port: number;
  /** Present: the listener speaks TLS. */
  readonly tls?: TcpTlsOptions;
  /** Idle time before the first TCP keepalive probe (default 60 s); 0 disables keepalive. */
  readonly keepAliveInitialDelayMs?: number;
  /** Disable Nagle's algorithm so small frames (receipts, heart-beats) go out at once (default true). */
  readonly noDelay?: boolean;
  /** Connections past this are dropped on accept (default: no limit). */
  readonly maxConnections?: number;
  /** A TLS handshake not done by then is abandoned (default 5 s, as RabbitMQ's ssl_handshake_timeout). */
  readonly handshakeTimeoutMs?: number;
  readonly log: Logger;
  readonly onConnection: (transport: TcpTransport, info: TcpConnectionInfo) => void;
  /** Passed to each TcpTransport (tests use small values). */
  readonly highWaterBytes?: number;
  readonly lowWaterBytes?: number;
  readonly closeTimeoutMs?: number;
}

export interface TcpConnectionInfo {
  /** `address:port` of the peer, for logs. */
  readonly remote: string;
}

export interface TcpServer {
  /** Where the listener is bound (the real port when `port` was 0). */
  readonly address: { readonly host: string; readonly port: number };
  /** Open transports (TLS sockets still in their handshake are not counted). */
  readonly connectionCount: number;
  /** The open transports, for shutdown. */
  readonly transports: ReadonlySet<TcpTransport>;
  /**
   * Stops accepting. Open transports are the caller's to close; a TLS handshake in progress ends by
   * itself within handshakeTimeoutMs.
   */
  close(): void;
}

const DEFAULT_KEEPALIVE_INITIAL_DELAY_MS = 60_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;

export async function createTcpServer(options: TcpServerOptions): Promise<TcpServer> {
  const { log, tls } = options;
  const kind = tls ? 'tls' : 'tcp';
  const keepAliveMs = options.keepAliveInitialDelayMs ?? DEFAULT_KEEPALIVE_INITIAL_DELAY_MS;
  const noDelay = options.noDelay ?? true;
  const transports = new Set<TcpTransport>();

  function accept(socket: Socket, peerCommonName: string | undefined): void {
    const transport = new TcpTransport(socket, {
      kind,
      remoteAddress: clientIp(socket.remoteAddress),
      peerCommonName,
      ...(options.highWaterBytes !== undefined ? { highWaterBytes: options.highWaterBytes } : {}),
      ...(options.lowWaterBytes !== undefined ? { lowWaterBytes: options.lowWaterBytes } : {}),
      ...(options.closeTimeoutMs !== undefined ? { closeTimeoutMs: options.closeTimeoutMs } : {}),
    });
    transports.add(transport);
    void transport.closed.then(() => transports.delete(transport));
    options.onConnection(transport, { remote: remoteOf(socket) });
  }

  const server: Server = tls
    ? createTlsServer(
        {
          key: tls.key,
          cert: tls.cert,
          ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
          requestCert: tls.requestClientCert || tls.requireClientCert,
          rejectUnauthorized: tls.requireClientCert,
          handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
          allowHalfOpen: true,
        },
        (socket: TLSSocket) => accept(socket, verifiedPeerCommonName(socket)),
      )
    : // Half-open: after the client's FIN, answers to what it sent (receipts) can still reach it.
      createNetServer({ allowHalfOpen: true }, (socket) => accept(socket, undefined));

  // Runs for every accepted TCP socket, before any TLS handshake, so keepalive covers the handshake.
  server.on('connection', (socket: Socket) => {
    socket.setKeepAlive(keepAliveMs > 0, keepAliveMs);
    socket.setNoDelay(noDelay);
    // Handshake failures surface as tlsClientError; this only keeps a raw-socket error from being thrown.
    if (tls) socket.on('error', () => {});
  });
  if (tls) {
    // A bad or missing client certificate, plain text on the TLS port, a timeout: the peer's problem.
    server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      // A client certificate that does not verify is refused after the handshake (Node checks it
      // there), so err is only a hang-up; authorizationError says why.
      const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined;
      log.info({ remote: remoteOf(socket), code: err.code, err: err.message, authorizationError }, 'TLS handshake failed');
    });
  }
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
  server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
    log.warn({ remote: `${data?.remoteAddress ?? 'unknown'}:${data?.remotePort ?? 0}`, maxConnections: options.maxConnections }, 'connection dropped: too many connections');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // After listen, errors are accept failures (EMFILE and the like): logged, the listener carries on.
  server.on('error', (err) => log.error({ err }, `${kind.toUpperCase()} listener error`));

  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    get connectionCount() {
      return transports.size;
    },
    transports,
    close() {
      server.close();
    },
  };
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
}
