// One catalog of every error Thumper reports to a STOMP client.
// Each code maps to the ERROR frame's `message` header (RabbitMQ's own wording where the plugin has
// one, so clients that match on it keep working), whether the session survives it, and a metric
// label. RabbitMQ keeps the connection open after validation errors and closes it after broker
// (channel) errors: we follow that split (reference §2.11), but unlike Web-STOMP 3.10.8 the ERROR is
// always flushed before the close (rabbitmq-server #6737).

import type { HeaderList } from './stomp/frame.js';

interface ErrorSpec {
  /** Value of the ERROR frame's `message` header. */
  readonly message: string;
  /** true: the session is closed after the ERROR is flushed. */
  readonly fatal: boolean;
}

export const ERROR_CATALOG = {
  // Framing (decoder). RabbitMQ closes without ERROR on these; we say why first.
  MALFORMED_FRAME: { message: 'Malformed frame', fatal: true },
  FRAME_TOO_LARGE: { message: 'Frame too large', fatal: true },
  TOO_MANY_HEADERS: { message: 'Too many headers', fatal: true },
  HEADER_TOO_LONG: { message: 'Header line too long', fatal: true },
  INVALID_ESCAPE: { message: 'Invalid header escape', fatal: true },
  INVALID_UTF8: { message: 'Invalid UTF-8 in header', fatal: true },
  // Session state.
  NOT_CONNECTED: { message: 'Illegal command', fatal: false },
  ALREADY_CONNECTED: { message: 'Illegal command', fatal: false },
  UNKNOWN_COMMAND: { message: 'Bad command', fatal: false },
  VERSION_MISMATCH: { message: 'Version mismatch', fatal: false },
  BAD_CONNECT: { message: 'Bad CONNECT', fatal: false },
  LOGIN_TIMEOUT: { message: 'Login timeout', fatal: true },
  HEARTBEAT_TIMEOUT: { message: 'Heart-beat timeout', fatal: true },
  TOKEN_EXPIRED: { message: 'token expired', fatal: true },
  // Flow: the client reads too slowly for an auto-ack subscription, or sends faster than we can
  // take while it cannot be paused (SockJS).
  SLOW_CONSUMER: { message: 'slow consumer', fatal: true },
  INBOUND_OVERFLOW: { message: 'Too many frames pending', fatal: true },
  // Frame validation.
  MISSING_HEADER: { message: 'Missing header', fatal: false },
  INVALID_HEADER: { message: 'Invalid header', fatal: false },
  PROCESSING_ERROR: { message: 'Processing error', fatal: false },
  BLANK_DESTINATION: { message: 'Invalid destination', fatal: false },
  INVALID_DESTINATION: { message: 'Invalid destination', fatal: false },
  UNKNOWN_DESTINATION: { message: 'Unknown destination', fatal: false },
  // Subscriptions, acks, transactions.
  DUPLICATE_SUBSCRIPTION: { message: 'Duplicated subscription identifier', fatal: true },
  NO_SUBSCRIPTION: { message: 'No subscription found', fatal: false },
  SUBSCRIPTION_NOT_FOUND: { message: 'Subscription not found', fatal: false },
  UNKNOWN_MESSAGE_ID: { message: 'precondition_failed', fatal: true },
  TOO_MANY_SUBSCRIPTIONS: { message: 'Too many subscriptions', fatal: false },
  BAD_TRANSACTION: { message: 'Bad transaction', fatal: false },
  MISSING_TRANSACTION: { message: 'Missing transaction', fatal: false },
  TRANSACTION_LIMIT: { message: 'Transaction limit exceeded', fatal: false },
  SERVER_CANCELLED: { message: 'Server cancelled subscription', fatal: false },
  // Broker (engine) errors: RabbitMQ names them by the AMQP error, lower case.
  ACCESS_REFUSED: { message: 'access_refused', fatal: true },
  NOT_FOUND: { message: 'not_found', fatal: true },
  PRECONDITION_FAILED: { message: 'precondition_failed', fatal: true },
  RESOURCE_LOCKED: { message: 'resource_locked', fatal: true },
  NOT_SUPPORTED: { message: 'Not supported', fatal: false },
  ENGINE_ERROR: { message: 'internal_error', fatal: true },
  ENGINE_UNAVAILABLE: { message: 'Broker unavailable', fatal: true },
  SERVER_SHUTDOWN: { message: 'Server shutting down', fatal: true },
  // Connection admission.
  TOO_MANY_CONNECTIONS: { message: 'Too many connections', fatal: true },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export interface StompError {
  readonly kind: 'stomp-error';
  readonly code: ErrorCode;
  /** The `message` header. */
  readonly message: string;
  /** The ERROR frame's body: the detail a person reads. */
  readonly detail: string;
  readonly fatal: boolean;
  /** Extra headers for the ERROR frame (e.g. `subscription` on a server cancel). */
  readonly headers?: HeaderList;
}

export function stompError(
  code: ErrorCode,
  detail: string,
  extra: { headers?: HeaderList; fatal?: boolean; message?: string } = {},
): StompError {
  const spec: ErrorSpec = ERROR_CATALOG[code];
  return {
    kind: 'stomp-error',
    code,
    message: extra.message ?? spec.message,
    detail,
    fatal: extra.fatal ?? spec.fatal,
    ...(extra.headers ? { headers: extra.headers } : {}),
  };
}

export function isStompError(x: unknown): x is StompError {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'stomp-error';
}

/** Result type for pure functions that can fail with a client-facing error. */
export type Result<T, E = StompError> = { ok: true; value: T } | { ok: false; error: E };
export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const fail = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** Why a session ended: a closed set, used in logs and metric labels. */
export type CloseReason =
  | 'client-disconnect'
  | 'client-gone'
  | 'fatal-error'
  | 'heartbeat-timeout'
  | 'login-timeout'
  | 'token-expired'
  | 'ping-timeout'
  | 'engine-lost'
  | 'server-shutdown'
  | 'slow-consumer';
