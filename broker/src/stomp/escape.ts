// Header escaping for STOMP 1.0/1.1/1.2, both directions.
// Decoding is strict per version (an undefined escape is a framing error, STOMP 1.2 §Value
// Encoding), except for the CONNECT-time mode described on `HeaderEscaping`. Encoding always keeps
// the frame parseable: raw LF and CR would end a header line early, so they are escaped in every
// version, as RabbitMQ does (reference §2.2).

import type { StompVersion } from './frame.js';

/**
 * How header bytes are unescaped.
 * `'connect'` is used until the session knows the version, i.e. for the CONNECT/STOMP frame itself
 * (and anything sent before it). STOMP 1.2 §CONNECT says that frame is not escaped, while RabbitMQ
 * decodes the escapes on every frame, CONNECT included (reference §2.2). To serve clients written
 * against either reading, `'connect'` decodes the four 1.2 escapes when they appear and keeps any
 * other backslash sequence literally instead of failing, so a raw `\` in a passcode survives.
 */
export type HeaderEscaping = StompVersion | 'connect';

const BACKSLASH = 0x5c;

function escapeTarget(code: number, escaping: HeaderEscaping): string | undefined {
  switch (code) {
    case 0x6e: // n
      return '\n';
    case 0x63: // c
      return ':';
    case BACKSLASH:
      return '\\';
    case 0x72: // r: STOMP 1.1 defines only \n, \c and \\ (STOMP 1.1 §Value Encoding)
      return escaping === '1.1' ? undefined : '\r';
    default:
      return undefined;
  }
}

/**
 * Decodes the escapes of one header name or value. Returns undefined when the text holds a
 * backslash sequence the version does not define (including a trailing lone backslash).
 */
export function unescapeHeader(raw: string, escaping: HeaderEscaping): string | undefined {
  // STOMP 1.0 has no escaping.
  if (escaping === '1.0') return raw;
  let at = raw.indexOf('\\');
  if (at === -1) return raw;
  let out = '';
  let from = 0;
  while (at !== -1) {
    const target = escapeTarget(raw.charCodeAt(at + 1), escaping);
    if (target === undefined) {
      if (escaping !== 'connect') return undefined;
      // Lenient CONNECT-time rule: the backslash stays as it is.
      at = raw.indexOf('\\', at + 1);
      continue;
    }
    out += raw.slice(from, at) + target;
    from = at + 2;
    at = raw.indexOf('\\', from);
  }
  return out + raw.slice(from);
}

/** The first backslash sequence `unescapeHeader` rejects, for error messages. */
export function findInvalidEscape(raw: string, escaping: HeaderEscaping): string | undefined {
  if (escaping === '1.0' || escaping === 'connect') return undefined;
  let at = raw.indexOf('\\');
  while (at !== -1) {
    if (escapeTarget(raw.charCodeAt(at + 1), escaping) === undefined) return raw.slice(at, at + 2);
    at = raw.indexOf('\\', at + 2);
  }
  return undefined;
}

const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', ':': '\\c', '\n': '\\n', '\r': '\\r' };
const replaceEscape = (ch: string): string => ESCAPES[ch] ?? ch;

// STOMP 1.1 defines no `\r`, but a raw CR inside a header breaks framing for every reader, so it
// is escaped in 1.1 too (RabbitMQ escapes CR for every version, reference §2.2).
const SPECIAL = /[\\:\n\r]/;
const SPECIAL_ALL = /[\\:\n\r]/g;
// STOMP 1.0 has no escaping; only the bytes that would end the header line are escaped.
const EOL_1_0 = /[\n\r]/;
const EOL_1_0_ALL = /[\n\r]/g;

/** Escapes one header name or value for output in `version`. */
export function escapeHeader(text: string, version: StompVersion): string {
  // Most headers need nothing: test before building a new string.
  if (version === '1.0') return EOL_1_0.test(text) ? text.replace(EOL_1_0_ALL, replaceEscape) : text;
  return SPECIAL.test(text) ? text.replace(SPECIAL_ALL, replaceEscape) : text;
}
