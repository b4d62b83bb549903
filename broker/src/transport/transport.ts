// The small duplex every transport (WebSocket, SockJS, TCP/TLS) is turned into. Nothing above this
// knows which one carried a frame.

export type TransportKind = 'ws' | 'sockjs' | 'tcp' | 'tls';

export interface TransportHandlers {
  data(chunk: Buffer): void;
  /** The peer went away or the transport was closed; called exactly once. */
  close(): void;
  /** The outbound buffer fell below its low-water mark. */
  drain(): void;
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
  /** Closes after what was already sent is flushed. */
  close(code?: number, reason?: string): void;
  setHandlers(handlers: TransportHandlers): void;
}
