// reference §1.1: destination parsing, escaping and RabbitMQ's error texts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, replyToTempQueue, type Destination } from '../../broker/src/destination/index.js';
import type { ErrorCode } from '../../broker/src/errors.js';
import type { StompVersion } from '../../broker/src/stomp/frame.js';

function parsed(raw: string, version: StompVersion = '1.2'): Destination {
  const r = parseDestination(raw, version);
  assert.ok(r.ok, `expected ${JSON.stringify(raw)} to parse, got ${r.ok ? '' : r.error.detail}`);
  return r.value;
}

function failure(raw: string | undefined, version: StompVersion = '1.2') {
  const r = parseDestination(raw, version);
  assert.ok(!r.ok, `expected ${JSON.stringify(raw)} to fail`);
  return r.error;
}

function assertError(raw: string | undefined, code: ErrorCode, message: string, detail: string, version?: StompVersion) {
  const e = failure(raw, version);
  assert.equal(e.code, code);
  assert.equal(e.message, message);
  assert.equal(e.detail, detail);
  assert.equal(e.fatal, false, 'destination errors keep the connection open');
}

const UNKNOWN_TAIL = '\nValid destination types are: /temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/.\n';

describe('parseDestination: recognised forms', () => {
  const cases: Array<[string, Destination]> = [
    ['/queue/foo', { kind: 'queue', name: 'foo' }],
    ['/topic/a.b.c', { kind: 'topic', name: 'a.b.c' }],
    ['/exchange/amq.direct', { kind: 'exchange', exchange: 'amq.direct', pattern: undefined }],
    ['/exchange/amq.direct/k', { kind: 'exchange', exchange: 'amq.direct', pattern: 'k' }],
    ['/exchange/x/', { kind: 'exchange', exchange: 'x', pattern: '' }],
    ['/amq/queue/q1', { kind: 'amq-queue', name: 'q1' }],
    ['/temp-queue/foo', { kind: 'temp-queue', name: 'foo' }],
    ['/reply-queue/amq.gen-abc', { kind: 'reply-queue', name: 'amq.gen-abc' }],
    ['/reply-queue/a/b', { kind: 'reply-queue', name: 'a/b' }],
    ['/reply-queue//temp-queue/x', { kind: 'reply-queue', name: '/temp-queue/x' }],
    // A bare name is exactly /queue/<name>.
    ['foo', { kind: 'queue', name: 'foo' }],
    ['a%2Fb', { kind: 'queue', name: 'a/b' }],
  ];
  for (const [raw, want] of cases) {
    it(`${raw}`, () => assert.deepEqual(parsed(raw), want));
  }
});

describe('parseDestination: only %2F is decoded', () => {
  it('decodes %2F in every name segment', () => {
    assert.deepEqual(parsed('/topic/a%2Fb%25c'), { kind: 'topic', name: 'a/b%25c' });
    assert.deepEqual(parsed('/exchange/a%2Fb/c%2Fd'), { kind: 'exchange', exchange: 'a/b', pattern: 'c/d' });
    assert.deepEqual(parsed('/reply-queue/x%2Fy'), { kind: 'reply-queue', name: 'x/y' });
    assert.deepEqual(parsed('/amq/queue/%2F'), { kind: 'amq-queue', name: '/' });
  });
  it('keeps %2f, %25, %20 literal', () => {
    assert.deepEqual(parsed('/queue/a%2fb'), { kind: 'queue', name: 'a%2fb' });
    assert.deepEqual(parsed('/queue/%25%20x'), { kind: 'queue', name: '%25%20x' });
  });
  it('decodes left to right without overlap', () => {
    assert.deepEqual(parsed('/queue/%%2F2F'), { kind: 'queue', name: '%/2F' });
  });
});

