// The part of stompit 1.x's API the example uses (stompit ships no type declarations). Names follow
// stompit's own JSDoc and README.

declare module 'stompit' {
  import type { Readable, Writable } from 'node:stream';
  import type { ConnectionOptions } from 'node:net';

  export type StompHeaders = Record<string, string | number>;

  /** Every error stompit reports says which kind it is. */
  export interface StompitError extends Error {
    isTransportError(): boolean;
    isProtocolError(): boolean;
    isApplicationError(): boolean;
    /** The ERROR frame's body, when it was text/plain with a content-length. */
    longMessage?: string;
  }

  export interface IncomingFrame extends Readable {
    readonly command: string;
    readonly headers: Record<string, string>;
    readString(encoding: BufferEncoding, callback: (error: Error | null, body?: string) => void): void;
  }

  export interface SendFrameOptions {
    /** Adds a `receipt` header and calls this when its RECEIPT arrives. */
    onReceipt?: () => void;
    onError?: (error: StompitError) => void;
  }

  export type AckMode = 'auto' | 'client' | 'client-individual';
  export type MessageListener = (error: StompitError | null, message: IncomingFrame) => void;

  export interface Subscription {
    getId(): string | number;
    unsubscribe(headers?: StompHeaders): void;
  }

  export interface Client {
    /** CONNECTED headers, once connected. */
    readonly headers: Record<string, string>;
    subscribe(headers: StompHeaders, onMessage: MessageListener): Subscription;
    /** Registers a listener for MESSAGE frames of subscription `id` without sending SUBSCRIBE. */
    setImplicitSubscription(id: string, ack: AckMode, onMessage: MessageListener): Subscription;
    /** Any frame; write the body to the returned stream, then end() it. */
    sendFrame(command: string, headers: StompHeaders, options?: SendFrameOptions): Writable;
    ack(message: IncomingFrame, headers?: StompHeaders, options?: SendFrameOptions, callback?: (error?: Error) => void): void;
    nack(message: IncomingFrame, headers?: StompHeaders, options?: SendFrameOptions, callback?: (error?: Error) => void): void;
    disconnect(callback?: (error: StompitError | null) => void): void;
    destroy(error?: Error): void;
    on(event: 'error', listener: (error: StompitError) => void): this;
    on(event: 'end', listener: () => void): this;
  }

  export interface ConnectOptions extends ConnectionOptions {
    host?: string;
    port?: number;
    /** ms to wait for the TCP connection; default 3000. */
    timeout?: number;
    ssl?: boolean;
    connectHeaders?: StompHeaders;
  }

  export function connect(options: ConnectOptions, callback: (error: StompitError | null, client: Client) => void): Client;

  const stompit: { connect: typeof connect };
  export default stompit;
}
