// Wires one Thumper node: engine, authorizer, the HTTP server (WebSocket, SockJS, example page), the
// TCP/TLS listeners, one session per connection; and takes it all down again in an order that lets clients read why.

import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { createAuthorizer } from '../auth/create-authorizer.js';
import { stompError } from '../errors.js';
import { spreadCloses } from './drain.js';
import type { AuthSetup } from '../auth/create-authorizer.js';
import { createEngine } from '../engine/create-engine.js';
import { AmqpEngine } from '../engine/amqp/amqp-engine.js';
import type { Engine } from '../engine/engine.js';
import { errorFrame, startSession } from '../session/session.js';
import { encodeFrame } from '../stomp/encoder.js';
import { ConnectionLimit } from '../transport/connection-limit.js';
import { clientIp } from '../transport/credentials.js';
import { refuseUpgrade } from '../transport/refuse-upgrade.js';
import type { SessionHandle } from '../session/session.js';
import { createSockjsServer, type SockjsServer } from '../transport/sockjs-server.js';
import { createTcpServer, type TcpServer, type TcpTlsOptions } from '../transport/tcp-server.js';
import type { Transport } from '../transport/transport.js';
import { createWsServer } from '../transport/ws-server.js';
import type { WsServer } from '../transport/ws-server.js';
import { toSessionOptions } from './config.js';
import type { Config } from './config.js';
import { exampleMount } from './example-page.js';
import { createMetrics, metricsMount, type Metrics } from './metrics.js';
import { closeServer, createHttpServer, listen, type HttpMount } from './http-server.js';
import { settleWithin } from '../settle-within.js';

export interface Gateway {
  /** Where the HTTP server listens (the real port when http.port is 0). */
  readonly httpAddress: { readonly host: string; readonly port: number };
  /** STOMP over TCP / TLS, when enabled. */
  readonly tcpAddress: { readonly host: string; readonly port: number } | undefined;
  readonly tlsAddress: { readonly host: string; readonly port: number } | undefined;
  readonly engine: Engine;
  readonly auth: AuthSetup;
  /** undefined when metrics.enabled is false. */
  readonly metrics: Metrics | undefined;
  /** Idempotent: stop accepting, close sessions, stop the engine, close the server. */
  stop(): Promise<void>;
}

