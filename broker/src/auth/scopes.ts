// RabbitMQ OAuth 2 scopes (reference §6): `<permission>:<vhost>/<name>[/<routing_key>]` parsed
// and matched the way rabbit_oauth2_scope and wildcard.erl do, plus the `jwt` authority that
// answers vhost and permission checks from a principal's scopes. Pure: no I/O, no clock but the
// one passed in.

import type { Permission, PermissionCheck } from '../destination/types.js';
import { allow, deny, type AuthDecision, type Authority, type Principal } from './authorizer.js';

/**
 * A wildcard pattern as wildcard.erl sees it: the literal parts between `*`s, already URL-decoded,
 * so `%2A` is a literal `*` and never a wildcard. One part: exact match.
 */
export interface WildcardPattern {
  readonly parts: readonly string[];
}

export interface ParsedScope {
  readonly permission: Permission;
  readonly vhost: WildcardPattern;
  readonly name: WildcardPattern;
  /** Only 3-part scopes have one, and only they grant topic access. */
  readonly routingKey: WildcardPattern | undefined;
}

const PERMISSIONS: readonly Permission[] = ['configure', 'write', 'read'];

/**
 * cow_qs:urldecode, which wildcard.erl uses: form decoding, so `+` is a space (a RabbitMQ token
 * must grant the same here as there). undefined for a bad `%` escape or bytes that are not UTF-8.
 */
function urlDecode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/** Split on `*` first, then decode each part: an encoded `*` stays literal (wildcard.erl). */
export function compileWildcard(raw: string): WildcardPattern | undefined {
  const parts: string[] = [];
  for (const piece of raw.split('*')) {
    const decoded = urlDecode(piece);
    if (decoded === undefined) return undefined;
    parts.push(decoded);
  }
  return { parts };
}

/**
 * `*` matches any sequence, dots and slashes included: anchored prefix and suffix, then the middle
 * parts leftmost-first, which is exact for `*`-only globs. (wildcard.erl's scan never checks that
 * the last part ends the subject after an earlier occurrence, so it refuses e.g. `*.b` for `a.b.b`;
 * we match what the pattern says.)
 */
export function matchWildcard(pattern: WildcardPattern, subject: string): boolean {
  const { parts } = pattern;
  const first = parts[0] ?? '';
  if (parts.length === 1) return subject === first;
  const last = parts[parts.length - 1] ?? '';
  if (subject.length < first.length + last.length) return false;
  if (!subject.startsWith(first) || !subject.endsWith(last)) return false;
  const end = subject.length - last.length;
  let pos = first.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] ?? '';
    const at = subject.indexOf(part, pos);
    if (at < 0 || at + part.length > end) return false;
    pos = at + part.length;
  }
  return true;
}

/** undefined for anything that is not a well-formed permission scope: such scopes never grant. */
export function parseScope(scope: string): ParsedScope | undefined {
  const colon = scope.indexOf(':');
  if (colon < 0) return undefined;
  const permission = PERMISSIONS.find((p) => p === scope.slice(0, colon));
  if (permission === undefined) return undefined;
  // Split before decoding: `%2F` inside a segment is a literal `/`, not a separator.
  const segments = scope.slice(colon + 1).split('/');
  if (segments.length !== 2 && segments.length !== 3) return undefined;
  const [vhostRaw = '', nameRaw = '', routingKeyRaw] = segments;
  const vhost = compileWildcard(vhostRaw);
  const name = compileWildcard(nameRaw);
  const routingKey = routingKeyRaw === undefined ? undefined : compileWildcard(routingKeyRaw);
  if (vhost === undefined || name === undefined) return undefined;
  if (routingKeyRaw !== undefined && routingKey === undefined) return undefined;
  return { permission, vhost, name, routingKey };
}

export function parseScopes(scopes: readonly string[]): ParsedScope[] {
  const parsed: ParsedScope[] = [];
  for (const scope of scopes) {
    const p = parseScope(scope);
    if (p !== undefined) parsed.push(p);
  }
  return parsed;
}

/** Any permission on a matching vhost opens the vhost (rabbit_oauth2_scope:vhost_access/2). */
export function vhostAccess(vhost: string, scopes: readonly ParsedScope[]): boolean {
  return scopes.some((s) => matchWildcard(s.vhost, vhost));
}

/** One check of a plan: resource checks accept 2- and 3-part scopes, topic checks only 3-part. */
export function checkAccess(vhost: string, check: PermissionCheck, scopes: readonly ParsedScope[]): boolean {
  if (check.resource === 'topic') {
    return scopes.some(
      (s) =>
        s.routingKey !== undefined &&
        s.permission === check.permission &&
        matchWildcard(s.vhost, vhost) &&
        matchWildcard(s.name, check.name) &&
        matchWildcard(s.routingKey, check.routingKey),
    );
  }
  return scopes.some(
    (s) => s.permission === check.permission && matchWildcard(s.vhost, vhost) && matchWildcard(s.name, check.name),
  );
}

export interface JwtAuthorityOptions {
  /** Epoch ms; tests pass a fixed clock. */
  readonly now?: () => number;
}

const TOKEN_EXPIRED = 'token expired';

/**
 * Answers from `principal.scopes` only: a principal that was not vouched for by a JWT has none and
 * is refused everything. Parsed scopes are kept per scopes array, which equal tokens share (interned-list.ts).
 */
export function createJwtAuthority(options: JwtAuthorityOptions = {}): Authority {
  const now = options.now ?? Date.now;
  const parsedByScopes = new WeakMap<readonly string[], readonly ParsedScope[]>();

  const scopesOf = (principal: Principal): readonly ParsedScope[] => {
    const raw = principal.scopes;
    if (raw === undefined) return [];
    let parsed = parsedByScopes.get(raw);
    if (parsed === undefined) {
      parsed = parseScopes(raw);
      parsedByScopes.set(raw, parsed);
    }
    return parsed;
  };
  // The session closes at expiry; refusing here as well covers a check that races the close.
  const expired = (principal: Principal): boolean => principal.expiresAt !== undefined && principal.expiresAt <= now();

  return {
    name: 'jwt',
    async checkVhost(principal: Principal): Promise<AuthDecision<true>> {
      if (expired(principal)) return deny(TOKEN_EXPIRED);
      if (vhostAccess(principal.vhost, scopesOf(principal))) return allow;
      return deny(`Virtual host '${principal.vhost}' access denied`);
    },
    async authorize(principal: Principal, check: PermissionCheck): Promise<AuthDecision<true>> {
      if (expired(principal)) return deny(TOKEN_EXPIRED);
      // '' lets the session write RabbitMQ's own ACCESS_REFUSED text.
      return checkAccess(principal.vhost, check, scopesOf(principal)) ? allow : deny('');
    },
  };
}
