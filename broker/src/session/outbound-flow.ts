// The bound on what one session has handed its transport and the client has not read yet (slow
// consumers). The backlog lives in the transport alone (the session queues nothing of its own):
// its bytes and its frames not yet flushed, measured against stomp.maxOutboundBytes/Frames. Over
// the bound, the broker's deliveries to ack-mode subscriptions are paused (EngineSession.setFlow)
// until the transport drains to half the bound; an `auto` subscription cannot be held back, so
// the session asks `wouldExceed` before each of its MESSAGEs and ends itself instead of buffering.

import type { Transport, WaterMarks } from '../transport/transport.js';
import type { FlowOptions } from './options.js';

/** The transport signals the bound: send() false at it, `drain` once under half of it (hysteresis). */
export function outboundWaterMarks(o: FlowOptions): WaterMarks {
  return {
    highBytes: o.maxOutboundBytes,
    lowBytes: Math.max(1, Math.floor(o.maxOutboundBytes / 2)),
    highFrames: o.maxOutboundFrames,
    lowFrames: Math.max(1, Math.floor(o.maxOutboundFrames / 2)),
  };
}

/**
 * Would one more frame of `size` bytes take the backlog past the bound? An empty backlog takes any
 * one frame, so a MESSAGE larger than maxOutboundBytes (published over AMQP, where the STOMP frame
 * limit does not apply) is still delivered rather than ending the session.
 */
export function exceedsBound(o: FlowOptions, bufferedBytes: number, bufferedFrames: number, size: number): boolean {
  if (bufferedFrames >= o.maxOutboundFrames) return true;
  return bufferedBytes > 0 && bufferedBytes + size > o.maxOutboundBytes;
}

export class OutboundFlow {
  readonly #transport: Transport;
  readonly #options: FlowOptions;
  readonly #setFlow: (active: boolean) => void;
  #paused = false;

  /** `setFlow` pauses (false) and resumes (true) the broker's deliveries to ack-mode subscriptions. */
  constructor(transport: Transport, options: FlowOptions, setFlow: (active: boolean) => void) {
    this.#transport = transport;
    this.#options = options;
    this.#setFlow = setFlow;
    transport.setWaterMarks(outboundWaterMarks(options));
  }

  /** The broker's ack-mode deliveries are paused until the transport drains. */
  get paused(): boolean {
    return this.#paused;
  }

  get bufferedBytes(): number {
    return this.#transport.bufferedBytes();
  }

  get bufferedFrames(): number {
    return this.#transport.bufferedFrames();
  }

  /** For a MESSAGE that cannot be held back (auto ack): true = sending it would pass the bound. */
  wouldExceed(size: number): boolean {
    return exceedsBound(this.#options, this.#transport.bufferedBytes(), this.#transport.bufferedFrames(), size);
  }

  /**
   * After each send. `accepted` false: the transport is at the bound and owes a `drain`. Deliveries
   * the broker sent before the pause took effect still go out (past the bound, but no more than
   * were in flight): none is dropped.
   */
  sent(accepted: boolean): void {
    if (accepted || this.#paused) return;
    this.#paused = true;
    this.#setFlow(false);
  }

  /** The transport's `drain`: under half the bound again. */
  drained(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#setFlow(true);
  }
}
