// The decisions behind the four rabbitmq-auth-backend-http paths, as pure functions of the rules.
// Same model as RabbitMQ's internal backend: a permission is granted when any applicable entry's
// regex matches the name (regexes are searched, not implicitly anchored), and topic access is
// granted when no topic permission is defined for the exchange. Users not listed in the rules are
// denied everything, whoever authenticated them.

import { compare } from 'bcryptjs';
import { expandPattern } from './rules.js';
import type { Permission, Rules, TopicPermission, UserSelector } from './rules.js';

export type Decision = { readonly allow: true } | { readonly allow: false; readonly reason: string };
export type UserDecision = { readonly allow: true; readonly tags: readonly string[] } | { readonly allow: false; readonly reason: string };

export interface ResourceQuestion {
  readonly username: string;
  readonly vhost: string;
  /** Queue or exchange name; RabbitMQ does not distinguish the two in permissions. */
  readonly name: string;
  readonly permission: Permission;
}

export interface TopicQuestion {
  readonly username: string;
  readonly vhost: string;
  readonly exchange: string;
  readonly permission: TopicPermission;
  readonly routingKey: string;
}

const ALLOW: Decision = { allow: true };
const denied = (reason: string): Decision => ({ allow: false, reason });

// A well-formed hash of nothing anyone knows; only its cost matters (see dummyHash).
const DUMMY_SALT_AND_HASH = 'N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';

/** A hash as slow to check as the slowest real one, so an unknown user costs the same time. */
function dummyHash(cost: number): string {
  return `$2b$${String(cost).padStart(2, '0')}$${DUMMY_SALT_AND_HASH}`;
}

/** The user path: bcrypt check of the password, then the user's tags. */
export async function decideUser(rules: Rules, username: string, password: string): Promise<UserDecision> {
  const user = rules.users.get(username);
  if (user === undefined) {
    // Spend one comparison anyway: the response time must not tell which usernames exist.
    await compare(password, dummyHash(rules.maxCost));
    return { allow: false, reason: 'unknown user' };
  }
  const matches = await compare(password, user.passwordHash);
  return matches ? { allow: true, tags: user.tags } : { allow: false, reason: 'wrong password' };
}

function selects(selector: UserSelector, username: string): boolean {
  return selector === '*' || selector.has(username);
}

function matches(template: string, vars: { username: string; vhost: string }, subject: string): boolean {
  try {
    return new RegExp(expandPattern(template, vars)).test(subject);
  } catch {
    // Unreachable for validated rules (each pattern was compiled at load); fail closed regardless.
    return false;
  }
}

/** The vhost path: the vhost exists and the user has at least one entry for it. */
export function decideVhost(rules: Rules, username: string, vhost: string): Decision {
  if (!rules.users.has(username)) return denied('unknown user');
  if (!rules.vhosts.includes(vhost)) return denied('unknown vhost');
  const hasEntry = [...rules.permissions, ...rules.topicPermissions].some((e) => e.vhost === vhost && selects(e.users, username));
  return hasEntry ? ALLOW : denied('no permissions in this vhost');
}

/** The resource path: any applicable permission entry whose pattern matches the name. */
export function decideResource(rules: Rules, q: ResourceQuestion): Decision {
  if (!rules.users.has(q.username)) return denied('unknown user');
  const vars = { username: q.username, vhost: q.vhost };
  const applicable = rules.permissions.filter((e) => e.vhost === q.vhost && selects(e.users, q.username));
  if (applicable.length === 0) return denied('no permissions in this vhost');
  return applicable.some((e) => matches(e[q.permission], vars, q.name)) ? ALLOW : denied(`${q.permission} pattern does not match`);
}

/**
 * The topic path. No entry for (user, vhost, exchange) means allowed, as RabbitMQ's internal
 * backend does; the resource check on the exchange has already been made by then.
 */
export function decideTopic(rules: Rules, q: TopicQuestion): Decision {
  if (!rules.users.has(q.username)) return denied('unknown user');
  const vars = { username: q.username, vhost: q.vhost };
  const applicable = rules.topicPermissions.filter((e) => e.vhost === q.vhost && e.exchange === q.exchange && selects(e.users, q.username));
  if (applicable.length === 0) return ALLOW;
  return applicable.some((e) => matches(e[q.permission], vars, q.routingKey))
    ? ALLOW
    : denied(`topic ${q.permission} pattern does not match the routing key`);
}
