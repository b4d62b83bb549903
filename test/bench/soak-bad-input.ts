// The soak's trickle of bad input: every few seconds a fresh connection (WebSocket or raw TCP, in
// turn) logs in and sends one frame that must be refused with an ERROR: a malformed frame (a header
// line without ':') or an unknown command. An answer other than ERROR, or none, is counted.

import { connectTcp, connectWs, isError, login } from '../helpers/stomp-script.js';
import type { StompConn } from '../helpers/stomp-script.js';
import { HEART_BEAT_MS } from './stomp-client-core.js';

const ANSWER_DEADLINE_MS = 5_000;

export const BAD_INPUTS = [
  { name: 'malformed frame (header line without ":")', bytes: 'SEND\ndestination/queue/soak-bad\n\nbody\0' },
  { name: 'unknown command', bytes: 'FROBNICATE\nreceipt:x\n\n\0' },
] as const;

export interface BadInputCounters {
  tried: number;
  answered: number;
  /** Tries that ended without an ERROR (tried − answered − failed are still in flight). */
  failed: number;
  /** Examples of what went wrong instead of an ERROR. */
  readonly failures: string[];
}

export class BadInputTrickle {
  readonly counters: BadInputCounters = { tried: 0, answered: 0, failed: 0, failures: [] };
  readonly #wsUrl: string;
  readonly #tcpPort: number;
  #timer: NodeJS.Timeout | undefined;
  #turn = 0;
  #inFlight: Promise<void> = Promise.resolve();

  constructor(wsUrl: string, tcpPort: number) {
    this.#wsUrl = wsUrl;
    this.#tcpPort = tcpPort;
  }

  start(everySeconds: number): void {
    if (everySeconds <= 0) return;
    this.#timer = setInterval(() => {
      // One at a time: a slow answer delays the next try instead of stacking connections.
      this.#inFlight = this.#inFlight.then(() => this.#tryOne());
    }, everySeconds * 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#inFlight;
  }

  async #tryOne(): Promise<void> {
    const turn = this.#turn++;
    const input = BAD_INPUTS[turn % BAD_INPUTS.length]!;
    const overTcp = Math.floor(turn / BAD_INPUTS.length) % 2 === 1;
    const what = `${input.name} over ${overTcp ? 'TCP' : 'WebSocket'}`;
    this.counters.tried++;
    let conn: StompConn | undefined;
    try {
      conn = overTcp ? await connectTcp(this.#tcpPort) : await connectWs(this.#wsUrl);
      await login(conn, { heartBeat: `${HEART_BEAT_MS},${HEART_BEAT_MS}` });
      conn.sendRaw(input.bytes);
      await conn.waitFor(isError, ANSWER_DEADLINE_MS);
      this.counters.answered++;
    } catch (err) {
      this.counters.failed++;
      if (this.counters.failures.length < 10) this.counters.failures.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      await conn?.close();
    }
  }
}
