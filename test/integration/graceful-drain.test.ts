// Graceful shutdown of the shipped gateway: /readyz turns 503 at once, no new connections, every
// client gets ERROR "Server shutting down" saying to reconnect, closes are spread over the drain
// window, and a SEND accepted before the shutdown still gets its RECEIPT before the ERROR.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getHeader } from '../../broker/src/stomp/frame.js';
import { connectWs, isError, login, type StompConn } from '../helpers/stomp-script.js';
import { httpStatus, startThumper } from '../helpers/thumper-server.js';

describe('graceful drain', () => {
  it('readiness off, goodbye ERROR to every client, closes spread over the window, receipts kept', { timeout: 30_000 }, async () => {
    const WINDOW_MS = 2000;
    const thumper = await startThumper({ THUMPER_SHUTDOWN_DRAIN_WINDOW_MS: String(WINDOW_MS) });
    const clients: StompConn[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await connectWs(thumper.wsUrl);
      await login(c, { login: `user_${i}` });
      await c.request('SUBSCRIBE', { id: 's', destination: `/exchange/feed/user_${i}` });
      clients.push(c);
    }
    const closedAt: number[] = [];
    for (const c of clients) void c.closed.then(() => closedAt.push(Date.now()));

    // Accepted just before the signal: its receipt must arrive before the goodbye.
    clients[0]!.send('SEND', { destination: '/exchange/feed/user_1', receipt: 'last-words' }, 'x');
    const stopping = thumper.stop();
    assert.equal(await httpStatus(thumper.port, '/readyz'), 503, 'not ready while draining');
    assert.equal(await httpStatus(thumper.port, '/healthz'), 200, 'still alive while draining');
    await assert.rejects(connectWs(thumper.wsUrl, {}, 2000), 'no new WebSocket while draining');

    await stopping;
    for (const c of clients) {
      const err = await c.waitFor(isError);
      assert.equal(getHeader(err, 'message'), 'Server shutting down');
      assert.match(err.body.toString(), /shutting down; reconnect/);
      assert.ok(c.isClosed);
    }
    const first = clients[0]!.frames;
    const receiptAt = first.findIndex((f) => f.command === 'RECEIPT' && getHeader(f, 'receipt-id') === 'last-words');
    const errorAt = first.findIndex(isError);
    assert.ok(receiptAt >= 0 && receiptAt < errorAt, 'the RECEIPT came before the ERROR');
    // Spread, not a burst: 8 uniform draws over 2 s all landing within 100 ms has probability ~1e-7.
    const spread = Math.max(...closedAt) - Math.min(...closedAt);
    assert.ok(spread > 100, `closes spread over the window (spread ${spread} ms)`);
  });
});
