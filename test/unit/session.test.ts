// The session state machine over an in-memory transport and the embedded engine: CONNECT guard and
// negotiation, every command, receipts, errors flushed before close, heart-beats, transactions.

import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { getHeader, type Frame } from '../../broker/src/stomp/frame.js';
import { allowAllAuthorizer } from '../../broker/src/auth/allow-all.js';
import type { Engine } from '../../broker/src/engine/engine.js';
import { startSession } from '../../broker/src/session/session.js';
import { holdingCloses, holdingConfirms, rig, silentLog, TEST_SESSION_OPTIONS, type Rig } from '../helpers/session-fixture.js';
import { TestClient } from '../helpers/memory-transport.js';

const h = (f: Frame, name: string) => getHeader(f, name);
const isFrame = (command: string, header?: [string, string]) => (f: Frame) =>
  f.command === command && (header === undefined || getHeader(f, header[0]) === header[1]);
let n = 0;
const uniq = (p: string) => `${p}-${process.pid}-${++n}`;

/** Lets every pending microtask and I/O callback run: setImmediate, which the mocked timers leave real. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A session on `stuck(hold)`, whose hold lasts until the test ends; `act` sends frames ending in
 * `DISCONNECT receipt:bye` and resolves once the engine is held. Under mocked setTimeout (so the
 * 10 s bound passes at once): nothing is written before the bound; at it, exactly one ERROR
 * (internal_error, `why` as its body, carrying the receipt-id), no RECEIPT, and the transport closed.
 */
async function expectStalledDisconnect(
  t: TestContext,
  stuck: (hold: () => Promise<void>) => Engine,
  act: (c: TestClient, held: Promise<void>) => Promise<void>,
  why: string,
): Promise<void> {
  let heldNow!: () => void;
  const held = new Promise<void>((resolve) => (heldNow = resolve));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const c = new TestClient();
  const engine = stuck(async () => {
    heldNow();
    await gate;
  });
  startSession({ transport: c.transport, engine, authorizer: allowAllAuthorizer(), options: TEST_SESSION_OPTIONS, log: silentLog });
  c.send('CONNECT', { 'accept-version': '1.2', host: '/' });
  await c.waitFor(isFrame('CONNECTED'));
  // No waitFor from here on: it polls on setTimeout.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  try {
    await act(c, held);
    await turn();
    t.mock.timers.tick(9_999);
    await turn();
    assert.deepEqual(c.frames.map((f) => f.command), ['CONNECTED'], 'nothing answered before the bound');
    assert.equal(c.isClosed, false, 'still open before the bound');
    t.mock.timers.tick(1);
    await turn();
    assert.deepEqual(c.frames.map((f) => f.command), ['CONNECTED', 'ERROR'], 'one ERROR, no RECEIPT');
    const e = c.frames[1]!;
    assert.equal(h(e, 'message'), 'internal_error');
    assert.equal(h(e, 'receipt-id'), 'bye');
    assert.equal(e.body.toString(), why);
    assert.equal(c.isClosed, true);
    assert.equal(c.transport.closed?.code, 1000);
  } finally {
    release();
  }
}

