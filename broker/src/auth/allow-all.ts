// The embedded development default as chain parts: whoever connects is who they say they are and
// may do anything. Configuration refuses it with the RabbitMQ engine (config.ts).

import { allow } from './authorizer.js';
import type { Authenticator, Authority } from './authorizer.js';

export function allowAllAuthenticator(defaultUser = 'guest'): Authenticator {
  return {
    name: 'allow-all',
    async authenticate(req) {
      return { ok: true, value: { username: req.login ?? defaultUser, vhost: req.vhost, tags: [], authenticatedBy: 'allow-all' } };
    },
  };
}

export function allowAllAuthority(): Authority {
  return {
    name: 'allow-all',
    async checkVhost() {
      return allow;
    },
    async authorize() {
      return allow;
    },
  };
}
