// An in-memory Transport for socket-free session tests, with the client side decoding what the
// session sends (nats.js / aedes style: protocol tests over an in-memory duplex).

import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import { encodeFrame } from '../../broker/src/stomp/encoder.js';
import { makeFrame, type Frame, type HeaderList, type StompVersion } from '../../broker/src/stomp/frame.js';
import type { Transport, TransportHandlers, WaterMarks } from '../../broker/src/transport/transport.js';

export class MemoryTransport implements Transport {
  readonly kind = 'ws' as const;
  readonly remoteAddress = '127.0.0.1';
  readonly offeredVersions: readonly string[] = [];
  bearerToken: string | undefined = undefined;
  handlers: TransportHandlers | undefined;
  /** What the client has "read", in order. */
  readonly sent: Buffer[] = [];
  closed: { code: number | undefined; reason: string | undefined } | undefined;
  /** While stalled, sends wait in `backlog` (a client that stopped reading); flush() lets them through. */
  stalled = false;
  readonly backlog: Buffer[] = [];
  marks: WaterMarks = { highBytes: Infinity, lowBytes: Infinity, highFrames: Infinity, lowFrames: Infinity };
  /** false: pause() reports that this transport cannot pause (as SockJS). */
  pausable = true;
  paused = false;
  pauses = 0;
  resumes = 0;
  drains = 0;
  #needDrain = false;
  #onSend: (() => void) | undefined;

  send(data: Buffer): boolean {
    if (this.closed && !this.stalled) return false;
    if (this.stalled) {
      this.backlog.push(Buffer.from(data));
      if (this.bufferedBytes() < this.marks.highBytes && this.bufferedFrames() < this.marks.highFrames) return true;
      this.#needDrain = true;
      return false;
    }
    this.sent.push(Buffer.from(data));
    this.#onSend?.();
    return true;
  }
  bufferedBytes(): number {
    let n = 0;
    for (const b of this.backlog) n += b.length;
    return n;
  }
  bufferedFrames(): number {
    return this.backlog.length;
  }
  setWaterMarks(marks: WaterMarks): void {
    this.marks = marks;
  }
  pause(): boolean {
    if (!this.pausable) return false;
    if (!this.paused) this.pauses++;
    this.paused = true;
    return true;
  }
  resume(): void {
    if (this.paused) this.resumes++;
    this.paused = false;
  }
  /**
   * The client reads up to `frames` waiting sends (all by default), one at a time, with `drain`
   * fired as a real transport fires it: once owed and under both low marks. Stays stalled.
   */
  flush(frames = Infinity): void {
    for (let i = 0; i < frames && this.backlog.length > 0; i++) {
      this.sent.push(this.backlog.shift()!);
      this.#onSend?.();
      if (this.#needDrain && this.bufferedBytes() < this.marks.lowBytes && this.bufferedFrames() < this.marks.lowFrames) {
        this.#needDrain = false;
        this.drains++;
        this.handlers?.drain();
      }
    }
  }
  /** The client reads again: everything waiting, then every send at once. */
  unstall(): void {
    this.flush();
    this.stalled = false;
  }
  close(code?: number, reason?: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.#onSend?.();
  }
  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }
  watch(cb: () => void): void {
    this.#onSend = cb;
  }
}

/** The client end: writes frames into the session and waits for what it answers. */
export class TestClient {
  readonly transport = new MemoryTransport();
  readonly frames: Frame[] = [];
  heartBeats = 0;
  version: StompVersion = '1.2';
  #decoder = new StompDecoder({ maxFrameBytes: 64 * 1024 * 1024, maxFrameBytesBeforeConnect: 64 * 1024 * 1024 });
  #consumed = 0;
  #waiters: Array<() => void> = [];

  constructor() {
    this.#decoder.setVersion('1.2');
    this.#decoder.setAuthenticated();
    this.transport.watch(() => {
      while (this.#consumed < this.transport.sent.length) {
        const chunk = this.transport.sent[this.#consumed++]!;
        const { events } = this.#decoder.push(chunk);
        for (const e of events) {
          if (e.type === 'frame') this.frames.push(e.frame);
          else this.heartBeats++;
        }
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  sendRaw(data: string | Buffer): void {
    this.transport.handlers!.data(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  send(command: string, headers: Record<string, string> | HeaderList = {}, body: string | Buffer = ''): void {
    const list: HeaderList = Array.isArray(headers) ? headers : Object.entries(headers);
    this.sendRaw(encodeFrame(makeFrame(command, list, body), this.version));
  }

  get isClosed(): boolean {
    return this.transport.closed !== undefined;
  }

  /** Resolves with the first frame (from index `from`) that matches, or rejects at the deadline. */
  async waitFor(pred: (f: Frame) => boolean, what = 'frame', deadlineMs = 5000, from = 0): Promise<Frame> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const found = this.frames.slice(from).find(pred);
      if (found) return found;
      if (Date.now() > end) {
        throw new Error(`timed out waiting for ${what}; got ${this.frames.map((f) => f.command).join(',') || 'nothing'}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitForClose(deadlineMs = 5000): Promise<void> {
    const end = Date.now() + deadlineMs;
    while (!this.isClosed) {
      if (Date.now() > end) throw new Error('timed out waiting for the session to close');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits until `n` frames with this command have arrived and returns them. */
  async collect(command: string, n: number, deadlineMs = 5000): Promise<Frame[]> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const got = this.frames.filter((f) => f.command === command);
      if (got.length >= n) return got;
      if (Date.now() > end) throw new Error(`timed out: ${got.length}/${n} ${command} frames`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
