// The rabbitmq-auth-backend-http protocol (reference §5.1): GET with a query string or POST with
// a form body, parameters per path, and a text/plain `allow` / `allow <tags>` / `deny` answered
// with HTTP 200. A request missing a parameter gets 400, which RabbitMQ also counts as a denial.

import { Router } from 'express';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { decideResource, decideTopic, decideUser, decideVhost } from './decide.js';
import type { Decision } from './decide.js';
import type { Result, Rules } from './rules.js';

export const PROTOCOL_PATHS = ['user', 'vhost', 'resource', 'topic'] as const;
export type ProtocolPath = (typeof PROTOCOL_PATHS)[number];

/** What one protocol request asked and what it was told; for tests and audit hooks. */
export interface DecisionEvent {
  readonly path: ProtocolPath;
  /** The request's parameters in the order received, `password` replaced by `[redacted]`. */
  readonly params: Record<string, string>;
  /** The response body: `allow…`, `deny`, or the 400 explanation. */
  readonly answer: string;
  readonly status: 200 | 400;
}

export type OnDecision = (event: DecisionEvent) => void;

export const REDACTED = '[redacted]';

// Only what the decision needs. RabbitMQ sends more (ip, tags, variable_map.*), which is accepted.
// The user path's password is optional: certificate logins send only the username (denied here).
const REQUIRED: Record<ProtocolPath, readonly string[]> = {
  user: ['username'],
  vhost: ['username', 'vhost'],
  resource: ['username', 'vhost', 'resource', 'name', 'permission'],
  topic: ['username', 'vhost', 'resource', 'name', 'permission', 'routing_key'],
};

const RESOURCE_PERMISSIONS = ['configure', 'write', 'read'] as const;
const TOPIC_PERMISSIONS = ['write', 'read'] as const;

type Params = ReadonlyMap<string, string>;

/** The parsed query or form body as ordered pairs; a parameter given twice is refused. */
export function readParams(source: unknown): Result<Params, string> {
  const params = new Map<string, string>();
  if (typeof source !== 'object' || source === null) return { ok: true, value: params };
  for (const [key, value] of Object.entries(source)) {
    if (typeof value !== 'string') return { ok: false, error: `parameter "${key}" given more than once` };
    params.set(key, value);
  }
  return { ok: true, value: params };
}

export function redactParams(params: Params): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of params) out[key] = key === 'password' ? REDACTED : value;
  return out;
}

type Evaluation = { status: 200; answer: string; reason?: string } | { status: 400; answer: string };

const bad = (answer: string): Evaluation => ({ status: 400, answer });
const fromDecision = (d: Decision): Evaluation => (d.allow ? { status: 200, answer: 'allow' } : { status: 200, answer: 'deny', reason: d.reason });

function oneOf<T extends string>(allowed: readonly T[], value: string): value is T {
  return (allowed as readonly string[]).includes(value);
}

/** Answers one protocol request from the rules. */
export async function evaluate(rules: Rules, path: ProtocolPath, params: Params): Promise<Evaluation> {
  const missing = REQUIRED[path].filter((key) => !params.has(key));
  if (missing.length > 0) return bad(`missing parameter${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  const get = (key: string): string => params.get(key) ?? '';
  const username = get('username');
  const vhost = get('vhost');
  switch (path) {
    case 'user': {
      const password = params.get('password');
      if (password === undefined) return { status: 200, answer: 'deny', reason: 'no password (only password logins are supported)' };
      const d = await decideUser(rules, username, password);
      if (!d.allow) return { status: 200, answer: 'deny', reason: d.reason };
      return { status: 200, answer: ['allow', ...d.tags].join(' ') };
    }
    case 'vhost':
      return fromDecision(decideVhost(rules, username, vhost));
    case 'resource': {
      const resource = get('resource');
      const permission = get('permission');
      if (resource !== 'exchange' && resource !== 'queue') return bad(`resource must be exchange or queue, got "${resource}"`);
      if (!oneOf(RESOURCE_PERMISSIONS, permission)) return bad(`permission must be configure, write or read, got "${permission}"`);
      return fromDecision(decideResource(rules, { username, vhost, name: get('name'), permission }));
    }
    case 'topic': {
      const permission = get('permission');
      if (get('resource') !== 'topic') return bad(`resource must be topic, got "${get('resource')}"`);
      if (!oneOf(TOPIC_PERMISSIONS, permission)) return bad(`permission must be write or read, got "${permission}"`);
      return fromDecision(decideTopic(rules, { username, vhost, exchange: get('name'), permission, routingKey: get('routing_key') }));
    }
  }
}

export interface ProtocolOptions {
  readonly rules: Rules;
  readonly log: Logger;
  readonly onDecision?: OnDecision | undefined;
}

/** `/auth/user`, `/auth/vhost`, `/auth/resource`, `/auth/topic`, each by GET and POST. */
export function protocolRouter(options: ProtocolOptions): Router {
  const router = Router();
  for (const path of PROTOCOL_PATHS) {
    const handle = async (req: Request, res: Response): Promise<void> => {
      // RabbitMQ's POST carries the same form-encoded string in the body that GET puts in the query.
      const read = readParams(req.method === 'POST' ? req.body : req.query);
      const params = read.ok ? read.value : new Map<string, string>();
      const result: Evaluation = read.ok ? await evaluate(options.rules, path, params) : bad(read.error);
      const shown = redactParams(params);
      if (result.status === 400) options.log.info({ path, params: shown, error: result.answer }, 'malformed auth request');
      else if ('reason' in result && result.reason !== undefined) options.log.info({ path, params: shown, reason: result.reason }, 'denied');
      try {
        options.onDecision?.({ path, params: shown, answer: result.answer, status: result.status });
      } catch (err) {
        // An observer's bug must not turn a decision into a 500 (which RabbitMQ reads as deny).
        options.log.error({ err }, 'onDecision hook failed');
      }
      res.status(result.status).type('text/plain').send(result.answer);
    };
    router.get(`/auth/${path}`, handle);
    router.post(`/auth/${path}`, handle);
  }
  return router;
}
