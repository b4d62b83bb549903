// One STOMP session per connection: the state machine that guards what may be sent when
// (nothing before CONNECT, CONNECT once), feeds bytes through the decoder, runs one command at a
// time in arrival order, turns engine deliveries into MESSAGE frames, and ends the session in one
// place so every resource (engine channel, timers, transactions) is released exactly once.

import type { Logger } from 'pino';
import type { Authorizer, Principal } from '../auth/authorizer.js';
import { formatDestination } from '../destination/index.js';
import type { PermissionCheck } from '../destination/types.js';
import type { Engine, EngineSession } from '../engine/engine.js';
import type { Delivery } from '../engine/message.js';
import { isStompError, stompError, type CloseReason, type ErrorCode, type StompError } from '../errors.js';
import { messageHeaders } from '../mapping/amqp-to-stomp.js';
import { StompDecoder, type DecodeResult } from '../stomp/decoder.js';
import { encodeFrame, HEARTBEAT_EOL } from '../stomp/encoder.js';
import { getHeader, makeFrame, type Frame, type HeaderList, type StompVersion } from '../stomp/frame.js';
import { countPublishes, HEARTBEAT_COMMAND, NO_SESSION_METER, type SessionMeter, type SessionMetrics } from '../server/metrics.js';
import type { Transport } from '../transport/transport.js';
import { COMMAND_HANDLERS } from './commands/index.js';
import { performConnect } from './commands/connect.js';
import { RECEIPT_HANDLED, type ConnectedContext } from './context.js';
import { heartBeatHeader, startHeartBeats } from './heart-beat.js';
import { DEFAULT_FLOW_OPTIONS, type FlowOptions, type SessionOptions } from './options.js';
import { frameBytes, InboundFlow } from './inbound-flow.js';
import { OutboundFlow } from './outbound-flow.js';
import { asStompError } from './plan-executor.js';
import { formatMessageId, SubscriptionRegistry, type Subscription } from './subscriptions.js';
import { TransactionStore } from './transactions.js';
import { randomToken } from '../random-pool.js';
import { settleWithin } from '../settle-within.js';

export interface SessionDeps {
  readonly transport: Transport;
  readonly engine: Engine;
  readonly authorizer: Authorizer;
  readonly options: SessionOptions;
  /** The parent logger: the session logs through one child of it, bound to `logBindings` and its id. */
  readonly log: Logger;
  readonly logBindings?: Record<string, unknown>;
  /** Called once when the session has ended. */
  readonly onEnd?: (reason: CloseReason) => void;
  readonly metrics?: SessionMetrics;
}

export interface SessionHandle {
  readonly id: string;
  close(reason: CloseReason, error?: StompError): void;
  /**
   * Shutdown: takes no further frame (a SEND not yet taken gets no receipt, so the client knows it
   * was not accepted), lets the frame in hand finish, waits (at most `maxWaitMs`) for the broker to
   * confirm what was published so its RECEIPTs go out, then closes with `error`.
   */
  closeGracefully(reason: CloseReason, error: StompError, maxWaitMs: number): Promise<void>;
}

export function startSession(deps: SessionDeps): SessionHandle {
  return new Session(deps);
}

type State = 'awaiting-connect' | 'connecting' | 'connected' | 'closed';

/** Why the transport closes: a literal close code per reason (WebSocket codes; TCP ignores them). */
const CLOSE_CODES: Record<CloseReason, number> = {
  'client-disconnect': 1000,
  'client-gone': 1000,
  'fatal-error': 1000,
  'heartbeat-timeout': 1000,
  'login-timeout': 1000,
  'token-expired': 1000,
  'ping-timeout': 1001,
  'engine-lost': 1011,
  'server-shutdown': 1001,
  // RFC 6455 §7.4.1 1008 "policy violation": the client broke the read-rate bound.
  'slow-consumer': 1008,
};

const MAX_TIMER_MS = 2_147_483_647;

/** A session ending at the client's word (DISCONNECT with receipt, half-close) waits at most this long for the broker. */
const CLOSING_WAIT_MS = 10_000;

