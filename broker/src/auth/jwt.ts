// JWT authentication (reference §6): a configuration checked once at startup, a verifier that
// turns a token into a username, an expiry, scopes and tags, and the `jwt` authenticator that
// takes the token from the connection (`bearerToken`) or from the CONNECT `passcode`.
// Verification itself is jsonwebtoken's, always with an explicit algorithm list.

import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { fail, ok, type Result } from '../errors.js';
import { deny, type AuthDecision, type Authenticator, type ConnectRequest, type Principal } from './authorizer.js';
import { internList } from './interned-list.js';

// The authority that reads the scopes made here lives with the scope rules; offered here as well.
export { createJwtAuthority } from './scopes.js';

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512'] as const;
const PSS_ALGORITHMS = ['PS256', 'PS384', 'PS512'] as const;
const EC_ALGORITHMS = ['ES256', 'ES384', 'ES512'] as const;
export const JWT_ALGORITHMS = [...HMAC_ALGORITHMS, ...RSA_ALGORITHMS, ...EC_ALGORITHMS, ...PSS_ALGORITHMS] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** RFC 7518 §3.4: each ES algorithm is defined for exactly one curve. */
const EC_CURVES: Readonly<Record<(typeof EC_ALGORITHMS)[number], string>> = {
  ES256: 'prime256v1',
  ES384: 'secp384r1',
  ES512: 'secp521r1',
};

/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output; 32 bytes for HS256. */
const MIN_SECRET_BYTES = 32;

export interface JwtOptions {
  readonly algorithms: readonly JwtAlgorithm[];
  /** HS* only. */
  readonly secret?: string;
  /** PEM text of the public key (SPKI or certificate), RS/PS/ES only. */
  readonly publicKey?: string;
  /** When set, `iss` must equal it. */
  readonly issuer?: string;
  /** When set, `aud` must contain it (RabbitMQ's `resource_server_id`). */
  readonly audience?: string;
  /** The first of these claims holding a non-empty string is the username. */
  readonly usernameClaims: readonly string[];
  /** Only scopes starting with it count, with it removed (e.g. `rabbitmq.`). */
  readonly scopePrefix: string;
  /** Leeway for `exp` and `nbf`, for clock skew between the issuer and us. */
  readonly clockToleranceSeconds: number;
  /** Epoch ms; tests pass a fixed clock. */
  readonly now?: () => number;
}

export interface VerifiedToken {
  readonly username: string;
  /** Epoch ms of `exp`. Always set: tokens without `exp` are refused. */
  readonly expiresAt?: number;
  /** Permission scopes, prefix removed, variables expanded. */
  readonly scopes: readonly string[];
  /** From `<prefix>tag:<tag>` scopes. */
  readonly tags: readonly string[];
}

export interface JwtVerifier {
  /** `vhost` is the CONNECT vhost: it fills `{vhost}` in scopes. */
  verify(token: string, vhost: string): AuthDecision<VerifiedToken>;
}

interface JwtHeader {
  readonly alg: string;
  readonly crit?: unknown;
}

const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]*$/;

function decodeSegment(segment: string): unknown {
  if (segment === '' || !BASE64URL_SEGMENT.test(segment)) return undefined;
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function decodeHeader(token: string): JwtHeader | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [header = '', payload = '', signature = ''] = parts;
  if (payload === '' || !BASE64URL_SEGMENT.test(payload) || !BASE64URL_SEGMENT.test(signature)) return undefined;
  const decoded = decodeSegment(header);
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) return undefined;
  const alg = (decoded as { alg?: unknown }).alg;
  if (typeof alg !== 'string') return undefined;
  return decoded as JwtHeader;
}

/**
 * Three base64url segments whose first is a JSON header with `alg`. An unsigned token (empty third
 * segment) counts too, so that it is refused as a token rather than tried as a password.
 */
export function looksLikeJwt(s: string): boolean {
  return decodeHeader(s) !== undefined;
}

const isOneOf = <T extends string>(list: readonly T[], alg: string): alg is T => (list as readonly string[]).includes(alg);

