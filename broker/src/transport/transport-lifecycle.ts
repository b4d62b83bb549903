// The lifecycle every Transport shares, whatever carries its bytes: handlers set once (chunks that
// came before are held for them), `close` told exactly once, the `closed` promise, a close that
// is requested once and bounded by a timeout, and the high/low water marks behind `drain`. Each
// transport owns one and feeds it what its socket reports.

import type { TransportHandlers, WaterMarks } from './transport.js';

/** Water marks for the outbound backlog; the options of every transport include them. */
export interface WaterMarkOptions {
  /** send() returns false once this many bytes wait in the socket (default 1 MiB). */
  readonly highWaterBytes?: number;
  /** `drain` fires when the backlog falls back under this (default 256 KiB). */
  readonly lowWaterBytes?: number;
}

export interface LifecycleOptions extends WaterMarkOptions {
  /** How long close() waits for the transport to close before forcing it (default: the transport's). */
  readonly closeTimeoutMs?: number;
}

const DEFAULT_HIGH_WATER = 1024 * 1024;
const DEFAULT_LOW_WATER = 256 * 1024;

export class TransportLifecycle {
  /** Resolves once the transport is closed, whoever closed it. */
  readonly closed: Promise<void>;
  #marks: WaterMarks;
  #closeTimeoutMs: number;
  #handlers: TransportHandlers | undefined;
  /** Chunks that arrived before setHandlers (normally none: handlers are set synchronously). */
  #early: Buffer[] = [];
  #isClosed = false;
  #closeNotified = false;
  #closeRequested = false;
  #needDrain = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #resolveClosed: () => void = () => {};

  constructor(options: LifecycleOptions, defaultCloseTimeoutMs: number) {
    const highBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER;
    const lowBytes = options.lowWaterBytes ?? DEFAULT_LOW_WATER;
    // Frames are unbounded until a session sets its own marks (setWaterMarks).
    this.#marks = clampMarks({ highBytes, lowBytes, highFrames: Infinity, lowFrames: Infinity });
    this.#closeTimeoutMs = options.closeTimeoutMs ?? defaultCloseTimeoutMs;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get marks(): WaterMarks {
    return this.#marks;
  }

  /** New bounds; a drain already owed fires under the new low marks at the next flush. */
  setWaterMarks(marks: WaterMarks): void {
    this.#marks = clampMarks(marks);
  }

  /** The transport is closed (notifyClosed ran). */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** close() was called; the transport may still be flushing. */
  get closeRequested(): boolean {
    return this.#closeRequested;
  }

  /** send() went over the high-water mark and `drain` has not fired since. */
  get drainPending(): boolean {
    return this.#needDrain;
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#handlers = handlers;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) handlers.data(chunk);
    if (this.#isClosed) this.#notifyClose();
  }

  /** One inbound chunk: to the handlers, or held until they are set. */
  deliver(chunk: Buffer): void {
    if (this.#handlers) this.#handlers.data(chunk);
    else this.#early.push(chunk);
  }

  /**
   * The transport's close(), once: `start` begins the closing handshake, and `onTimeout` runs if
   * the transport has not closed within the close timeout. A no-op once requested or closed.
   */
  requestClose(start: () => void, onTimeout: () => void): void {
    if (this.#closeRequested || this.#isClosed) return;
    this.#closeRequested = true;
    start();
    this.#closeTimer = setTimeout(onTimeout, this.#closeTimeoutMs);
    this.#closeTimer.unref();
  }

  /** Why the transport itself ended the connection, when it did (told to the close handler). */
  #closeReason: 'ping-timeout' | undefined;

  /** The socket or session has ended: resolves `closed` and tells the handlers, each only once. */
  notifyClosed(reason?: 'ping-timeout'): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#closeReason = reason;
    if (this.#closeTimer) clearTimeout(this.#closeTimer);
    this.#resolveClosed();
    if (this.#handlers) this.#notifyClose();
  }

  /** The peer half-closed: to the handlers' `end`, or false if there is none (then the caller closes). */
  peerEnded(): boolean {
    if (this.#isClosed || this.#closeRequested || !this.#handlers?.end) return false;
    this.#handlers.end();
    return true;
  }

  /** After a send: false (and `drain` owed) when the backlog is at or over either high-water mark. */
  noteBacklog(bufferedBytes: number, bufferedFrames = 0): boolean {
    if (bufferedBytes < this.#marks.highBytes && bufferedFrames < this.#marks.highFrames) return true;
    this.#needDrain = true;
    return false;
  }

  /** After a write left the buffer: fires the owed `drain` once the backlog is under both low marks. */
  noteFlushed(bufferedBytes: number, bufferedFrames = 0): void {
    if (!this.#needDrain || bufferedBytes >= this.#marks.lowBytes || bufferedFrames >= this.#marks.lowFrames) return;
    // Cleared first: a drain handler that sends over the high-water mark again owes a new drain.
    this.#needDrain = false;
    this.#handlers?.drain();
  }

  #notifyClose(): void {
    if (this.#closeNotified) return;
    this.#closeNotified = true;
    this.#handlers?.close(this.#closeReason);
  }
}

/**
 * A low mark above its high mark would fire `drain` while still over; one under 1 would never
 * fire (the backlog is never below 0): keep each low mark within [1, high].
 */
function clampMarks(m: WaterMarks): WaterMarks {
  const low = (value: number, high: number) => Math.max(1, Math.min(value, high));
  return { highBytes: m.highBytes, lowBytes: low(m.lowBytes, m.highBytes), highFrames: m.highFrames, lowFrames: low(m.lowFrames, m.highFrames) };
}
