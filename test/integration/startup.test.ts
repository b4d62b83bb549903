// The real process: `node --import tsx broker/src/main.ts` with the embedded engine on 127.0.0.1,
// port 0. Checks the first log lines, health endpoints, a STOMP CONNECT through the whole gateway,
// graceful SIGTERM, --help, and exit code 2 with a message naming the key on bad configuration.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { get } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { RawData } from 'ws';
import { msgOf, runThumper } from '../helpers/thumper-process.js';

const TIMEOUT = { timeout: 30000 };
const run = runThumper;

async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: '127.0.0.1', port, path }, resolve).on('error', reject));
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return { status: res.statusCode ?? 0, body };
}

describe('start-up', () => {
  test('embedded engine: says what runs, serves health and STOMP, stops on SIGTERM', TIMEOUT, async () => {
    const proc = run([], { THUMPER_HTTP_HOST: '127.0.0.1', THUMPER_HTTP_PORT: '0', THUMPER_TCP_HOST: '127.0.0.1', THUMPER_TCP_PORT: '0' });
    const listening = await proc.waitForLine(/listening: STOMP over WebSocket/);
    const match = /^Thumper \d+\.\d+\.\d+\S* listening: STOMP over WebSocket at ws:\/\/127\.0\.0\.1:(\d+)\/ws$/.exec(msgOf(listening));
    assert.ok(match, msgOf(listening));
    const port = Number(match[1]);
    assert.ok(port > 0, 'the real port, not 0');

    const index = proc.lines.indexOf(listening);
    assert.ok(index < 3, `the listening line comes first (after engine start-up), at ${index}:\n${proc.lines.join('\n')}`);
    const engineLine = proc.lines[index + 1] ?? (await proc.waitForLine(/engine: /));
    assert.equal(msgOf(engineLine), 'engine: embedded (in-memory) — for development; set THUMPER_AMQP_URL to bridge to RabbitMQ');

    assert.deepEqual(await httpGet(port, '/healthz'), { status: 200, body: '{"status":"ok"}' });
    assert.equal((await httpGet(port, '/readyz')).status, 200);

    const client = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['v12.stomp']);
    client.on('error', () => {});
    await once(client, 'open');
    assert.equal(client.protocol, 'v12.stomp');
    const connected = once(client, 'message') as Promise<[RawData]>;
    client.send('CONNECT\naccept-version:1.2\nhost:/\nlogin:user_x\npasscode:secret\n\n\0');
    const [frame] = await connected;
    assert.match(String(frame), /^CONNECTED\n/);

    const clientClosed = once(client, 'close');
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0);
    await clientClosed;
    assert.ok(proc.lines.some((l) => msgOf(l) === 'stopped'), proc.lines.join('\n'));
    assert.ok(!proc.lines.join('\n').includes('secret'), 'the passcode never reaches the log');
  });

  test('a bad environment value exits 2 naming the variable and key', TIMEOUT, async () => {
    const proc = run([], { THUMPER_HTTP_PORT: 'abc' });
    assert.equal(await proc.exited, 2);
    assert.equal(
      proc.stderr.join('').trim(),
      'Invalid configuration: THUMPER_HTTP_PORT (http.port): expected an integer from 0 to 65535, got "abc"',
    );
    assert.deepEqual(proc.lines, []);
  });

  test('--help prints usage and every key, exit 0', TIMEOUT, async () => {
    const proc = run(['--help'], {});
    assert.equal(await proc.exited, 0);
    const text = proc.lines.join('\n');
    assert.match(text, /^Thumper .*\n\nUsage: thumper \[--config <file\.json>\]/);
    for (const key of ['http.port', 'THUMPER_HTTP_PORT', 'amqp.urls', 'THUMPER_AMQP_URL', 'stomp.maxTransactionFrames', 'log.pretty']) {
      assert.ok(text.includes(key), `${key} missing from --help`);
    }
  });

  test('--print-config prints the merged configuration as JSON with secrets redacted, exit 0', TIMEOUT, async () => {
    const proc = run(['--print-config'], {
      THUMPER_AMQP_URL: 'amqp://svc:amqp-pw@rabbit:5672',
      THUMPER_AUTH_BACKENDS: 'jwt,http',
      THUMPER_AUTH_AUTHZ: 'http',
      THUMPER_AUTH_HTTP_BASE_URL: 'http://auth:8000/auth',
      THUMPER_AUTH_JWT_ALGORITHMS: 'HS256',
      THUMPER_AUTH_JWT_SECRET: 'jwt-secret-jwt-secret-jwt-secret-0000',
      THUMPER_STOMP_MAX_SUBSCRIPTIONS: '7',
    });
    assert.equal(await proc.exited, 0, proc.stderr.join(''));
    const text = proc.lines.join('\n');
    assert.ok(!text.includes('amqp-pw') && !text.includes('jwt-secret-jwt'), 'no secret printed');
    const printed = JSON.parse(text) as { engine: string; amqp: { urls: string[] }; stomp: { maxSubscriptions: number }; auth: { jwt: { secret: string }; http: { topicPath: string } } };
    assert.equal(printed.engine, 'amqp');
    assert.deepEqual(printed.amqp.urls, ['amqp://svc@rabbit:5672']);
    assert.equal(printed.stomp.maxSubscriptions, 7, 'environment applied');
    assert.equal(printed.auth.jwt.secret, '[redacted]');
    assert.equal(printed.auth.http.topicPath, 'http://auth:8000/auth/topic', 'derived defaults resolved');
  });
});
