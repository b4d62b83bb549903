// Entry point: `npx tsx auth-backend/src/main.ts`. Configured by environment variables (config.ts);
// exit 2 on bad configuration or rules, with the message naming the variable or the rules entry.
// SIGTERM / SIGINT close the server and exit 0.

import { readFileSync } from 'node:fs';
import pino from 'pino';
import { readConfig } from './config.js';
import { loadRules } from './rules.js';
import { startAuthBackend } from './server.js';

async function main(): Promise<void> {
  const config = readConfig(process.env, (path) => readFileSync(path, 'utf8'));
  if (!config.ok) {
    process.stderr.write(`auth-backend: ${config.error}\n`);
    process.exit(2);
  }
  const c = config.value;
  const rules = loadRules(c.rulesFile);
  if (!rules.ok) {
    process.stderr.write(`auth-backend: invalid rules:\n${rules.error}\n`);
    process.exit(2);
  }
  // Synchronous stdout: the last lines before process.exit() must not be lost.
  const log = pino({ level: c.logLevel, base: { service: 'auth-backend' } }, pino.destination({ fd: 1, sync: true }));
  const running = await startAuthBackend({
    host: c.host,
    port: c.port,
    rules: rules.value,
    jwtSecret: c.jwtSecret,
    jwt: { issuer: c.jwtIssuer, audience: c.jwtAudience, ttlSeconds: c.jwtTtlSeconds },
    loginRateLimit: { perUser: c.loginAttemptsPerMinute, windowMs: 60_000 },
    log,
  });
  log.info({ url: running.url, rules: c.rulesFile, users: rules.value.users.size }, `auth backend listening on ${running.url}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`auth-backend: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
