// Unit tests for the streaming STOMP decoder. Every input is decoded whole, byte by byte and in
// a few fixed chunkings, and all of them must agree before the result is checked.

import { test, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DECODER_LIMITS, StompDecoder } from '../../broker/src/stomp/decoder.js';
import type { DecodeEvent, DecodeResult, DecoderLimits } from '../../broker/src/stomp/decoder.js';
import type { Frame, StompVersion } from '../../broker/src/stomp/frame.js';
import { getHeader } from '../../broker/src/stomp/frame.js';
import type { ErrorCode } from '../../broker/src/errors.js';

interface Setup {
  readonly version?: StompVersion;
  readonly authenticated?: boolean;
  readonly limits?: Partial<DecoderLimits>;
}

function newDecoder(setup: Setup): StompDecoder {
  const decoder = new StompDecoder(setup.limits);
  if (setup.version) decoder.setVersion(setup.version);
  if (setup.authenticated) decoder.setAuthenticated();
  return decoder;
}

function feed(decoder: StompDecoder, chunks: Buffer[]): DecodeResult {
  const events: DecodeEvent[] = [];
  for (const chunk of chunks) {
    const result = decoder.push(chunk);
    events.push(...result.events);
    if (result.error) return { events, error: result.error };
  }
  return { events };
}

function split(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(Buffer.from(bytes.subarray(at, at + size)));
  return chunks;
}

/** Decodes `input` under several chunkings, asserts they agree, returns the result. */
function decode(input: string | Buffer, setup: Setup = {}): DecodeResult {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const whole = feed(newDecoder(setup), [bytes]);
  for (const size of [1, 2, 3, 7, 64]) {
    assert.deepEqual(feed(newDecoder(setup), split(bytes, size)), whole, `chunks of ${size} bytes`);
  }
  return whole;
}

function frames(result: DecodeResult): Frame[] {
  return result.events.flatMap((e) => (e.type === 'frame' ? [e.frame] : []));
}

function onlyFrame(input: string | Buffer, setup: Setup = {}): Frame {
  const result = decode(input, setup);
  assert.equal(result.error, undefined, result.error?.detail);
  const [frame, ...rest] = frames(result);
  assert.ok(frame);
  assert.equal(rest.length, 0);
  return frame;
}

function errorOf(input: string | Buffer, setup: Setup = {}): { code: ErrorCode; detail: string } {
  const { error } = decode(input, setup);
  assert.ok(error, 'expected a decoding error');
  assert.equal(error.kind, 'stomp-error');
  return { code: error.code, detail: error.detail };
}

const v12: Setup = { version: '1.2', authenticated: true };

