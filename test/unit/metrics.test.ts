// The metrics module: names follow Prometheus conventions, label values stay bounded, scrape-time
// sources are read without double counting, and a session over the in-memory transport moves the
// connection, frame, byte, message and error series exactly as the conversation says.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allowAllAuthorizer } from '../../broker/src/auth/allow-all.js';
import { createAuthChain } from '../../broker/src/auth/chain.js';
import { commandLabel, countPublishes, createMetrics, type Metrics } from '../../broker/src/server/metrics.js';
import { getHeader, type Frame } from '../../broker/src/stomp/frame.js';
import { rig, silentLog } from '../helpers/session-fixture.js';

type Labels = Record<string, string>;

/** The value of one series (undefined when it does not exist), read through the registry's own collection. */
async function value(metrics: Metrics, name: string, labels: Labels = {}, series = name): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const data = await metric.get();
  const found = data.values.find((v) => {
    const own = v.labels as Labels;
    return (
      ((v as { metricName?: string }).metricName ?? name) === series &&
      Object.keys(own).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, want]) => String(own[k]) === want)
    );
  });
  return found?.value;
}

const isFrame = (command: string) => (f: Frame) => f.command === command;

describe('metrics: names', () => {
  it('every thumper_ series is snake_case, counters end in _total, durations and sizes carry their unit', async () => {
    const metrics = createMetrics();
    const all = await metrics.registry.getMetricsAsJSON();
    const ours = all.filter((m) => m.name.startsWith('thumper_'));
    assert.deepEqual(ours.map((m) => m.name).sort(), [
      'thumper_amqp_channels',
      'thumper_amqp_connections',
      'thumper_amqp_session_restores_total',
      'thumper_auth_backend_request_duration_seconds',
      'thumper_auth_cache_lookups_total',
      'thumper_auth_decisions_total',
      'thumper_connections',
      'thumper_connections_opened_total',
      'thumper_connections_refused_total',
      'thumper_errors_total',
      'thumper_flow_pauses_total',
      'thumper_frames_received_total',
      'thumper_frames_sent_total',
      'thumper_messages_delivered_total',
      'thumper_messages_published_total',
      'thumper_outbound_buffered_bytes',
      'thumper_publish_confirm_duration_seconds',
      'thumper_received_bytes_total',
      'thumper_sent_bytes_total',
      'thumper_sessions_closed_total',
      'thumper_shared_bind_duration_seconds',
      'thumper_shared_bindings',
      'thumper_shared_queues',
      'thumper_shared_subscribers',
      'thumper_slow_consumer_disconnects_total',
    ]);
    for (const m of ours) {
      assert.match(m.name, /^thumper_[a-z0-9]+(_[a-z0-9]+)*$/, m.name);
      const type = String(m.type);
      if (type === 'counter') assert.match(m.name, /_total$/, `${m.name} is a counter`);
      else assert.doesNotMatch(m.name, /_total$/, `${m.name} is a ${type}`);
      if (type === 'histogram') assert.match(m.name, /_seconds$/, `${m.name} has its unit`);
      if (/bytes/.test(m.name)) assert.match(m.name, /_bytes(_total)?$/, `${m.name} ends with its unit`);
      assert.ok(m.help.length > 10, `${m.name} has help`);
    }
    const names = all.map((m) => m.name);
    assert.ok(names.includes('process_cpu_user_seconds_total'), 'default process metrics, unprefixed');
    assert.ok(names.includes('nodejs_eventloop_lag_seconds'), 'default nodejs metrics, unprefixed');
  });

  it('two gateways in one process get separate registries', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.session('tcp');
    assert.equal(await value(a, 'thumper_connections_opened_total', { transport: 'tcp' }), 1);
    assert.equal(await value(b, 'thumper_connections_opened_total', { transport: 'tcp' }), undefined);
  });

  it('commands outside STOMP become OTHER, so a client cannot mint label values', () => {
    assert.equal(commandLabel('SEND'), 'SEND');
    assert.equal(commandLabel('HEARTBEAT'), 'HEARTBEAT');
    assert.equal(commandLabel('send'), 'OTHER');
    assert.equal(commandLabel('X-EVIL-12345'), 'OTHER');
  });
});

