// The STOMP frame as every layer above the codec sees it, and small helpers to read it.
// Headers stay an ordered list of pairs: order matters on the wire (RabbitMQ's MESSAGE header
// order is observable) and repeated headers must survive decoding so that "first wins" is a
// decision made here, not an accident of a Map.

export const STOMP_VERSIONS = ['1.0', '1.1', '1.2'] as const;
export type StompVersion = (typeof STOMP_VERSIONS)[number];

export const CLIENT_COMMANDS = [
  'CONNECT',
  'STOMP',
  'SEND',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'ACK',
  'NACK',
  'BEGIN',
  'COMMIT',
  'ABORT',
  'DISCONNECT',
] as const;
export type ClientCommand = (typeof CLIENT_COMMANDS)[number];
export type ServerCommand = 'CONNECTED' | 'MESSAGE' | 'RECEIPT' | 'ERROR';

export type HeaderList = Array<readonly [name: string, value: string]>;

export interface Frame {
  /** Upper-case command as it arrived; the session rejects unknown ones. */
  readonly command: string;
  readonly headers: HeaderList;
  readonly body: Buffer;
}

export const EMPTY_BODY: Buffer = Buffer.alloc(0);

/** STOMP 1.2 §Repeated Header Entries: only the first occurrence is used. */
export function getHeader(frame: Pick<Frame, 'headers'>, name: string): string | undefined {
  for (const [k, v] of frame.headers) if (k === name) return v;
  return undefined;
}

export function hasHeader(frame: Pick<Frame, 'headers'>, name: string): boolean {
  return getHeader(frame, name) !== undefined;
}

/** The headers with repeats removed (first wins), order of first appearance kept. */
export function uniqueHeaders(headers: HeaderList): HeaderList {
  const seen = new Set<string>();
  const out: Array<readonly [string, string]> = [];
  for (const h of headers) {
    if (seen.has(h[0])) continue;
    seen.add(h[0]);
    out.push(h);
  }
  return out;
}

export function makeFrame(command: string, headers: HeaderList = [], body: Buffer | string = EMPTY_BODY): Frame {
  return { command, headers, body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body };
}

export function isClientCommand(command: string): command is ClientCommand {
  return (CLIENT_COMMANDS as readonly string[]).includes(command);
}