/** The key jsonwebtoken verifies with, or why the configuration cannot be used. */
function buildKey(options: JwtOptions): Result<KeyObject, string> {
  const algs = options.algorithms;
  const hmac = algs.filter((a) => isOneOf(HMAC_ALGORITHMS, a));
  if (options.secret !== undefined && options.publicKey !== undefined) {
    return fail('set either a secret (HS*) or a publicKey (RS/PS/ES), not both');
  }
  if (hmac.length > 0) {
    if (hmac.length !== algs.length) {
      // Algorithm confusion: with both kinds allowed, a token signed with HS256 using the public
      // key's PEM text as the HMAC secret would verify.
      return fail('HS* algorithms cannot be mixed with RS/PS/ES algorithms (algorithm confusion)');
    }
    if (options.secret === undefined || options.secret === '') return fail(`${hmac.join(', ')} needs a secret`);
    if (Buffer.byteLength(options.secret, 'utf8') < MIN_SECRET_BYTES) {
      return fail(
        `the HS secret must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518 §3.2): ` +
          'a shorter secret can be guessed offline from any token signed with it',
      );
    }
    return ok(createSecretKey(Buffer.from(options.secret, 'utf8')));
  }
  if (options.publicKey === undefined || options.publicKey.trim() === '') {
    return fail(`${algs.join(', ')} needs a publicKey (PEM)`);
  }
  if (!options.publicKey.includes('-----BEGIN ')) return fail('publicKey must be PEM text (-----BEGIN PUBLIC KEY-----)');
  let key: KeyObject;
  try {
    key = createPublicKey(options.publicKey);
  } catch (e) {
    return fail(`publicKey does not parse: ${e instanceof Error ? e.message : String(e)}`);
  }
  return keyFitsAlgorithms(key, algs);
}

function keyFitsAlgorithms(key: KeyObject, algs: readonly JwtAlgorithm[]): Result<KeyObject, string> {
  const type = key.asymmetricKeyType;
  for (const alg of algs) {
    if (isOneOf(RSA_ALGORITHMS, alg) && type !== 'rsa') return fail(`${alg} needs an RSA public key, got ${type ?? 'unknown'}`);
    if (isOneOf(PSS_ALGORITHMS, alg)) {
      if (type !== 'rsa' && type !== 'rsa-pss') return fail(`${alg} needs an RSA public key, got ${type ?? 'unknown'}`);
      const hash = key.asymmetricKeyDetails?.hashAlgorithm;
      if (type === 'rsa-pss' && hash !== undefined && hash !== `sha${alg.slice(2)}`) {
        return fail(`${alg} does not fit this RSA-PSS key (restricted to ${hash})`);
      }
    }
    if (isOneOf(EC_ALGORITHMS, alg)) {
      if (type !== 'ec') return fail(`${alg} needs an EC public key, got ${type ?? 'unknown'}`);
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve !== EC_CURVES[alg]) return fail(`${alg} needs an EC key on ${EC_CURVES[alg]}, got ${curve ?? 'unknown'}`);
    }
  }
  return ok(key);
}

function checkOptions(options: JwtOptions): string | undefined {
  if (options.algorithms.length === 0) return 'algorithms must list at least one algorithm';
  for (const alg of options.algorithms as readonly string[]) {
    if (alg.toLowerCase() === 'none') return "algorithm 'none' is never accepted: it means unsigned tokens";
    if (!isOneOf(JWT_ALGORITHMS, alg)) return `unknown algorithm '${alg}'`;
  }
  if (options.usernameClaims.length === 0) return 'usernameClaims must name at least one claim';
  if (!Number.isFinite(options.clockToleranceSeconds) || options.clockToleranceSeconds < 0) {
    return 'clockToleranceSeconds must be a number >= 0';
  }
  if (options.issuer === '') return 'issuer must not be empty (leave it out to skip the check)';
  if (options.audience === '') return 'audience must not be empty (leave it out to skip the check)';
  return undefined;
}

const INVALID = (why: string): AuthDecision<never> => deny(`invalid token: ${why}`);

/** Short, fixed reasons: they reach the client, so they never echo the token or expected values. */
function reasonFor(error: unknown): AuthDecision<never> {
  if (error instanceof jwt.TokenExpiredError) return deny('token expired');
  if (error instanceof jwt.NotBeforeError) return INVALID('not yet valid (nbf)');
  const message = error instanceof Error ? error.message : '';
  if (message === 'invalid signature') return INVALID('bad signature');
  if (message === 'invalid algorithm') return INVALID('algorithm not allowed');
  if (message.startsWith('jwt issuer invalid')) return INVALID('wrong issuer');
  if (message.startsWith('jwt audience invalid')) return INVALID('wrong audience');
  if (message === 'jwt signature is required') return INVALID('unsigned');
  if (message === 'invalid exp value') return INVALID('bad exp claim');
  if (message === 'invalid nbf value') return INVALID('bad nbf claim');
  if (message === 'jwt malformed' || message === 'invalid token') return INVALID('malformed');
  if (message.startsWith('jwt ')) return INVALID('malformed');
  return INVALID('rejected');
}