describe('metrics: scrape-time sources', () => {
  it('cache lookups are the cache\'s own totals at each scrape, never added up twice', async () => {
    const metrics = createMetrics();
    let stats = { hits: 3, misses: 2, coalesced: 1 };
    metrics.setSources({ authCache: () => stats });
    assert.equal(await value(metrics, 'thumper_auth_cache_lookups_total', { result: 'hit' }), 3);
    assert.equal(await value(metrics, 'thumper_auth_cache_lookups_total', { result: 'hit' }), 3);
    stats = { hits: 10, misses: 2, coalesced: 1 };
    assert.equal(await value(metrics, 'thumper_auth_cache_lookups_total', { result: 'hit' }), 10);
    assert.equal(await value(metrics, 'thumper_auth_cache_lookups_total', { result: 'miss' }), 2);
    assert.equal(await value(metrics, 'thumper_auth_cache_lookups_total', { result: 'coalesced' }), 1);
  });

  it('AMQP connections by state, channels and buffered bytes come from the pool and the transports', async () => {
    const metrics = createMetrics();
    metrics.setSources({
      amqpConnections: () => [
        { open: true, load: 3 },
        { open: true, load: 2 },
        { open: false, load: 1 },
      ],
      bufferedBytes: () => [100, 0, 23],
    });
    assert.equal(await value(metrics, 'thumper_amqp_connections', { state: 'open' }), 2);
    assert.equal(await value(metrics, 'thumper_amqp_connections', { state: 'connecting' }), 1);
    assert.equal(await value(metrics, 'thumper_amqp_channels'), 6);
    assert.equal(await value(metrics, 'thumper_outbound_buffered_bytes'), 123);
  });

  it('shared queues, bindings and subscribers come from the engine at each scrape, 0 without one', async () => {
    const metrics = createMetrics();
    assert.equal(await value(metrics, 'thumper_shared_bindings'), 0);
    let stats = { queues: 1, bindings: 3, subscribers: 5 };
    metrics.setSources({ sharedFanout: () => stats });
    assert.equal(await value(metrics, 'thumper_shared_queues'), 1);
    assert.equal(await value(metrics, 'thumper_shared_bindings'), 3);
    assert.equal(await value(metrics, 'thumper_shared_subscribers'), 5);
    stats = { queues: 0, bindings: 0, subscribers: 0 };
    assert.equal(await value(metrics, 'thumper_shared_subscribers'), 0);
  });
});

describe('metrics: auth chain and engine hooks', () => {
  it('the chain reports connect, vhost and permission decisions by backend and result', async () => {
    const metrics = createMetrics();
    const chain = createAuthChain({
      authenticators: [
        {
          name: 'http',
          authenticate: async (req) =>
            req.login === 'ok'
              ? { ok: true, value: { username: 'ok', vhost: '/', tags: [], authenticatedBy: 'http' } }
              : { ok: false, reason: 'down', unavailable: true },
        },
      ],
      authorities: new Map([
        [
          'http',
          {
            name: 'http',
            checkVhost: async () => ({ ok: true, value: true }),
            authorize: async (_p, check) => (check.name === 'secret' ? { ok: false, reason: 'no' } : { ok: true, value: true }),
          },
        ],
      ]),
      authz: 'same',
      exchangeType: () => 'direct',
      log: silentLog,
      onDecision: metrics.authDecision,
    });
    const base = { passcode: 'p', vhost: '/', remoteAddress: '127.0.0.1' };
    const who = await chain.authenticate({ login: 'ok', ...base });
    assert.ok(who.ok);
    await chain.authenticate({ login: 'nope', ...base });
    await chain.authorize(who.value, { resource: 'queue', name: 'secret', permission: 'read' });
    await chain.authorize(who.value, { resource: 'queue', name: 'open', permission: 'read' });
    const d = (step: string, result: string) => value(metrics, 'thumper_auth_decisions_total', { backend: 'http', step, result });
    assert.equal(await d('connect', 'allow'), 1);
    assert.equal(await d('connect', 'unavailable'), 1);
    assert.equal(await d('vhost', 'allow'), 1);
    assert.equal(await d('permission', 'deny'), 1);
    assert.equal(await d('permission', 'allow'), 1);
  });

  it('countPublishes counts resolved publishes only and keeps every other method bound to the target', async () => {
    class Target {
      #fail = false;
      async publish(fail: boolean): Promise<void> {
        if (fail) throw new Error('refused');
      }
      flip(): boolean {
        this.#fail = !this.#fail;
        return this.#fail;
      }
    }
    let count = 0;
    const wrapped = countPublishes(new Target(), () => count++);
    await wrapped.publish(false);
    await assert.rejects(wrapped.publish(true));
    assert.equal(count, 1);
    assert.equal(wrapped.flip(), true, '#private fields still reachable');
  });

  it('publish-confirm, auth-backend and shared-bind observations land in their histograms', async () => {
    const metrics = createMetrics();
    metrics.publishConfirmed(0.004);
    metrics.authBackendRequest('user', 'allow', 0.02);
    metrics.sharedKeyBound('bind', 0.03);
    metrics.sharedKeyBound('bind', 0.001);
    metrics.sharedKeyBound('unbind', 0.002);
    assert.equal(await value(metrics, 'thumper_shared_bind_duration_seconds', { kind: 'bind' }, 'thumper_shared_bind_duration_seconds_count'), 2);
    assert.equal(await value(metrics, 'thumper_shared_bind_duration_seconds', { kind: 'unbind' }, 'thumper_shared_bind_duration_seconds_count'), 1);
    assert.equal(await value(metrics, 'thumper_publish_confirm_duration_seconds', {}, 'thumper_publish_confirm_duration_seconds_count'), 1);
    assert.equal(
      await value(metrics, 'thumper_auth_backend_request_duration_seconds', { path: 'user', outcome: 'allow' }, 'thumper_auth_backend_request_duration_seconds_count'),
      1,
    );
  });
});

