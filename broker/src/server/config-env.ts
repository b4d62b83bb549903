// Where configuration comes from: command-line arguments, the JSON config file and THUMPER_*
// environment variables. Everything here produces the file's shape; config.ts validates it.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fail, ok } from '../errors.js';
import type { Result } from '../errors.js';

/** How an environment string becomes the value the schema checks. */
export type ValueKind = 'int' | 'number' | 'boolean' | 'string' | 'list' | 'exchanges';

export interface EnvKey {
  /** Dotted path in the config file, e.g. `http.port`. */
  readonly key: string;
  readonly env: string;
  readonly kind: ValueKind;
  /** A second, lower-priority variable (AMQP_URL for amqp.urls). */
  readonly fallbackEnv?: string;
}

/** Where an environment-provided value came from, so errors can name the variable and echo it. */
export interface EnvSource {
  readonly env: string;
  readonly raw: string;
}

export const ENV_PREFIX = 'THUMPER_';
/** Path of the JSON config file; not a config key itself. */
export const CONFIG_FILE_ENV = 'THUMPER_CONFIG';

/** `stomp.heartBeatMinSendMs` → `THUMPER_STOMP_HEART_BEAT_MIN_SEND_MS`. */
export function envNameFor(key: string): string {
  const parts = key.split('.').map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase());
  return ENV_PREFIX + parts.join('_');
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);
const EXCHANGE_TYPES = new Set(['direct', 'topic', 'fanout']);

/**
 * Converts one variable's text. Text that does not fit the kind is returned unchanged so the schema
 * rejects it and the error can quote exactly what was set.
 */
export function convertEnvValue(kind: ValueKind, raw: string): unknown {
  const text = raw.trim();
  switch (kind) {
    case 'int':
      return /^[+-]?\d+$/.test(text) ? Number(text) : raw;
    case 'number':
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : raw;
    case 'boolean': {
      const word = text.toLowerCase();
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      return raw;
    }
    case 'list':
      return splitList(text);
    case 'exchanges':
      return parseExchanges(text) ?? raw;
    case 'string':
      return text;
  }
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** `feed:topic,logs:fanout@/staging` or a JSON array of `{name, type, vhost?}`. */
function parseExchanges(text: string): unknown[] | undefined {
  if (text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      return Array.isArray(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }
  const out: unknown[] = [];
  for (const item of splitList(text)) {
    const match = /^([^:@]+):([a-z]+)(?:@(.+))?$/.exec(item);
    if (!match || !EXCHANGE_TYPES.has(match[2] ?? '')) return undefined;
    out.push({ name: match[1], type: match[2], ...(match[3] !== undefined ? { vhost: match[3] } : {}) });
  }
  return out;
}

export interface EnvValues {
  /** Nested like the config file, holding only what the environment sets. */
  readonly values: Record<string, unknown>;
  readonly sources: ReadonlyMap<string, EnvSource>;
}

/** Reads every known variable; an empty (or blank) variable counts as unset. */
export function readEnv(keys: readonly EnvKey[], env: Readonly<Record<string, string | undefined>>): EnvValues {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, EnvSource>();
  for (const key of keys) {
    const name = [key.env, key.fallbackEnv].find((n) => n !== undefined && (env[n] ?? '').trim() !== '');
    const raw = name === undefined ? undefined : env[name];
    if (name === undefined || raw === undefined) continue;
    setPath(values, key.key.split('.'), convertEnvValue(key.kind, raw));
    sources.set(key.key, { env: name, raw });
  }
  return { values, sources };
}

/** THUMPER_* variables that match no key: almost always a typo worth a warning. */
export function unknownEnvVars(keys: readonly EnvKey[], env: Readonly<Record<string, string | undefined>>): string[] {
  const known = new Set<string>([CONFIG_FILE_ENV, ...keys.map((k) => k.env)]);
  return Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !known.has(name))
    .sort();
}

/** Sets `path` in a nested object, creating plain objects on the way; a non-object in the way is kept. */
export function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const next = target[head] ?? {};
  if (!isPlainObject(next)) return;
  target[head] = next;
  setPath(next, rest, value);
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export interface CommandLine {
  readonly help: boolean;
  /** Print the effective configuration (secrets redacted) and exit. */
  readonly printConfig: boolean;
  readonly configFile: string | undefined;
}

/** `--config <file>` (or `--config=<file>`, `-c`), `--help`, `--print-config`; anything else is an error. */
export function parseCommandLine(argv: readonly string[]): Result<CommandLine, string> {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, 'print-config': { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    });
    return ok({ help: values.help === true, printConfig: values['print-config'] === true, configFile: values.config });
  } catch (err) {
    return fail(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }
}

/** The JSON config file as an object; errors are ready to print. */
export function readConfigFile(file: string): Result<Record<string, unknown>, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`Invalid configuration: cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail(`Invalid configuration: config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(value)) return fail(`Invalid configuration: config file ${file} must hold a JSON object`);
  return ok(value);
}

/** Environment values replace the file's, leaf by leaf. */
export function overlay(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(source)) {
    const existing = target[k];
    if (isPlainObject(v) && isPlainObject(existing)) overlay(existing, v);
    else if (isPlainObject(v) && existing !== undefined) continue; // a bad file section: reported by the schema
    else target[k] = v;
  }
  return target;
}

/** The nearest package.json named `thumper` above this file (works from src/ and from dist/). */
export function readPackageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (isPlainObject(pkg) && pkg['name'] === 'thumper' && typeof pkg['version'] === 'string') return pkg['version'];
    } catch {
      // not here: keep climbing
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}