describe('frame syntax', () => {
  test('command, headers in order, body', () => {
    const frame = onlyFrame('SEND\ndestination:/queue/a\nreceipt:r1\n\nhello\0', v12);
    assert.equal(frame.command, 'SEND');
    assert.deepEqual(frame.headers, [
      ['destination', '/queue/a'],
      ['receipt', 'r1'],
    ]);
    assert.equal(frame.body.toString(), 'hello');
  });

  test('CR LF line ends are accepted on the command and header lines', () => {
    const frame = onlyFrame('SEND\r\ndestination:/queue/a\r\n\r\nx\0', v12);
    assert.equal(frame.command, 'SEND');
    assert.deepEqual(frame.headers, [['destination', '/queue/a']]);
    assert.equal(frame.body.toString(), 'x');
  });

  test('a frame without headers and with an empty body', () => {
    const frame = onlyFrame('DISCONNECT\n\n\0', v12);
    assert.deepEqual(frame, { command: 'DISCONNECT', headers: [], body: Buffer.alloc(0) });
  });

  test('the command is passed through as is', () => {
    assert.equal(onlyFrame('send\n\n\0', v12).command, 'send');
  });

  test('the value is split at the first colon; later colons stay', () => {
    assert.deepEqual(onlyFrame('SEND\ndestination:/exchange/x:y::\n\n\0', v12).headers, [['destination', '/exchange/x:y::']]);
  });

  test('an empty value is allowed', () => {
    assert.deepEqual(onlyFrame('SEND\nreceipt:\n\n\0', v12).headers, [['receipt', '']]);
  });

  test('repeated headers are all kept, in order', () => {
    assert.deepEqual(onlyFrame('SEND\na:1\nb:2\na:3\n\n\0', v12).headers, [
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
    ]);
  });

  test('several frames in one chunk', () => {
    const result = decode('SEND\na:1\n\nx\0SEND\na:2\n\ny\0BEGIN\ntransaction:t\n\n\0', v12);
    assert.equal(result.error, undefined);
    assert.deepEqual(
      frames(result).map((f) => [f.command, f.headers[0]?.[1], f.body.toString()]),
      [
        ['SEND', '1', 'x'],
        ['SEND', '2', 'y'],
        ['BEGIN', 't', ''],
      ],
    );
  });

  test('a header line without a colon is MALFORMED_FRAME', () => {
    const { code, detail } = errorOf('SEND\ndestination\n\n\0', v12);
    assert.equal(code, 'MALFORMED_FRAME');
    assert.match(detail, /without ':'.*destination/);
  });

  test('an empty header name is MALFORMED_FRAME', () => {
    assert.equal(errorOf('SEND\n:value\n\n\0', v12).code, 'MALFORMED_FRAME');
  });

  test('a lone CR is MALFORMED_FRAME in the command line, a header line and between frames', () => {
    assert.equal(errorOf('SE\rND\n\n\0', v12).code, 'MALFORMED_FRAME');
    assert.equal(errorOf('SEND\na:b\rc\n\n\0', v12).code, 'MALFORMED_FRAME');
    assert.equal(errorOf('SEND\na:b\r\r\n\n\0', v12).code, 'MALFORMED_FRAME');
    assert.equal(errorOf('\rSEND\n\n\0', v12).code, 'MALFORMED_FRAME');
    assert.equal(errorOf('SEND\n\n\0\r\0', v12).code, 'MALFORMED_FRAME');
  });

  test('a NUL before the blank line is MALFORMED_FRAME', () => {
    assert.equal(errorOf('SEND\ndestination:/queue/a\n\0', v12).code, 'MALFORMED_FRAME');
    assert.equal(errorOf('SEND\0\n\n\0', v12).code, 'MALFORMED_FRAME');
  });

  test('frames decoded before an error are returned with it; then input is refused', () => {
    const decoder = newDecoder(v12);
    const result = decoder.push(Buffer.from('SEND\n\nok\0\nBAD\nnocolon\n\n\0'));
    assert.equal(frames(result).length, 1);
    assert.equal(result.events.length, 2);
    assert.equal(result.error?.code, 'MALFORMED_FRAME');
    const again = decoder.push(Buffer.from('SEND\n\n\0'));
    assert.deepEqual(again, { events: [], error: result.error });
  });

  test('a body inside one chunk is a view of that chunk, not a copy', () => {
    const chunk = Buffer.from('SEND\n\nbody\0');
    const result = new StompDecoder().push(chunk);
    const [frame] = frames(result);
    assert.ok(frame);
    assert.equal(frame.body.buffer, chunk.buffer);
    assert.equal(frame.body.byteOffset, chunk.byteOffset + 6);
  });
});

describe('heart-beats and padding between frames', () => {
  test('LF and CR LF are heart-beats at the start and between frames; NULs are skipped', () => {
    const result = decode('\n\r\n\0\0SEND\n\n\0\n\0\r\nSEND\n\n\0\n', v12);
    assert.equal(result.error, undefined);
    assert.deepEqual(
      result.events.map((e) => e.type),
      ['heartbeat', 'heartbeat', 'frame', 'heartbeat', 'heartbeat', 'frame', 'heartbeat'],
    );
  });

  test('heart-beats only', () => {
    assert.deepEqual(decode('\n\n\r\n').events, [{ type: 'heartbeat' }, { type: 'heartbeat' }, { type: 'heartbeat' }]);
  });
});

