// Parallel lanes for the shared queues' queue.bind / queue.unbind calls. A channel answers one
// call at a time, so binding 10,000 feed keys over one channel is bound by the round trip (about
// 0.35 ms on an idle loopback, over 1 ms under a connect storm): the connect rate of a whole node
// was capped there. Each lane is a channel with its own in-order chain; a key always hashes to the
// same lane, so the unbind of a key never overtakes its bind.
//
// Lanes hold no state worth keeping: a lane whose channel closes opens a new one on its next call,
// and the owner drops them all when its connection changes (reset).

import type { Channel } from 'amqplib';

interface Lane {
  channel: Channel | undefined;
  chain: Promise<unknown>;
}

export interface BindLanesHooks {
  /** A channel for a lane; may throw (no connection). */
  open(): Promise<Channel>;
  /** The broker closed a lane's channel with an error (e.g. a bind to an exchange deleted meanwhile). */
  onChannelError(err: Error): void;
}

export class BindLanes {
  readonly #lanes: Lane[];
  readonly #hooks: BindLanesHooks;

  constructor(count: number, hooks: BindLanesHooks) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`bind lanes: ${count} is not a positive integer`);
    this.#lanes = Array.from({ length: count }, () => ({ channel: undefined, chain: Promise.resolve() }));
    this.#hooks = hooks;
  }

  /** Runs `fn` on the lane of `key`, after every earlier call on that lane has settled. */
  run<T>(key: string, fn: (channel: () => Promise<Channel>) => Promise<T>): Promise<T> {
    const lane = this.#lanes[laneIndex(key, this.#lanes.length)]!;
    const step = (): Promise<T> => fn(() => this.#channelOf(lane));
    const run = lane.chain.then(step, step);
    lane.chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every call queued so far has settled. */
  async idle(): Promise<void> {
    await Promise.all(this.#lanes.map((l) => l.chain));
  }

  /** Forgets (and closes) every lane's channel: the next call on a lane opens a fresh one. */
  reset(): void {
    for (const lane of this.#lanes) {
      const channel = lane.channel;
      lane.channel = undefined;
      channel?.close().catch(() => undefined);
    }
  }

  async #channelOf(lane: Lane): Promise<Channel> {
    if (lane.channel !== undefined) return lane.channel;
    const channel = await this.#hooks.open();
    channel.on('error', (err: Error) => this.#hooks.onChannelError(err));
    channel.on('close', () => {
      if (lane.channel === channel) lane.channel = undefined;
    });
    lane.channel = channel;
    return channel;
  }
}

/** FNV-1a over the UTF-16 code units: cheap, stable, and spreads feed keys (user_1, user_2, …) evenly. */
export function laneIndex(key: string, lanes: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % lanes;
}
