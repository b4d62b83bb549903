// What the load generator's two STOMP 1.2 clients share (stomp-ws-client.ts for the bench,
// soak-client.ts for the soak): the broker's own decoder fed with received bytes, receipts matched
// to their waiters, the CONNECT headers, and one heart-beat timer for every open client (not one
// timer each). Heart-beats are 10 s both ways: Web-STOMP drops sockets that send nothing for 60 s.

import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame, HeaderList } from '../../broker/src/stomp/frame.js';

export const HEART_BEAT_MS = 10_000;

export interface Beating {
  beat(): void;
}

const beating = new Set<Beating>();
let heartBeatTimer: NodeJS.Timeout | undefined;

/** Adds or removes a client from the shared heart-beat timer, which runs while any is open. */
export function trackHeartBeats(client: Beating, open: boolean): void {
  if (open) beating.add(client);
  else beating.delete(client);
  if (beating.size > 0 && heartBeatTimer === undefined) {
    // Half the negotiated interval, so a beat always lands inside the server's receive window.
    heartBeatTimer = setInterval(() => {
      for (const c of beating) c.beat();
    }, HEART_BEAT_MS / 2);
    heartBeatTimer.unref();
  } else if (beating.size === 0 && heartBeatTimer !== undefined) {
    clearInterval(heartBeatTimer);
    heartBeatTimer = undefined;
  }
}

export function connectHeaders(login: string, passcode: string, host: string): HeaderList {
  return [
    ['accept-version', '1.2'],
    ['host', host],
    ['login', login],
    ['passcode', passcode],
    ['heart-beat', `${HEART_BEAT_MS},${HEART_BEAT_MS}`],
  ];
}

export interface ReceivedFrames {
  message(frame: Frame): void;
  connected(frame: Frame): void;
  error(frame: Frame): void;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** Decoding and receipts for one connection. */
export class StompClientCore {
  readonly #decoder: StompDecoder;
  readonly #receipts = new Map<string, Waiter>();

  constructor(maxFrameBytes: number) {
    this.#decoder = new StompDecoder({ maxFrameBytes, maxFrameBytesBeforeConnect: Math.min(maxFrameBytes, 1024 * 1024) });
  }

  /** Resolves when RECEIPT `id` arrives; rejects with failAll's error. */
  expectReceipt(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#receipts.set(id, { resolve, reject }));
  }

  /** Feeds received bytes; RECEIPTs settle their waiters, other frames go to `on`. Returns a decoder error's text. */
  receive(chunk: Buffer, on: ReceivedFrames): string | undefined {
    const { events, error } = this.#decoder.push(chunk);
    for (const event of events) {
      if (event.type !== 'frame') continue;
      const frame = event.frame;
      switch (frame.command) {
        case 'MESSAGE':
          on.message(frame);
          break;
        case 'RECEIPT': {
          const id = getHeader(frame, 'receipt-id') ?? '';
          const waiter = this.#receipts.get(id);
          this.#receipts.delete(id);
          waiter?.resolve();
          break;
        }
        case 'CONNECTED':
          this.#decoder.setVersion((getHeader(frame, 'version') ?? '1.2') as '1.2');
          this.#decoder.setAuthenticated();
          on.connected(frame);
          break;
        case 'ERROR':
          on.error(frame);
          break;
      }
    }
    return error?.message;
  }

  failAll(err: Error): void {
    for (const waiter of this.#receipts.values()) waiter.reject(err);
    this.#receipts.clear();
  }
}
