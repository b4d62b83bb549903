// The rules file: who may log in, and what each user may do, as RabbitMQ's internal permissions
// express it (configure/write/read regexes per vhost, topic permissions per exchange). One zod
// schema validates it; every error names the offending entry (`users[2].password_hash: …`) so a
// typo is found at startup rather than as a mysterious `deny` at runtime.

import { readFileSync } from 'node:fs';
import * as z from 'zod';

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export type Permission = 'configure' | 'write' | 'read';
export type TopicPermission = 'write' | 'read';

export interface UserEntry {
  readonly username: string;
  readonly passwordHash: string;
  readonly tags: readonly string[];
}

/** `'*'`: every user listed in `users`. Otherwise the listed usernames. */
export type UserSelector = '*' | ReadonlySet<string>;

/** Patterns are templates: `{username}` and `{vhost}` are expanded, regex-escaped, per check. */
export interface PermissionEntry {
  readonly users: UserSelector;
  readonly vhost: string;
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface TopicPermissionEntry {
  readonly users: UserSelector;
  readonly vhost: string;
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

export interface Rules {
  readonly vhosts: readonly string[];
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly permissions: readonly PermissionEntry[];
  readonly topicPermissions: readonly TopicPermissionEntry[];
  /** Highest bcrypt cost in `users`: unknown users are compared against a dummy hash this slow. */
  readonly maxCost: number;
}

// $2a$/$2b$/$2y$, cost 04–31, 22 salt + 31 hash characters of bcrypt's base64 alphabet.
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
const PLACEHOLDER = /\{(username|vhost)\}/g;

/** Escapes every character that has a meaning in a RegExp, inside or outside a class. */
export function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/**
 * The pattern a check uses. An empty pattern means `^$`, as in RabbitMQ's internal backend.
 * Unlike RabbitMQ (which expands topic variables verbatim), values are regex-escaped so a
 * username such as `.*` cannot widen a pattern.
 */
export function expandPattern(template: string, vars: { readonly username: string; readonly vhost: string }): string {
  if (template === '') return '^$';
  return template.replace(PLACEHOLDER, (_match, key: 'username' | 'vhost') => escapeRegExp(vars[key]));
}

const nonEmpty = (what: string) =>
  z.string({ error: (iss) => `expected ${what}, got ${show(iss.input)}` }).min(1, { error: `expected ${what}, got ""` });

const pattern = z.string({ error: (iss) => `expected a regular expression string, got ${show(iss.input)}` }).check((ctx) => {
  try {
    new RegExp(expandPattern(ctx.value, { username: 'user', vhost: '/' }));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    ctx.issues.push({ code: 'custom', input: ctx.value, message: `invalid regular expression ${JSON.stringify(ctx.value)}: ${why}` });
  }
});

const userSelector = z.union([z.literal('*'), z.array(nonEmpty('a username')).min(1)], {
  error: (iss) => `expected "*" or a non-empty list of usernames, got ${show(iss.input)}`,
});

const comment = z.string().optional();

const RulesSchema = z.strictObject({
  comment,
  vhosts: z.array(nonEmpty('a vhost name')).min(1, { error: 'expected at least one vhost' }),
  users: z.array(
    z.strictObject({
      username: nonEmpty('a username'),
      password_hash: z.string().regex(BCRYPT_HASH, {
        error: (iss) => `expected a bcrypt hash ($2a$, $2b$ or $2y$), got ${show(iss.input)}`,
      }),
      // Tags are answered space-separated (`allow tag1 tag2`), so a tag cannot hold whitespace.
      tags: z.array(z.string().regex(/^\S+$/, { error: (iss) => `expected a tag without spaces, got ${show(iss.input)}` })).default([]),
      comment,
    }),
  ),
  permissions: z.array(
    z.strictObject({
      users: userSelector,
      vhost: nonEmpty('a vhost name'),
      configure: pattern,
      write: pattern,
      read: pattern,
      comment,
    }),
  ),
  topic_permissions: z
    .array(
      z.strictObject({
        users: userSelector,
        vhost: nonEmpty('a vhost name'),
        exchange: nonEmpty('an exchange name'),
        write: pattern,
        read: pattern,
        comment,
      }),
    )
    .default([]),
});

type RawRules = z.infer<typeof RulesSchema>;

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `['users', 2, 'password_hash']` → `users[2].password_hash`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`;
  return out === '' ? '(top level)' : out;
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  const at = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`);
    case 'invalid_type':
      if (issue.input === undefined) return [`${at}: missing (expected ${issue.expected})`];
      return [`${at}: ${issue.message.startsWith('Invalid input') ? `expected ${issue.expected}, got ${show(issue.input)}` : issue.message}`];
    default:
      return [`${at}: ${issue.message}`];
  }
}

