// CONNECT / STOMP (reference §2.3): version and heart-beat negotiation, authentication, and the
// session's engine channel. The session calls this only before it is connected.

import type { Logger } from 'pino';
import type { Authorizer, Principal } from '../../auth/authorizer.js';
import type { Engine, EngineSession, EngineSessionEvents } from '../../engine/engine.js';
import { fail, ok, stompError, type Result } from '../../errors.js';
import { getHeader, type Frame, type StompVersion } from '../../stomp/frame.js';
import { negotiateHeartBeat, type HeartBeatPlan } from '../heart-beat.js';
import type { SessionOptions } from '../options.js';
import { negotiateVersion } from '../version.js';
import { asStompError } from '../plan-executor.js';

export interface ConnectDeps {
  readonly options: SessionOptions;
  readonly authorizer: Authorizer;
  readonly engine: Engine;
  readonly remoteAddress: string;
  /** A token the transport received with the connection, for JWT authentication. */
  readonly bearerToken: string | undefined;
  readonly sessionId: string;
  readonly log: Logger;
  readonly events: EngineSessionEvents;
}

export interface Connected {
  readonly version: StompVersion;
  readonly heartBeat: HeartBeatPlan;
  readonly principal: Principal;
  readonly engineSession: EngineSession;
}

export async function performConnect(frame: Frame, deps: ConnectDeps): Promise<Result<Connected>> {
  const version = negotiateVersion(getHeader(frame, 'accept-version'));
  if (!version.ok) return version;
  const heartBeat = negotiateHeartBeat(getHeader(frame, 'heart-beat'), deps.options.heartBeat);
  if (!heartBeat.ok) return heartBeat;
  // `host` is the virtual host, used verbatim (reference §2.3).
  const vhost = getHeader(frame, 'host') ?? deps.options.defaultVhost;
  const login = getHeader(frame, 'login');
  const auth = await deps.authorizer.authenticate({
    login,
    passcode: getHeader(frame, 'passcode'),
    vhost,
    remoteAddress: deps.remoteAddress,
    bearerToken: deps.bearerToken,
  });
  if (!auth.ok) return fail(stompError('BAD_CONNECT', auth.reason));
  const principal = auth.value;
  try {
    const engineSession = await deps.engine.openSession(
      { vhost: principal.vhost, username: principal.username, sessionId: deps.sessionId, log: deps.log },
      deps.events,
    );
    return ok({ version: version.value, heartBeat: heartBeat.value, principal, engineSession });
  } catch (e) {
    const error = asStompError(e);
    if (error.code === 'ENGINE_UNAVAILABLE') return fail(error);
    // The broker's own reason (which may name its address) is for the log, not the client.
    deps.log.warn({ vhost, code: error.code, detail: error.detail }, 'engine refused the session');
    return fail(stompError('BAD_CONNECT', `Virtual host '${vhost}' access denied`));
  }
}
