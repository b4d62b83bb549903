// The load generator's STOMP 1.2 client over WebSocket (ws). It reuses the broker's own decoder and
// encoder (broker/src/stomp), so every target is driven by byte-identical client code; it keeps no
// per-message state beyond what the caller's onMessage callback does. Heart-beats are negotiated at
// 10 s both ways (Web-STOMP drops sockets that send nothing for 60 s) and sent by one shared timer
// for all clients, not one timer each.

import WebSocket from 'ws';
import { encodeFrame } from '../../broker/src/stomp/encoder.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame, HeaderList } from '../../broker/src/stomp/frame.js';
import { connectHeaders, StompClientCore, trackHeartBeats } from './stomp-client-core.js';

const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];
const EOL = '\n';

export interface Credentials {
  readonly login: string;
  readonly passcode: string;
  readonly host: string;
}

export class BenchClient {
  readonly #ws: WebSocket;
  readonly #core = new StompClientCore(16 * 1024 * 1024);
  #connected: ((frame: Frame) => void) | undefined;
  #failed: ((err: Error) => void) | undefined;
  #open = true;
  /** Called for every MESSAGE; the frame's body is a view of the received chunk. */
  onMessage: (frame: Frame) => void = () => {};
  /** Called once when the socket closes or the server sends ERROR. */
  onClose: (reason: string) => void = () => {};
  /** The first ERROR frame's message header, if any. */
  error: string | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => this.#onData(data));
    ws.on('close', (code) => this.#closed(`socket closed (${code})`));
    ws.on('error', (err) => this.#closed(err.message));
  }

  /** Opens the socket, sends CONNECT and resolves on CONNECTED; rejects on ERROR, close or timeout. */
  static connect(url: string, creds: Credentials, timeoutMs: number): Promise<BenchClient> {
    const ws = new WebSocket(url, SUBPROTOCOLS, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const client = new BenchClient(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        client.close();
        reject(new Error(`no CONNECTED within ${timeoutMs} ms`));
      }, timeoutMs);
      client.#failed = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      client.#connected = () => {
        clearTimeout(timer);
        trackHeartBeats(client, true);
        resolve(client);
      };
      ws.once('open', () => client.#write(['CONNECT', connectHeaders(creds.login, creds.passcode, creds.host)]));
    });
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Bytes queued in the socket, for publisher back-pressure. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  subscribe(destination: string, id: string, receipt?: string, extra: HeaderList = []): Promise<void> | undefined {
    const headers: HeaderList = [['destination', destination], ['id', id], ['ack', 'auto'], ...extra];
    return this.#withReceipt('SUBSCRIBE', headers, undefined, receipt);
  }

  send(destination: string, body: Buffer, receipt?: string): Promise<void> | undefined {
    const headers: HeaderList = [['destination', destination], ['content-type', 'text/plain']];
    return this.#withReceipt('SEND', headers, body, receipt);
  }

  beat(): void {
    if (this.#open && this.#ws.readyState === WebSocket.OPEN) this.#ws.send(EOL);
  }

  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
    this.#closed('closed by the bench');
  }

  /** DISCONNECT with a receipt, then close: the polite way out, bounded by timeoutMs. */
  async disconnect(timeoutMs: number): Promise<void> {
    if (!this.#open) return;
    const done = this.#withReceipt('DISCONNECT', [], undefined, 'bye');
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]).catch(() => {});
    this.close();
  }

  #withReceipt(command: string, headers: HeaderList, body: Buffer | undefined, receipt: string | undefined): Promise<void> | undefined {
    if (receipt === undefined) {
      this.#write([command, headers, body]);
      return undefined;
    }
    const done = this.#open ? this.#core.expectReceipt(receipt) : Promise.reject(new Error(this.error ?? 'connection closed'));
    this.#write([command, [...headers, ['receipt', receipt]], body]);
    return done;
  }

  #write([command, headers, body]: [string, HeaderList, (Buffer | undefined)?]): void {
    if (!this.#open || this.#ws.readyState !== WebSocket.OPEN) return;
    this.#ws.send(encodeFrame({ command, headers, body: body ?? Buffer.alloc(0) }, '1.2'));
  }

  #onData(data: Buffer): void {
    const bad = this.#core.receive(data, {
      message: (frame) => this.onMessage(frame),
      connected: (frame) => {
        this.#connected?.(frame);
        this.#connected = undefined;
      },
      error: (frame) => {
        this.error ??= `${getHeader(frame, 'message') ?? 'ERROR'}: ${frame.body.toString('utf8', 0, Math.min(frame.body.length, 300)).trim()}`;
        this.close();
      },
    });
    if (bad !== undefined) {
      this.error ??= `decoder: ${bad}`;
      this.close();
    }
  }

  #closed(reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    trackHeartBeats(this, false);
    const why = this.error ?? reason;
    this.#failed?.(new Error(why));
    this.#failed = undefined;
    this.#connected = undefined;
    this.#core.failAll(new Error(why));
    this.onClose(why);
  }
}
