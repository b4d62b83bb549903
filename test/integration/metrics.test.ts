// GET /metrics on a real gateway: a STOMP client over /ws connects, subscribes, sends and breaks a
// frame, and the scraped text shows exactly those counts. Against RabbitMQ (with the in-process
// guest auth backend) the AMQP pool, publisher confirms, auth-backend latency and the decision
// cache show up too.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useRabbit } from '../harness/rabbitmq.js';
import { connectWs, isMessage, isReceipt, login, type StompConn } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The text exposition format, one sample per line (comments skipped). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(server: ThumperServer): Promise<Sample[]> {
  const res = await fetch(`${server.httpUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** The sample with exactly these labels (undefined when absent). */
function sample(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  return samples.find(
    (s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v),
  )?.value;
}

const SUITE = { timeout: 120_000 };
const SENDS = 4;

/** CONNECT, SUBSCRIBE with a receipt, SENDs with receipts (confirmed by the engine), all delivered. */
async function converse(server: ThumperServer, destination: string): Promise<StompConn> {
  const conn = await connectWs(server.wsUrl);
  await login(conn, { heartBeat: '0,0' });
  conn.send('SUBSCRIBE', { id: 's1', destination, receipt: 'sub' });
  await conn.waitFor(isReceipt('sub'));
  for (let i = 0; i < SENDS; i++) {
    conn.send('SEND', { destination, receipt: `send-${i}` }, `message ${i}`);
    await conn.waitFor(isReceipt(`send-${i}`));
  }
  for (let i = 0; i < SENDS; i++) await conn.waitFor(isMessage);
  return conn;
}

describe('GET /metrics, embedded engine', SUITE, () => {
  let server: ThumperServer;
  before(async () => {
    server = await startThumper({ THUMPER_ENGINE: 'memory' });
  });
  after(() => server.stop());

  it('answers GET and HEAD in the text format, refuses other methods', async () => {
    const head = await fetch(`${server.httpUrl}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(`${server.httpUrl}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const samples = await scrape(server);
    assert.ok(sample(samples, 'process_cpu_user_seconds_total') !== undefined, 'default process metrics');
    assert.equal(sample(samples, 'thumper_slow_consumer_disconnects_total'), 0);
  });

  it('counts the connection, frames, messages and the error of one conversation', async () => {
    const conn = await converse(server, `/topic/metrics-${process.pid}`);
    try {
      let s = await scrape(server);
      assert.equal(sample(s, 'thumper_connections', { transport: 'ws', version: '1.2' }), 1);
      assert.equal(sample(s, 'thumper_connections', { transport: 'ws', version: 'none' }), 0);
      assert.equal(sample(s, 'thumper_connections_opened_total', { transport: 'ws' }), 1);
      assert.equal(sample(s, 'thumper_frames_received_total', { command: 'CONNECT' }), 1);
      assert.equal(sample(s, 'thumper_frames_received_total', { command: 'SUBSCRIBE' }), 1);
      assert.equal(sample(s, 'thumper_frames_received_total', { command: 'SEND' }), SENDS);
      assert.equal(sample(s, 'thumper_frames_sent_total', { command: 'CONNECTED' }), 1);
      assert.equal(sample(s, 'thumper_frames_sent_total', { command: 'RECEIPT' }), SENDS + 1);
      assert.equal(sample(s, 'thumper_frames_sent_total', { command: 'MESSAGE' }), SENDS);
      assert.equal(sample(s, 'thumper_messages_published_total'), SENDS);
      assert.equal(sample(s, 'thumper_messages_delivered_total'), SENDS);
      assert.ok((sample(s, 'thumper_received_bytes_total', { transport: 'ws' }) ?? 0) > 0);
      assert.ok((sample(s, 'thumper_sent_bytes_total', { transport: 'ws' }) ?? 0) > 0);
      assert.equal(sample(s, 'thumper_auth_decisions_total', { backend: 'allow-all', step: 'connect', result: 'allow' }), 1);
      assert.equal(sample(s, 'thumper_amqp_connections', { state: 'open' }), undefined, 'no AMQP pool with the embedded engine');
      assert.equal(sample(s, 'thumper_errors_total', { code: 'UNKNOWN_DESTINATION' }), undefined);

      conn.send('SEND', { destination: '/nowhere/x' }, 'x');
      await conn.waitFor((f) => f.command === 'ERROR');
      s = await scrape(server);
      assert.equal(sample(s, 'thumper_errors_total', { code: 'UNKNOWN_DESTINATION' }), 1);
      assert.equal(sample(s, 'thumper_frames_sent_total', { command: 'ERROR' }), 1);
      assert.equal(sample(s, 'thumper_messages_published_total'), SENDS, 'the refused SEND published nothing');
    } finally {
      await conn.close();
    }
    await conn.waitClosed();
    // The gateway notices the close asynchronously: give it a bounded number of scrapes.
    let gone: number | undefined;
    for (let i = 0; i < 50 && gone !== 0; i++) {
      gone = sample(await scrape(server), 'thumper_connections', { transport: 'ws', version: '1.2' });
      if (gone !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(gone, 0);
  });
});

describe('GET /metrics, RabbitMQ engine', SUITE, () => {
  let server: ThumperServer;
  before(async () => {
    const rabbit = await useRabbit();
    // Idle shared keys stay bound for the whole suite, so the counts below do not race a timer.
    server = await startThumper({ THUMPER_ENGINE: 'amqp', THUMPER_AMQP_URL: rabbit.amqpUrl, THUMPER_AMQP_SHARED_UNBIND_DELAY_MS: '600000' });
  });
  after(() => server?.stop());

  it('shows the pool, publisher confirms, auth-backend latency and the decision cache', async () => {
    const conn = await converse(server, `/topic/metrics-amqp-${process.pid}`);
    try {
      const s = await scrape(server);
      assert.ok((sample(s, 'thumper_amqp_connections', { state: 'open' }) ?? 0) >= 1);
      assert.ok((sample(s, 'thumper_amqp_channels') ?? 0) >= 1, 'the session holds a channel');
      assert.equal(sample(s, 'thumper_publish_confirm_duration_seconds_count'), SENDS, 'one confirm per SEND with a receipt');
      assert.ok((sample(s, 'thumper_auth_backend_request_duration_seconds_count', { path: 'user', outcome: 'allow' }) ?? 0) >= 1);
      assert.ok((sample(s, 'thumper_auth_backend_request_duration_seconds_count', { path: 'vhost', outcome: 'allow' }) ?? 0) >= 1);
      assert.equal(sample(s, 'thumper_auth_decisions_total', { backend: 'http', step: 'connect', result: 'allow' }), 1);
      assert.equal(sample(s, 'thumper_auth_decisions_total', { backend: 'http', step: 'vhost', result: 'allow' }), 1);
      // Every SEND to the same destination asks the same questions: the first misses, the rest hit.
      const hits = sample(s, 'thumper_auth_cache_lookups_total', { result: 'hit' }) ?? 0;
      const misses = sample(s, 'thumper_auth_cache_lookups_total', { result: 'miss' }) ?? 0;
      assert.ok(misses >= 2, `misses ${misses}`);
      assert.ok(hits >= SENDS - 1, `hits ${hits}`);
      const backendCalls = s
        .filter((x) => x.name === 'thumper_auth_backend_request_duration_seconds_count')
        .reduce((sum, x) => sum + x.value, 0);
      assert.equal(backendCalls, misses, 'each cache miss is one backend request');
      assert.equal(sample(s, 'thumper_messages_published_total'), SENDS);
      assert.equal(sample(s, 'thumper_messages_delivered_total'), SENDS);
    } finally {
      await conn.close();
    }
  });

  it('shows the shared queue, its bound key and subscriber, and how long the bind took', async () => {
    // /topic is amq.topic, an exchange of known type: the subscription is served from the shared queue.
    const conn = await converse(server, `/topic/metrics-shared-${process.pid}`);
    const before = await scrape(server);
    assert.equal(sample(before, 'thumper_shared_queues'), 1);
    assert.equal(sample(before, 'thumper_shared_subscribers'), 1);
    // The first test's key is still bound, idle: this one adds the second.
    assert.equal(sample(before, 'thumper_shared_bindings'), 2);
    assert.equal(sample(before, 'thumper_shared_bind_duration_seconds_count', { kind: 'bind' }), 2, 'one bind per key, this test\'s and the first\'s');
    await conn.close();
    // The subscriber is gone once the session has closed; its key stays bound for the unbind delay.
    let after = before;
    for (let i = 0; i < 50 && sample(after, 'thumper_shared_subscribers') !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await scrape(server);
    }
    assert.equal(sample(after, 'thumper_shared_subscribers'), 0);
    assert.equal(sample(after, 'thumper_shared_bindings'), 2, 'an idle key is still bound');
    assert.equal(sample(after, 'thumper_shared_bind_duration_seconds_count', { kind: 'unbind' }) ?? 0, 0);
  });
});
