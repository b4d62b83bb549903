// The bound on what one client has sent that the session has not handled yet (its inbox): frames
// are handled one at a time, and one may wait on the broker (a SEND awaiting its confirm while
// RabbitMQ blocks publishers), so a client that keeps sending must be held back rather than held
// in memory. Over stomp.maxInboxFrames/Bytes the transport stops reading (TCP flow control then
// stops the client); it reads again once the inbox is under half the bound. A transport that
// cannot stop its peer (SockJS) gets a hard limit instead: past it the session ends.

import type { Frame } from '../stomp/frame.js';
import type { Transport } from '../transport/transport.js';
import type { FlowOptions } from './options.js';

/** How far past the bound a transport that cannot pause may go before the session ends. */
const UNPAUSABLE_SLACK = 16;

export type InboxVerdict = 'ok' | 'overflow';

/** A frame's size as it sat on the wire, near enough for a memory bound. */
export function frameBytes(frame: Frame): number {
  let n = frame.command.length + frame.body.length + 3;
  for (const [k, v] of frame.headers) n += k.length + v.length + 2;
  return n;
}

export class InboundFlow {
  readonly #transport: Transport;
  readonly #options: FlowOptions;
  readonly #maxFrameBytes: number;
  readonly #onResume: () => void;
  #frames = 0;
  #bytes = 0;
  #paused = false;
  #unpausable = false;

  /** `onResume` runs when reading starts again (the heart-beat clock restarts from there). */
  constructor(transport: Transport, options: FlowOptions, maxFrameBytes: number, onResume: () => void) {
    this.#transport = transport;
    this.#options = options;
    this.#maxFrameBytes = maxFrameBytes;
    this.#onResume = onResume;
  }

  /** Reading is paused by us: the client's silence is ours, not a dead peer's. */
  get paused(): boolean {
    return this.#paused;
  }

  get frames(): number {
    return this.#frames;
  }

  /** A frame entered the inbox. 'overflow': a transport that cannot pause went past its hard limit. */
  added(size: number): InboxVerdict {
    this.#frames += 1;
    this.#bytes += size;
    if (!this.#over(1)) return 'ok';
    if (!this.#paused && !this.#unpausable) {
      if (this.#transport.pause()) this.#paused = true;
      else this.#unpausable = true;
    }
    if (!this.#unpausable) return 'ok';
    // A frame always fits (one frame may be as large as the frame limit), hence the frame-limit slack.
    const hardFrames = this.#options.maxInboxFrames * UNPAUSABLE_SLACK;
    const hardBytes = this.#options.maxInboxBytes * UNPAUSABLE_SLACK + this.#maxFrameBytes;
    return this.#frames > hardFrames || this.#bytes > hardBytes ? 'overflow' : 'ok';
  }

  /** A frame left the inbox to be handled. */
  removed(size: number): void {
    this.#frames = Math.max(0, this.#frames - 1);
    this.#bytes = Math.max(0, this.#bytes - size);
    if (!this.#paused || this.#over(2)) return;
    this.#paused = false;
    this.#transport.resume();
    this.#onResume();
  }

  /** The session ended: nothing waits any more. */
  clear(): void {
    this.#frames = 0;
    this.#bytes = 0;
    this.#paused = false;
  }

  /** Over the bound divided by `divisor` (1: the bound itself; 2: the resume mark). */
  #over(divisor: number): boolean {
    return this.#frames > this.#options.maxInboxFrames / divisor || this.#bytes > this.#options.maxInboxBytes / divisor;
  }
}
