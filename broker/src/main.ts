// Process entry point (`npm start`): read the configuration, say what runs, serve until SIGTERM or
// SIGINT, then stop gracefully within a deadline. Exit codes: 0 clean stop, 1 failure, 2 bad config.

import type { Logger } from 'pino';
import { CONFIG_ENV_KEYS, THUMPER_VERSION, describeConfigKeys, loadConfig } from './server/config.js';
import type { Config } from './server/config.js';
import { parseCommandLine, unknownEnvVars } from './server/config-env.js';
import { effectiveConfigJson } from './server/config-print.js';
import { StartupError, startGateway } from './server/gateway.js';
import type { Gateway } from './server/gateway.js';
import { createLogger, withoutPassword } from './server/logger.js';

function usage(): string {
  const rows = describeConfigKeys();
  const keyWidth = Math.max(...rows.map((r) => r.key.length));
  const envWidth = Math.max(...rows.map((r) => r.env.length));
  const lines = rows.map((r) => `  ${r.key.padEnd(keyWidth)}  ${r.env.padEnd(envWidth)}  ${r.default}`);
  return [
    `Thumper ${THUMPER_VERSION}: STOMP 1.0/1.1/1.2 over WebSocket, for RabbitMQ or embedded.`,
    '',
    'Usage: thumper [--config <file.json>] [--print-config] [--help]',
    '  --print-config  print the effective configuration (file + environment + defaults) as JSON,',
    '                  secrets redacted, and exit',
    '',
    'Configuration: a JSON file (--config or THUMPER_CONFIG) with the keys below, nested',
    '(e.g. {"http": {"port": 15674}}), and environment variables, which win over the file.',
    'Lists are comma-separated in the environment. See docs/configuration.md.',
    '',
    `  ${'key'.padEnd(keyWidth)}  ${'environment'.padEnd(envWidth)}  default`,
    ...lines,
    '',
  ].join('\n');
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function engineLine(config: Config): string {
  if (config.engine === 'memory') {
    return 'engine: embedded (in-memory) — for development; set THUMPER_AMQP_URL to bridge to RabbitMQ';
  }
  const shown = config.amqp.urls.map(withoutPassword);
  const hidden = shown.some((s) => s.hadPassword) ? ' (password hidden)' : '';
  return `engine: RabbitMQ at ${shown.map((s) => s.url).join(', ')}${hidden}`;
}

/** The auth line is a warning when nobody is checked: it must not scroll by unnoticed. */
function logAuthLine(config: Config, log: Logger): void {
  const { backends, authz, http } = config.auth;
  if (backends.includes('allow-all')) {
    log.warn({ auth: backends }, 'auth: OFF (allow-all) — anyone may log in as anyone and do anything; development only. Set THUMPER_AUTH_BACKENDS=http or jwt');
    return;
  }
  const where = http ? ` (auth service ${withoutPassword(http.userPath).url})` : '';
  log.info({ auth: backends, authz }, `auth: ${backends.join(', ')}; permissions from ${authz === 'same' ? 'the same backend' : authz}${where}`);
}

function handleSignals(gateway: Gateway, log: Logger, deadlineMs: number): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal during shutdown: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      log.error(`shutdown took longer than ${deadlineMs / 1000} s: exiting`);
      process.exit(1);
    }, deadlineMs);
    deadline.unref();
    gateway.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const cli = parseCommandLine(argv);
  if (cli.ok && cli.value.help) {
    process.stdout.write(usage());
    return;
  }
  const loaded = loadConfig({ argv, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(`${loaded.error}\n`);
    process.exit(2);
  }
  const config = loaded.value;
  if (cli.ok && cli.value.printConfig) {
    process.stdout.write(effectiveConfigJson(config));
    return;
  }
  const log = createLogger(config.log);
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled promise rejection');
    process.exit(1);
  });

  let gateway: Gateway;
  try {
    gateway = await startGateway(config, log);
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    log.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  const { host, port } = gateway.httpAddress;
  const url = `ws://${urlHost(host)}:${port}${config.ws.path}`;
  log.info({ version: THUMPER_VERSION, url }, `Thumper ${THUMPER_VERSION} listening: STOMP over WebSocket at ${url}`);
  const base = `http://${urlHost(host)}:${port}`;
  const also = [
    config.sockjs.enabled ? `SockJS at ${base}${config.sockjs.path}` : undefined,
    gateway.tcpAddress ? `STOMP over TCP at ${urlHost(gateway.tcpAddress.host)}:${gateway.tcpAddress.port}` : undefined,
    gateway.tlsAddress ? `STOMP over TLS at ${urlHost(gateway.tlsAddress.host)}:${gateway.tlsAddress.port}` : undefined,
    config.sockjs.examplePage ? `example page at ${base}/` : undefined,
  ].filter((x) => x !== undefined);
  log.info({ engine: config.engine }, engineLine(config));
  logAuthLine(config, log);
  if (also.length > 0) log.info({ tcp: gateway.tcpAddress?.port, tls: gateway.tlsAddress?.port }, `also: ${also.join('; ')}`);
  for (const name of unknownEnvVars(CONFIG_ENV_KEYS, process.env)) {
    log.warn({ variable: name }, `${name} is not a Thumper setting (typo?); ignored`);
  }
  handleSignals(gateway, log, config.shutdown.deadlineMs);
}

await main();