/** How long sessions get to flush their goodbye before their sockets are dropped. */
const SESSION_CLOSE_GRACE_MS = 3000;

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const metrics = config.metrics.enabled ? createMetrics() : undefined;
  const engine = createEngine(
    config,
    log,
    metrics ? { onConfirm: metrics.publishConfirmed, onRestore: metrics.amqpSessionRestored, onBind: metrics.sharedKeyBound } : {},
  );
  const auth = await createAuthorizer(
    config.auth,
    engine,
    log,
    metrics ? { onDecision: metrics.authDecision, onBackendRequest: metrics.authBackendRequest } : {},
  );
  if (!auth.ok) throw new StartupError(auth.error);
  const { authorizer } = auth.value;
  try {
    await engine.start();
  } catch (err) {
    auth.value.close();
    throw err;
  }
  const options = toSessionOptions(config);
  const live = new Map<LiveTransport, SessionHandle>();
  let connections = 0;
  let stopping = false;
  metrics?.setSources({
    authCache: () => auth.value.cacheStats(),
    ...(engine instanceof AmqpEngine ? { amqpConnections: () => engine.connections(), sharedFanout: () => engine.sharedStats() } : {}),
    bufferedBytes: () => [...live.keys()].map((t) => t.bufferedBytes()),
  });

  // limits.maxConnectionsPerAddress: a WebSocket is counted at its upgrade (and refused with 429
  // there); SockJS sessions and TCP/TLS sockets when they arrive here, refused with an ERROR.
  const perAddress = new ConnectionLimit(config.limits.maxConnectionsPerAddress);
  const tooMany = (address: string) =>
    stompError('TOO_MANY_CONNECTIONS', `too many connections from ${address} (limits.maxConnectionsPerAddress is ${perAddress.max})\n`);
  const admit = (transport: LiveTransport, remote: string): boolean => {
    const release = perAddress.acquire(transport.remoteAddress);
    if (release) {
      void transport.closed.then(release);
      return true;
    }
    const error = tooMany(transport.remoteAddress);
    metrics?.connectionRefused(transport.kind);
    log.warn({ transport: transport.kind, remote, limit: perAddress.max }, 'connection refused: too many connections from its address');
    transport.send(encodeFrame(errorFrame(error), '1.2'));
    transport.close(1008, error.message);
    return false;
  };

  /** One STOMP session per connection, whatever carried it; `counted`: already admitted (WebSocket). */
  const openSession = (transport: LiveTransport, remote: string, detail: Record<string, unknown> = {}, counted = false): void => {
    if (!counted && !admit(transport, remote)) return;
    connections += 1;
    const logBindings = { conn: connections, transport: transport.kind, remote };
    try {
      const session = startSession({ transport, engine, authorizer, options, log, logBindings, ...(metrics ? { metrics } : {}) });
      live.set(transport, session);
      void transport.closed.then(() => live.delete(transport));
      if (log.isLevelEnabled('debug')) log.debug({ ...logBindings, sessionId: session.id, ...detail }, 'connection opened');
    } catch (err) {
      log.error({ err, ...logBindings }, 'session failed to start');
      transport.close(1011, 'internal error');
    }
  };

  const wsServer: WsServer = createWsServer({
    path: config.ws.path,
    allowedOrigins: config.ws.allowedOrigins,
    pingIntervalMs: config.ws.pingIntervalMs,
    maxPayloadBytes: config.ws.maxPayloadBytes,
    perMessageDeflate: config.ws.perMessageDeflate,
    log: log.child({ component: 'ws' }),
    onConnection: (transport, info) => openSession(transport, info.remote, { protocol: info.protocol || undefined }, true),
  });

  const sockjsServer: SockjsServer | undefined = config.sockjs.enabled
    ? createSockjsServer({
        prefix: config.sockjs.path,
        log: log.child({ component: 'sockjs' }),
        heartbeatDelayMs: config.sockjs.heartbeatDelayMs,
        disconnectDelayMs: config.sockjs.disconnectDelayMs,
        maxMessageBytes: config.ws.maxPayloadBytes,
        onConnection: (transport, info) => openSession(transport, info.remote, { protocol: info.protocol }),
      })
    : undefined;

  /** Every socket of the HTTP port, upgraded ones included, so stop can cut what lingers. */
  const sockets = new Set<Socket>();
  const mounts: HttpMount[] = [];
  if (metrics) mounts.push(metricsMount(metrics));
  if (sockjsServer) mounts.push(sockjsServer.mount);
  if (config.sockjs.examplePage) mounts.push(exampleMount({ log: log.child({ component: 'example-page' }) }));

  const server: Server = createHttpServer({
    wsPath: config.ws.path,
    isReady: () => !stopping && engine.isReady() && auth.value.isReady(),
    onUpgrade: (req, socket, head) => {
      const address = clientIp(req.socket.remoteAddress);
      const release = perAddress.acquire(address);
      if (!release) {
        socket.on('error', () => {}); // a reset while we answer is the peer's business
        metrics?.connectionRefused('ws');
        log.warn({ transport: 'ws', remote: address, limit: perAddress.max }, 'WebSocket upgrade refused: too many connections from its address');
        refuseUpgrade(socket, 429, tooMany(address).detail.trim());
        return;
      }
      // The raw socket closes when the WebSocket does (or when the upgrade is refused for another reason).
      socket.once('close', release);
      wsServer.handleUpgrade(req, socket, head);
    },
    mounts,
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const listeners: TcpServer[] = [];
  const closeListeners = () => {
    wsServer.close();
    sockjsServer?.close();
    for (const l of listeners) l.close();
  };
  let httpAddress: { host: string; port: number };
  let tcpAddress: { host: string; port: number } | undefined;
  let tlsAddress: { host: string; port: number } | undefined;
  try {
    httpAddress = await listen(server, config.http.host, config.http.port);
    if (config.tcp.enabled) {
      const tcp = await createTcpServer({
        host: config.tcp.host,
        port: config.tcp.port,
        keepAliveInitialDelayMs: config.tcp.keepAliveMs,
        log: log.child({ component: 'tcp' }),
        onConnection: (transport, info) => openSession(transport, info.remote),
      });
      listeners.push(tcp);
      tcpAddress = tcp.address;
    }
    if (config.tls.enabled) {
      const tls = await createTcpServer({
        host: config.tls.host,
        port: config.tls.port,
        tls: await readTlsFiles(config.tls),
        keepAliveInitialDelayMs: config.tcp.keepAliveMs,
        log: log.child({ component: 'tls' }),
        onConnection: (transport, info) => openSession(transport, info.remote),
      });
      listeners.push(tls);
      tlsAddress = tls.address;
    }
  } catch (err) {
    closeListeners();
    await closeServer(server);
    await engine.stop().catch((e: unknown) => log.warn({ err: e }, 'engine stop after failed listen'));
    auth.value.close();
    throw err;
  }

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true; // /readyz answers 503: load balancers stop sending new clients here
      closeListeners();
      const sessions = [...live.entries()];
      const goodbye = stompError('SERVER_SHUTDOWN', 'This Thumper node is shutting down; reconnect (another node will serve you)\n');
      const closing: Array<Promise<void>> = [];
      const { drainWindowMs, confirmWaitMs } = config.shutdown;
      log.info({ sessions: sessions.length, drainWindowMs }, 'draining: closing sessions spread over the drain window');
      const drain = spreadCloses(sessions, ([, session]) => closing.push(session.closeGracefully('server-shutdown', goodbye, confirmWaitMs)), drainWindowMs);
      await drain.done;
      await Promise.all(closing);
      await settleWithin(Promise.all(sessions.map(([t]) => t.closed)), SESSION_CLOSE_GRACE_MS);
      for (const [t] of sessions) t.terminate();
      // The HTTP server stayed up during the drain: SockJS polling sessions need it to read their ERROR.
      const serverClosed = closeServer(server);
      try {
        await engine.stop();
      } catch (err) {
        log.warn({ err }, 'engine stop failed');
      }
      auth.value.close();
      server.closeAllConnections();
      // A socket that never became a session (e.g. an upgrade refused mid-handshake) must not hold
      // the stop forever: after the grace, what is left is cut.
      await settleWithin(serverClosed, SESSION_CLOSE_GRACE_MS);
      for (const socket of sockets) socket.destroy();
      await serverClosed;
    })();
    return stopped;
  };

  return { httpAddress, tcpAddress, tlsAddress, engine, auth: auth.value, metrics, stop };
}

/** What every transport that carries a session offers the gateway for shutdown. */
type LiveTransport = Transport & { readonly closed: Promise<void>; terminate(): void };

async function readTlsFiles(tls: Config['tls']): Promise<TcpTlsOptions> {
  const read = async (file: string | undefined, key: string): Promise<string | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file, 'utf8');
    } catch (e) {
      throw new StartupError(`Invalid configuration: ${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  // One after the other: with several bad files, the error names the first in this order every
  // time (in parallel, whichever read failed first won).
  const cert = await read(tls.certFile, 'tls.certFile');
  const key = await read(tls.keyFile, 'tls.keyFile');
  const ca = await read(tls.caFile, 'tls.caFile');
  if (cert === undefined || key === undefined) throw new StartupError('Invalid configuration: tls: tls.certFile and tls.keyFile are required');
  return { cert, key, ...(ca !== undefined ? { ca } : {}), requestClientCert: tls.requestClientCert || tls.requireClientCert, requireClientCert: tls.requireClientCert };
}

/** A configuration problem found while wiring (e.g. an unreadable key file): exit code 2, like config errors. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}
