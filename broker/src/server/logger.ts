// The process logger: pino JSON lines (or a plain `LEVEL message key=value` form for people), with
// credentials kept out of every line: STOMP passcodes, Authorization headers, URL passwords.

import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogOptions {
  readonly level: LogLevel;
  /** Plain text for a terminal; not pino-pretty (not a dependency). */
  readonly pretty: boolean;
}

const REDACT_PATHS = [
  'passcode',
  'password',
  'authorization',
  '*.passcode',
  '*.password',
  '*.authorization',
  'headers.authorization',
  'headers.passcode',
  '*.headers.authorization',
];

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):[^\s@/?#]*@/gi;

/** `amqp://user:secret@host` → `amqp://user:***@host`, anywhere in a text. */
export function redactUrlPasswords(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1:***@');
}

/** For start-up lines: the URL without its password, and whether it had one. */
export function withoutPassword(url: string): { readonly url: string; readonly hadPassword: boolean } {
  if (!URL.canParse(url)) return { url: redactUrlPasswords(url), hadPassword: false };
  const parsed = new URL(url);
  const hadPassword = parsed.password !== '';
  parsed.password = '';
  return { url: parsed.toString().replace(/\/$/, ''), hadPassword };
}

/** STOMP headers travel as `[name, value]` pairs; redact paths only see objects, so handle lists here. */
function serializeHeaders(headers: unknown): unknown {
  if (!Array.isArray(headers)) return headers;
  return headers.map((pair: unknown) =>
    Array.isArray(pair) && (pair[0] === 'passcode' || pair[0] === 'authorization') ? [pair[0], '[Redacted]'] : pair,
  );
}

/** Shallow: messages and top-level string fields, where connection URLs end up. */
function redactArgs(args: unknown[]): unknown[] {
  return args.map((arg) => {
    if (typeof arg === 'string') return redactUrlPasswords(arg);
    if (typeof arg !== 'object' || arg === null || Array.isArray(arg) || arg instanceof Error) return arg;
    let copy: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(arg)) {
      if (typeof v !== 'string') continue;
      const clean = redactUrlPasswords(v);
      if (clean === v) continue;
      copy ??= { ...(arg as Record<string, unknown>) };
      copy[k] = clean;
    }
    return copy ?? arg;
  });
}

export function createLogger(options: LogOptions, destination?: DestinationStream): Logger {
  // Synchronous stdout: the last lines before process.exit() must not be lost.
  const out: DestinationStream = destination ?? pino.destination({ fd: 1, sync: true });
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      serializers: { headers: serializeHeaders, err: pino.stdSerializers.err },
      hooks: {
        logMethod(args, method) {
          method.apply(this, redactArgs(args) as Parameters<typeof method>);
        },
      },
    },
    options.pretty ? plainTextStream(out) : out,
  );
}

const OMITTED_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** Turns one pino JSON line into `INFO  message key=value …` (an error's stack on following lines). */
export function formatPlainLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const label = (pino.levels.labels[Number(entry['level'])] ?? 'log').toUpperCase().padEnd(5);
  const fields: string[] = [];
  let stack = '';
  for (const [k, v] of Object.entries(entry)) {
    if (OMITTED_FIELDS.has(k)) continue;
    if (k === 'err' && typeof v === 'object' && v !== null && 'stack' in v) {
      stack = `\n${String(v.stack)}`;
      continue;
    }
    fields.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  const msg = typeof entry['msg'] === 'string' ? entry['msg'] : '';
  return `${label} ${msg}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}${stack}\n`;
}

function plainTextStream(out: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      for (const one of line.split('\n')) if (one !== '') out.write(formatPlainLine(one));
    },
  };
}
