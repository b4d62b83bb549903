// The soak's traffic: a churning population of clients on /exchange/feed/user_i and /topic/news, a
// fixed set of witnesses that never churn and must miss nothing, an AMQP backend publishing to both
// at fixed rates, SENDs with receipts to /queue/soak-work drained by a client-ack consumer, and the
// churn loop. Every loop is paced by a timer and bounded per tick; everything stops on stop().

import { getHeader } from '../../broker/src/stomp/frame.js';
import type { Frame } from '../../broker/src/stomp/frame.js';
import { runPool, sleep } from './measure.js';
import type { Publisher, Route } from './publisher.js';
import { SoakClient, type SoakTarget, type TransportKind } from './soak-client.js';
import { SeqCheck, WorkLedger } from './soak-ledger.js';
import type { SoakOptions } from './soak-args.js';

const CONNECT_TIMEOUT_MS = 10_000;
const DISCONNECT_TIMEOUT_MS = 3_000;
const OPEN_CONCURRENCY = 20;
const WORK_QUEUE = '/queue/soak-work';
const NEWS: Route = { exchange: 'amq.topic', routingKey: 'news', destination: '/topic/news' };
/** Kept examples of unexpected errors, for the report. */
const MAX_EXAMPLES = 10;
const PACE_MS = 50;

export interface ClientCounters {
  connects: number;
  messages: number;
  /** Feed or news messages a churning client's stream skipped while it was connected. */
  churnerGaps: number;
  churnerDisorder: number;
  receipts: number;
  unexpected: number;
  readonly examples: string[];
}

/** Every 20th client rides SockJS, the next one raw TCP, the rest WebSocket. */
export function transportFor(index: number): TransportKind {
  if (index % 20 === 0) return 'sockjs';
  if (index % 20 === 1) return 'tcp';
  return 'ws';
}

const feedRoute = (key: number): Route => ({ exchange: 'feed', routingKey: `user_${key}`, destination: `/exchange/feed/user_${key}` });

/** `feed <key> <seq>` or `news <seq>`. */
function parseBody(frame: Frame): { stream: 'feed' | 'news'; key: number; seq: number } | undefined {
  const parts = frame.body.toString('latin1').split(' ');
  if (parts[0] === 'feed' && parts.length === 3) return { stream: 'feed', key: Number(parts[1]), seq: Number(parts[2]) };
  if (parts[0] === 'news' && parts.length === 2) return { stream: 'news', key: -1, seq: Number(parts[1]) };
  return undefined;
}

interface Witness {
  readonly key: number;
  readonly kind: TransportKind;
  readonly feed: SeqCheck;
  readonly news: SeqCheck;
  client: SoakClient | undefined;
  /** Set when the witness's connection ended before the run did. */
  lostConnection: string | undefined;
}

export interface WitnessResult {
  readonly key: number;
  readonly kind: TransportKind;
  readonly feedReceived: number;
  readonly feedLost: number;
  readonly newsReceived: number;
  readonly newsLost: number;
  readonly disorder: number;
  readonly lostConnection: string | undefined;
}

export class SoakTraffic {
  readonly counters: ClientCounters = { connects: 0, messages: 0, churnerGaps: 0, churnerDisorder: 0, receipts: 0, unexpected: 0, examples: [] };
  readonly work = new WorkLedger();
  readonly #options: SoakOptions;
  readonly #target: SoakTarget;
  readonly #publisher: Publisher;
  readonly #slots: Array<SoakClient | undefined>;
  readonly #busy: boolean[];
  readonly #witnesses: Witness[] = [];
  /** Per feed key: messages published so far (the last sequence number). */
  readonly #published: number[];
  #newsPublished = 0;
  #consumer: SoakClient | undefined;
  #consumerOpening = false;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  #dropNext = false;
  #feedStarted = 0;
  #feedSent = 0;
  #newsSent = 0;
  #workSent = 0;
  #loadStart = 0;
  #publishing = false;

