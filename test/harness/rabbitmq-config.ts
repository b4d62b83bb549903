// What a test RabbitMQ node is configured with: the install it needs, its rabbitmq.conf, enabled
// plugins, Erlang cookie and the environment that points rabbitmq-server and rabbitmqctl at its own
// data dir, ports and epmd (never /etc/rabbitmq or a system node).

import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RABBIT_BIN } from './rabbitmq-process.js';

export const SERVER = join(RABBIT_BIN, 'rabbitmq-server');
export const INSTALL_COMMAND = 'apt-get update && apt-get install -y rabbitmq-server';
// Each ships with Debian's rabbitmq-server 3.10.8 (in /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins;
// checkInstall looks before booting, so a missing one is named instead of a failed boot).
export const ENABLED_PLUGINS = ['rabbitmq_management', 'rabbitmq_stomp', 'rabbitmq_web_stomp', 'rabbitmq_auth_backend_http'] as const;
const RABBIT_LIB = '/usr/lib/rabbitmq/lib';

/** Throws the install command when the server is missing, or names the missing plugins. */
export async function checkInstall(): Promise<void> {
  try {
    await access(SERVER, fsConstants.X_OK);
  } catch {
    throw new Error(INSTALL_COMMAND);
  }
  const installed: string[] = [];
  for (const server of (await readdir(RABBIT_LIB)).filter((d) => d.startsWith('rabbitmq_server-'))) {
    installed.push(...(await readdir(join(RABBIT_LIB, server, 'plugins')).catch(() => [])));
  }
  const missing = ENABLED_PLUGINS.filter((name) => !installed.some((entry) => entry.startsWith(`${name}-`)));
  if (missing.length > 0) throw new Error(`RabbitMQ plugins not installed under ${RABBIT_LIB}: ${missing.join(', ')}`);
}

export interface NodePorts {
  readonly amqpPort: number;
  readonly distPort: number;
  readonly stompPort: number;
  readonly webStompPort: number;
  readonly mgmtPort: number;
  readonly epmdPort: number;
  readonly authBackendPort: number;
}

export const NODE_PORT_NAMES = ['amqpPort', 'distPort', 'stompPort', 'webStompPort', 'mgmtPort', 'epmdPort', 'authBackendPort'] as const;

export function nodeConfig(p: NodePorts): string {
  const auth = `http://127.0.0.1:${p.authBackendPort}/auth`;
  return [
    `listeners.tcp.default = 127.0.0.1:${p.amqpPort}`,
    'loopback_users = none',
    `stomp.listeners.tcp.1 = 127.0.0.1:${p.stompPort}`,
    `web_stomp.tcp.port = ${p.webStompPort}`,
    'web_stomp.tcp.ip = 127.0.0.1',
    `management.tcp.port = ${p.mgmtPort}`,
    'management.tcp.ip = 127.0.0.1',
    'management.rates_mode = none',
    'log.console = false',
    'log.file.level = info',
    // Shared test machines: a low free-disk default alarm would block every publisher.
    'disk_free_limit.absolute = 10MB',
    // Said out loud although it is 3.10's default: a cluster test kills one of two members and needs
    // the other to keep serving. pause_minority would pause the survivor (one of two is no majority)
    // and autoheal would restart one side when the killed member comes back.
    'cluster_partition_handling = ignore',
    // Internal first, HTTP second. RabbitMQ tries the backends in order until one accepts the login
    // ("the first positive result returned by a backend in the chain is considered to be final",
    // rabbitmq-website access-control.md §Combining Backends; rabbit_access_control:check_user_login
    // folds over auth_backends while the result is `refused`), and the backend that accepted the
    // login also answers every later check. So guest (internal) never reaches the HTTP service and
    // every existing test keeps working, while a user the internal database does not know (user_x)
    // is refused by `internal` and then asked of the auth service on authBackendPort. Nothing listens
    // there unless a test starts one: such logins are then refused (connection refused = deny).
    'auth_backends.1 = internal',
    'auth_backends.2 = http',
    'auth_http.http_method = get',
    `auth_http.user_path = ${auth}/user`,
    `auth_http.vhost_path = ${auth}/vhost`,
    `auth_http.resource_path = ${auth}/resource`,
    `auth_http.topic_path = ${auth}/topic`,
    '',
  ].join('\n');
}

/** The environment rabbitmq-server and rabbitmqctl need to reach this node and nothing else. */
export function nodeEnv(dataDir: string, nodeName: string, p: NodePorts): Record<string, string> {
  const logDir = join(dataDir, 'log');
  return {
    HOME: join(dataDir, 'home'),
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_CONF_ENV_FILE: join(dataDir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dataDir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dataDir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dataDir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dataDir, 'mnesia'),
    RABBITMQ_PLUGINS_EXPAND_DIR: join(dataDir, 'plugins-expand'),
    RABBITMQ_LOG_BASE: logDir,
    RABBITMQ_LOGS: join(logDir, 'rabbit.log'),
    RABBITMQ_PID_FILE: join(dataDir, 'rabbit.pid'),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(p.amqpPort),
    RABBITMQ_DIST_PORT: String(p.distPort),
    // Erlang distribution on loopback only.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_PORT: String(p.epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
  };
}

/** Writes the config, plugin list, an empty env file and the Erlang cookie under dataDir. */
export async function writeNodeFiles(dataDir: string, p: NodePorts, cookie: string): Promise<void> {
  const home = join(dataDir, 'home');
  await mkdir(home, { recursive: true });
  await mkdir(join(dataDir, 'log'), { recursive: true });
  await writeFile(join(dataDir, 'rabbitmq.conf'), nodeConfig(p));
  await writeFile(join(dataDir, 'enabled_plugins'), `[${ENABLED_PLUGINS.join(',')}].\n`);
  // An empty env file so /etc/rabbitmq/rabbitmq-env.conf is never read.
  await writeFile(join(dataDir, 'rabbitmq-env.conf'), '');
  // Erlang refuses a cookie file others can read. Cluster members share one cookie.
  await writeFile(join(home, '.erlang.cookie'), cookie, { mode: 0o400 });
}