describe('session: before CONNECT', () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.close());

  it('any frame before CONNECT gets ERROR "Illegal command" and the socket stays usable', async () => {
    const c = r.client();
    c.send('SEND', { destination: '/queue/x', receipt: 'r1' }, 'hi');
    const err = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(err, 'message'), 'Illegal command');
    assert.equal(h(err, 'receipt-id'), 'r1');
    assert.match(err.body.toString(), /CONNECT first/);
    assert.equal(c.isClosed, false);
    c.send('CONNECT', { 'accept-version': '1.2', host: '/' });
    await c.waitFor(isFrame('CONNECTED'));
  });

  it('CONNECTED carries version, session, server and heart-beat; STOMP works like CONNECT', async () => {
    const c = r.client();
    c.send('STOMP', { 'accept-version': '1.0,1.1', host: '/', 'heart-beat': '0,0' });
    const f = await c.waitFor(isFrame('CONNECTED'));
    assert.equal(h(f, 'version'), '1.1');
    assert.match(h(f, 'session') ?? '', /^session-[A-Za-z0-9_-]{22}$/);
    assert.equal(h(f, 'server'), 'Thumper/test');
    assert.equal(h(f, 'heart-beat'), '0,0');
  });

  it('no common version: ERROR "Version mismatch", connection stays open (RabbitMQ)', async () => {
    const c = r.client();
    c.send('CONNECT', { 'accept-version': '3.0' });
    const f = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(f, 'message'), 'Version mismatch');
    assert.equal(c.isClosed, false);
  });

  it('a second CONNECT is refused without ending the session', async () => {
    const c = await r.connected();
    c.send('CONNECT', { 'accept-version': '1.2' });
    const f = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(f, 'message'), 'Illegal command');
    assert.equal(c.isClosed, false);
  });

  it('unknown vhost is a Bad CONNECT naming it', async () => {
    const c = r.client();
    c.send('CONNECT', { 'accept-version': '1.2', host: 'nope' });
    const f = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(f, 'message'), 'Bad CONNECT');
    assert.match(f.body.toString(), /Virtual host 'nope'/);
  });
});