  constructor(options: SoakOptions, target: SoakTarget, publisher: Publisher) {
    this.#options = options;
    this.#target = target;
    this.#publisher = publisher;
    this.#slots = Array.from({ length: options.clients }, () => undefined);
    this.#busy = Array.from({ length: options.clients }, () => false);
    this.#published = Array.from({ length: options.clients + options.witnesses }, () => 0);
  }

  /** Open clients (population, witnesses, consumer). */
  get connected(): number {
    let n = 0;
    for (const c of this.#slots) if (c?.isOpen) n++;
    for (const w of this.#witnesses) if (w.client?.isOpen) n++;
    if (this.#consumer?.isOpen) n++;
    return n;
  }

  /** Messages witnesses have provably missed so far (gaps; the tail is judged at the end). */
  get witnessGaps(): number {
    let n = 0;
    for (const w of this.#witnesses) n += w.feed.gaps + w.news.gaps;
    return n;
  }

  unexpected(what: string): void {
    this.counters.unexpected++;
    if (this.counters.examples.length < MAX_EXAMPLES) this.counters.examples.push(what);
  }

  /** Consumer, witnesses and population connected and subscribed; nothing is published yet. */
  async open(): Promise<void> {
    await this.#openConsumer();
    if (this.#consumer === undefined) throw new Error(`the work-queue consumer could not connect: ${this.counters.examples.join('; ')}`);
    const witnessFailures = await runPool(this.#options.witnesses, OPEN_CONCURRENCY, (j) => this.#openWitness(j));
    if (witnessFailures.length > 0) throw new Error(`${witnessFailures.length} witnesses failed to connect: ${witnessFailures[0]!.message}`);
    await runPool(this.#options.clients, OPEN_CONCURRENCY, (i) => this.#openSlot(i));
  }

  /** Publishing, work SENDs and churn, until stop(). */
  start(): void {
    this.#loadStart = performance.now();
    this.#timers.push(setInterval(() => void this.#publishTick(), PACE_MS));
    this.#timers.push(setInterval(() => this.#workTick(), PACE_MS));
    this.#timers.push(setInterval(() => this.#churnTick(), 1000));
  }

  /** Stops churn, SENDs and publishing; waits for the publisher's confirms. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    for (let i = 0; i < 200 && (this.#publishing || this.#busy.some((b) => b)); i++) await sleep(50);
    await this.#publisher.flush();
  }

  /**
   * Waits (bounded by maxMs) until every witness has every published message and every receipted
   * work message was consumed. Returns whether that happened.
   */
  async settle(maxMs: number): Promise<boolean> {
    const deadline = performance.now() + maxMs;
    const done = (): boolean =>
      this.#witnesses.every((w) => w.client?.isOpen !== true || (w.feed.lost(this.#published[w.key]!) === 0 && w.news.lost(this.#newsPublished) === 0)) &&
      this.work.totals().receiptedNotConsumed === 0 &&
      this.work.totals().unanswered === 0;
    while (!done() && performance.now() < deadline) await sleep(100);
    return done();
  }

  witnessResults(): WitnessResult[] {
    return this.#witnesses.map((w) => ({
      key: w.key,
      kind: w.kind,
      feedReceived: w.feed.received,
      feedLost: w.feed.lost(this.#published[w.key]!),
      newsReceived: w.news.received,
      newsLost: w.news.lost(this.#newsPublished),
      disorder: w.feed.disorder + w.news.disorder,
      lostConnection: w.lostConnection,
    }));
  }

  /** What the backend and the senders put out. */
  get sent(): { feed: number; news: number; work: number } {
    return { feed: this.#feedSent, news: this.#newsSent, work: this.#workSent };
  }

  /** DISCONNECTs everyone (bounded). */
  async closeAll(): Promise<void> {
    this.#stopped = true;
    const all = [...this.#slots, ...this.#witnesses.map((w) => w.client), this.#consumer].filter((c): c is SoakClient => c?.isOpen === true);
    await runPool(all.length, OPEN_CONCURRENCY * 2, (i) => all[i]!.disconnect(DISCONNECT_TIMEOUT_MS));
  }

  async #connect(kind: TransportKind, what: string): Promise<SoakClient | undefined> {
    try {
      const client = await SoakClient.connect(kind, this.#target, CONNECT_TIMEOUT_MS);
      this.counters.connects++;
      return client;
    } catch (err) {
      this.unexpected(`${what} (${kind}) could not connect: ${(err as Error).message}`);
      return undefined;
    }
  }

  #watchClose(client: SoakClient, what: string, onLost?: (reason: string) => void): void {
    client.onClose = (reason, expected) => {
      if (expected || this.#stopped) return;
      this.unexpected(`${what} (${client.kind}) closed: ${reason}`);
      onLost?.(reason);
    };
  }

  async #openWitness(j: number): Promise<void> {
    const key = this.#options.clients + j;
    const kind = transportFor(j);
    const witness: Witness = { key, kind, feed: new SeqCheck(true), news: new SeqCheck(true), client: undefined, lostConnection: undefined };
    this.#witnesses.push(witness);
    const client = await this.#connect(kind, `witness ${j}`);
    if (client === undefined) throw new Error(`witness ${j} (${kind}) could not connect`);
    witness.client = client;
    this.#watchClose(client, `witness ${j}`, (reason) => (witness.lostConnection = reason));
    client.onMessage = (frame) => {
      this.counters.messages++;
      const m = parseBody(frame);
      if (m === undefined) this.unexpected(`witness ${j} got an unexpected body: ${frame.body.toString('latin1').slice(0, 40)}`);
      else if (m.stream === 'feed' && m.key !== key) this.unexpected(`witness ${j} (user_${key}) got user_${m.key}'s message`);
      else (m.stream === 'feed' ? witness.feed : witness.news).see(m.seq);
    };
    await this.#subscribeBoth(client, key);
  }

  async #subscribeBoth(client: SoakClient, key: number): Promise<void> {
    client.subscribe(feedRoute(key).destination, 'feed', 'auto', false);
    // The receipt of the second SUBSCRIBE covers both: a session handles frames in order.
    await client.subscribe(NEWS.destination, 'news', 'auto', true);
  }

  async #openSlot(i: number): Promise<void> {
    if (this.#stopped || this.#busy[i]) return;
    this.#busy[i] = true;
    try {
      const kind = transportFor(i);
      const client = await this.#connect(kind, `client ${i}`);
      if (client === undefined) return;
      const feed = new SeqCheck(false);
      const news = new SeqCheck(false);
      client.onMessage = (frame) => {
        this.counters.messages++;
        const m = parseBody(frame);
        if (m === undefined || (m.stream === 'feed' && m.key !== i)) {
          this.unexpected(`client ${i} got a message not meant for it: ${frame.body.toString('latin1').slice(0, 40)}`);
          return;
        }
        const check = m.stream === 'feed' ? feed : news;
        const disorder = check.disorder;
        this.counters.churnerGaps += check.see(m.seq);
        this.counters.churnerDisorder += check.disorder - disorder;
      };
      this.#watchClose(client, `client ${i}`, () => {
        if (this.#slots[i] === client) this.#slots[i] = undefined;
      });
      try {
        await this.#subscribeBoth(client, i);
      } catch (err) {
        this.unexpected(`client ${i} (${kind}) SUBSCRIBE failed: ${(err as Error).message}`);
        client.drop();
        return;
      }
      this.#slots[i] = client;
    } finally {
      this.#busy[i] = false;
    }
  }

  async #openConsumer(): Promise<void> {
    if (this.#consumerOpening) return;
    this.#consumerOpening = true;
    try {
      const client = await this.#connect('ws', 'work consumer');
      if (client === undefined) return;
      this.#watchClose(client, 'work consumer', () => {
        if (this.#consumer === client) this.#consumer = undefined;
      });
      client.onMessage = (frame) => {
        this.counters.messages++;
        const body = frame.body.toString('latin1');
        const id = body.startsWith('work ') ? Number(body.slice(5)) : Number.NaN;
        if (Number.isInteger(id)) this.work.consumed(id);
        else this.unexpected(`work consumer got ${JSON.stringify(body.slice(0, 40))}`);
        const ack = getHeader(frame, 'ack');
        if (ack === undefined) this.unexpected('work message without an ack header');
        else client.ack(ack);
      };
      try {
        await client.subscribe(WORK_QUEUE, 'work', 'client-individual', true, [['prefetch-count', '100']]);
      } catch (err) {
        this.unexpected(`work consumer SUBSCRIBE failed: ${(err as Error).message}`);
        client.drop();
        return;
      }
      this.#consumer = client;
    } finally {
      this.#consumerOpening = false;
    }
  }

  /** What the schedule owes since the load started, at most one second's worth at once. */
  #owed(rate: number, sent: number): number {
    const due = Math.floor(((performance.now() - this.#loadStart) / 1000) * rate);
    return Math.min(due - sent, Math.max(1, Math.ceil(rate)));
  }

  async #publishTick(): Promise<void> {
    if (this.#publishing || this.#stopped) return;
    this.#publishing = true;
    try {
      const keys = this.#published.length;
      for (let n = this.#owed(this.#options.feedRate, this.#feedSent); n > 0 && !this.#stopped; n--) {
        const key = this.#feedStarted++ % keys;
        const seq = ++this.#published[key]!;
        this.#feedSent++;
        await this.#publisher.publish(feedRoute(key), Buffer.from(`feed ${key} ${seq}`));
      }
      for (let n = this.#owed(this.#options.newsRate, this.#newsSent); n > 0 && !this.#stopped; n--) {
        const seq = ++this.#newsPublished;
        this.#newsSent++;
        await this.#publisher.publish(NEWS, Buffer.from(`news ${seq}`));
      }
    } catch (err) {
      this.unexpected(`AMQP publish failed: ${(err as Error).message}`);
    } finally {
      this.#publishing = false;
    }
  }

  #workTick(): void {
    if (this.#stopped) return;
    if (this.#consumer === undefined) void this.#openConsumer();
    for (let n = this.#owed(this.#options.workRate, this.#workSent); n > 0; n--) {
      this.#workSent++;
      const i = Math.floor(Math.random() * this.#slots.length);
      const client = this.#slots[i];
      // An empty or busy slot skips this SEND: the schedule moves on rather than piling up.
      if (client === undefined || !client.isOpen || this.#busy[i]) continue;
      const id = this.work.send();
      const receipt = client.send(WORK_QUEUE, Buffer.from(`work ${id}`), true);
      receipt?.then(
        () => {
          this.counters.receipts++;
          this.work.receipted(id);
        },
        (err: Error) => {
          // A receipt lost to our own churn is expected; one lost to an ERROR is not.
          if (client.error !== undefined) this.unexpected(`SEND to ${WORK_QUEUE} failed: ${err.message}`);
          this.work.abandoned(id);
        },
      );
    }
  }

  #churnTick(): void {
    if (this.#stopped) return;
    const n = Math.floor(this.#options.churn) + (Math.random() < this.#options.churn % 1 ? 1 : 0);
    for (let k = 0; k < n; k++) {
      const i = Math.floor(Math.random() * this.#slots.length);
      if (this.#busy[i]) continue;
      void this.#replace(i);
    }
    // Slots emptied by a failure are refilled, a bounded few per tick.
    let refill = Math.max(2, n);
    for (let i = 0; i < this.#slots.length && refill > 0; i++) {
      if (this.#slots[i] === undefined && !this.#busy[i]) {
        refill--;
        void this.#openSlot(i);
      }
    }
  }

  async #replace(i: number): Promise<void> {
    const old = this.#slots[i];
    this.#busy[i] = true;
    try {
      this.#slots[i] = undefined;
      if (old?.isOpen) {
        this.#dropNext = !this.#dropNext;
        if (this.#dropNext) old.drop();
        else await old.disconnect(DISCONNECT_TIMEOUT_MS);
      }
    } finally {
      this.#busy[i] = false;
    }
    await this.#openSlot(i);
  }
}
