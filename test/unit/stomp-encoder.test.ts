// Unit tests for the STOMP frame encoder: exact bytes on the wire.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, HEARTBEAT_EOL } from '../../broker/src/stomp/encoder.js';
import { makeFrame } from '../../broker/src/stomp/frame.js';
import type { HeaderList, StompVersion } from '../../broker/src/stomp/frame.js';

const wire = (command: string, headers: HeaderList, body: Buffer | string, version: StompVersion = '1.2'): string =>
  encodeFrame(makeFrame(command, headers, body), version).toString('utf8');

describe('layout', () => {
  test('command, headers in order, blank line, NUL; no EOL after the NUL', () => {
    assert.equal(
      wire('RECEIPT', [
        ['receipt-id', '7'],
        ['b', '2'],
      ], ''),
      'RECEIPT\nreceipt-id:7\nb:2\n\n\0',
    );
  });

  test('repeated headers are written as given', () => {
    assert.equal(wire('MESSAGE', [['a', '1'], ['a', '2']], ''), 'MESSAGE\na:1\na:2\n\n\0');
  });

  test('a non-empty body gets content-length (in bytes) appended last', () => {
    assert.equal(wire('MESSAGE', [['destination', '/queue/a']], 'hé'), 'MESSAGE\ndestination:/queue/a\ncontent-length:3\n\nhé\0');
  });

  test('no content-length for an empty body', () => {
    assert.equal(wire('MESSAGE', [['destination', '/queue/a']], ''), 'MESSAGE\ndestination:/queue/a\n\n\0');
  });

  test("the caller's content-length is kept and not repeated", () => {
    assert.equal(wire('MESSAGE', [['content-length', '2'], ['x', 'y']], 'ab'), 'MESSAGE\ncontent-length:2\nx:y\n\nab\0');
  });

  test('binary bodies with NUL bytes are copied exactly', () => {
    const body = Buffer.from([0, 0xff, 0, 1]);
    const out = encodeFrame(makeFrame('MESSAGE', [], body), '1.2');
    assert.deepEqual(out, Buffer.concat([Buffer.from('MESSAGE\ncontent-length:4\n\n'), body, Buffer.from([0])]));
  });

  test('unicode headers are written as UTF-8 and the buffer has no slack', () => {
    const out = encodeFrame(makeFrame('MESSAGE', [['ключ', '🐇✓']], 'x'), '1.2');
    const expected = Buffer.from('MESSAGE\nключ:🐇✓\ncontent-length:1\n\nx\0', 'utf8');
    assert.deepEqual(out, expected);
  });

  test('CONNECTED is encoded like any other frame', () => {
    assert.equal(
      wire('CONNECTED', [
        ['server', 'Thumper/0.1.0'],
        ['session', 's:1'],
        ['heart-beat', '0,0'],
        ['version', '1.2'],
      ], ''),
      'CONNECTED\nserver:Thumper/0.1.0\nsession:s\\c1\nheart-beat:0,0\nversion:1.2\n\n\0',
    );
  });

  test('HEARTBEAT_EOL is one LF', () => {
    assert.deepEqual(HEARTBEAT_EOL, Buffer.from('\n'));
  });
});

describe('escaping', () => {
  const headers: HeaderList = [['k:\\', 'a:b\\c\nd\re']];

  test('1.2 escapes \\ LF CR and : in names and values', () => {
    assert.equal(wire('MESSAGE', headers, '', '1.2'), 'MESSAGE\nk\\c\\\\:a\\cb\\\\c\\nd\\re\n\n\0');
  });

  test('1.1 escapes \\ LF and :, and CR too so framing survives', () => {
    assert.equal(wire('MESSAGE', headers, '', '1.1'), 'MESSAGE\nk\\c\\\\:a\\cb\\\\c\\nd\\re\n\n\0');
  });

  test('1.0 escapes only LF and CR', () => {
    assert.equal(wire('MESSAGE', headers, '', '1.0'), 'MESSAGE\nk:\\:a:b\\c\\nd\\re\n\n\0');
  });

  test('text without special characters is unchanged', () => {
    for (const version of ['1.0', '1.1', '1.2'] as const) {
      assert.equal(wire('MESSAGE', [['destination', '/topic/a.b']], '', version), 'MESSAGE\ndestination:/topic/a.b\n\n\0');
    }
  });
});
