// The HTTP auth backend as the chain sees it: an Authenticator (user path) and an Authority (vhost,
// resource and topic paths), each behind a DecisionCache. Answers become RabbitMQ's wording
// (reference §5.1, §5.3); `unavailable` answers deny too but are worded apart and never cached.
// Cache keys hold only what is sent to the backend, nothing per connection, so every connection
// of a user shares the entries; each starts with its kind, so one cache can serve both halves.

import { createHmac, randomBytes } from 'node:crypto';
import type { PermissionCheck } from '../destination/types.js';
import { allow, deny, unavailable } from './authorizer.js';
import type { AuthDecision, Authenticator, Authority, Principal } from './authorizer.js';
import type { DecisionCache } from './decision-cache.js';
import type { BackendAnswer, HttpBackend } from './http-backend.js';

const refusedUser = (username: string): string => `Access refused for user '${username}'\n`;

export function createHttpAuthenticator(backend: HttpBackend, cache: DecisionCache): Authenticator {
  // The password is in the key only as a keyed hash with a per-process key: nothing in memory can
  // be dictionary-attacked offline, and different passwords still miss.
  const keySecret = randomBytes(32);
  const passwordDigest = (password: string): string => createHmac('sha256', keySecret).update(password, 'utf8').digest('base64');

  return {
    name: 'http',
    async authenticate(request) {
      const username = request.login;
      // RabbitMQ would fall back to its configured default user; Thumper has none.
      if (username === undefined) return deny(refusedUser(''));
      const password = request.passcode ?? '';
      const { vhost } = request;
      const key = JSON.stringify(['user', username, passwordDigest(password), vhost]);
      return cache.get<Principal>(key, async () => {
        const answer = await backend.user(username, password, vhost);
        switch (answer.kind) {
          case 'allow':
            return { ok: true, value: { username, vhost, tags: answer.tags, authenticatedBy: 'http' } };
          case 'deny':
            return deny(refusedUser(username));
          case 'unavailable':
            return unavailable(`Authentication service unavailable: could not check user '${username}'`);
        }
      });
    },
  };
}

export function createHttpAuthority(backend: HttpBackend, cache: DecisionCache): Authority {
  return {
    name: 'http',
    checkVhost(principal, remoteAddress) {
      const { username, vhost, tags } = principal;
      const key = JSON.stringify(['vhost', username, vhost, remoteAddress, tags]);
      return cache.get<true>(key, async () =>
        toDecision(
          await backend.vhost(username, vhost, remoteAddress, tags),
          `Virtual host '${vhost}' access denied`,
          `Authentication service unavailable: could not check virtual host '${vhost}'`,
        ),
      );
    },
    authorize(principal, check) {
      const key = JSON.stringify(permissionKey(principal, check));
      return cache.get<true>(key, async () => {
        const { username, vhost, tags } = principal;
        const answer =
          check.resource === 'topic'
            ? await backend.topic(username, vhost, check.name, check.permission, tags, check.routingKey)
            : await backend.resource(username, vhost, check.resource, check.name, check.permission, tags);
        // '' : the session writes RabbitMQ's ACCESS_REFUSED text itself and has nothing to add.
        return toDecision(answer, '', 'auth service unavailable');
      });
    },
  };
}

function permissionKey(principal: Principal, check: PermissionCheck): readonly unknown[] {
  const base = [check.resource, principal.username, principal.vhost, check.name, check.permission, principal.tags];
  return check.resource === 'topic' ? [...base, check.routingKey] : base;
}

function toDecision(answer: BackendAnswer, denyReason: string, unavailableReason: string): AuthDecision<true> {
  switch (answer.kind) {
    case 'allow':
      return allow;
    case 'deny':
      return deny(denyReason);
    case 'unavailable':
      return unavailable(unavailableReason);
  }
}
