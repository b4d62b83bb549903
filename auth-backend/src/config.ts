// The auth backend's configuration from environment variables, as a pure function so that every
// mistake is reported with the variable's name before anything starts (main.ts exits 2 on it).

import { fileURLToPath } from 'node:url';
import type { Result } from './rules.js';

export interface AuthBackendConfig {
  readonly host: string;
  readonly port: number;
  readonly rulesFile: string;
  readonly jwtSecret: string;
  readonly jwtIssuer: string;
  readonly jwtAudience: string;
  readonly jwtTtlSeconds: number;
  readonly loginAttemptsPerMinute: number;
  readonly logLevel: string;
}

/** HS256 with a shorter key is guessable offline from any token (RFC 7518 §3.2 asks for ≥ 256 bits). */
export const MIN_SECRET_BYTES = 32;

export const DEFAULT_RULES_FILE = fileURLToPath(new URL('../rules.json', import.meta.url));

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Readonly<Record<string, string | undefined>>;

function integer(env: Env, key: string, fallback: number, min: number, max: number): Result<number, string> {
  const raw = env[key];
  if (raw === undefined || raw === '') return { ok: true, value: fallback };
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) return { ok: false, error: `${key}: expected an integer from ${min} to ${max}, got "${raw}"` };
  return { ok: true, value: n };
}

function secret(env: Env, readFile: (path: string) => string): Result<string, string> {
  const direct = env['AUTH_BACKEND_JWT_SECRET'];
  const file = env['AUTH_BACKEND_JWT_SECRET_FILE'];
  if (direct !== undefined && direct !== '' && file !== undefined && file !== '') {
    return { ok: false, error: 'AUTH_BACKEND_JWT_SECRET and AUTH_BACKEND_JWT_SECRET_FILE are both set: set one' };
  }
  let value: string;
  let source: string;
  if (file !== undefined && file !== '') {
    try {
      // A trailing newline is what editors and `echo` leave, not part of the key.
      value = readFile(file).replace(/\r?\n$/, '');
    } catch (err) {
      return { ok: false, error: `AUTH_BACKEND_JWT_SECRET_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
    }
    source = 'AUTH_BACKEND_JWT_SECRET_FILE';
  } else if (direct !== undefined && direct !== '') {
    value = direct;
    source = 'AUTH_BACKEND_JWT_SECRET';
  } else {
    return { ok: false, error: `AUTH_BACKEND_JWT_SECRET is required (at least ${MIN_SECRET_BYTES} bytes; or AUTH_BACKEND_JWT_SECRET_FILE)` };
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < MIN_SECRET_BYTES) return { ok: false, error: `${source}: the JWT secret must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes}` };
  return { ok: true, value };
}

export function readConfig(env: Env, readFile: (path: string) => string): Result<AuthBackendConfig, string> {
  const port = integer(env, 'AUTH_BACKEND_PORT', 8000, 0, 65535);
  if (!port.ok) return port;
  const ttl = integer(env, 'AUTH_BACKEND_JWT_TTL_SECONDS', 3600, 1, 365 * 24 * 3600);
  if (!ttl.ok) return ttl;
  const attempts = integer(env, 'AUTH_BACKEND_LOGIN_ATTEMPTS_PER_MINUTE', 10, 1, 1_000_000);
  if (!attempts.ok) return attempts;
  const jwtSecret = secret(env, readFile);
  if (!jwtSecret.ok) return jwtSecret;
  const logLevel = env['LOG_LEVEL'] || 'info';
  if (!LOG_LEVELS.includes(logLevel)) return { ok: false, error: `LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"` };
  return {
    ok: true,
    value: {
      host: env['AUTH_BACKEND_HOST'] || '0.0.0.0',
      port: port.value,
      rulesFile: env['AUTH_BACKEND_RULES'] || DEFAULT_RULES_FILE,
      jwtSecret: jwtSecret.value,
      jwtIssuer: env['AUTH_BACKEND_JWT_ISSUER'] || 'thumper-auth-backend',
      jwtAudience: env['AUTH_BACKEND_JWT_AUDIENCE'] || 'thumper',
      jwtTtlSeconds: ttl.value,
      loginAttemptsPerMinute: attempts.value,
      logLevel,
    },
  };
}
