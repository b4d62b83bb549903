// The per-address connection counter behind limits.maxConnectionsPerAddress.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionLimit } from '../../broker/src/transport/connection-limit.js';

test('up to max connections per address are admitted; the next is refused until one is released', () => {
  const limit = new ConnectionLimit(3);
  const releases = [limit.acquire('10.0.0.1'), limit.acquire('10.0.0.1'), limit.acquire('10.0.0.1')];
  assert.ok(releases.every((r) => r !== undefined));
  assert.equal(limit.acquire('10.0.0.1'), undefined);
  assert.equal(limit.count('10.0.0.1'), 3);
  releases[1]!();
  assert.equal(limit.count('10.0.0.1'), 2);
  assert.ok(limit.acquire('10.0.0.1'));
  assert.equal(limit.acquire('10.0.0.1'), undefined);
});

test('addresses are counted separately', () => {
  const limit = new ConnectionLimit(1);
  assert.ok(limit.acquire('10.0.0.1'));
  assert.ok(limit.acquire('10.0.0.2'));
  assert.ok(limit.acquire('::1'));
  assert.equal(limit.acquire('10.0.0.1'), undefined);
  assert.equal(limit.addresses, 3);
});

test('a release counts once, however often it is called; idle addresses are forgotten', () => {
  const limit = new ConnectionLimit(2);
  const a = limit.acquire('10.0.0.1')!;
  const b = limit.acquire('10.0.0.1')!;
  a();
  a();
  a();
  assert.equal(limit.count('10.0.0.1'), 1);
  assert.ok(limit.acquire('10.0.0.1'));
  assert.equal(limit.acquire('10.0.0.1'), undefined);
  b();
  assert.equal(limit.count('10.0.0.1'), 1);
  const fresh = new ConnectionLimit(5);
  fresh.acquire('10.0.0.9')!();
  assert.equal(fresh.addresses, 0);
});

test('0 is unlimited', () => {
  const limit = new ConnectionLimit(0);
  for (let i = 0; i < 10_000; i++) assert.ok(limit.acquire('10.0.0.1'));
  assert.equal(limit.count('10.0.0.1'), 10_000);
});

test('a negative or fractional limit is a programming error', () => {
  assert.throws(() => new ConnectionLimit(-1), RangeError);
  assert.throws(() => new ConnectionLimit(1.5), RangeError);
});
