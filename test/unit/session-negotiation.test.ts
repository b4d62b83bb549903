// Version and heart-beat negotiation, message-id parsing and cumulative-ack bookkeeping: pure parts
// of the session.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { negotiateVersion } from '../../broker/src/session/version.js';
import { negotiateHeartBeat, heartBeatHeader } from '../../broker/src/session/heart-beat.js';
import { formatMessageId, parseMessageId, SubscriptionRegistry, type Subscription } from '../../broker/src/session/subscriptions.js';

const HB = { minSendMs: 1000, minReceiveMs: 1000, tolerance: 2 };

describe('negotiateVersion (STOMP 1.2 §Protocol Negotiation)', () => {
  it('absent accept-version means 1.0', () => assert.deepEqual(negotiateVersion(undefined), { ok: true, value: '1.0' }));
  it('picks the highest common version', () => {
    assert.deepEqual(negotiateVersion('1.0,1.1'), { ok: true, value: '1.1' });
    assert.deepEqual(negotiateVersion('1.2,1.0'), { ok: true, value: '1.2' });
    assert.deepEqual(negotiateVersion('1.1, 1.2'), { ok: true, value: '1.2' });
  });
  it('ignores unknown entries', () => assert.deepEqual(negotiateVersion('2.0,1.1'), { ok: true, value: '1.1' }));
  it('no common version is a Version mismatch listing what is supported', () => {
    const r = negotiateVersion('2.0');
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.message, 'Version mismatch');
      assert.equal(r.error.detail, 'Supported versions are 1.0,1.1,1.2\n');
      assert.equal(r.error.fatal, false);
    }
  });
});

describe('negotiateHeartBeat (STOMP 1.2 §Heart-beating)', () => {
  const hb = (h: string | undefined) => {
    const r = negotiateHeartBeat(h, HB);
    assert.ok(r.ok);
    return r.value;
  };
  it('absent or 0,0 means none either way', () => {
    assert.deepEqual(hb(undefined), { sendMs: 0, receiveMs: 0 });
    assert.deepEqual(hb('0,0'), { sendMs: 0, receiveMs: 0 });
  });
  it('server sends at the client wish cy, expects the client at cx', () => {
    assert.deepEqual(hb('10000,5000'), { sendMs: 5000, receiveMs: 10000 });
    assert.equal(heartBeatHeader(hb('10000,5000')), '5000,10000');
  });
  it('wishes below the server minimum are raised to it', () => {
    assert.deepEqual(hb('10,20'), { sendMs: 1000, receiveMs: 1000 });
    assert.deepEqual(hb('0,2000'), { sendMs: 2000, receiveMs: 0 });
  });
  it('a malformed header is a Processing error', () => {
    for (const bad of ['a,b', '10', '-1,5', '1,2,3']) {
      const r = negotiateHeartBeat(bad, HB);
      assert.equal(r.ok, false, bad);
      if (!r.ok) assert.equal(r.error.code, 'PROCESSING_ERROR');
    }
  });
});

describe('message ids (reference §2.7)', () => {
  it('round-trips, including consumer tags that contain @@', () => {
    for (const tag of ['T_sub-1', 'Q_/queue/a@@b', 'T_@@']) {
      const id = formatMessageId(tag, 'session-abc', 42);
      assert.deepEqual(parseMessageId(id), { tag, deliveryTag: 42 });
    }
  });
  it('rejects ids without a numeric delivery tag', () => {
    assert.equal(parseMessageId('nonsense'), undefined);
    assert.equal(parseMessageId('T_a@@s@@x'), undefined);
    assert.equal(parseMessageId('T_a@@1'), undefined);
  });
});

describe('SubscriptionRegistry settlement', () => {
  const sub = (tag: string, ack: Subscription['ack']): Subscription => ({
    id: tag, tag, destinationHeader: '/queue/q', destination: { kind: 'queue', name: 'q' }, ack,
    queue: 'q', consumerTag: undefined, internal: false, pending: [], active: true,
  });
  it('client mode settles every pending tag up to the acked one, and only its own', () => {
    const r = new SubscriptionRegistry();
    const a = sub('a', 'client');
    const b = sub('b', 'client');
    r.add(a);
    r.add(b);
    r.track(a, 1); r.track(b, 2); r.track(a, 3); r.track(a, 5);
    assert.equal(r.onlyOwnerBelow(a, 3), false, 'b holds 2');
    assert.deepEqual(r.settle(a, 3), [1, 3]);
    assert.equal(r.pendingOwner(2), b);
    assert.equal(r.pendingOwner(1), undefined);
    assert.deepEqual(a.pending, [5]);
  });
  it('client-individual settles exactly one', () => {
    const r = new SubscriptionRegistry();
    const a = sub('a', 'client-individual');
    r.add(a);
    r.track(a, 1); r.track(a, 2); r.track(a, 3);
    assert.deepEqual(r.settle(a, 2), [2]);
    assert.deepEqual(a.pending, [1, 3]);
    assert.equal(r.onlyOwnerBelow(a, 3), true);
  });
  it('pending deliveries stay ackable after the subscription is removed', () => {
    const r = new SubscriptionRegistry();
    const a = sub('a', 'client');
    r.add(a);
    r.track(a, 7);
    r.remove(a);
    assert.equal(r.has('a'), false);
    assert.equal(r.pendingOwner(7), a);
  });
});