const FRAMING_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MALFORMED_FRAME', 'FRAME_TOO_LARGE', 'TOO_MANY_HEADERS', 'HEADER_TOO_LONG', 'INVALID_ESCAPE', 'INVALID_UTF8']);

class Session implements ConnectedContext, SessionHandle {
  readonly id = `session-${randomToken(16)}`;
  readonly options: SessionOptions;
  readonly subscriptions = new SubscriptionRegistry();
  readonly transactions: TransactionStore;
  readonly declaredQueues = new Set<string>();
  readonly tempQueues = new Map<string, string>();
  log: Logger;

  readonly #deps: SessionDeps;
  readonly #decoder: StompDecoder;
  readonly #meter: SessionMeter;
  readonly #inbox: Array<Frame | StompError> = [];
  #pumping = false;
  #draining = false;
  #pumpIdle: Array<() => void> = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  #state: State = 'awaiting-connect';
  #version: StompVersion = '1.0';
  #principal: Principal | undefined;
  #engine: EngineSession | undefined;
  #engineClosed: Promise<void> | undefined;
  #lastRead = Date.now();
  #lastWrite = Date.now();
  #stopHeartBeats: (() => void) | undefined;
  #loginTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  readonly #flow: FlowOptions;
  readonly #outbound: OutboundFlow;
  readonly #inbound: InboundFlow;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
    this.options = deps.options;
    this.log = deps.log.child({ ...deps.logBindings, sessionId: this.id });
    this.transactions = new TransactionStore(deps.options.maxTransactions, deps.options.maxTransactionFrames, deps.options.maxTransactionBytes);
    this.#decoder = new StompDecoder(deps.options.decoder, { pauseUntilAuthenticated: true });
    this.#meter = deps.metrics?.session(deps.transport.kind) ?? NO_SESSION_METER;
    this.#flow = deps.options.flow ?? DEFAULT_FLOW_OPTIONS;
    this.#outbound = new OutboundFlow(deps.transport, this.#flow, (active) => this.#setEngineFlow(active));
    this.#inbound = new InboundFlow(deps.transport, this.#flow, deps.options.decoder.maxFrameBytes, () => {
      this.#lastRead = Date.now();
    });
    deps.transport.setHandlers({
      data: (chunk) => this.#onData(chunk),
      close: (reason) => this.close(reason ?? 'client-gone'),
      drain: () => this.#outbound.drained(),
      end: () => void this.#peerFinished(),
    });
    if (deps.options.loginTimeoutMs > 0) {
      this.#loginTimer = setTimeout(() => {
        this.close('login-timeout', stompError('LOGIN_TIMEOUT', `No CONNECT within ${deps.options.loginTimeoutMs} ms`));
      }, deps.options.loginTimeoutMs);
    }
  }

  // ConnectedContext: valid only once connected; the dispatcher guarantees that.
  get version(): StompVersion {
    return this.#version;
  }
  get principal(): Principal {
    return this.#principal!;
  }
  get engine(): EngineSession {
    return this.#engine!;
  }
  get closing(): boolean {
    return this.#state === 'closed';
  }
  get sessionId(): string {
    return this.id;
  }

  #onData(chunk: Buffer): void {
    this.#lastRead = Date.now();
    if (this.#state === 'closed') return;
    this.#meter.bytesIn(chunk.length);
    this.#enqueue(this.#decoder.push(chunk));
    void this.#pump();
  }

  #enqueue({ events, error }: DecodeResult): void {
    let overflow = false;
    for (const ev of events) {
      this.#meter.frameIn(ev.type === 'frame' ? ev.frame.command : HEARTBEAT_COMMAND);
      if (ev.type !== 'frame') continue;
      this.#inbox.push(ev.frame);
      const wasPaused = this.#inbound.paused;
      if (this.#inbound.added(frameBytes(ev.frame)) === 'overflow') overflow = true;
      if (!wasPaused && this.#inbound.paused) this.#meter.flowPaused('inbound');
    }
    if (error) this.#inbox.push(error);
    if (overflow) {
      const { maxInboxFrames, maxInboxBytes } = this.#flow;
      this.close(
        'fatal-error',
        stompError('INBOUND_OVERFLOW', `${this.#inbox.length} frames wait to be handled and this transport cannot be paused (limit about ${maxInboxFrames} frames or ${maxInboxBytes} bytes); wait for receipts before sending more\n`),
      );
    }
  }

  /** One frame at a time, in arrival order: a SUBSCRIBE must be in place before the next SEND runs. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      let item: Frame | StompError | undefined;
      for (;;) {
        // Before CONNECT succeeds the decoder stops after each frame; continue once it is handled.
        if (this.#inbox.length === 0 && this.#decoder.paused && !this.closing) this.#enqueue(this.#decoder.resume());
        if (this.closing || this.#draining || (item = this.#inbox.shift()) === undefined) break;
        if (!isStompError(item)) this.#inbound.removed(frameBytes(item));
        if (isStompError(item)) {
          this.close('fatal-error', item);
          break;
        }
        await this.#handle(item);
      }
    } catch (e) {
      this.log.error({ err: e }, 'unexpected error while handling a frame');
      this.close('fatal-error', stompError('ENGINE_ERROR', 'Internal error while processing the frame'));
    } finally {
      this.#pumping = false;
      for (const resolve of this.#pumpIdle.splice(0)) resolve();
    }
  }

  trackConfirm(confirmed: Promise<unknown>): void {
    this.#inFlight.add(confirmed);
    void confirmed.finally(() => this.#inFlight.delete(confirmed));
  }

  async closeGracefully(reason: CloseReason, error: StompError, maxWaitMs: number): Promise<void> {
    if (this.#state === 'closed') return;
    this.#draining = true;
    const idle = this.#pumping ? new Promise<void>((resolve) => this.#pumpIdle.push(resolve)) : Promise.resolve();
    await settleWithin(idle.then(() => this.#confirmsSettled()), maxWaitMs);
    this.close(reason, error);
  }

  /** Every SEND's confirm has come (or failed), and the RECEIPTs written in its callbacks are out. */
  async #confirmsSettled(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /**
   * DISCONNECT. With a receipt, the RECEIPT promises that nothing more reaches this client, so it is
   * written only once earlier SENDs are confirmed (their RECEIPTs come first) and the engine session
   * has closed: its consumers are cancelled at the broker, and a message published after the RECEIPT
   * stays queued instead of going, auto-acked, to a consumer about to vanish. Deliveries that arrive
   * meanwhile are still written: the client reads until the RECEIPT. No further frame is taken.
   */
  async disconnect(receiptId?: string): Promise<void> {
    if (receiptId === undefined) {
      this.close('client-disconnect');
      return;
    }
    this.#draining = true;
    let failure: unknown;
    let confirmed = false;
    const closed = this.#confirmsSettled()
      .then(() => {
        confirmed = true;
        return this.#closeEngine();
      })
      .catch((e: unknown) => {
        failure = e;
      });
    const inTime = await settleWithin(closed, CLOSING_WAIT_MS);
    // The client went, or the broker ended the session with its own ERROR, meanwhile.
    if (this.#state === 'closed') return;
    if (!inTime) {
      const why = confirmed
        ? `The broker did not confirm the end of this session within ${CLOSING_WAIT_MS} ms; messages may still have been delivered after the DISCONNECT\n`
        : `The broker did not confirm this session's earlier SENDs within ${CLOSING_WAIT_MS} ms; they may not have been accepted\n`;
      this.close('fatal-error', stompError('ENGINE_ERROR', why), receiptId);
      return;
    }
    // A channel already gone with the connection delivers nothing more either: the promise holds.
    if (failure !== undefined) this.log.debug({ err: asStompError(failure) }, 'engine session close failed at DISCONNECT');
    this.sendReceipt(receiptId);
    this.close('client-disconnect');
  }

  /**
   * The client half-closed (TCP): it sends nothing more but reads on. What it already sent is
   * handled and answered, receipts of confirmed SENDs included, then the session ends.
   */
  async #peerFinished(): Promise<void> {
    const answered = (async () => {
      while (this.#pumping) await new Promise<void>((resolve) => this.#pumpIdle.push(resolve));
      await this.#confirmsSettled();
    })();
    await settleWithin(answered, CLOSING_WAIT_MS);
    this.close('client-gone');
  }

  /** Once, however many ways the session ends. */
  #closeEngine(): Promise<void> {
    if (!this.#engine) return Promise.resolve();
    this.#engineClosed ??= this.#engine.close();
    return this.#engineClosed;
  }

  async #handle(frame: Frame): Promise<void> {
    const receipt = getHeader(frame, 'receipt');
    if (frame.command === 'CONNECT' || frame.command === 'STOMP') {
      if (this.#state !== 'awaiting-connect') {
        this.fail(stompError('ALREADY_CONNECTED', 'This connection is already logged in'), receipt);
        return;
      }
      await this.#connect(frame);
      return;
    }
    if (this.#state !== 'connected') {
      this.fail(stompError('NOT_CONNECTED', 'You must log in using CONNECT first'), receipt);
      return;
    }
    const handler = COMMAND_HANDLERS[frame.command];
    if (!handler) {
      this.fail(stompError('UNKNOWN_COMMAND', `Could not interpret command "${frame.command}"\n`), receipt);
      return;
    }
    const result = await handler(this, frame);
    if (this.closing) return;
    if (result === RECEIPT_HANDLED) return;
    if (result !== undefined) {
      this.fail(result, receipt);
      return;
    }
    if (receipt !== undefined) this.sendReceipt(receipt);
  }

  async #connect(frame: Frame): Promise<void> {
    this.#state = 'connecting';
    const result = await performConnect(frame, {
      options: this.options,
      authorizer: this.#deps.authorizer,
      engine: this.#deps.engine,
      remoteAddress: this.#deps.transport.remoteAddress,
      bearerToken: this.#deps.transport.bearerToken,
      sessionId: this.id,
      log: this.log,
      events: {
        onClosed: (error) => this.close(error.code === 'ENGINE_UNAVAILABLE' ? 'engine-lost' : 'fatal-error', error),
        onCancelled: (consumerTag) => this.#serverCancelled(consumerTag),
      },
    });
    // The transport may have gone while we waited on the authorizer or the engine.
    if (this.closing) {
      if (result.ok) void result.value.engineSession.close();
      return;
    }
    if (!result.ok) {
      this.#state = 'awaiting-connect';
      this.fail(result.error);
      return;
    }
    const { version, heartBeat, principal, engineSession } = result.value;
    this.#version = version;
    this.#principal = principal;
    this.#engine = this.#deps.metrics ? countPublishes(engineSession, () => this.#meter.published()) : engineSession;
    this.#state = 'connected';
    this.#meter.connected(version);
    // Added to the session's own child (the engine session logs through it too) rather than a child
    // of it: one logger per connection, not three.
    this.log.setBindings({ user: principal.username, vhost: principal.vhost, version });
    clearTimeout(this.#loginTimer);
    this.#decoder.setVersion(version);
    this.#decoder.setAuthenticated();
    this.sendFrame(
      makeFrame('CONNECTED', [
        ['server', this.options.serverName],
        ['session', this.id],
        ['heart-beat', heartBeatHeader(heartBeat)],
        ['version', version],
      ]),
    );
    this.#stopHeartBeats = startHeartBeats(heartBeat, this.options.heartBeat.tolerance, {
      sinceLastWrite: () => Date.now() - this.#lastWrite,
      // Reading paused by us (inbox full): the client's bytes wait in the kernel, it is not silent.
      sinceLastRead: () => (this.#inbound.paused ? 0 : Date.now() - this.#lastRead),
      sendBeat: () => {
        this.#meter.frameOut(HEARTBEAT_COMMAND);
        this.#write(HEARTBEAT_EOL);
      },
      peerDead: (silentMs) =>
        this.close('heartbeat-timeout', stompError('HEARTBEAT_TIMEOUT', `No heart-beat from the client for ${silentMs} ms`)),
    });
    this.#watchExpiry(principal.expiresAt);
    this.log.info('connected');
  }

  /** A token is good until its `exp`, not until the client happens to disconnect (rabbitmq-server #17244). */
  #watchExpiry(expiresAt: number | undefined): void {
    if (expiresAt === undefined) return;
    const expire = () => {
      const left = expiresAt - Date.now();
      if (left > 0) {
        // setTimeout holds at most ~24.8 days; a longer-lived token re-arms.
        this.#expiryTimer = setTimeout(expire, Math.min(left, MAX_TIMER_MS));
        return;
      }
      const at = new Date(expiresAt).toISOString();
      this.close('token-expired', stompError('TOKEN_EXPIRED', `The access token expired at ${at}; reconnect with a new one\n`));
    };
    expire();
  }

  #write(data: Buffer): void {
    if (this.#state === 'closed') return;
    this.#lastWrite = Date.now();
    this.#meter.bytesOut(data.length);
    this.#outbound.sent(this.#deps.transport.send(data));
  }

  sendFrame(frame: Frame): void {
    if (this.#state !== 'closed') this.#meter.frameOut(frame.command);
    this.#write(encodeFrame(frame, this.#version));
  }

  /** Pauses or resumes the broker's deliveries to this session's ack-mode subscriptions. */
  #setEngineFlow(active: boolean): void {
    if (!active) this.#meter.flowPaused('outbound');
    this.log.debug({ active, bufferedBytes: this.#outbound.bufferedBytes, bufferedFrames: this.#outbound.bufferedFrames }, 'outbound flow');
    // Before CONNECTED there is no engine session, and nothing it could deliver yet.
    if (this.#state !== 'connected' || !this.#engine) return;
    // A failing channel reports itself through onClosed; nothing more to do here.
    this.#engine.setFlow(active).catch((e: unknown) => this.log.debug({ err: asStompError(e) }, 'setFlow failed'));
  }

  sendReceipt(receiptId: string): void {
    this.sendFrame(makeFrame('RECEIPT', [['receipt-id', receiptId]]));
  }

  fail(error: StompError, receiptId?: string): void {
    if (this.#state === 'closed') return;
    if (error.fatal) {
      this.close(error.code === 'ENGINE_UNAVAILABLE' ? 'engine-lost' : 'fatal-error', error, receiptId);
      return;
    }
    this.log.debug({ code: error.code, detail: error.detail }, 'error sent to client');
    this.#meter.error(error.code);
    this.sendFrame(errorFrame(error, receiptId));
  }

  async authorize(checks: readonly PermissionCheck[]): Promise<StompError | undefined> {
    const principal = this.principal;
    for (const check of checks) {
      const decision = await this.#deps.authorizer.authorize(principal, check);
      if (!decision.ok) return accessRefused(principal, check, decision.reason);
    }
    return undefined;
  }

  deliver(sub: Subscription, d: Delivery): void {
    if (this.#state !== 'connected') return;
    if (!sub.active) {
      // In flight when the client unsubscribed: give it back rather than leave it unacked.
      if (sub.ack !== 'auto') this.engine.nack(d.deliveryTag, false, true);
      return;
    }
    const messageId = formatMessageId(sub.tag, this.id, d.deliveryTag);
    if (sub.ack !== 'auto') this.subscriptions.track(sub, d.deliveryTag);
    const headers = messageHeaders({
      subscriptionId: sub.id,
      destination: formatDestination(d.exchange, d.routingKey),
      messageId,
      redelivered: d.redelivered,
      ack: this.#version === '1.2' && sub.ack !== 'auto' ? messageId : undefined,
      properties: d.properties,
    });
    const bytes = encodeFrame(makeFrame('MESSAGE', headers, d.body), this.#version);
    // An auto-ack delivery cannot be held back at the broker (qos does not apply to it): rather than
    // buffer without bound, or drop it silently, the session ends and says why.
    if (sub.ack === 'auto' && this.#outbound.wouldExceed(bytes.length)) {
      this.#slowConsumer(sub);
      return;
    }
    this.#meter.frameOut('MESSAGE');
    this.#write(bytes);
    this.#meter.delivered();
  }

  #slowConsumer(sub: Subscription): void {
    const { maxOutboundBytes, maxOutboundFrames } = this.#flow;
    const id = sub.id ?? sub.destinationHeader;
    const detail =
      `The client reads too slowly: ${this.#outbound.bufferedBytes} bytes in ${this.#outbound.bufferedFrames} frames wait for it ` +
      `(limit stomp.maxOutboundBytes=${maxOutboundBytes}, stomp.maxOutboundFrames=${maxOutboundFrames}). ` +
      `Subscription "${id}" acknowledges automatically, so its messages cannot be held back; read faster or subscribe with ack:client.\n`;
    this.#meter.slowConsumer();
    this.close('slow-consumer', stompError('SLOW_CONSUMER', detail, { headers: [['subscription', id]] }));
  }

  #serverCancelled(consumerTag: string): void {
    const sub = this.subscriptions.byConsumerTag(consumerTag);
    if (!sub) return;
    this.subscriptions.remove(sub);
    const id = sub.id ?? sub.destinationHeader;
    this.fail(
      stompError(
        'SERVER_CANCELLED',
        `The server has canceled a subscription.\nNo more messages will be delivered for "id='${id}'".\n`,
        { headers: [['subscription', id]] },
      ),
    );
  }

  close(reason: CloseReason, error?: StompError, receiptId?: string): void {
    if (this.#state === 'closed') return;
    const wasConnected = this.#state === 'connected';
    this.#state = 'closed';
    // Written before the close even though the state already says closed: the client must see why.
    if (error) {
      const bytes = encodeFrame(errorFrame(error, receiptId), this.#version);
      this.#meter.error(error.code);
      this.#meter.frameOut('ERROR');
      this.#meter.bytesOut(bytes.length);
      this.#deps.transport.send(bytes);
    }
    clearTimeout(this.#loginTimer);
    clearTimeout(this.#expiryTimer);
    this.#stopHeartBeats?.();
    this.#inbox.length = 0;
    this.#inbound.clear();
    this.transactions.clear();
    this.subscriptions.clear();
    const code = error && FRAMING_ERRORS.has(error.code) ? 1007 : CLOSE_CODES[reason];
    this.#deps.transport.close(code, error?.message ?? reason);
    if (this.#engine && !this.#engineClosed) {
      this.#closeEngine().catch((e: unknown) => this.log.warn({ err: asStompError(e) }, 'engine session close failed'));
    }
    const level = reason === 'client-disconnect' || reason === 'client-gone' ? 'info' : 'warn';
    this.log[level]({ reason, code: error?.code, detail: error?.detail, wasConnected }, 'session closed');
    this.#meter.closed(reason);
    this.#deps.onEnd?.(reason);
  }

}

/** ERROR frame layout as RabbitMQ writes it (reference §2.11), plus receipt-id when one was asked for. */
export function errorFrame(error: StompError, receiptId?: string): Frame {
  const headers: Array<readonly [string, string]> = [['message', error.message]];
  if (receiptId !== undefined) headers.push(['receipt-id', receiptId]);
  headers.push(['content-type', 'text/plain'], ['version', '1.0,1.1,1.2']);
  for (const h of error.headers ?? []) headers.push(h);
  return makeFrame('ERROR', headers as HeaderList, error.detail);
}

/** RabbitMQ's ACCESS_REFUSED text (reference §2.11), with the authorizer's reason appended. */
function accessRefused(p: Principal, check: PermissionCheck, reason: string): StompError {
  const what =
    check.resource === 'topic'
      ? `topic '${check.routingKey}' in exchange '${check.name}'`
      : `${check.resource} '${check.name}'`;
  const detail = `ACCESS_REFUSED - ${check.permission} access to ${what} in vhost '${p.vhost}' refused for user '${p.username}'`;
  return stompError('ACCESS_REFUSED', reason ? `${detail}: ${reason}` : detail);
}
