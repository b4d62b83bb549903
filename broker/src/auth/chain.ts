// The Authorizer the session uses, built from configuration: authenticators tried in order (the
// first that recognises the credentials decides), then one authority for the vhost step and every
// later check. `authz: 'same'` keeps RabbitMQ's rule (the backend that authenticated authorizes);
// naming a backend lets a JWT authenticate while the HTTP backend authorizes.

import type { Logger } from 'pino';
import type { PermissionCheck } from '../destination/types.js';
import { allow, deny } from './authorizer.js';
import type { AuthBackendName, AuthDecision, Authenticator, Authority, Authorizer, ConnectRequest, Principal } from './authorizer.js';

export type AuthzChoice = 'same' | AuthBackendName;

export interface ChainOptions {
  readonly authenticators: readonly Authenticator[];
  readonly authorities: ReadonlyMap<AuthBackendName, Authority>;
  readonly authz: AuthzChoice;
  /** The exchange's type when known (engine.exchangeType); unknown exchanges get their topic checks. */
  readonly exchangeType: (vhost: string, name: string) => string | undefined;
  readonly log: Logger;
  /** Told every decision a backend made (metrics); never told who asked or for what. */
  readonly onDecision?: DecisionObserver;
}

/** connect: the authenticator's answer; vhost: the vhost step of CONNECT; permission: a plan's check. */
export type AuthStep = 'connect' | 'vhost' | 'permission';
export type AuthResult = 'allow' | 'deny' | 'unavailable';
export type DecisionObserver = (backend: string, step: AuthStep, result: AuthResult) => void;

const resultOf = (decision: AuthDecision<unknown>): AuthResult => (decision.ok ? 'allow' : decision.unavailable === true ? 'unavailable' : 'deny');

/** C0 controls and DEL: no legitimate user name or password carries them; they only smuggle. */
const CONTROL = /[\u0000-\u001f\u007f]/;

export function createAuthChain(options: ChainOptions): Authorizer {
  const { authenticators, authorities, authz, exchangeType, log } = options;
  const observe = options.onDecision ?? (() => undefined);
  const authorityFor = (principal: Principal): Authority | undefined =>
    authorities.get(authz === 'same' ? principal.authenticatedBy : authz);

  return {
    name: authenticators.map((a) => a.name).join(','),

    async authenticate(request: ConnectRequest): Promise<AuthDecision<Principal>> {
      if (CONTROL.test(request.login ?? '') || CONTROL.test(request.passcode ?? '')) {
        log.info({ remote: request.remoteAddress }, 'CONNECT refused: control characters in login or passcode');
        return deny('Access refused: login and passcode must not contain control characters\n');
      }
      for (const authenticator of authenticators) {
        const decision = await authenticator.authenticate(request);
        if (decision === undefined) continue;
        observe(authenticator.name, 'connect', resultOf(decision));
        if (!decision.ok) {
          logDenial(log, 'authentication', authenticator.name, decision, { login: request.login });
          return decision;
        }
        const principal = decision.value;
        const authority = authorityFor(principal);
        if (authority === undefined) {
          // Configuration validation prevents this; fail closed if it ever happens.
          log.error({ authenticatedBy: principal.authenticatedBy, authz }, 'no authority for this principal');
          return deny(`Access refused for user '${principal.username}'\n`);
        }
        const vhost = await authority.checkVhost(principal, request.remoteAddress);
        observe(authority.name, 'vhost', resultOf(vhost));
        if (!vhost.ok) {
          logDenial(log, 'vhost', authority.name, vhost, { user: principal.username, vhost: principal.vhost });
          return vhost;
        }
        return { ok: true, value: principal };
      }
      const kinds = authenticators.map((a) => a.name).join(', ');
      return deny(`Access refused for user '${request.login ?? ''}': no credentials this server accepts (${kinds})\n`);
    },

    async authorize(principal: Principal, check: PermissionCheck): Promise<AuthDecision<true>> {
      if (check.resource === 'topic' && check.always !== true && !mayBeTopic(exchangeType(principal.vhost, check.name))) {
        return allow; // reference §5.3: RabbitMQ makes topic checks on topic exchanges only
      }
      const authority = authorityFor(principal);
      if (authority === undefined) return deny('no authority configured');
      const decision = await authority.authorize(principal, check);
      observe(authority.name, 'permission', resultOf(decision));
      if (!decision.ok) logDenial(log, 'permission', authority.name, decision, { user: principal.username, check });
      return decision;
    },
  };
}

/** Unknown exchanges are treated as topic exchanges: one check too many rather than one too few. */
function mayBeTopic(type: string | undefined): boolean {
  return type === undefined || type === 'topic';
}

function logDenial(log: Logger, step: string, backend: string, decision: { reason: string; unavailable?: true }, fields: object): void {
  if (decision.unavailable) log.error({ step, backend, reason: decision.reason, ...fields }, 'auth backend unavailable: denied');
  else log.info({ step, backend, ...fields }, 'auth denied');
}
