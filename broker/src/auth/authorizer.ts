// "Who is this, and may they do this?" The session asks an Authorizer; the chain (chain.ts) builds
// one from authenticators (who: http, jwt, allow-all) and an authority (what: http, jwt, allow-all),
// so that, say, a JWT authenticates and the HTTP backend authorizes. Everything fails closed.

import type { PermissionCheck } from '../destination/types.js';

export type AuthBackendName = 'http' | 'jwt' | 'allow-all';

export interface Principal {
  readonly username: string;
  readonly vhost: string;
  /** From the HTTP backend's `allow tag1 tag2`, or a JWT's `tag:` scopes; sent as `tags` later. */
  readonly tags: readonly string[];
  /** Which authenticator vouched for this principal. */
  readonly authenticatedBy: AuthBackendName;
  /** Epoch ms at which the credential expires (JWT `exp`): the session ends with "token expired". */
  readonly expiresAt?: number;
  /** JWT scopes with the prefix removed and variables expanded, for the jwt authority. */
  readonly scopes?: readonly string[];
}

export interface ConnectRequest {
  readonly login: string | undefined;
  readonly passcode: string | undefined;
  /** The CONNECT `host` header, or the default vhost. */
  readonly vhost: string;
  /** Client IP as RabbitMQ sends it (`127.0.0.1`, `::1`), without a port. */
  readonly remoteAddress: string;
  /** A token that came with the connection itself (`Authorization: Bearer` or `access_token`). */
  readonly bearerToken?: string | undefined;
}

/**
 * `unavailable`: the decision could not be made (auth service down, slow, or answering garbage).
 * It denies like a refusal but is worded differently, is never cached, and is logged as an error.
 */
export type AuthDecision<T> = { ok: true; value: T } | { ok: false; reason: string; unavailable?: true };

export const allow: AuthDecision<true> = { ok: true, value: true };
export const deny = (reason: string): AuthDecision<never> => ({ ok: false, reason });
export const unavailable = (reason: string): AuthDecision<never> => ({ ok: false, reason, unavailable: true });

/** Answers "who is this?" at CONNECT: the user step of reference §5.3, not the vhost step. */
export interface Authenticator {
  readonly name: AuthBackendName;
  /**
   * undefined: these credentials are not this authenticator's kind (no token for jwt), so the
   * chain asks the next one. A decision, allow or deny, ends the search: a forged token is never
   * retried as a password.
   */
  authenticate(request: ConnectRequest): Promise<AuthDecision<Principal> | undefined>;
}

/** Answers "may they?": the vhost step of CONNECT, then every permission check of a plan. */
export interface Authority {
  readonly name: AuthBackendName;
  /** `remoteAddress` is the `ip` RabbitMQ sends on the vhost path. */
  checkVhost(principal: Principal, remoteAddress: string): Promise<AuthDecision<true>>;
  authorize(principal: Principal, check: PermissionCheck): Promise<AuthDecision<true>>;
}

/** The session's view: the chain (chain.ts) or a test double. */
export interface Authorizer {
  readonly name: string;
  /** CONNECT: user, then vhost (reference §5.3). reason becomes the Bad CONNECT body. */
  authenticate(request: ConnectRequest): Promise<AuthDecision<Principal>>;
  /** One permission check; reason becomes the access_refused body. */
  authorize(principal: Principal, check: PermissionCheck): Promise<AuthDecision<true>>;
}