/** Checks the schema cannot express: unique usernames, known users and vhosts in every entry. */
function crossCheck(raw: RawRules): string[] {
  const errors: string[] = [];
  const seen = new Map<string, number>();
  raw.users.forEach((user, i) => {
    const first = seen.get(user.username);
    if (first !== undefined) errors.push(`users[${i}].username: duplicate username ${JSON.stringify(user.username)} (first at users[${first}])`);
    else seen.set(user.username, i);
  });
  const vhosts = new Set(raw.vhosts);
  const checkEntry = (list: string, i: number, entry: { users: '*' | string[]; vhost: string }): void => {
    if (!vhosts.has(entry.vhost)) errors.push(`${list}[${i}].vhost: ${JSON.stringify(entry.vhost)} is not listed in vhosts`);
    if (entry.users === '*') return;
    entry.users.forEach((name, j) => {
      // A typo here would silently grant nothing; refuse it instead.
      if (!seen.has(name)) errors.push(`${list}[${i}].users[${j}]: unknown user ${JSON.stringify(name)}`);
    });
  };
  raw.permissions.forEach((entry, i) => checkEntry('permissions', i, entry));
  raw.topic_permissions.forEach((entry, i) => checkEntry('topic_permissions', i, entry));
  return errors;
}

const selector = (users: '*' | string[]): UserSelector => (users === '*' ? '*' : new Set(users));

/** Validates an already-parsed JSON value. Errors are lines `<fileName>: <path>: <what is wrong>`. */
export function parseRules(value: unknown, fileName: string): Result<Rules, string> {
  const parsed = RulesSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const lines = parsed.error.issues.flatMap(formatIssue);
    return { ok: false, error: lines.map((line) => `${fileName}: ${line}`).join('\n') };
  }
  const raw = parsed.data;
  const problems = crossCheck(raw);
  if (problems.length > 0) return { ok: false, error: problems.map((line) => `${fileName}: ${line}`).join('\n') };

  const users = new Map<string, UserEntry>();
  let maxCost = 0;
  for (const u of raw.users) {
    users.set(u.username, { username: u.username, passwordHash: u.password_hash, tags: u.tags });
    maxCost = Math.max(maxCost, Number(BCRYPT_HASH.exec(u.password_hash)?.[1] ?? 0));
  }
  return {
    ok: true,
    value: {
      vhosts: raw.vhosts,
      users,
      permissions: raw.permissions.map((p) => ({ users: selector(p.users), vhost: p.vhost, configure: p.configure, write: p.write, read: p.read })),
      topicPermissions: raw.topic_permissions.map((p) => ({ users: selector(p.users), vhost: p.vhost, exchange: p.exchange, write: p.write, read: p.read })),
      maxCost: maxCost === 0 ? 10 : maxCost,
    },
  };
}

/** Reads and validates a rules file. */
export function loadRules(file: string): Result<Rules, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { ok: false, error: `${file}: cannot read the rules file (${code})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `${file}: not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  return parseRules(value, file);
}
