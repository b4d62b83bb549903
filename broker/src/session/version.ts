// STOMP version negotiation at CONNECT (STOMP 1.2 §Protocol Negotiation, reference §2.1).

import { STOMP_VERSIONS, type StompVersion } from '../stomp/frame.js';
import { fail, ok, stompError, type Result } from '../errors.js';

/** Highest common version; absent header means 1.0; unknown entries are ignored. */
export function negotiateVersion(acceptVersion: string | undefined): Result<StompVersion> {
  if (acceptVersion === undefined) return ok('1.0');
  const offered = new Set(acceptVersion.split(',').map((v) => v.trim()));
  for (let i = STOMP_VERSIONS.length - 1; i >= 0; i--) {
    const v = STOMP_VERSIONS[i]!;
    if (offered.has(v)) return ok(v);
  }
  return fail(stompError('VERSION_MISMATCH', `Supported versions are ${STOMP_VERSIONS.join(',')}\n`));
}
