// Starts a Thumper gateway inside the test process, on a free loopback port, configured exactly as
// the real binary would be from its environment (loadConfig), so tests exercise the shipped wiring.
// Logs are silent unless TEST_LOG_LEVEL says otherwise (e.g. TEST_LOG_LEVEL=debug).

import { loadConfig } from '../../broker/src/server/config.js';
import { startGateway } from '../../broker/src/server/gateway.js';
import { createLogger } from '../../broker/src/server/logger.js';
import type { LogLevel } from '../../broker/src/server/logger.js';

export interface ThumperServer {
  /** ws://127.0.0.1:<port>/ws (the configured WebSocket path). */
  readonly wsUrl: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** `env` overrides the defaults (and may set any THUMPER_* key, e.g. THUMPER_AMQP_URL). */
export async function startThumper(env: Record<string, string> = {}): Promise<ThumperServer> {
  const loaded = loadConfig({
    argv: [],
    env: {
      THUMPER_HTTP_PORT: '0',
      THUMPER_HTTP_HOST: '127.0.0.1',
      THUMPER_LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent',
      ...env,
    },
  });
  if (!loaded.ok) throw new Error(`Thumper test config rejected:\n${loaded.error}`);
  const config = loaded.value;
  // Test logs go to stderr so they never mix with the test runner's report on stdout.
  const log = createLogger({ level: config.log.level as LogLevel, pretty: config.log.pretty }, process.stderr);
  const gateway = await startGateway(config, log);
  const { port } = gateway.httpAddress;
  return {
    wsUrl: `ws://127.0.0.1:${port}${config.ws.path}`,
    port,
    stop: () => gateway.stop(),
  };
}