describe('metrics: a session over the in-memory transport', () => {
  it('connections, frames, bytes, messages and errors move with the conversation', async () => {
    const metrics = createMetrics();
    const r = await rig({}, allowAllAuthorizer(), metrics);
    try {
      const c = r.client();
      assert.equal(await value(metrics, 'thumper_connections', { transport: 'ws', version: 'none' }), 1);
      c.send('CONNECT', { 'accept-version': '1.2', host: '/', 'heart-beat': '0,0' });
      await c.waitFor(isFrame('CONNECTED'));
      assert.equal(await value(metrics, 'thumper_connections', { transport: 'ws', version: 'none' }), 0);
      assert.equal(await value(metrics, 'thumper_connections', { transport: 'ws', version: '1.2' }), 1);

      c.send('SUBSCRIBE', { id: 's1', destination: '/queue/metrics-unit', receipt: 'sub' });
      await c.waitFor((f) => f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === 'sub');
      for (let i = 0; i < 3; i++) c.send('SEND', { destination: '/queue/metrics-unit' }, `m${i}`);
      await c.collect('MESSAGE', 3);
      c.send('NOPE', {});
      await c.waitFor(isFrame('ERROR'));

      const m = (name: string, labels: Labels = {}) => value(metrics, name, labels);
      assert.equal(await m('thumper_frames_received_total', { command: 'CONNECT' }), 1);
      assert.equal(await m('thumper_frames_received_total', { command: 'SUBSCRIBE' }), 1);
      assert.equal(await m('thumper_frames_received_total', { command: 'SEND' }), 3);
      assert.equal(await m('thumper_frames_received_total', { command: 'OTHER' }), 1);
      assert.equal(await m('thumper_frames_sent_total', { command: 'CONNECTED' }), 1);
      assert.equal(await m('thumper_frames_sent_total', { command: 'RECEIPT' }), 1);
      assert.equal(await m('thumper_frames_sent_total', { command: 'MESSAGE' }), 3);
      assert.equal(await m('thumper_frames_sent_total', { command: 'ERROR' }), 1);
      assert.equal(await m('thumper_messages_published_total'), 3);
      assert.equal(await m('thumper_messages_delivered_total'), 3);
      assert.equal(await m('thumper_errors_total', { code: 'UNKNOWN_COMMAND' }), 1);
      const sent = c.transport.sent.reduce((sum, b) => sum + b.length, 0);
      assert.equal(await m('thumper_sent_bytes_total', { transport: 'ws' }), sent);
      assert.ok(((await m('thumper_received_bytes_total', { transport: 'ws' })) ?? 0) > 0);

      // A framing error is fatal: its code is counted once, the ERROR is counted as sent, the connection goes.
      c.sendRaw('SEND\nbad header without colon\n\n\0');
      await c.waitForClose();
      assert.equal(await m('thumper_errors_total', { code: 'MALFORMED_FRAME' }), 1);
      assert.equal(await m('thumper_frames_sent_total', { command: 'ERROR' }), 2);
      assert.equal(await m('thumper_connections', { transport: 'ws', version: '1.2' }), 0);
      assert.equal(await m('thumper_sessions_closed_total', { reason: 'fatal-error' }), 1);
      assert.equal(await m('thumper_connections_opened_total', { transport: 'ws' }), 1);
      assert.equal(
        await m('thumper_sent_bytes_total', { transport: 'ws' }),
        c.transport.sent.reduce((sum, b) => sum + b.length, 0),
        'the ERROR written at close is counted too',
      );
    } finally {
      await r.close();
    }
  });

  it('a client that goes away before CONNECT leaves no connection behind', async () => {
    const metrics = createMetrics();
    const r = await rig({}, allowAllAuthorizer(), metrics);
    try {
      const c = r.client();
      c.transport.handlers!.close();
      c.transport.handlers!.close();
      assert.equal(await value(metrics, 'thumper_connections', { transport: 'ws', version: 'none' }), 0);
      assert.equal(await value(metrics, 'thumper_sessions_closed_total', { reason: 'client-gone' }), 1);
    } finally {
      await r.close();
    }
  });
});