describe('parseDestination: invalid forms', () => {
  const invalid: Array<[string, string]> = [
    ['/queue/a/b', "'/a/b' is not a valid queue destination\n"],
    ['/queue', "'' is not a valid queue destination\n"],
    ['/queue/', "'/' is not a valid queue destination\n"],
    ['/topic/a/b', "'/a/b' is not a valid topic destination\n"],
    ['/topic', "'' is not a valid topic destination\n"],
    ['/exchange//rk', "'//rk' is not a valid exchange destination\n"],
    ['/exchange/x/a/b', "'/x/a/b' is not a valid exchange destination\n"],
    ['/exchange', "'' is not a valid exchange destination\n"],
    ['/exchange/', "'/' is not a valid exchange destination\n"],
    ['/amq/queue/a/b', "'/a/b' is not a valid amqqueue destination\n"],
    ['/amq/queue', "'' is not a valid amqqueue destination\n"],
    ['/temp-queue/a/b', "'/a/b' is not a valid temp_queue destination\n"],
    ['/reply-queue/', "'/' is not a valid reply_queue destination\n"],
    // The quoted text is the raw segments: %2F is not decoded in the message.
    ['/queue/a%2Fb/c', "'/a%2Fb/c' is not a valid queue destination\n"],
  ];
  for (const [raw, detail] of invalid) {
    it(`${raw}`, () => assertError(raw, 'INVALID_DESTINATION', 'Invalid destination', detail));
  }
});

describe('parseDestination: unknown, blank, missing', () => {
  for (const raw of ['/foo/bar', 'foo/bar', '/amq/exchange/x', '/reply-queue', '/Queue/x']) {
    it(`unknown: ${raw}`, () =>
      assertError(raw, 'UNKNOWN_DESTINATION', 'Unknown destination', `'${raw}' is not a valid destination.${UNKNOWN_TAIL}`));
  }
  it('empty destination is blank (RabbitMQ message: Invalid destination)', () =>
    assertError('', 'BLANK_DESTINATION', 'Invalid destination', 'Destination cannot be blank'));
  it('missing header', () => {
    const e = failure(undefined);
    assert.equal(e.code, 'MISSING_HEADER');
    assert.equal(e.message, 'Missing destination');
    assert.equal(e.detail, `"SEND" must include a 'destination' header\n`);
    const sub = parseDestination(undefined, '1.2', 'SUBSCRIBE');
    assert.ok(!sub.ok);
    assert.equal(sub.error.detail, `"SUBSCRIBE" must include a 'destination' header\n`);
  });
});

describe('parseDestination: STOMP version and leading whitespace', () => {
  it('1.0 strips leading spaces', () => {
    assert.deepEqual(parsed(' /queue/x', '1.0'), { kind: 'queue', name: 'x' });
    assert.deepEqual(parsed('   /topic/t', '1.0'), { kind: 'topic', name: 't' });
    assert.deepEqual(parsed(' foo', '1.0'), { kind: 'queue', name: 'foo' });
  });
  it('1.0 keeps trailing spaces and does not strip tabs', () => {
    assert.deepEqual(parsed(' /queue/x ', '1.0'), { kind: 'queue', name: 'x ' });
    assertError('\t/queue/x', 'UNKNOWN_DESTINATION', 'Unknown destination', `'\t/queue/x' is not a valid destination.${UNKNOWN_TAIL}`, '1.0');
  });
  it('1.0: only spaces is blank', () => assertError('   ', 'BLANK_DESTINATION', 'Invalid destination', 'Destination cannot be blank', '1.0'));
  for (const version of ['1.1', '1.2'] as const) {
    it(`${version} keeps the space: the destination becomes unknown`, () => {
      assertError(' /queue/x', 'UNKNOWN_DESTINATION', 'Unknown destination', `' /queue/x' is not a valid destination.${UNKNOWN_TAIL}`, version);
    });
    it(`${version}: a bare name keeps its space`, () => assert.deepEqual(parsed(' foo', version), { kind: 'queue', name: ' foo' }));
  }
});

describe('replyToTempQueue', () => {
  it('returns the temp-queue id', () => assert.deepEqual(replyToTempQueue('/temp-queue/r1'), { ok: true, value: 'r1' }));
  it('passes other destinations and bare names through', () => {
    assert.deepEqual(replyToTempQueue('/queue/q'), { ok: true, value: undefined });
    assert.deepEqual(replyToTempQueue('plainq'), { ok: true, value: undefined });
    assert.deepEqual(replyToTempQueue(''), { ok: true, value: undefined });
  });
  it('a reply-to that does not parse is a processing error', () => {
    const r = replyToTempQueue('/nowhere/x');
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'PROCESSING_ERROR');
  });
});
