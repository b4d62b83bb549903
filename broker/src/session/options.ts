// Everything a session needs from configuration, with the safe defaults documented where defined.

import type { DecoderLimits } from '../stomp/decoder.js';

export interface HeartBeatOptions {
  /** Smallest interval (ms) the server will send heart-beats at; client wishes below are raised. */
  readonly minSendMs: number;
  /** Smallest interval (ms) the server will expect heart-beats at. */
  readonly minReceiveMs: number;
  /** A peer is dead after this many intervals without a byte (STOMP 1.2 §Heart-beating allows slack). */
  readonly tolerance: number;
}

export interface SessionOptions {
  readonly serverName: string;
  readonly defaultVhost: string;
  /** Exchange used by `/topic/<n>` (RabbitMQ's stomp.default_topic_exchange). */
  readonly defaultTopicExchange: string;
  readonly decoder: DecoderLimits;
  readonly heartBeat: HeartBeatOptions;
  /** A connection that has not completed CONNECT by then is closed. */
  readonly loginTimeoutMs: number;
  readonly maxSubscriptions: number;
  readonly maxTransactions: number;
  /** Frames buffered per open transaction. */
  readonly maxTransactionFrames: number;
  /** Bytes all open transactions of the session may hold (default DEFAULT_MAX_TRANSACTION_BYTES, 16 MiB). */
  readonly maxTransactionBytes?: number;
  /** Outbound and inbound bounds (slow consumers, fast producers); absent: DEFAULT_FLOW_OPTIONS. */
  readonly flow?: FlowOptions;
}

/** Per-session bounds on what waits for the client to read, and on what it sent that waits for us. */
export interface FlowOptions {
  /**
   * Bytes waiting in the transport for the client to read. At the bound, an `auto` subscription's
   * next MESSAGE ends the session (ERROR "slow consumer"); `client`/`client-individual`
   * subscriptions stop taking from the broker until the backlog is half drained. A frame always
   * fits into an empty backlog, so a MESSAGE larger than the bound is still delivered. Default 4 MiB.
   */
  readonly maxOutboundBytes: number;
  /** The same bound counted in frames not yet flushed. Default 10000. */
  readonly maxOutboundFrames: number;
  /** Frames decoded but not yet handled: past this the transport stops reading. Default 64. */
  readonly maxInboxFrames: number;
  /** The same bound in frame bytes (headers and body). Default 1 MiB. */
  readonly maxInboxBytes: number;
}

export const DEFAULT_FLOW_OPTIONS: FlowOptions = Object.freeze({
  maxOutboundBytes: 4 * 1024 * 1024,
  maxOutboundFrames: 10_000,
  maxInboxFrames: 64,
  maxInboxBytes: 1024 * 1024,
});

export const DEFAULT_HEART_BEAT: HeartBeatOptions = { minSendMs: 1000, minReceiveMs: 1000, tolerance: 2 };
