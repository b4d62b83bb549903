// The soak's STOMP 1.2 client: one small class over three byte pipes (WebSocket via ws, SockJS
// xhr-streaming via sockjs-client, raw TCP via node:net), framed with the broker's own decoder and
// encoder. Unlike the bench's WebSocket-only client it can ACK (client-individual), and it tells a
// close it asked for from one it did not, which is what the soak counts as an unexpected error.
// Heart-beats are 10 s both ways, sent for every open client by one shared timer.

import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import WebSocket from 'ws';
import { encodeFrame } from '../../broker/src/stomp/encoder.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame, HeaderList } from '../../broker/src/stomp/frame.js';
import { connectHeaders, StompClientCore, trackHeartBeats } from './stomp-client-core.js';

export const TRANSPORTS = ['ws', 'sockjs', 'tcp'] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

export interface SoakTarget {
  readonly wsUrl: string;
  /** http://127.0.0.1:<port>/stomp */
  readonly sockjsUrl: string;
  readonly tcpPort: number;
  readonly login: string;
  readonly passcode: string;
}

/** Bytes both ways; `end` is polite where the transport has a polite close, `drop` is not. */
interface Pipe {
  write(bytes: Buffer): void;
  end(): void;
  drop(): void;
}

interface PipeEvents {
  open(): void;
  data(chunk: Buffer): void;
  closed(reason: string): void;
}

/** The parts of sockjs-client's SockJS object the soak uses. */
interface SockJsSocket {
  onopen: (() => void) | null;
  onmessage: ((e: { data: string }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
const SockJS = createRequire(import.meta.url)('sockjs-client') as new (url: string, reserved: null, options: { transports: string[] }) => SockJsSocket;

function openPipe(kind: TransportKind, target: SoakTarget, on: PipeEvents): Pipe {
  switch (kind) {
    case 'ws': {
      const ws = new WebSocket(target.wsUrl, ['v12.stomp'], { perMessageDeflate: false });
      ws.binaryType = 'nodebuffer';
      ws.on('open', on.open);
      ws.on('message', (data: Buffer) => on.data(data));
      ws.on('close', (code) => on.closed(`WebSocket closed (${code})`));
      ws.on('error', (err) => on.closed(`WebSocket error: ${err.message}`));
      return {
        write: (bytes) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
        },
        end: () => ws.close(1000),
        drop: () => ws.terminate(),
      };
    }
    case 'tcp': {
      const socket = netConnect({ host: '127.0.0.1', port: target.tcpPort });
      socket.on('connect', on.open);
      socket.on('data', (chunk: Buffer) => on.data(chunk));
      socket.on('close', () => on.closed('TCP closed'));
      socket.on('error', (err) => on.closed(`TCP error: ${err.message}`));
      return {
        write: (bytes) => {
          if (!socket.destroyed) socket.write(bytes);
        },
        end: () => socket.end(),
        drop: () => socket.destroy(),
      };
    }
    case 'sockjs': {
      const sock = new SockJS(target.sockjsUrl, null, { transports: ['xhr-streaming'] });
      sock.onopen = on.open;
      // SockJS carries text: every frame the soak sends or receives is ASCII.
      sock.onmessage = (e) => on.data(Buffer.from(e.data, 'utf8'));
      sock.onclose = (e) => on.closed(`SockJS closed (${e.code})`);
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        sock.close();
      };
      return {
        write: (bytes) => {
          if (!closed) sock.send(bytes.toString('utf8'));
        },
        end: close,
        // sockjs-client has no abortive close: its close() abandons the HTTP stream without a word
        // to the server, which then notices by itself.
        drop: close,
      };
    }
  }
}

export class SoakClient {
  readonly kind: TransportKind;
  readonly #pipe: Pipe;
  readonly #core = new StompClientCore(1024 * 1024);
  #connected: { resolve(): void; reject(err: Error): void } | undefined;
  #open = true;
  #closing = false;
  #receiptSeq = 0;
  /** Every MESSAGE frame (its body may be a view of the received chunk). */
  onMessage: (frame: Frame) => void = () => {};
  /** Once, when the connection ends: `expected` is false for a close the client did not ask for. */
  onClose: (reason: string, expected: boolean) => void = () => {};
  /** The first ERROR frame's message header. */
  error: string | undefined;