describe('session: messaging on the embedded engine', () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.close());

  it('SEND to /queue reaches a SUBSCRIBE on it, body byte-identical, headers per reference §2.7', async () => {
    const q = uniq('/queue/q');
    const sub = await r.connected();
    sub.send('SUBSCRIBE', { id: 's1', destination: q, receipt: 'sub-ok' });
    await sub.waitFor(isFrame('RECEIPT', ['receipt-id', 'sub-ok']));
    const pub = await r.connected();
    const body = Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 10, 13]);
    pub.send('SEND', { destination: q, 'content-type': 'application/octet-stream', 'x-custom': 'a:b', receipt: 'p1' }, body);
    await pub.waitFor(isFrame('RECEIPT', ['receipt-id', 'p1']));
    const m = await sub.waitFor(isFrame('MESSAGE'));
    assert.deepEqual(m.body, body);
    assert.equal(h(m, 'subscription'), 's1');
    assert.equal(h(m, 'destination'), q);
    assert.equal(h(m, 'redelivered'), 'false');
    assert.equal(h(m, 'content-type'), 'application/octet-stream');
    assert.equal(h(m, 'x-custom'), 'a:b');
    assert.match(h(m, 'message-id') ?? '', /^T_s1@@session-.+@@\d+$/);
    assert.equal(h(m, 'ack'), undefined, 'auto mode has no ack header');
  });

  it('the seed flow: /exchange/feed/user_x gets what is published for user_x, user_y does not', async () => {
    const x = await r.connected();
    const y = await r.connected();
    x.send('SUBSCRIBE', { id: 'f', destination: '/exchange/feed/user_x', receipt: 'x' });
    y.send('SUBSCRIBE', { id: 'f', destination: '/exchange/feed/user_y', receipt: 'y' });
    await x.waitFor(isFrame('RECEIPT'));
    await y.waitFor(isFrame('RECEIPT'));
    const pub = await r.connected();
    pub.send('SEND', { destination: '/exchange/feed/user_x', receipt: 'p' }, 'for x');
    await pub.waitFor(isFrame('RECEIPT'));
    const m = await x.waitFor(isFrame('MESSAGE'));
    assert.equal(m.body.toString(), 'for x');
    assert.equal(h(m, 'destination'), '/exchange/feed/user_x');
    // y's marker arrives after anything for x would have: then y must have nothing else.
    pub.send('SEND', { destination: '/exchange/feed/user_y', receipt: 'p2' }, 'for y');
    const my = await y.waitFor(isFrame('MESSAGE'));
    assert.equal(my.body.toString(), 'for y');
    assert.equal(y.frames.filter((f) => f.command === 'MESSAGE').length, 1);
  });

  it('client ack is cumulative per subscription; unacked messages are redelivered to the next consumer', async () => {
    const q = uniq('/queue/ack');
    const c1 = await r.connected();
    c1.send('SUBSCRIBE', { id: 'a', destination: q, ack: 'client' });
    const pub = await r.connected();
    for (let i = 1; i <= 3; i++) pub.send('SEND', { destination: q }, `m${i}`);
    const ms = await c1.collect('MESSAGE', 3);
    assert.equal(h(ms[0]!, 'ack'), h(ms[0]!, 'message-id'), '1.2 MESSAGE carries ack = message-id');
    c1.send('ACK', { id: h(ms[1]!, 'ack')!, receipt: 'acked' });
    await c1.waitFor(isFrame('RECEIPT', ['receipt-id', 'acked']));
    c1.send('DISCONNECT', { receipt: 'bye' });
    await c1.waitFor(isFrame('RECEIPT', ['receipt-id', 'bye']));
    await c1.waitForClose();
    const c2 = await r.connected();
    c2.send('SUBSCRIBE', { id: 'b', destination: q, ack: 'client-individual' });
    const again = await c2.waitFor(isFrame('MESSAGE'));
    assert.equal(again.body.toString(), 'm3');
    assert.equal(h(again, 'redelivered'), 'true');
  });

  it('NACK requeues with redelivered:true; requeue:false drops', async () => {
    const q = uniq('/queue/nack');
    const c = await r.connected();
    c.send('SUBSCRIBE', { id: 'n', destination: q, ack: 'client-individual' });
    const pub = await r.connected();
    pub.send('SEND', { destination: q }, 'once');
    const m1 = await c.waitFor(isFrame('MESSAGE'));
    c.send('NACK', { id: h(m1, 'ack')! });
    const m2 = await c.waitFor((f) => f.command === 'MESSAGE' && f !== m1);
    assert.equal(h(m2, 'redelivered'), 'true');
    assert.equal(m2.body.toString(), 'once');
    c.send('NACK', { id: h(m2, 'ack')!, requeue: 'false', receipt: 'dropped' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'dropped']));
    assert.equal(c.frames.filter((f) => f.command === 'MESSAGE').length, 2);
  });

  it('STOMP 1.0/1.1 acknowledge with message-id', async () => {
    const q = uniq('/queue/v11');
    const c = await r.connected({ 'accept-version': '1.1' });
    assert.equal(c.version, '1.1');
    c.send('SUBSCRIBE', { id: 'v', destination: q, ack: 'client' });
    const pub = await r.connected();
    pub.send('SEND', { destination: q }, 'x');
    const m = await c.waitFor(isFrame('MESSAGE'));
    assert.equal(h(m, 'ack'), undefined, 'no ack header before 1.2');
    c.send('ACK', { id: 'ignored', receipt: 'missing' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Missing header');
    assert.equal(h(e, 'receipt-id'), 'missing');
    c.send('ACK', { 'message-id': h(m, 'message-id')!, receipt: 'ok' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'ok']));
  });

  it('ACK of an unknown delivery is fatal, like the AMQP channel error RabbitMQ gives', async () => {
    const c = await r.connected();
    c.send('SUBSCRIBE', { id: 'z', destination: uniq('/queue/z'), ack: 'client', receipt: 's' });
    await c.waitFor(isFrame('RECEIPT'));
    c.send('ACK', { id: 'T_z@@session-x@@99', receipt: 'bad' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'receipt-id'), 'bad');
    assert.match(e.body.toString(), /unknown delivery tag 99/);
    await c.waitForClose();
  });

  it('transactions: SENDs and ACKs apply only at COMMIT; ABORT discards; unknown ids are errors', async () => {
    const q = uniq('/queue/tx');
    const sub = await r.connected();
    sub.send('SUBSCRIBE', { id: 't', destination: q, receipt: 's' });
    await sub.waitFor(isFrame('RECEIPT'));
    const c = await r.connected();
    c.send('BEGIN', { transaction: 'tx1' });
    c.send('SEND', { destination: q, transaction: 'tx1', receipt: 'in-tx' }, 'committed');
    c.send('BEGIN', { transaction: 'tx2' });
    c.send('SEND', { destination: q, transaction: 'tx2' }, 'aborted');
    c.send('ABORT', { transaction: 'tx2', receipt: 'aborted' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'aborted']));
    assert.equal(c.frames.some(isFrame('RECEIPT', ['receipt-id', 'in-tx'])), false, 'no receipt before COMMIT');
    assert.equal(sub.frames.some(isFrame('MESSAGE')), false, 'nothing delivered before COMMIT');
    c.send('COMMIT', { transaction: 'tx1', receipt: 'committed' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'committed']));
    const sendReceipt = c.frames.findIndex(isFrame('RECEIPT', ['receipt-id', 'in-tx']));
    const commitReceipt = c.frames.findIndex(isFrame('RECEIPT', ['receipt-id', 'committed']));
    assert.ok(sendReceipt >= 0 && sendReceipt < commitReceipt, 'SEND receipt precedes the COMMIT receipt');
    const m = await sub.waitFor(isFrame('MESSAGE'));
    assert.equal(m.body.toString(), 'committed');
    c.send('COMMIT', { transaction: 'tx2' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Bad transaction');
    c.send('SEND', { destination: q, transaction: 'nope' }, 'x');
    await c.waitFor((f) => f.command === 'ERROR' && f !== e);
    assert.equal(c.isClosed, false);
  });

  it('transactions are bounded in number and size', async () => {
    const c = await r.connected();
    for (let i = 0; i < 4; i++) c.send('BEGIN', { transaction: `t${i}` });
    c.send('BEGIN', { transaction: 't-over', receipt: 'over' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Transaction limit exceeded');
    for (let i = 0; i < 16; i++) c.send('SEND', { destination: '/queue/never', transaction: 't0' }, 'x');
    c.send('SEND', { destination: '/queue/never', transaction: 't0' }, 'x');
    await c.waitFor((f) => f.command === 'ERROR' && f !== e && /16 frames/.test(f.body.toString()));
  });

  it('/temp-queue reply-to: the responder sees /reply-queue/amq.gen-…, its reply comes back on subscription /temp-queue/<n>', async () => {
    const svc = uniq('/queue/svc');
    const server = await r.connected();
    server.send('SUBSCRIBE', { id: 'svc', destination: svc, receipt: 's' });
    await server.waitFor(isFrame('RECEIPT'));
    const client = await r.connected();
    client.send('SEND', { destination: svc, 'reply-to': '/temp-queue/replies' }, 'ping');
    const req = await server.waitFor(isFrame('MESSAGE'));
    const replyTo = h(req, 'reply-to')!;
    assert.match(replyTo, /^\/reply-queue\/amq\.gen-/);
    server.send('SEND', { destination: replyTo }, 'pong');
    const rep = await client.waitFor(isFrame('MESSAGE'));
    assert.equal(rep.body.toString(), 'pong');
    assert.equal(h(rep, 'subscription'), '/temp-queue/replies');
    client.send('UNSUBSCRIBE', { id: '/temp-queue/replies' });
    const e = await client.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Invalid id');
  });

  it('UNSUBSCRIBE stops delivery; unknown id is a non-fatal error', async () => {
    const q = uniq('/queue/u');
    const c = await r.connected();
    c.send('SUBSCRIBE', { id: 'u', destination: q });
    c.send('UNSUBSCRIBE', { id: 'u', receipt: 'gone' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'gone']));
    const pub = await r.connected();
    pub.send('SEND', { destination: q, receipt: 'p' }, 'nobody');
    await pub.waitFor(isFrame('RECEIPT'));
    c.send('UNSUBSCRIBE', { id: 'u' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'No subscription found');
    assert.equal(c.frames.some(isFrame('MESSAGE')), false);
    // The message waits in the queue for the next consumer.
    c.send('SUBSCRIBE', { id: 'u2', destination: q });
    assert.equal((await c.waitFor(isFrame('MESSAGE'))).body.toString(), 'nobody');
  });
});

describe('session: errors', () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.close());

  it('SUBSCRIBE without id in 1.2 is a Missing header error; in 1.0 it is allowed and MESSAGE has no subscription', async () => {
    const c = await r.connected();
    c.send('SUBSCRIBE', { destination: '/queue/noid' });
    assert.equal(h(await c.waitFor(isFrame('ERROR')), 'message'), 'Missing header');
    const old = await r.connected({ 'accept-version': '1.0' });
    const q = uniq('/queue/noid10');
    old.send('SUBSCRIBE', { destination: q, receipt: 's' });
    await old.waitFor(isFrame('RECEIPT'));
    old.send('SEND', { destination: q }, 'x');
    const m = await old.waitFor(isFrame('MESSAGE'));
    assert.equal(h(m, 'subscription'), undefined);
    assert.match(h(m, 'message-id') ?? '', /^Q_\/queue\//);
  });

  it('duplicate subscription id: ERROR then close (RabbitMQ)', async () => {
    const c = await r.connected();
    c.send('SUBSCRIBE', { id: 'd', destination: '/queue/dup1' });
    c.send('SUBSCRIBE', { id: 'd', destination: '/queue/dup2' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Duplicated subscription identifier');
    assert.match(e.body.toString(), /T_d/);
    await c.waitForClose();
  });

  it('unknown command: ERROR "Bad command", session continues', async () => {
    const c = await r.connected();
    c.send('FROB', { receipt: 'f' });
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Bad command');
    assert.equal(h(e, 'receipt-id'), 'f');
    c.send('SUBSCRIBE', { id: 'ok', destination: '/queue/after-frob', receipt: 'still' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'still']));
  });

  it('bad destinations are non-fatal errors with RabbitMQ wording', async () => {
    const c = await r.connected();
    c.send('SEND', { destination: '/queue/a/b' }, 'x');
    assert.equal(h(await c.waitFor(isFrame('ERROR')), 'message'), 'Invalid destination');
    c.send('SEND', { destination: '/bogus/x' }, 'x');
    await c.waitFor((f) => f.command === 'ERROR' && h(f, 'message') === 'Unknown destination');
    c.send('SEND', { destination: '/queue/x', 'message-id': 'm' }, 'x');
    await c.waitFor((f) => f.command === 'ERROR' && /message-id/.test(f.body.toString()));
    assert.equal(c.isClosed, false);
  });

  it('SEND to a missing exchange is fatal not_found, flushed before the close', async () => {
    const c = await r.connected();
    c.send('SEND', { destination: '/exchange/does-not-exist/k', receipt: 'lost' }, 'x');
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'not_found');
    assert.equal(h(e, 'receipt-id'), 'lost');
    assert.match(e.body.toString(), /no exchange 'does-not-exist'/);
    await c.waitForClose();
  });

  it('a malformed frame gets an ERROR naming the problem, then the close (code 1007)', async () => {
    const c = await r.connected();
    c.sendRaw('SEND\ndestination /queue/x\n\nbody\0');
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Malformed frame');
    await c.waitForClose();
    assert.equal(c.transport.closed?.code, 1007);
  });

  it('an oversized frame before CONNECT is refused at the smaller pre-CONNECT limit', async () => {
    const r2 = await rig({ decoder: { maxFrameBytes: 1 << 20, maxFrameBytesBeforeConnect: 1024, maxHeaders: 100, maxHeaderLineBytes: 4096 } });
    try {
      const c = r2.client();
      c.sendRaw(`CONNECT\nlogin:${'x'.repeat(2000)}\n\n\0`);
      const e = await c.waitFor(isFrame('ERROR'));
      assert.equal(h(e, 'message'), 'Frame too large');
      await c.waitForClose();
    } finally {
      await r2.close();
    }
  });

  it('DISCONNECT with receipt: RECEIPT first, then the close', async () => {
    const c = await r.connected();
    c.send('DISCONNECT', { receipt: 'bye' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'bye']));
    await c.waitForClose();
    assert.equal(c.transport.closed?.code, 1000);
  });

  it('DISCONNECT with receipt: the RECEIPT waits for the engine session to close; deliveries meanwhile still arrive', async () => {
    let closeAsked!: () => void;
    const asked = new Promise<void>((resolve) => (closeAsked = resolve));
    let letClose!: () => void;
    const gate = new Promise<void>((resolve) => (letClose = resolve));
    // The broker's close-ok, held back: the session must not answer before it.
    const slowClose = holdingCloses(r.engine, async () => {
      closeAsked();
      await gate;
    });
    const c = new TestClient();
    startSession({ transport: c.transport, engine: slowClose, authorizer: allowAllAuthorizer(), options: TEST_SESSION_OPTIONS, log: silentLog });
    c.send('CONNECT', { 'accept-version': '1.2', host: '/' });
    await c.waitFor(isFrame('CONNECTED'));
    const q = uniq('/queue/closing');
    c.send('SUBSCRIBE', { id: 's', destination: q, receipt: 'sub' });
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'sub']));
    c.send('DISCONNECT', { receipt: 'bye' });
    await asked;
    const pub = await r.connected();
    pub.send('SEND', { destination: q, receipt: 'p' }, 'late');
    await pub.waitFor(isFrame('RECEIPT', ['receipt-id', 'p']));
    const late = await c.waitFor(isFrame('MESSAGE'));
    assert.equal(late.body.toString(), 'late');
    assert.equal(c.frames.some(isFrame('RECEIPT', ['receipt-id', 'bye'])), false, 'no RECEIPT before the close-ok');
    assert.equal(c.isClosed, false);
    letClose();
    await c.waitFor(isFrame('RECEIPT', ['receipt-id', 'bye']));
    await c.waitForClose();
    const commands = c.frames.map((f) => f.command);
    assert.ok(commands.indexOf('MESSAGE') < commands.lastIndexOf('RECEIPT'), commands.join(','));
  });

  it('DISCONNECT with receipt: a close-ok that never comes gets one ERROR saying why at the 10 s bound, no RECEIPT, then the close', async (t) => {
    await expectStalledDisconnect(
      t,
      (hold) => holdingCloses(r.engine, hold),
      async (c, asked) => {
        c.send('DISCONNECT', { receipt: 'bye' });
        await asked;
      },
      'The broker did not confirm the end of this session within 10000 ms; messages may still have been delivered after the DISCONNECT\n',
    );
  });

  it('DISCONNECT with receipt: a SEND confirm that never comes gets one ERROR at the 10 s bound, no RECEIPT for either, then the close', async (t) => {
    await expectStalledDisconnect(
      t,
      (hold) => holdingConfirms(r.engine, hold),
      async (c, asked) => {
        c.send('SEND', { destination: uniq('/queue/unconfirmed'), receipt: 'p' }, 'never confirmed');
        await asked;
        c.send('DISCONNECT', { receipt: 'bye' });
      },
      "The broker did not confirm this session's earlier SENDs within 10000 ms; they may not have been accepted\n",
    );
  });
});

