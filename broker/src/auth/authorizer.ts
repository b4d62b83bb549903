// "May this user do this?" The session asks before every plan runs. The core ships only the
// allow-all authorizer for the embedded development default; the HTTP backend and JWT plug in here.

import type { PermissionCheck } from '../destination/types.js';

export interface Principal {
  readonly username: string;
  readonly vhost: string;
  readonly tags: readonly string[];
}

export interface ConnectRequest {
  readonly login: string | undefined;
  readonly passcode: string | undefined;
  readonly vhost: string;
  readonly remoteAddress: string;
}

export type AuthDecision<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface Authorizer {
  readonly name: string;
  /** CONNECT: user, then vhost (reference §5.3). reason becomes the Bad CONNECT body. */
  authenticate(request: ConnectRequest): Promise<AuthDecision<Principal>>;
  /** One permission check; reason becomes the access_refused body. */
  authorize(principal: Principal, check: PermissionCheck): Promise<AuthDecision<true>>;
}

/** Development only: everybody is who they say they are and may do anything. */
export function allowAllAuthorizer(defaultUser = 'guest'): Authorizer {
  return {
    name: 'allow-all',
    async authenticate(req) {
      return { ok: true, value: { username: req.login ?? defaultUser, vhost: req.vhost, tags: [] } };
    },
    async authorize() {
      return { ok: true, value: true };
    },
  };
}
