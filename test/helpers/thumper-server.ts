// Starts a Thumper gateway inside the test process, on a free loopback port, configured exactly as
// the real binary would be from its environment (loadConfig), so tests exercise the shipped wiring.
// With the RabbitMQ engine Thumper refuses to run without auth, so unless the test configures auth
// itself, an in-process auth-backend answers with RabbitMQ's stock rule: guest/guest may do anything.
// Logs are silent unless TEST_LOG_LEVEL says otherwise (e.g. TEST_LOG_LEVEL=debug).

import { get } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import { loadConfig } from '../../broker/src/server/config.js';
import { startGateway } from '../../broker/src/server/gateway.js';
import { createLogger } from '../../broker/src/server/logger.js';
import type { LogLevel } from '../../broker/src/server/logger.js';

export interface ThumperServer {
  /** ws://127.0.0.1:<port>/ws (the configured WebSocket path). */
  readonly wsUrl: string;
  readonly port: number;
  /** http://127.0.0.1:<port> (SockJS at /stomp, the example page at /). */
  readonly httpUrl: string;
  /** STOMP over TCP (a free port unless the test set THUMPER_TCP_PORT); undefined when disabled. */
  readonly tcpPort: number | undefined;
  readonly tlsPort: number | undefined;
  stop(): Promise<void>;
}

export const GUEST_RULES_FILE = fileURLToPath(new URL('../fixtures/auth-rules-guest.json', import.meta.url));

/** `env` overrides the defaults (and may set any THUMPER_* key, e.g. THUMPER_AMQP_URL). */
export async function startThumper(env: Record<string, string> = {}): Promise<ThumperServer> {
  const base: Record<string, string> = {
    THUMPER_HTTP_PORT: '0',
    THUMPER_HTTP_HOST: '127.0.0.1',
    THUMPER_TCP_PORT: '0',
    THUMPER_TCP_HOST: '127.0.0.1',
    THUMPER_TLS_PORT: '0',
    THUMPER_TLS_HOST: '127.0.0.1',
    // Tests stop gateways often; a test of the drain sets its own window.
    THUMPER_SHUTDOWN_DRAIN_WINDOW_MS: '0',
    THUMPER_LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent',
  };
  const needsAuth = env['THUMPER_ENGINE'] === 'amqp' && env['THUMPER_AUTH_BACKENDS'] === undefined;
  const authBackend = needsAuth
    ? await startAuthBackend({ host: '127.0.0.1', port: 0, rulesFile: GUEST_RULES_FILE, jwtSecret: 'test-secret-for-the-guest-auth-backend-000' })
    : undefined;
  if (authBackend) {
    base['THUMPER_AUTH_BACKENDS'] = 'http';
    base['THUMPER_AUTH_HTTP_BASE_URL'] = `${authBackend.url}/auth`;
  }
  try {
    const loaded = loadConfig({ argv: [], env: { ...base, ...env } });
    if (!loaded.ok) throw new Error(`Thumper test config rejected:\n${loaded.error}`);
    const config = loaded.value;
    // Test logs go to stderr so they never mix with the test runner's report on stdout.
    const log = createLogger({ level: config.log.level as LogLevel, pretty: config.log.pretty }, process.stderr);
    const gateway = await startGateway(config, log);
    const { port } = gateway.httpAddress;
    return {
      wsUrl: `ws://127.0.0.1:${port}${config.ws.path}`,
      port,
      httpUrl: `http://127.0.0.1:${port}`,
      tcpPort: gateway.tcpAddress?.port,
      tlsPort: gateway.tlsAddress?.port,
      stop: async () => {
        await gateway.stop();
        await authBackend?.close();
      },
    };
  } catch (err) {
    await authBackend?.close();
    throw err;
  }
}

/** The status code of a GET to the gateway's HTTP port (e.g. /readyz, /healthz); the body is discarded. */
export function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}
