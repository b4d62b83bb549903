// Property tests for the STOMP codec: encode -> decode under arbitrary chunking gives the frames
// back, and arbitrary bytes never throw, never depend on chunking and never grow the buffer past
// the frame limit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StompDecoder } from '../../broker/src/stomp/decoder.js';
import type { DecodeEvent, DecodeResult, DecoderLimits } from '../../broker/src/stomp/decoder.js';
import { encodeFrame } from '../../broker/src/stomp/encoder.js';
import { CLIENT_COMMANDS } from '../../broker/src/stomp/frame.js';
import type { Frame, HeaderList, StompVersion } from '../../broker/src/stomp/frame.js';
import { ERROR_CATALOG, isStompError } from '../../broker/src/errors.js';

const COMMANDS = [...CLIENT_COMMANDS, 'CONNECTED', 'MESSAGE', 'RECEIPT', 'ERROR'];
const VERSIONS: readonly StompVersion[] = ['1.0', '1.1', '1.2'];

/** Cuts `bytes` at the given points (taken modulo its length). */
function chunk(bytes: Buffer, points: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [];
  const cuts = [...new Set(points.map((p) => p % bytes.length))].filter((p) => p > 0).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(from, cut));
    from = cut;
  }
  return chunks;
}

function feed(decoder: StompDecoder, chunks: readonly Buffer[], onPush?: () => void): DecodeResult {
  const events: DecodeEvent[] = [];
  for (const piece of chunks) {
    const result = decoder.push(piece);
    onPush?.();
    events.push(...result.events);
    if (result.error) return { events, error: result.error };
  }
  return { events };
}

// Header text rich in the characters escaping is about, plus any code point but NUL (which no
// STOMP header can carry).
const headerChar = fc.oneof(
  fc.constantFrom(':', '\\', '\n', '\r', 'c', 'n', 'r', 't', ' ', 'é'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => c !== '\0'),
);

/** What a version can carry: 1.1 has no `\r` escape; 1.0 has no escaping, so no `:` in names. */
function headerText(version: StompVersion, role: 'name' | 'value'): fc.Arbitrary<string> {
  return fc
    .string({ unit: headerChar, minLength: role === 'name' ? 1 : 0, maxLength: 12 })
    .filter((s) => !(version === '1.1' && s.includes('\r')))
    .filter((s) => !(version === '1.0' && role === 'name' && s.includes(':')))
    .filter((s) => s !== 'content-length');
}

function frameArb(version: StompVersion): fc.Arbitrary<Frame> {
  const header = fc.tuple(headerText(version, 'name'), headerText(version, 'value'));
  return fc.record({
    command: fc.constantFrom(...COMMANDS),
    headers: fc.array(header, { maxLength: 6 }),
    body: fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 3000 }),
      fc.constant(new Uint8Array(0)),
    ),
  }).map(({ command, headers, body }) => ({ command, headers, body: Buffer.from(body) }));
}

/** The frame the decoder must produce for `frame` encoded in `version`. */
function expected(frame: Frame, version: StompVersion): Frame {
  // STOMP 1.0 carries LF and CR as the two-character escapes and does not decode them.
  const seen = (s: string): string => (version === '1.0' ? s.replaceAll('\n', '\\n').replaceAll('\r', '\\r') : s);
  const headers: HeaderList = frame.headers.map(([n, v]) => [seen(n), seen(v)] as const);
  if (frame.body.length > 0) headers.push(['content-length', String(frame.body.length)]);
  return { command: frame.command, headers, body: frame.body };
}

function decoderFor(version: StompVersion | undefined, limits?: Partial<DecoderLimits>): StompDecoder {
  const decoder = new StompDecoder(limits);
  if (version) decoder.setVersion(version);
  decoder.setAuthenticated();
  return decoder;
}

const splitPoints = fc.array(fc.nat(), { maxLength: 40 });

for (const version of VERSIONS) {
  test(`STOMP ${version}: encode then decode under arbitrary chunking gives the frame back`, () => {
    fc.assert(
      fc.property(frameArb(version), splitPoints, (frame, points) => {
        const result = feed(decoderFor(version), chunk(encodeFrame(frame, version), points));
        assert.deepEqual(result, { events: [{ type: 'frame', frame: expected(frame, version) }] });
      }),
      { numRuns: 1000 },
    );
  });

  test(`STOMP ${version}: many frames with heart-beats and padding between them`, () => {
    const gap = fc.constantFrom('', '\n', '\r\n', '\0', '\n\n', '\0\r\n');
    const beats = (g: string): number => g.split('\n').length - 1;
    fc.assert(
      fc.property(fc.array(fc.tuple(gap, frameArb(version)), { minLength: 1, maxLength: 8 }), gap, splitPoints, (items, tail, points) => {
        const wire: Buffer[] = [];
        const want: DecodeEvent[] = [];
        for (const [before, frame] of items) {
          wire.push(Buffer.from(before), encodeFrame(frame, version));
          for (let i = 0; i < beats(before); i++) want.push({ type: 'heartbeat' });
          want.push({ type: 'frame', frame: expected(frame, version) });
        }
        wire.push(Buffer.from(tail));
        for (let i = 0; i < beats(tail); i++) want.push({ type: 'heartbeat' });
        const result = feed(decoderFor(version), chunk(Buffer.concat(wire), points));
        assert.deepEqual(result, { events: want });
      }),
      { numRuns: 300 },
    );
  });
}

