// `--print-config`: the configuration Thumper would run with, after file, environment and defaults
// are merged, as JSON an operator can diff or paste into a config file. Secrets never leave: URL
// passwords and the JWT secret are replaced, so the output is safe for tickets and CI logs.

import type { Config } from './config.js';
import { withoutPassword } from './logger.js';

export const REDACTED = '[redacted]';

export function effectiveConfigJson(config: Config): string {
  const copy = structuredClone(config) as Config & { amqp: { urls: string[] }; auth: { jwt: { secret?: string }; http?: Record<string, unknown> } };
  copy.amqp.urls = copy.amqp.urls.map((u) => withoutPassword(u).url);
  const http = copy.auth.http;
  if (http) for (const [k, v] of Object.entries(http)) if (typeof v === 'string' && /^https?:/.test(v)) http[k] = withoutPassword(v).url;
  if (copy.auth.jwt.secret !== undefined) copy.auth.jwt.secret = REDACTED;
  return `${JSON.stringify(copy, null, 2)}\n`;
}
