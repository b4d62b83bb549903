// Coalesces the writes one socket receives during one tick into a single writev. A fan-out hands
// each subscriber's socket one frame per message, and a burst of messages arrives in one tick (one
// AMQP read, one WebSocket read): without this, every frame is its own syscall, which the profile
// showed as ~40% of Thumper's CPU in the fan-out benchmark (docs/benchmarks.md).
//
// The socket is corked on its first write of the tick and uncorked in a process.nextTick callback,
// which runs as soon as the current read's handlers return: nothing waits for a timer or the next
// I/O turn, and `ws`'s own per-frame cork/uncork nests inside ours.
//
// A batch is also cut short once it holds BATCH_BYTES or BATCH_FRAMES: corked bytes count as the
// transport's backlog, and a big tick must not look like a slow consumer (session/outbound-flow.ts)
// when the kernel would have taken the bytes at once. Past a few hundred frames the syscall saved
// per frame no longer matters.

export interface Corkable {
  cork(): void;
  uncork(): void;
}

export const BATCH_BYTES = 16 * 1024;
export const BATCH_FRAMES = 256;

let pending: TickCork[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  const batch = pending;
  pending = [];
  for (const c of batch) c.release();
}

export class TickCork {
  #socket: Corkable;
  #held = false;
  #frames = 0;

  constructor(socket: Corkable) {
    this.#socket = socket;
  }

  /** Called before a write: the socket stays corked until the current tick's work is done. */
  hold(): void {
    if (this.#held) return;
    this.#held = true;
    this.#socket.cork();
    pending.push(this);
    if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
  }

  /** After a write: `buffered` is the socket's backlog now; a full batch is written out at once. */
  wrote(buffered: number): void {
    if (!this.#held) return;
    this.#frames += 1;
    if (this.#frames >= BATCH_FRAMES || buffered >= BATCH_BYTES) this.release();
  }

  /** Flushes now (before a close or a destroy would otherwise strand corked bytes). */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#frames = 0;
    this.#socket.uncork();
  }
}

export interface CorkableWriter extends Corkable {
  write(...args: never[]): boolean;
  readonly writableLength: number;
}

/**
 * For a socket written by a library we do not control (amqplib writes every frame of every channel
 * with its own write() call): each write first holds the tick's cork, so what the library writes in
 * one tick leaves in one syscall. In the queue benchmark those writes were ~20% of Thumper's CPU.
 */
export function corkWritesPerTick(stream: CorkableWriter): void {
  const cork = new TickCork(stream);
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  const corked = (...args: unknown[]): boolean => {
    cork.hold();
    const ok = write(...args);
    cork.wrote(stream.writableLength);
    return ok;
  };
  (stream as { write: unknown }).write = corked;
}
