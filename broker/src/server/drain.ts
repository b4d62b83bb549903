// Graceful drain: on shutdown every client is told to go, but not all in the same millisecond.
// Each session's close is scheduled at a uniformly random moment inside the drain window, so the
// reconnects land on the remaining nodes spread over that window instead of as one burst.

export interface Drain {
  /** Resolves once every close has been made (at most `windowMs` after the start). */
  readonly done: Promise<void>;
  /** Closes everything still waiting, now (e.g. when the deadline is near). */
  flush(): void;
}

export function spreadCloses<T>(items: readonly T[], close: (item: T) => void, windowMs: number, random: () => number = Math.random): Drain {
  const pending = new Map<T, NodeJS.Timeout>();
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const fire = (item: T): void => {
    const timer = pending.get(item);
    if (timer === undefined) return;
    clearTimeout(timer);
    pending.delete(item);
    close(item);
    if (pending.size === 0) resolveDone();
  };
  for (const item of items) {
    const delay = windowMs > 0 ? Math.floor(random() * windowMs) : 0;
    pending.set(item, setTimeout(() => fire(item), delay));
  }
  if (pending.size === 0) resolveDone();
  return {
    done,
    flush() {
      for (const item of [...pending.keys()]) fire(item);
    },
  };
}
