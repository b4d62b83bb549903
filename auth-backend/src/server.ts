// Starts the auth backend on a host and port and hands back its URL and a close(); used by main.ts
// and by tests (port 0 picks a free port).

import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pino from 'pino';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { JwtOptions, LoginRateLimit } from './login.js';
import type { OnDecision } from './protocol.js';
import { loadRules } from './rules.js';
import type { Rules } from './rules.js';

export const JWT_DEFAULTS = { issuer: 'thumper-auth-backend', audience: 'thumper', ttlSeconds: 3600 } as const;

/** In-flight requests get this long to finish on close before their connections are cut. */
const CLOSE_GRACE_MS = 2000;

export interface AuthBackendOptions {
  readonly host: string;
  readonly port: number;
  /** A rules file to load; ignored when `rules` is given. */
  readonly rulesFile?: string | undefined;
  readonly rules?: Rules | undefined;
  readonly jwtSecret: string;
  readonly jwt?: Partial<Omit<JwtOptions, 'secret'>> | undefined;
  /** Default: silent. */
  readonly log?: Logger | undefined;
  readonly onDecision?: OnDecision | undefined;
  readonly loginRateLimit?: Partial<LoginRateLimit> | undefined;
}

export interface RunningAuthBackend {
  /** `http://host:port`, without a trailing slash; the protocol paths are under `/auth`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function resolveRules(options: AuthBackendOptions): Rules {
  if (options.rules !== undefined) return options.rules;
  if (options.rulesFile === undefined) throw new Error('startAuthBackend: give rules or rulesFile');
  const loaded = loadRules(options.rulesFile);
  if (!loaded.ok) throw new Error(loaded.error);
  return loaded.value;
}

export async function startAuthBackend(options: AuthBackendOptions): Promise<RunningAuthBackend> {
  const rules = resolveRules(options);
  const log = options.log ?? pino({ level: 'silent' });
  const app = createApp({
    rules,
    jwt: { secret: options.jwtSecret, ...JWT_DEFAULTS, ...options.jwt },
    log,
    onDecision: options.onDecision,
    loginRateLimit: options.loginRateLimit,
  });
  const server = createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        // RabbitMQ keeps connections alive; idle ones would hold close() open forever.
        server.closeIdleConnections();
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, CLOSE_GRACE_MS).unref();
      });
      return closing;
    },
  };
}