function usernameFrom(payload: jwt.JwtPayload, claims: readonly string[]): string | undefined {
  for (const claim of claims) {
    const value: unknown = payload[claim];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

function scopeClaim(payload: jwt.JwtPayload): string[] {
  const scope: unknown = payload['scope'];
  if (typeof scope === 'string') return scope.split(' ').filter((s) => s !== '');
  if (Array.isArray(scope)) return scope.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/** Written as its own percent-escapes, so the value matches only itself: no `*`, no `/` split. */
function literal(value: string): string | undefined {
  try {
    return encodeURIComponent(value).replaceAll('*', '%2A');
  } catch {
    return undefined;
  }
}

/**
 * RabbitMQ 3.12+ scope variables: `{vhost}`, then `{<claim>}` for any string claim. undefined (the
 * scope is dropped) for an unknown variable or a stray brace. Values are inserted as literals, so a
 * `sub` of `*` or a vhost with `/` grants itself and nothing more.
 */
export function expandScope(scope: string, vhost: string, payload: Readonly<Record<string, unknown>>): string | undefined {
  let out = '';
  let rest = scope;
  for (;;) {
    const open = rest.indexOf('{');
    const close = rest.indexOf('}');
    if (open < 0) return close < 0 ? out + rest : undefined;
    if (close < open) return undefined;
    const name = rest.slice(open + 1, close);
    if (name.includes('{')) return undefined;
    const value: unknown = name === 'vhost' ? vhost : payload[name];
    if (typeof value !== 'string') return undefined;
    const escaped = literal(value);
    if (escaped === undefined) return undefined;
    out += rest.slice(0, open) + escaped;
    rest = rest.slice(close + 1);
  }
}

const TAG = 'tag:';

function scopesAndTags(payload: jwt.JwtPayload, prefix: string, vhost: string): { scopes: readonly string[]; tags: readonly string[] } {
  const scopes = new Set<string>();
  const tags = new Set<string>();
  for (const raw of scopeClaim(payload)) {
    if (!raw.startsWith(prefix)) continue;
    const scope = raw.slice(prefix.length);
    if (scope.startsWith(TAG)) {
      const tag = scope.slice(TAG.length);
      if (tag !== '') tags.add(tag);
      continue;
    }
    const expanded = expandScope(scope, vhost, payload);
    if (expanded !== undefined) scopes.add(expanded);
  }
  return { scopes: internList([...scopes]), tags: internList([...tags]) };
}

export function createJwtVerifier(options: JwtOptions): Result<JwtVerifier, string> {
  const problem = checkOptions(options);
  if (problem !== undefined) return fail(problem);
  const key = buildKey(options);
  if (!key.ok) return key;
  const keyObject = key.value;
  const now = options.now ?? Date.now;
  const algorithms: readonly JwtAlgorithm[] = [...new Set(options.algorithms)];
  const claimList = options.usernameClaims.join(', ');

  return ok({
    verify(token: string, vhost: string): AuthDecision<VerifiedToken> {
      const header = decodeHeader(token);
      if (header === undefined) return INVALID('malformed');
      // Checked before jsonwebtoken so that `none` and other algorithms get one answer.
      if (!isOneOf(algorithms, header.alg)) return INVALID('algorithm not allowed');
      // RFC 7515 §4.1.11: extensions we do not understand must not be ignored; we understand none.
      if (header.crit !== undefined) return INVALID('unsupported crit header');
      let payload: string | jwt.JwtPayload;
      try {
        payload = jwt.verify(token, keyObject, {
          algorithms: [...algorithms],
          clockTolerance: options.clockToleranceSeconds,
          clockTimestamp: Math.floor(now() / 1000),
          ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
          ...(options.audience !== undefined ? { audience: options.audience } : {}),
        });
      } catch (e) {
        return reasonFor(e);
      }
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return INVALID('malformed');
      // jsonwebtoken checks exp only when present; a token that never expires is refused.
      if (typeof payload.exp !== 'number') return INVALID('no exp claim (tokens must expire)');
      const username = usernameFrom(payload, options.usernameClaims);
      if (username === undefined) return deny(`token has no username claim (${claimList})`);
      const { scopes, tags } = scopesAndTags(payload, options.scopePrefix, vhost);
      return { ok: true, value: { username, expiresAt: payload.exp * 1000, scopes, tags } };
    },
  });
}

/**
 * The login header is ignored: the token names the user (RabbitMQ does the same). A token that
 * fails is a refusal, never passed on to be tried as a password.
 */
export function createJwtAuthenticator(verifier: JwtVerifier): Authenticator {
  return {
    name: 'jwt',
    async authenticate(request: ConnectRequest): Promise<AuthDecision<Principal> | undefined> {
      let token: string;
      if (request.bearerToken !== undefined) token = request.bearerToken;
      else if (request.passcode !== undefined && looksLikeJwt(request.passcode)) token = request.passcode;
      else return undefined;
      const verified = verifier.verify(token, request.vhost);
      if (!verified.ok) return verified;
      const { username, expiresAt, scopes, tags } = verified.value;
      const principal: Principal = {
        username,
        vhost: request.vhost,
        tags,
        authenticatedBy: 'jwt',
        scopes,
        ...(expiresAt !== undefined ? { expiresAt } : {}),
      };
      return { ok: true, value: principal };
    },
  };
}
