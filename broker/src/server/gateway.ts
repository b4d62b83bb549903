// Wires one Thumper node: engine, authorizer, HTTP server with the WebSocket endpoint, one session
// per connection; and takes it all down again in an order that lets clients read why.

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createAuthorizer } from '../auth/create-authorizer.js';
import type { AuthSetup } from '../auth/create-authorizer.js';
import { createEngine } from '../engine/create-engine.js';
import type { Engine } from '../engine/engine.js';
import { startSession } from '../session/session.js';
import type { SessionHandle } from '../session/session.js';
import type { WsTransport } from '../transport/ws-transport.js';
import { createWsServer } from '../transport/ws-server.js';
import type { WsServer } from '../transport/ws-server.js';
import { toSessionOptions } from './config.js';
import type { Config } from './config.js';
import { closeServer, createHttpServer, listen } from './http-server.js';

export interface Gateway {
  /** Where the HTTP server listens (the real port when http.port is 0). */
  readonly httpAddress: { readonly host: string; readonly port: number };
  readonly engine: Engine;
  readonly auth: AuthSetup;
  /** Idempotent: stop accepting, close sessions, stop the engine, close the server. */
  stop(): Promise<void>;
}

/** How long sessions get to flush their goodbye before their sockets are dropped. */
const SESSION_CLOSE_GRACE_MS = 3000;

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const engine = createEngine(config, log);
  const auth = await createAuthorizer(config.auth, engine, log);
  if (!auth.ok) throw new StartupError(auth.error);
  const { authorizer } = auth.value;
  try {
    await engine.start();
  } catch (err) {
    auth.value.close();
    throw err;
  }
  const options = toSessionOptions(config);
  const live = new Map<WsTransport, SessionHandle>();
  let connections = 0;
  let stopping = false;

  const wsServer: WsServer = createWsServer({
    path: config.ws.path,
    allowedOrigins: config.ws.allowedOrigins,
    pingIntervalMs: config.ws.pingIntervalMs,
    maxPayloadBytes: config.ws.maxPayloadBytes,
    perMessageDeflate: config.ws.perMessageDeflate,
    log: log.child({ component: 'ws' }),
    onConnection(transport, info) {
      connections += 1;
      const sessionLog = log.child({ conn: connections, transport: 'ws', remote: info.remote });
      try {
        const session = startSession({ transport, engine, authorizer, options, log: sessionLog });
        live.set(transport, session);
        void transport.closed.then(() => live.delete(transport));
        sessionLog.debug({ sessionId: session.id, protocol: info.protocol || undefined }, 'WebSocket connection opened');
      } catch (err) {
        sessionLog.error({ err }, 'session failed to start');
        transport.close(1011, 'internal error');
      }
    },
  });

  const server: Server = createHttpServer({
    wsPath: config.ws.path,
    isReady: () => !stopping && engine.isReady(),
    onUpgrade: (req, socket, head) => wsServer.handleUpgrade(req, socket, head),
  });

  let httpAddress: { host: string; port: number };
  try {
    httpAddress = await listen(server, config.http.host, config.http.port);
  } catch (err) {
    wsServer.close();
    await engine.stop().catch((e: unknown) => log.warn({ err: e }, 'engine stop after failed listen'));
    auth.value.close();
    throw err;
  }

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      wsServer.close();
      const serverClosed = closeServer(server);
      const transports = [...live.keys()];
      for (const session of live.values()) session.close('server-shutdown');
      await settleWithin(Promise.all(transports.map((t) => t.closed)), SESSION_CLOSE_GRACE_MS);
      for (const t of transports) t.terminate();
      try {
        await engine.stop();
      } catch (err) {
        log.warn({ err }, 'engine stop failed');
      }
      auth.value.close();
      server.closeAllConnections();
      await serverClosed;
    })();
    return stopped;
  };

  return { httpAddress, engine, auth: auth.value, stop };
}

/** A configuration problem found while wiring (e.g. an unreadable key file): exit code 2, like config errors. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Waits for `promise`, but no longer than `ms`. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([promise.then(() => undefined), timeout]);
  clearTimeout(timer);
}
