// One STOMP session per connection: the state machine that guards what may be sent when
// (nothing before CONNECT, CONNECT once), feeds bytes through the decoder, runs one command at a
// time in arrival order, turns engine deliveries into MESSAGE frames, and ends the session in one
// place so every resource (engine channel, timers, transactions) is released exactly once.

import { randomBytes } from 'node:crypto';
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
import type { SessionOptions } from './options.js';
import { asStompError } from './plan-executor.js';
import { formatMessageId, SubscriptionRegistry, type Subscription } from './subscriptions.js';
import { TransactionStore } from './transactions.js';

export interface SessionDeps {
  readonly transport: Transport;
  readonly engine: Engine;
  readonly authorizer: Authorizer;
  readonly options: SessionOptions;
  readonly log: Logger;
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
};

const MAX_TIMER_MS = 2_147_483_647;

const FRAMING_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MALFORMED_FRAME', 'FRAME_TOO_LARGE', 'TOO_MANY_HEADERS', 'HEADER_TOO_LONG', 'INVALID_ESCAPE', 'INVALID_UTF8']);

class Session implements ConnectedContext, SessionHandle {
  readonly id = `session-${randomBytes(16).toString('base64url')}`;
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
  #lastRead = Date.now();
  #lastWrite = Date.now();
  #stopHeartBeats: (() => void) | undefined;
  #loginTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
    this.options = deps.options;
    this.log = deps.log.child({ sessionId: this.id });
    this.transactions = new TransactionStore(deps.options.maxTransactions, deps.options.maxTransactionFrames);
    this.#decoder = new StompDecoder(deps.options.decoder, { pauseUntilAuthenticated: true });
    this.#meter = deps.metrics?.session(deps.transport.kind) ?? NO_SESSION_METER;
    deps.transport.setHandlers({
      data: (chunk) => this.#onData(chunk),
      close: () => this.close('client-gone'),
      drain: () => undefined,
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
    for (const ev of events) {
      this.#meter.frameIn(ev.type === 'frame' ? ev.frame.command : HEARTBEAT_COMMAND);
      if (ev.type === 'frame') this.#inbox.push(ev.frame);
    }
    if (error) this.#inbox.push(error);
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
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, maxWaitMs);
    });
    await Promise.race([idle.then(() => Promise.allSettled([...this.#inFlight])), deadline]);
    clearTimeout(timer);
    // Receipts of confirmed SENDs are written in promise callbacks: let them run first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.close(reason, error);
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
    this.log = this.log.child({ user: principal.username, vhost: principal.vhost, version });
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
      sinceLastRead: () => Date.now() - this.#lastRead,
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
    this.#deps.transport.send(data);
  }

  sendFrame(frame: Frame): void {
    if (this.#state !== 'closed') this.#meter.frameOut(frame.command);
    this.#write(encodeFrame(frame, this.#version));
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
    this.sendFrame(makeFrame('MESSAGE', headers, d.body));
    this.#meter.delivered();
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

  disconnect(): void {
    this.close('client-disconnect');
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
    this.transactions.clear();
    this.subscriptions.clear();
    const code = error && FRAMING_ERRORS.has(error.code) ? 1007 : CLOSE_CODES[reason];
    this.#deps.transport.close(code, error?.message ?? reason);
    if (this.#engine) {
      this.#engine.close().catch((e: unknown) => this.log.warn({ err: asStompError(e) }, 'engine session close failed'));
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
