// Publishing under connection.blocked (broker/src/engine/amqp/blocked-publish.ts): a publish waits
// for connection.unblocked within a bound, and a confirm outstanding while blocked is bounded too.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { boundWhileBlocked, whenUnblocked, type BlockState } from '../../broker/src/engine/amqp/blocked-publish.js';
import { EngineError } from '../../broker/src/engine/engine.js';

class FakeConnection implements BlockState {
  reason: string | undefined;
  readonly listeners = new Set<() => void>();
  blockedReason(): string | undefined {
    return this.reason;
  }
  onBlockedChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(reason: string | undefined): void {
    this.reason = reason;
    for (const l of [...this.listeners]) l();
  }
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function settledState(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await tick(1);
  return state;
}

describe('whenUnblocked', () => {
  test('not blocked: resolves at once', async () => {
    await whenUnblocked(new FakeConnection(), 10);
  });

  test('blocked, then unblocked within the bound: resolves, and stops listening', async () => {
    const conn = new FakeConnection();
    conn.set('low on memory');
    const wait = whenUnblocked(conn, 60_000);
    assert.equal(await settledState(wait), 'pending');
    conn.set(undefined);
    await wait;
    assert.equal(conn.listeners.size, 0);
  });

  test('still blocked after the bound: a clear ENGINE_UNAVAILABLE naming the alarm', async () => {
    const conn = new FakeConnection();
    conn.set('low on memory');
    const err = await whenUnblocked(conn, 20).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof EngineError);
    assert.equal(err.error.code, 'ENGINE_UNAVAILABLE');
    assert.equal(err.error.detail, 'RabbitMQ is refusing publishes (resource alarm: low on memory); try again later');
    assert.equal(conn.listeners.size, 0);
  });
});

describe('boundWhileBlocked', () => {
  test('never blocked: settles as the work does', async () => {
    const conn = new FakeConnection();
    assert.equal(await boundWhileBlocked(conn, 10, Promise.resolve(7)), 7);
    await assert.rejects(boundWhileBlocked(conn, 10, Promise.reject(new Error('nacked'))), /nacked/);
    assert.equal(conn.listeners.size, 0);
  });

  test('blocked while the confirm is outstanding, past the bound: rejects with the alarm', async () => {
    const conn = new FakeConnection();
    const confirm = new Promise<void>(() => {});
    const bounded = boundWhileBlocked(conn, 20, confirm);
    await tick(30);
    assert.equal(await settledState(bounded), 'pending', 'not blocked: no bound on the confirm');
    conn.set('low on disk');
    await assert.rejects(bounded, (e: unknown) => e instanceof EngineError && /resource alarm: low on disk/.test(e.error.detail));
    assert.equal(conn.listeners.size, 0);
  });

  test('an unblock disarms the bound; the confirm then settles it', async () => {
    const conn = new FakeConnection();
    let confirm!: () => void;
    const bounded = boundWhileBlocked(
      conn,
      30,
      new Promise<void>((r) => {
        confirm = r;
      }),
    );
    conn.set('low on memory');
    await tick(5);
    conn.set(undefined);
    await tick(50);
    assert.equal(await settledState(bounded), 'pending');
    confirm();
    await bounded;
  });
});