test('CONNECT-time decoding reads anything the 1.2 encoder writes', () => {
  fc.assert(
    fc.property(frameArb('1.2'), splitPoints, (frame, points) => {
      const result = feed(decoderFor(undefined), chunk(encodeFrame(frame, '1.2'), points));
      assert.deepEqual(result, { events: [{ type: 'frame', frame: expected(frame, '1.2') }] });
    }),
    { numRuns: 300 },
  );
});

// Garbage biased towards STOMP syntax, so that it reaches every state, error and limit: frame-like
// pieces (some well-formed, most subtly broken) mixed with raw bytes.
const bytesOf = (s: string): Buffer => Buffer.from(s, 'latin1');
const eol = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('\n', '\r\n') },
  { weight: 1, arbitrary: fc.constantFrom('\r', '') },
);
const headerLine = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a:b', 'a:b:c', 'x:\\c\\n\\\\', 'u:\xc3\xbc', 'v:') },
  { weight: 2, arbitrary: fc.nat({ max: 600 }).map((n) => `content-length:${n}`) },
  { weight: 2, arbitrary: fc.nat({ max: 60 }).map((n) => 'long:' + 'v'.repeat(n)) },
  { weight: 1, arbitrary: fc.nat({ max: 30 }).map((n) => 'utf8:' + Buffer.from('é✓'.repeat(n)).toString('latin1')) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('nocolon', ':empty', 'x:\\t', 'x:\\', 'x:\\r', 'bad:\xff\xfe', 'content-length:-1', 'content-length:x'),
  },
);
const frameLike = fc
  .record({
    command: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('SEND', 'CONNECT', 'MESSAGE') }, fc.constantFrom('', 'S\0ND', 'X\rY')),
    headers: fc.array(fc.tuple(headerLine, eol), { maxLength: 6 }),
    blank: eol,
    body: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    end: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('\0', '\0\n') }, fc.constantFrom('', 'x\0')),
    // Cut short, so that the next piece lands in the middle of a line or a body.
    cut: fc.option(fc.nat(), { freq: 3 }),
  })
  .map(({ command, headers, blank, body, end, cut }) => {
    const frame = Buffer.concat([bytesOf(command + '\n'), ...headers.map(([h, e]) => bytesOf(h + e)), bytesOf(blank), body, bytesOf(end)]);
    return cut === null ? frame : frame.subarray(0, cut % frame.length);
  });
const fragment = fc.oneof(
  { weight: 6, arbitrary: frameLike },
  fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
  fc.constantFrom('\r', '\n', '\r\n', '\0', '\\', ':', 'x'.repeat(100)).map(bytesOf),
);

// Small limits, so that they are hit often and in every combination (ties included).
const smallLimits: fc.Arbitrary<DecoderLimits> = fc.record({
  maxFrameBytes: fc.integer({ min: 1, max: 600 }),
  maxFrameBytesBeforeConnect: fc.integer({ min: 1, max: 300 }),
  maxHeaders: fc.integer({ min: 1, max: 6 }),
  maxHeaderLineBytes: fc.integer({ min: 1, max: 80 }),
});

test('arbitrary bytes never throw, do not depend on chunking and keep memory bounded', () => {
  const versions = fc.constantFrom(undefined, ...VERSIONS);
  fc.assert(
    fc.property(fc.array(fragment, { maxLength: 40 }), versions, fc.boolean(), smallLimits, splitPoints, (pieces, version, authenticated, limits, points) => {
      const bytes = Buffer.concat(pieces);
      const setup = (): StompDecoder => {
        const decoder = new StompDecoder(limits);
        if (version) decoder.setVersion(version);
        if (authenticated) decoder.setAuthenticated();
        return decoder;
      };
      const limit = authenticated ? limits.maxFrameBytes : limits.maxFrameBytesBeforeConnect;
      const whole = feed(setup(), [bytes]);
      const decoder = setup();
      const chunked = feed(decoder, chunk(bytes, points), () => assert.ok(decoder.bufferedBytes <= limit));
      assert.deepEqual(chunked, whole);
      for (const event of whole.events) {
        if (event.type === 'frame') assert.ok(event.frame.body.length < limit);
      }
      if (whole.error) {
        assert.ok(isStompError(whole.error));
        assert.ok(whole.error.code in ERROR_CATALOG);
        assert.ok(whole.error.detail.length > 0);
        assert.deepEqual(decoder.push(Buffer.from('SEND\n\n\0')), { events: [], error: whole.error });
      }
    }),
    { numRuns: 3000 },
  );
});

test('byte-by-byte decoding of garbage matches decoding it whole', () => {
  fc.assert(
    fc.property(fc.array(fragment, { maxLength: 20 }), smallLimits, (pieces, limits) => {
      const bytes = Buffer.concat(pieces);
      const single = [...bytes].map((b) => Buffer.from([b]));
      assert.deepEqual(feed(new StompDecoder(limits), single), feed(new StompDecoder(limits), [bytes]));
    }),
    { numRuns: 1000 },
  );
});
