// Builds the configured auth chain (config `auth.*`): reads key files, checks the JWT setup, opens
// the HTTP backend's connection pool, and says loudly when anyone may do anything.

import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { fail, ok, type Result } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { AuthConfig } from '../server/config.js';
import { allowAllAuthenticator, allowAllAuthority } from './allow-all.js';
import type { AuthBackendName, Authenticator, Authority, Authorizer } from './authorizer.js';
import { createAuthChain, type DecisionObserver } from './chain.js';
import { DecisionCache } from './decision-cache.js';
import { createHttpAuthenticator, createHttpAuthority } from './http-auth.js';
import { createHttpBackend, type HttpBackend, type RequestObserver } from './http-backend.js';
import { createJwtAuthenticator, createJwtAuthority, createJwtVerifier, type JwtAlgorithm } from './jwt.js';
import { watchReachability } from './reachability.js';

export interface AuthSetup {
  readonly authorizer: Authorizer;
  /** HTTP decision cache counters (undefined without the http backend), for logs and metrics. */
  cacheStats(): { hits: number; misses: number; size: number; coalesced: number } | undefined;
  /** For /readyz: false while the HTTP auth service cannot be reached (always true without one). */
  isReady(): boolean;
  close(): void;
}

/** How often /readyz's view of the auth service is refreshed. */
const REACHABILITY_INTERVAL_MS = 5000;

/** Metrics hooks; both optional. */
export interface AuthObservers {
  readonly onDecision?: DecisionObserver;
  readonly onBackendRequest?: RequestObserver;
}

export async function createAuthorizer(
  config: AuthConfig,
  engine: Pick<Engine, 'exchangeType'>,
  log: Logger,
  observers: AuthObservers = {},
): Promise<Result<AuthSetup, string>> {
  const authLog = log.child({ component: 'auth' });
  const authenticators: Authenticator[] = [];
  const authorities = new Map<AuthBackendName, Authority>();
  let backend: HttpBackend | undefined;
  let cache: DecisionCache | undefined;

  if (config.http) {
    backend = createHttpBackend({
      ...config.http,
      log: authLog,
      ...(observers.onBackendRequest ? { onRequest: observers.onBackendRequest } : {}),
    });
    cache = new DecisionCache(config.cache);
    authorities.set('http', createHttpAuthority(backend, cache));
  }
  if (config.backends.includes('jwt') || config.authz === 'jwt') {
    const keys = await readJwtKeys(config.jwt);
    if (!keys.ok) return keys;
    const { issuer, audience, usernameClaims, scopePrefix, clockToleranceSeconds } = config.jwt;
    const verifier = createJwtVerifier({
      algorithms: config.jwt.algorithms as readonly JwtAlgorithm[],
      ...keys.value,
      ...(issuer !== undefined ? { issuer } : {}),
      ...(audience !== undefined ? { audience } : {}),
      usernameClaims,
      scopePrefix,
      clockToleranceSeconds,
    });
    if (!verifier.ok) return fail(`Invalid configuration: auth.jwt: ${verifier.error}`);
    authenticators.push(createJwtAuthenticator(verifier.value));
    authorities.set('jwt', createJwtAuthority());
  }
  // Order matters: authenticators are asked in the configured order.
  const ordered: Authenticator[] = [];
  for (const name of config.backends) {
    if (name === 'jwt') ordered.push(...authenticators);
    if (name === 'http' && backend && cache) ordered.push(createHttpAuthenticator(backend, cache));
    if (name === 'allow-all') {
      ordered.push(allowAllAuthenticator());
      authorities.set('allow-all', allowAllAuthority());
    }
  }

  const authorizer = createAuthChain({
    authenticators: ordered,
    authorities,
    authz: config.authz,
    exchangeType: (vhost, name) => engine.exchangeType(vhost, name),
    log: authLog,
    ...(observers.onDecision ? { onDecision: observers.onDecision } : {}),
  });
  const reach = config.http ? watchReachability(config.http.userPath, REACHABILITY_INTERVAL_MS, config.http.connectTimeoutMs) : undefined;
  return ok({
    authorizer,
    cacheStats: () => cache?.stats(),
    isReady: () => reach?.isReachable() ?? true,
    close: () => {
      reach?.stop();
      backend?.close();
    },
  });
}

async function readJwtKeys(jwt: AuthConfig['jwt']): Promise<Result<{ secret?: string; publicKey?: string }, string>> {
  const out: { secret?: string; publicKey?: string } = {};
  if (jwt.secret !== undefined) out.secret = jwt.secret;
  if (jwt.secretFile !== undefined) {
    const text = await readText(jwt.secretFile, 'auth.jwt.secretFile');
    if (!text.ok) return text;
    out.secret = text.value.replace(/\r?\n$/, '');
  }
  if (jwt.publicKeyFile !== undefined) {
    const text = await readText(jwt.publicKeyFile, 'auth.jwt.publicKeyFile');
    if (!text.ok) return text;
    out.publicKey = text.value;
  }
  return ok(out);
}

async function readText(file: string, key: string): Promise<Result<string, string>> {
  try {
    return ok(await readFile(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return fail(`Invalid configuration: ${key}: cannot read ${file} (${code})`);
  }
}
