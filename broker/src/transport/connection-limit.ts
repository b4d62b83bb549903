// Open connections per client address, counted across every transport (WebSocket, SockJS, TCP,
// TLS), so that one host cannot take all of a node's sessions (and their AMQP channels). A pure
// counter: the gateway acquires when a connection arrives and releases when it has closed.

export class ConnectionLimit {
  /** 0: unlimited. */
  readonly max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`Connection limit must be a non-negative integer, got ${String(max)}`);
    this.max = max;
  }

  /**
   * Counts one more connection from `address`. Returns its release function (which counts only
   * once, however often it is called), or undefined when `address` already has `max` open.
   */
  acquire(address: string): (() => void) | undefined {
    const open = this.#open.get(address) ?? 0;
    if (this.max > 0 && open >= this.max) return undefined;
    this.#open.set(address, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(address) ?? 1) - 1;
      // Addresses with nothing open are forgotten, so the map stays as small as the live set.
      if (left <= 0) this.#open.delete(address);
      else this.#open.set(address, left);
    };
  }

  /** Open connections from `address`. */
  count(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  /** Addresses with at least one open connection. */
  get addresses(): number {
    return this.#open.size;
  }
}
