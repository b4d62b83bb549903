// The embedded development default as chain parts: whoever connects is who they say they are and
// may do anything. Configuration refuses it with the RabbitMQ engine (config.ts).

import { allow } from './authorizer.js';
import type { Authenticator, Authority, Authorizer, ConnectRequest, Principal } from './authorizer.js';

const principalFor = (req: ConnectRequest, defaultUser: string): Principal => ({
  username: req.login ?? defaultUser,
  vhost: req.vhost,
  tags: [],
  authenticatedBy: 'allow-all',
});

export function allowAllAuthenticator(defaultUser = 'guest'): Authenticator {
  return {
    name: 'allow-all',
    async authenticate(req) {
      return { ok: true, value: principalFor(req, defaultUser) };
    },
  };
}

/** The whole allow-all authorizer without the chain, for session tests. */
export function allowAllAuthorizer(defaultUser = 'guest'): Authorizer {
  return {
    name: 'allow-all',
    async authenticate(req) {
      return { ok: true, value: principalFor(req, defaultUser) };
    },
    async authorize() {
      return allow;
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
