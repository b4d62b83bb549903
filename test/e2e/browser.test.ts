// A real browser against the real gateway: Debian's headless Chromium (driven by playwright-core)
// loads the feed page Thumper serves at `/`, logs in as user_x through the shipped auth rules, and
// over a native WebSocket and over SockJS with each HTTP transport forced, receives what a Node
// backend publishes with amqplib to feed/user_x and answers on replies/user_x. Also: the seed's own
// code shape (stompjs 2.3.3, `Stomp.over(new SockJS(...))`, guest1), @stomp/stompjs 7 over SockJS,
// reconnecting after a drop, and a refused login. Screenshots go to test-artifacts/.
//
// Code that runs in the page is written as strings: tsx wraps named functions in a `__name` helper
// that does not exist in the page, and the page has no Node types anyway.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { startAuthBackend } from '../../auth-backend/src/server.js';
import type { RunningAuthBackend } from '../../auth-backend/src/server.js';
import { useRabbit } from '../harness/rabbitmq.js';
import type { RabbitNode } from '../harness/rabbitmq.js';
import { startThumper } from '../helpers/thumper-server.js';
import type { ThumperServer } from '../helpers/thumper-server.js';
import { sleep } from '../helpers/stomp-script.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_INSTALL = 'apt-get update && apt-get install -y chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
const SHIPPED_RULES = fileURLToPath(new URL('../../auth-backend/rules.json', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
// The package's exports hide the bundle's path; require() resolves to the UMD bundle's folder.
const STOMP_V7_BUNDLE = join(dirname(createRequire(import.meta.url).resolve('@stomp/stompjs')), 'stomp.umd.min.js');
const DEADLINE_MS = 15_000;
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'] as const;
const USER = { name: 'user_x', password: 'user_x-secret' } as const;

/** Runs `script` (a JS function expression, as a string) in the page with `arg`, awaiting its result. */
function inPage<T>(page: Page, script: string, arg: unknown = null): Promise<T> {
  return page.evaluate(`(${script})(${JSON.stringify(arg)})`) as Promise<T>;
}

/**
 * Polls the JS expression `condition` in the page until it is true (bounded). Not
 * page.waitForFunction: given a string it evals in the page, which the page's CSP forbids.
 */
async function waitInPage(page: Page, condition: string): Promise<void> {
  for (let i = 0; i < DEADLINE_MS / 25; i++) {
    if (await inPage<boolean>(page, `() => Boolean(${condition})`)) return;
    await sleep(25);
  }
  throw new Error(`still false in the page after ${DEADLINE_MS} ms: ${condition}`);
}

/** What arrives on replies/<key> (a guest AMQP consumer, as the backend would be). */
class ReplyInbox {
  readonly received: ConsumeMessage[] = [];

  async waitFor(body: string): Promise<ConsumeMessage> {
    for (let i = 0; i < DEADLINE_MS / 20; i++) {
      const found = this.received.find((m) => m.content.toString() === body);
      if (found) return found;
      await sleep(20);
    }
    throw new Error(`no reply "${body}" on the replies exchange within ${DEADLINE_MS} ms; got: ${this.received.map((m) => m.content.toString()).join(' | ')}`);
  }
}

const CHROMIUM_MISSING = `Chromium is not installed (${CHROMIUM} is missing). Install Debian's chromium: sudo sh -c '${CHROMIUM_INSTALL}' (npm test does this itself when run as root).`;

// Its own test, so a machine without Chromium counts a failure (the suite below is then cancelled).
test(`Debian's chromium is installed at ${CHROMIUM}`, () => {
  assert.ok(existsSync(CHROMIUM), CHROMIUM_MISSING);
});

describe('the feed page in headless Chromium, through Thumper bridged to RabbitMQ', () => {
  let rabbit: RabbitNode;
  let authBackend: RunningAuthBackend;
  let thumper: ThumperServer;
  let amqpConn: ChannelModel;
  let publisher: ConfirmChannel;
  let browser: Browser;
  let base: string;
  const inbox = new ReplyInbox();
  const run = randomBytes(4).toString('hex');
  const contexts: BrowserContext[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(CHROMIUM_MISSING);
    mkdirSync(ARTIFACTS, { recursive: true });
    rabbit = await useRabbit();
    authBackend = await startAuthBackend({ host: '127.0.0.1', port: 0, rulesFile: SHIPPED_RULES, jwtSecret: randomBytes(32).toString('hex') });
    thumper = await startThumper({
      THUMPER_ENGINE: 'amqp',
      THUMPER_AMQP_URL: rabbit.amqpUrl,
      THUMPER_AUTH_BACKENDS: 'http',
      THUMPER_AUTH_HTTP_BASE_URL: `${authBackend.url}/auth`,
    });
    base = `http://127.0.0.1:${thumper.port}`;

    amqpConn = await amqp.connect(rabbit.amqpUrl);
    publisher = await amqpConn.createConfirmChannel();
    await publisher.assertExchange('feed', 'topic', { durable: true });
    await publisher.assertExchange('replies', 'topic', { durable: true });
    const consumer = await amqpConn.createChannel();
    const { queue } = await consumer.assertQueue('', { exclusive: true, autoDelete: true });
    await consumer.bindQueue(queue, 'replies', USER.name);
    await consumer.bindQueue(queue, 'replies', 'guest1');
    await consumer.consume(queue, (m) => {
      if (m) inbox.received.push(m);
    }, { noAck: true });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close().catch(() => {});
    await amqpConn?.close().catch(() => {});
    await thumper?.stop();
    await authBackend?.close();
    await rabbit?.stop();
  });

  /** A fresh browser profile (no shared cookies or SockJS state) with a page that records its errors. */
  async function openPage(query = ''): Promise<{ page: Page; pageErrors: Error[] }> {
    const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
    contexts.push(context);
    const page = await context.newPage();
    const pageErrors: Error[] = [];
    page.on('pageerror', (err) => pageErrors.push(err));
    // The page's CSP must admit everything the page itself loads and connects to.
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(new Error(m.text()));
      if (process.env['TEST_LOG_LEVEL'] !== undefined && m.type() === 'error') process.stderr.write(`[page console] ${m.text()}\n`);
    });
    const response = await page.goto(`${base}/${query}`);
    assert.equal(response?.status(), 200);
    return { page, pageErrors };
  }

  async function publishFeed(key: string, body: string): Promise<void> {
    publisher.publish('feed', key, Buffer.from(body), { contentType: 'text/plain' });
    await publisher.waitForConfirms();
  }

  /** Logs in through the form and waits until the page shows its subscription is in place. */
  async function login(page: Page, connects: number): Promise<void> {
    await page.getByTestId('connect').click();
    await waitConnected(page, connects);
  }

  async function waitConnected(page: Page, connects: number): Promise<void> {
    await page.locator(`[data-testid="state"][data-state="connected"][data-connects="${connects}"]`).waitFor({ timeout: DEADLINE_MS });
  }

  /** A backend message shows in the page, and the page's reply reaches the backend. */
  async function roundTrip(page: Page, label: string): Promise<void> {
    const body = `feed ${label} ${run} ✓`;
    await publishFeed(USER.name, body);
    await page.getByTestId('message').filter({ hasText: body }).waitFor({ timeout: DEADLINE_MS });

    const reply = `reply ${label} ${run}`;
    await page.getByTestId('reply-text').fill(reply);
    await page.getByTestId('send').click();
    const got = await inbox.waitFor(reply);
    assert.equal(got.fields.exchange, 'replies');
    assert.equal(got.fields.routingKey, USER.name);
    assert.equal(got.properties.contentType, 'text/plain');
    // The server's RECEIPT for the SEND marks the reply delivered in the page.
    await page.locator('[data-testid="reply"][data-delivered="true"]').filter({ hasText: reply }).waitFor({ timeout: DEADLINE_MS });
  }

  for (const transport of TRANSPORTS) {
    test(`over ${transport}: a backend message shows in the page and the page's reply reaches the backend`, async () => {
      const { page, pageErrors } = await openPage(`?user=${USER.name}&password=${USER.password}&transport=${transport}`);
      assert.equal(await page.getByTestId('user').inputValue(), USER.name);
      assert.equal(await page.getByTestId('transport-select').inputValue(), transport);
      await login(page, 1);
      // The transport actually in use, as SockJS reports it (a forced transport is not a preference).
      assert.equal(await page.getByTestId('transport').getAttribute('data-transport'), transport);
      assert.equal(await page.getByTestId('feed-destination').textContent(), `for /exchange/feed/${USER.name}`);
      await roundTrip(page, transport);
      await page.screenshot({ path: `${ARTIFACTS}browser-${transport}.png`, fullPage: true });
      assert.deepEqual(pageErrors, []);
    });
  }

  test("the seed's own code works unchanged in the page: Stomp.over(new SockJS(...)), guest1/guest1, vhost '/'", async () => {
    const { page, pageErrors } = await openPage();
    // The seed's lines, verbatim but for the host; the receipt only tells this test when to publish.
    await inPage(page, `async (url) => {
      window.seed = { messages: [] };
      await new Promise(function (resolve, reject) {
        var ws = new SockJS(url);
        var client = Stomp.over(ws);
        var on_connect = function () {
          client.onreceipt = function () { resolve(); };
          client.subscribe('/exchange/feed/guest1', function (m) { window.seed.messages.push(m.body); }, { receipt: 'seed-sub' });
        };
        var on_error = function (e) { reject(new Error(typeof e === 'string' ? e : e.headers.message)); };
        client.connect('guest1', 'guest1', on_connect, on_error, '/');
        window.seed.client = client;
      });
    }`, `${base}/stomp`);
    const body = `seed ${run}`;
    await publishFeed('guest1', body);
    await waitInPage(page, `window.seed.messages.includes(${JSON.stringify(body)})`);
    const reply = `seed reply ${run}`;
    await inPage(page, `(text) => window.seed.client.send('/exchange/replies/guest1', {}, text)`, reply);
    const got = await inbox.waitFor(reply);
    assert.equal(got.fields.routingKey, 'guest1');
    assert.deepEqual(pageErrors, []);
  });

  test('@stomp/stompjs 7 (UMD bundle) over SockJS receives and replies', async () => {
    const { page, pageErrors } = await openPage();
    // Same origin, so the page's Content-Security-Policy (script-src 'self') admits it.
    await page.route(`${base}/test-only/stomp.umd.min.js`, (route) => route.fulfill({ path: STOMP_V7_BUNDLE, contentType: 'text/javascript' }));
    await page.addScriptTag({ url: `${base}/test-only/stomp.umd.min.js` });
    await inPage(page, `async (login) => {
      window.v7 = { messages: [] };
      await new Promise(function (resolve, reject) {
        var client = new StompJs.Client({
          webSocketFactory: function () { return new SockJS(location.origin + '/stomp'); },
          connectHeaders: { login: login.name, passcode: login.password, host: '/' },
          heartbeatIncoming: 10000,
          heartbeatOutgoing: 10000,
          reconnectDelay: 0,
        });
        client.onConnect = function () {
          client.watchForReceipt('v7-sub', function () { resolve(); });
          client.subscribe('/exchange/feed/' + login.name, function (m) { window.v7.messages.push(m.body); }, { receipt: 'v7-sub' });
        };
        client.onStompError = function (f) { reject(new Error(f.headers.message)); };
        client.onWebSocketClose = function () { reject(new Error('SockJS closed before the subscription was confirmed')); };
        window.v7.client = client;
        client.activate();
      });
    }`, USER);
    const body = `v7 ${run}`;
    await publishFeed(USER.name, body);
    await waitInPage(page, `window.v7.messages.includes(${JSON.stringify(body)})`);
    const reply = `v7 reply ${run}`;
    await inPage(page, `(text) => window.v7.client.publish({ destination: '/exchange/replies/${USER.name}', body: text, headers: { 'content-type': 'text/plain' } })`, reply);
    const got = await inbox.waitFor(reply);
    assert.equal(got.fields.routingKey, USER.name);
    assert.equal(got.properties.contentType, 'text/plain');
    await inPage(page, '() => window.v7.client.deactivate()');
    assert.deepEqual(pageErrors, []);
  });

  for (const transport of ['websocket', 'xhr-streaming'] as const) {
    test(`over ${transport}: after the connection drops the page reconnects, resubscribes and receives again`, async () => {
      const { page, pageErrors } = await openPage(`?user=${USER.name}&password=${USER.password}&transport=${transport}`);
      await login(page, 1);
      await roundTrip(page, `before drop ${transport}`);
      // Drop the live socket under stompjs, as a network failure would.
      await inPage(page, '() => { window.dropped = window.thumperFeed.socket; window.dropped.close(); }');
      await waitConnected(page, 2);
      assert.equal(await inPage(page, '() => window.thumperFeed.socket !== window.dropped'), true);
      await roundTrip(page, `after drop ${transport}`);
      await page.screenshot({ path: `${ARTIFACTS}browser-reconnect-${transport}.png`, fullPage: true });
      assert.deepEqual(pageErrors, []);
    });
  }

  test('the reconnect delay is full jitter: uniform in [0, min(30 s, 1 s · 2^attempt))', async () => {
    const { page } = await openPage();
    const bounds = await inPage<{ low: number[]; high: number[] }>(page, `() => {
      var low = [], high = [];
      for (var n = 0; n < 10; n++) {
        low.push(window.thumperFeed.backoffDelay(n, function () { return 0; }));
        high.push(window.thumperFeed.backoffDelay(n, function () { return 0.9999999; }));
      }
      return { low: low, high: high };
    }`);
    assert.deepEqual(bounds.low, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(bounds.high, [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999, 29999]);
  });

  test('a refused login shows the server\'s error and does not retry', async () => {
    const { page, pageErrors } = await openPage(`?user=${USER.name}&password=wrong&transport=websocket`);
    await page.getByTestId('connect').click();
    await page.locator('[data-testid="state"][data-state="error"]').waitFor({ timeout: DEADLINE_MS });
    assert.notEqual((await page.getByTestId('detail').textContent())?.trim() ?? '', '');
    assert.equal(await page.getByTestId('state').getAttribute('data-connects'), '0');
    // Nothing left to retry with: no live client, and the form is ready for another attempt.
    assert.equal(await inPage(page, '() => window.thumperFeed.client === null'), true);
    assert.equal(await page.getByTestId('disconnect').isDisabled(), true);
    assert.equal(await page.getByTestId('send').isDisabled(), true);
    await page.screenshot({ path: `${ARTIFACTS}browser-refused.png`, fullPage: true });
    assert.deepEqual(pageErrors, []);
  });
});
