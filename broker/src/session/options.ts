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
}

export const DEFAULT_HEART_BEAT: HeartBeatOptions = { minSendMs: 1000, minReceiveMs: 1000, tolerance: 2 };
