// The small duplex every transport (WebSocket, SockJS, TCP/TLS) is turned into. Nothing above this
// knows which one carried a frame.

export type TransportKind = 'ws' | 'sockjs' | 'tcp' | 'tls';

/** The outbound backlog's bounds, in bytes and in frames (send() calls). */
export interface WaterMarks {
  readonly highBytes: number;
  readonly lowBytes: number;
  readonly highFrames: number;
  readonly lowFrames: number;
}

export interface TransportHandlers {
  data(chunk: Buffer): void;
  /** The peer went away or the transport was closed; called exactly once. */
  close(reason?: 'ping-timeout'): void;
  /** The outbound buffer fell below its low-water mark. */
  drain(): void;
  /**
   * The peer will send nothing more but still reads (a TCP half-close, as `nc` does when its input
   * ends). Without this handler the transport closes. Transports without half-close never call it.
   */
  end?(): void;
}

export interface Transport {
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  /** A token that came with the connection (`Authorization: Bearer`, `access_token`), for JWT auth. */
  readonly bearerToken?: string | undefined;
  /** Versions the client offered in the WebSocket subprotocol, highest first (may be empty). */
  readonly offeredVersions: readonly string[];
  /** Sends one STOMP frame (or one heart-beat EOL) as one unit. false: over the high-water mark. */
  send(data: Buffer): boolean;
  bufferedBytes(): number;
  /**
   * send() calls not yet flushed to the network: ws and TCP count each until its write callback;
   * SockJS counts the messages it holds for the next poll (those already on the attached socket
   * count only in bufferedBytes).
   */
  bufferedFrames(): number;
  /** Replaces the water marks: send() is false at either high mark; `drain` fires under both low ones. */
  setWaterMarks(marks: WaterMarks): void;
  /**
   * Stops reading from the client (inbound backpressure) until resume(). A chunk already read may
   * still arrive. Returns false when the transport cannot stop its peer (SockJS: messages arrive in
   * HTTP requests the server must answer), so the caller bounds the inbound side itself.
   */
  pause(): boolean;
  resume(): void;
  /** Closes after what was already sent is flushed. */
  close(code?: number, reason?: string): void;
  setHandlers(handlers: TransportHandlers): void;
}