describe('content-length', () => {
  test('reads exactly that many bytes, NULs included', () => {
    const body = Buffer.from([0, 1, 0, 2, 0]);
    const input = Buffer.concat([Buffer.from('SEND\ncontent-length:5\n\n'), body, Buffer.from([0])]);
    assert.deepEqual(onlyFrame(input, v12).body, body);
  });

  test('content-length 0 is an empty body followed by NUL', () => {
    assert.equal(onlyFrame('SEND\ncontent-length:0\n\n\0', v12).body.length, 0);
  });

  test('without content-length the body ends at the first NUL', () => {
    const result = decode('SEND\n\nab\0cd\n\n\0', v12);
    assert.deepEqual(
      frames(result).map((f) => [f.command, f.body.toString()]),
      [
        ['SEND', 'ab'],
        ['cd', ''],
      ],
    );
  });

  test('the first content-length wins', () => {
    const frame = onlyFrame('SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0', v12);
    assert.deepEqual(frame.body, Buffer.from('a\0b'));
  });

  test('a byte other than NUL after the body is MALFORMED_FRAME', () => {
    const { code, detail } = errorOf('SEND\ncontent-length:2\n\nabc\0', v12);
    assert.equal(code, 'MALFORMED_FRAME');
    assert.match(detail, /content-length 2/);
  });

  test('non-numeric or negative values are MALFORMED_FRAME', () => {
    for (const value of ['abc', '-1', '1.5', '', ' 1', '1 ', '+1', '0x10', '1e3']) {
      assert.equal(errorOf(`SEND\ncontent-length:${value}\n\n\0`, v12).code, 'MALFORMED_FRAME', value);
    }
  });

  test('a value beyond the frame limit is FRAME_TOO_LARGE as soon as the headers end', () => {
    for (const value of ['4194304', '99999999999999999999999']) {
      const decoder = newDecoder(v12);
      const result = decoder.push(Buffer.from(`SEND\ncontent-length:${value}\n\n`));
      assert.equal(result.error?.code, 'FRAME_TOO_LARGE', value);
      assert.match(result.error.detail, /Frame exceeds 4194304 bytes/);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  test('the limit counts the whole frame: headers, body and NUL', () => {
    const input = 'SEND\ncontent-length:3\n\nabc\0';
    assert.equal(input.length, 27);
    assert.equal(onlyFrame(input, { limits: { maxFrameBytesBeforeConnect: 27 } }).body.toString(), 'abc');
    assert.equal(errorOf(input, { limits: { maxFrameBytesBeforeConnect: 26 } }).code, 'FRAME_TOO_LARGE');
  });
});

describe('header escaping', () => {
  const escaped = 'SEND\nk\\cey:a\\cb\\nc\\\\d\n\n\0';

  test('STOMP 1.0 decodes no escapes', () => {
    const frame = onlyFrame('SEND\nk\\cey:a\\cb\\nc\\\\d\\t\\r\\\n\n\0', { version: '1.0' });
    assert.deepEqual(frame.headers, [['k\\cey', 'a\\cb\\nc\\\\d\\t\\r\\']]);
  });

  test('STOMP 1.1 decodes \\c \\n \\\\ in names and values', () => {
    assert.deepEqual(onlyFrame(escaped, { version: '1.1' }).headers, [['k:ey', 'a:b\nc\\d']]);
  });

  test('STOMP 1.2 also decodes \\r', () => {
    assert.deepEqual(onlyFrame(escaped, { version: '1.2' }).headers, [['k:ey', 'a:b\nc\\d']]);
    assert.deepEqual(onlyFrame('SEND\na:x\\ry\n\n\0', { version: '1.2' }).headers, [['a', 'x\ry']]);
  });

  test('undefined sequences are INVALID_ESCAPE naming the header', () => {
    const cases: Array<[StompVersion, string, string]> = [
      ['1.1', 'x\\ry', '\\r'],
      ['1.1', 'x\\ty', '\\t'],
      ['1.1', 'x\\', '\\'],
      ['1.2', 'x\\ty', '\\t'],
      ['1.2', 'x\\', '\\'],
      ['1.2', '\\\\\\', '\\'],
    ];
    for (const [version, value, sequence] of cases) {
      const { code, detail } = errorOf(`SEND\nmy-header:${value}\n\n\0`, { version });
      assert.equal(code, 'INVALID_ESCAPE', `${version} ${value}`);
      assert.ok(detail.includes("'my-header'"), detail);
      assert.ok(detail.includes(JSON.stringify(sequence)), detail);
    }
    assert.equal(errorOf('SEND\nmy\\x:v\n\n\0', { version: '1.2' }).code, 'INVALID_ESCAPE');
  });

  test('before setVersion (CONNECT): the four escapes are decoded, other backslashes kept', () => {
    const frame = onlyFrame('CONNECT\nlogin:a\\cb\\nc\\\\d\\re\npasscode:p\\tq\\\nhost:\\\\\\x\n\n\0');
    assert.deepEqual(frame.headers, [
      ['login', 'a:b\nc\\d\re'],
      ['passcode', 'p\\tq\\'],
      ['host', '\\\\x'],
    ]);
  });

  test('setVersion applies to frames decoded after it', () => {
    const decoder = new StompDecoder();
    const first = decoder.push(Buffer.from('CONNECT\nlogin:a\\tb\n\n\0'));
    assert.deepEqual(frames(first)[0]?.headers, [['login', 'a\\tb']]);
    decoder.setVersion('1.2');
    assert.equal(decoder.push(Buffer.from('SEND\nx:a\\tb\n\n\0')).error?.code, 'INVALID_ESCAPE');
  });
});

describe('UTF-8 in headers', () => {
  test('multi-byte UTF-8 is decoded, also when split inside a character', () => {
    assert.deepEqual(onlyFrame('SEND\nnäme:värde ✓ 🐇\n\n\0', v12).headers, [['näme', 'värde ✓ 🐇']]);
  });

  test('invalid UTF-8 in a value or a name is INVALID_UTF8', () => {
    const bad = (line: Buffer): Buffer => Buffer.concat([Buffer.from('SEND\n'), line, Buffer.from('\n\n\0')]);
    assert.equal(errorOf(bad(Buffer.from([0x61, 0x3a, 0xff])), v12).code, 'INVALID_UTF8');
    assert.equal(errorOf(bad(Buffer.from([0xc3, 0x3a, 0x61])), v12).code, 'INVALID_UTF8');
    assert.equal(errorOf(bad(Buffer.from([0x61, 0x3a, 0xed, 0xa0, 0x80])), v12).code, 'INVALID_UTF8');
  });

  test('bodies are not checked', () => {
    assert.deepEqual(onlyFrame(Buffer.from([0x53, 0x0a, 0x0a, 0xff, 0xfe, 0x00]), v12).body, Buffer.from([0xff, 0xfe]));
  });
});

describe('limits', () => {
  test('defaults', () => {
    assert.deepEqual(DEFAULT_DECODER_LIMITS, {
      maxFrameBytes: 4 * 1024 * 1024,
      maxFrameBytesBeforeConnect: 64 * 1024,
      maxHeaders: 100,
      maxHeaderLineBytes: 64 * 1024,
    });
  });

  test('before CONNECT the 64 KiB limit applies; after setAuthenticated, maxFrameBytes', () => {
    const body = 'x'.repeat(70_000);
    const { code, detail } = errorOf(`SEND\n\n${body}\0`);
    assert.equal(code, 'FRAME_TOO_LARGE');
    assert.equal(detail, 'Frame exceeds 65536 bytes (limit before CONNECT)');
    assert.equal(onlyFrame(`SEND\n\n${body}\0`, { authenticated: true }).body.length, 70_000);
  });

  test('after CONNECT, a frame over maxFrameBytes is FRAME_TOO_LARGE', () => {
    const decoder = newDecoder(v12);
    const result = decoder.push(Buffer.alloc(4 * 1024 * 1024 + 1, 0x41));
    assert.equal(result.error?.code, 'FRAME_TOO_LARGE');
    assert.equal(result.error.detail, 'Frame exceeds 4194304 bytes');
  });

  test('exactly at the frame limit is accepted, one more byte is not', () => {
    const input = 'SEND\na:b\n\nbody\0';
    assert.equal(input.length, 15);
    assert.equal(onlyFrame(input, { authenticated: true, limits: { maxFrameBytes: 15 } }).body.toString(), 'body');
    assert.equal(errorOf(input, { authenticated: true, limits: { maxFrameBytes: 14 } }).code, 'FRAME_TOO_LARGE');
  });

  test('a frame that never ends is cut off at the limit and memory stays bounded', () => {
    const decoder = newDecoder({ authenticated: true, limits: { maxFrameBytes: 1000 } });
    assert.equal(decoder.push(Buffer.from('SEND\n\n')).error, undefined);
    let error;
    for (let i = 0; i < 100 && !error; i++) {
      ({ error } = decoder.push(Buffer.alloc(64, 0x41)));
      assert.ok(decoder.bufferedBytes <= 1000);
    }
    assert.equal(error?.code, 'FRAME_TOO_LARGE');
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('a command line that never ends is cut off at the limit', () => {
    assert.equal(errorOf('A'.repeat(70_000)).code, 'FRAME_TOO_LARGE');
  });

  test('a header line longer than maxHeaderLineBytes is HEADER_TOO_LONG, with LF or CR LF', () => {
    const limits = { maxHeaderLineBytes: 10 };
    const at = 'SEND\nabcd:12345\n\n\0'; // the header line is exactly 10 bytes
    assert.equal(onlyFrame(at, { limits }).headers.length, 1);
    assert.equal(onlyFrame(at.replaceAll('\n', '\r\n'), { limits }).headers.length, 1);
    const over = 'SEND\nabcd:123456\n\n\0';
    const { code, detail } = errorOf(over, { limits });
    assert.equal(code, 'HEADER_TOO_LONG');
    assert.equal(detail, 'Header line exceeds 10 bytes');
    assert.equal(errorOf(over.replaceAll('\n', '\r\n'), { limits }).code, 'HEADER_TOO_LONG');
  });

  test('the line limit counts UTF-8 bytes, not characters', () => {
    const limits = { maxHeaderLineBytes: 10 };
    assert.deepEqual(onlyFrame('SEND\nk:éééé\n\n\0', { limits }).headers, [['k', 'éééé']]);
    assert.equal(errorOf('SEND\nk:ééééé\n\n\0', { limits }).code, 'HEADER_TOO_LONG');
  });

  test('a header line without EOL is cut off at maxHeaderLineBytes', () => {
    const decoder = newDecoder({ limits: { maxHeaderLineBytes: 100 } });
    assert.equal(decoder.push(Buffer.from('SEND\nname:')).error, undefined);
    let error;
    for (let i = 0; i < 100 && !error; i++) ({ error } = decoder.push(Buffer.from('v')));
    assert.equal(error?.code, 'HEADER_TOO_LONG');
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('a header line of exactly the limit then CR is not yet an error', () => {
    const decoder = newDecoder({ limits: { maxHeaderLineBytes: 5 } });
    assert.equal(decoder.push(Buffer.from('SEND\na:123\r')).error, undefined);
    assert.equal(decoder.push(Buffer.from('x')).error?.code, 'HEADER_TOO_LONG');
  });

  test('more than maxHeaders header lines (repeats count) is TOO_MANY_HEADERS', () => {
    const headers = (n: number): string => 'SEND\n' + 'a:1\n'.repeat(n) + '\n\0';
    assert.equal(onlyFrame(headers(100)).headers.length, 100);
    const { code, detail } = errorOf(headers(101));
    assert.equal(code, 'TOO_MANY_HEADERS');
    assert.equal(detail, 'Frame has more than 100 headers');
    assert.equal(errorOf(headers(4), { limits: { maxHeaders: 3 } }).code, 'TOO_MANY_HEADERS');
  });

  test('invalid limits are rejected', () => {
    assert.throws(() => new StompDecoder({ maxHeaders: 0 }), RangeError);
    assert.throws(() => new StompDecoder({ maxFrameBytes: Number.NaN }), RangeError);
  });
});

describe('pauseUntilAuthenticated (frames pipelined behind CONNECT)', () => {
  it('holds what follows a pre-CONNECT frame until resume(), then decodes it with the new version and limit', () => {
    const d = new StompDecoder({ maxFrameBytesBeforeConnect: 64, maxFrameBytes: 4096 }, { pauseUntilAuthenticated: true });
    const big = 'x'.repeat(200);
    const input = Buffer.from(`CONNECT\naccept-version:1.1\n\n\0SEND\ndestination:/queue/a\\cb\n\n${big}\0`);
    const first = d.push(input);
    assert.equal(first.error, undefined);
    assert.deepEqual(first.events.map((e) => (e.type === 'frame' ? e.frame.command : e.type)), ['CONNECT']);
    assert.equal(d.paused, true);
    d.setVersion('1.1');
    d.setAuthenticated();
    const rest = d.resume();
    assert.equal(rest.error, undefined);
    const send = rest.events[0];
    assert.ok(send && send.type === 'frame');
    assert.equal(getHeader(send.frame, 'destination'), '/queue/a:b', '1.1 escaping applied');
    assert.equal(send.frame.body.toString(), big, 'post-CONNECT frame limit applied');
  });

  it('bounds what it holds while paused', () => {
    const d = new StompDecoder({ maxFrameBytesBeforeConnect: 64, maxFrameBytes: 128 }, { pauseUntilAuthenticated: true });
    d.push(Buffer.from('CONNECT\n\n\0'));
    assert.equal(d.paused, true);
    assert.equal(d.push(Buffer.alloc(100, 0x41)).error, undefined);
    assert.equal(d.push(Buffer.alloc(100, 0x41)).error?.code, 'FRAME_TOO_LARGE');
  });

  it('without the option, decoding never pauses', () => {
    const d = new StompDecoder();
    const r = d.push(Buffer.from('CONNECT\n\n\0SEND\n\n\0'));
    assert.equal(r.events.length, 2);
    assert.equal(d.paused, false);
  });
});

describe('memory kept between chunks (found by test/unit/stomp-fuzz.test.ts)', () => {
  const bound = (d: StompDecoder) => 8 * d.bufferedBytes + 64 * 1024;

  it('a body sent one byte per chunk does not cost one object per byte', () => {
    const d = newDecoder({ authenticated: true, limits: { maxFrameBytes: 1024 * 1024 } });
    d.push(Buffer.from('SEND\ndestination:/queue/a\n\n'));
    for (let i = 0; i < 20_000; i++) assert.equal(d.push(Buffer.from([0x61])).error, undefined);
    assert.equal(d.bufferedBytes, 20_000);
    assert.ok(d.retainedBytes <= bound(d), `retained ${d.retainedBytes}`);
    const [frame] = frames(d.push(Buffer.from([0])));
    assert.equal(frame?.body.length, 20_000);
  });

  it('a few bytes left over from a large chunk do not pin the chunk', () => {
    const d = newDecoder({ authenticated: true, limits: { maxFrameBytes: 2 * 1024 * 1024 } });
    const big = Buffer.concat([Buffer.from('SEND\ncontent-length:1000000\n\n'), Buffer.alloc(1_000_000, 0x62), Buffer.from('\0SEND\n\nab')]);
    assert.equal(frames(d.push(big)).length, 1);
    assert.equal(d.bufferedBytes, 2);
    assert.ok(d.retainedBytes < 64 * 1024, `retained ${d.retainedBytes}`);
  });

  it('input held before CONNECTED in tiny chunks is packed too', () => {
    const d = new StompDecoder({ maxFrameBytes: 64 * 1024 }, { pauseUntilAuthenticated: true });
    d.push(Buffer.from('CONNECT\n\n\0'));
    for (let i = 0; i < 10_000; i++) assert.equal(d.push(Buffer.from('x')).error, undefined);
    assert.ok(d.retainedBytes <= bound(d), `retained ${d.retainedBytes}`);
  });

  it('a full-size frame pipelined behind CONNECT in the same chunk is held, not refused', () => {
    const d = new StompDecoder({ maxFrameBytes: 1024, maxFrameBytesBeforeConnect: 256 }, { pauseUntilAuthenticated: true });
    // A SEND just under maxFrameBytes and a DISCONNECT: more than maxFrameBytes held in all.
    const send = Buffer.concat([Buffer.from('SEND\ndestination:/queue/a\n\n'), Buffer.alloc(990, 0x63), Buffer.from('\0DISCONNECT\nreceipt:r-1\n\n\0')]);
    const first = d.push(Buffer.concat([Buffer.from('CONNECT\naccept-version:1.2\n\n\0'), send]));
    assert.equal(first.error, undefined);
    d.setVersion('1.2');
    d.setAuthenticated();
    const rest = d.resume();
    assert.equal(rest.error, undefined);
    assert.deepEqual(frames(rest).map((f) => [f.command, f.body.length]), [['SEND', 990], ['DISCONNECT', 0]]);
  });
});