describe('session: timers', () => {
  let r: Rig;
  before(async () => (r = await rig({ heartBeat: { minSendMs: 20, minReceiveMs: 20, tolerance: 2 }, loginTimeoutMs: 100 })));
  after(() => r.close());

  it('the server sends heart-beats at the negotiated interval when otherwise idle', async () => {
    // Values are rounded to whole seconds like RabbitMQ's (reference §2.5): 1 s is the fastest.
    const c = await r.connected({ 'heart-beat': '0,1000' });
    const f = c.frames.find(isFrame('CONNECTED'))!;
    assert.equal(h(f, 'heart-beat'), '1000,0');
    const end = Date.now() + 8000;
    while (c.heartBeats < 2 && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    assert.ok(c.heartBeats >= 2, `got ${c.heartBeats} heart-beats`);
    c.send('DISCONNECT');
  });

  it('a client that promised heart-beats and goes silent is closed with an ERROR', async () => {
    const c = await r.connected({ 'heart-beat': '1000,0' });
    const e = await c.waitFor(isFrame('ERROR'), 'ERROR', 8000);
    assert.equal(h(e, 'message'), 'Heart-beat timeout');
    await c.waitForClose();
  });

  it('a client that never sends CONNECT is closed at the login timeout, with an ERROR', async () => {
    const c = r.client();
    c.sendRaw('CONN');
    const e = await c.waitFor(isFrame('ERROR'));
    assert.equal(h(e, 'message'), 'Login timeout');
    await c.waitForClose();
  });
});