  private constructor(kind: TransportKind, target: SoakTarget) {
    this.kind = kind;
    this.#pipe = openPipe(kind, target, {
      open: () => this.#sendConnect(target),
      data: (chunk) => this.#onData(chunk),
      closed: (reason) => this.#closed(reason),
    });
  }

  /** Opens the pipe, CONNECTs with heart-beats 10000,10000; resolves on CONNECTED. */
  static connect(kind: TransportKind, target: SoakTarget, timeoutMs: number): Promise<SoakClient> {
    const client = new SoakClient(kind, target);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        client.drop();
        reject(new Error(`${kind}: no CONNECTED within ${timeoutMs} ms`));
      }, timeoutMs);
      client.#connected = {
        resolve: () => {
          clearTimeout(timer);
          trackHeartBeats(client, true);
          resolve(client);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  get isOpen(): boolean {
    return this.#open;
  }

  subscribe(destination: string, id: string, ack: 'auto' | 'client-individual', receipt: boolean, extra: HeaderList = []): Promise<void> | undefined {
    return this.#frame('SUBSCRIBE', [['destination', destination], ['id', id], ['ack', ack], ...extra], undefined, receipt);
  }

  send(destination: string, body: Buffer, receipt: boolean): Promise<void> | undefined {
    return this.#frame('SEND', [['destination', destination], ['content-type', 'text/plain']], body, receipt);
  }

  /** STOMP 1.2 §ACK: `id` is the MESSAGE's `ack` header. */
  ack(id: string): void {
    this.#frame('ACK', [['id', id]], undefined, false);
  }

  beat(): void {
    if (this.#open && !this.#closing) this.#pipe.write(Buffer.from('\n'));
  }

  /** DISCONNECT with a receipt, then the transport's polite close; bounded by timeoutMs. */
  async disconnect(timeoutMs: number): Promise<void> {
    if (!this.#open || this.#closing) return;
    const done = this.#frame('DISCONNECT', [], undefined, true);
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]).catch(() => {});
    clearTimeout(timer);
    this.#pipe.end();
    this.#closed('disconnected');
  }

  /** Drops the connection without a word (TCP/WebSocket: abortive close). */
  drop(): void {
    this.#closing = true;
    this.#pipe.drop();
    this.#closed('dropped');
  }

  #sendConnect(target: SoakTarget): void {
    this.#write('CONNECT', connectHeaders(target.login, target.passcode, '/'));
  }

  #frame(command: string, headers: HeaderList, body: Buffer | undefined, receipt: boolean): Promise<void> | undefined {
    if (!receipt) {
      this.#write(command, headers, body);
      return undefined;
    }
    const id = `r${++this.#receiptSeq}`;
    const done = this.#open && !this.#closing ? this.#core.expectReceipt(id) : Promise.reject(new Error(this.error ?? 'connection closed'));
    this.#write(command, [...headers, ['receipt', id]], body);
    return done;
  }

  #write(command: string, headers: HeaderList, body?: Buffer): void {
    if (this.#open) this.#pipe.write(encodeFrame({ command, headers, body: body ?? Buffer.alloc(0) }, '1.2'));
  }

  #onData(chunk: Buffer): void {
    const bad = this.#core.receive(chunk, {
      message: (frame) => this.onMessage(frame),
      connected: () => {
        this.#connected?.resolve();
        this.#connected = undefined;
      },
      error: (frame) => {
        this.error ??= getHeader(frame, 'message') ?? 'ERROR';
      },
    });
    if (bad !== undefined) {
      this.error ??= `client decoder: ${bad}`;
      this.#pipe.drop();
      this.#closed(this.error);
    }
  }

  #closed(reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    trackHeartBeats(this, false);
    const why = this.error ?? reason;
    this.#connected?.reject(new Error(why));
    this.#connected = undefined;
    this.#core.failAll(new Error(why));
    this.onClose(why, this.#closing && this.error === undefined);
  }
}
