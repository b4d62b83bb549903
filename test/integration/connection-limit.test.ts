// limits.maxConnectionsPerAddress on a real gateway (limit 3, all from 127.0.0.1): the fourth
// connection is refused whatever carries it (WebSocket: HTTP 429 at the upgrade; SockJS and TCP: a
// STOMP ERROR, then close), the three admitted ones keep working, and once one closes a new one is
// admitted. The refusals are counted in thumper_connections_refused_total.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getHeader } from '../../broker/src/stomp/frame.js';
import { connectTcp, connectWs, isError, isMessage, isReceipt, login, type StompConn } from '../helpers/stomp-script.js';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';

const SUITE = { timeout: 60_000 };
const LIMIT_TEXT = 'too many connections from 127.0.0.1 (limits.maxConnectionsPerAddress is 3)';

describe('limits.maxConnectionsPerAddress = 3', SUITE, () => {
  let server: ThumperServer;
  const open: StompConn[] = [];
  before(async () => {
    server = await startThumper({ THUMPER_LIMITS_MAX_CONNECTIONS_PER_ADDRESS: '3' });
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await server.stop();
  });

  const sockjsRawUrl = () => `${server.httpUrl.replace('http:', 'ws:')}/stomp/websocket`;

  async function refusedByStomp(conn: StompConn): Promise<void> {
    const error = await conn.waitFor(isError);
    assert.equal(getHeader(error, 'message'), 'Too many connections');
    assert.equal(error.body.toString().trim(), LIMIT_TEXT);
    await conn.waitClosed();
  }

  async function refusedCount(transport: string): Promise<number> {
    const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`thumper_connections_refused_total{transport="${transport}"}`));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  }

  it('counts WebSocket, SockJS and TCP connections together and refuses the fourth on each', async () => {
    const ws = await connectWs(server.wsUrl);
    const tcp = await connectTcp(server.tcpPort!);
    const sockjs = await connectWs(sockjsRawUrl(), { protocols: [] });
    open.push(ws, tcp, sockjs);
    await Promise.all([login(ws), login(tcp), login(sockjs)]);

    await assert.rejects(connectWs(server.wsUrl), /refused: HTTP 429/);
    await refusedByStomp(await connectTcp(server.tcpPort!));
    await refusedByStomp(await connectWs(sockjsRawUrl(), { protocols: [] }));
    assert.equal(await refusedCount('ws'), 1);
    assert.equal(await refusedCount('tcp'), 1);
    assert.equal(await refusedCount('sockjs'), 1);

    // The admitted three were not disturbed: a message goes round through all of them.
    await ws.request('SUBSCRIBE', { id: 's1', destination: '/topic/limit-check' });
    await sockjs.request('SUBSCRIBE', { id: 's2', destination: '/topic/limit-check' });
    await tcp.request('SEND', { destination: '/topic/limit-check' }, 'still here');
    assert.equal((await ws.waitFor(isMessage)).body.toString(), 'still here');
    assert.equal((await sockjs.waitFor(isMessage)).body.toString(), 'still here');
  });

  it('admits a new connection once one has closed (WebSocket and TCP)', async () => {
    const [ws, tcp] = open;
    assert.ok(ws && tcp);
    await ws.close();
    await ws.waitClosed();
    // The server sees the close a moment after the client: retry the upgrade for a bounded time.
    let again: StompConn | undefined;
    for (let i = 0; i < 50 && !again; i++) {
      again = await connectWs(server.wsUrl).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
    }
    assert.ok(again, 'a WebSocket is admitted after one closed');
    open.push(again);
    await login(again);
    await assert.rejects(connectWs(server.wsUrl), /refused: HTTP 429/);

    tcp.send('DISCONNECT', { receipt: 'bye' });
    await tcp.waitFor(isReceipt('bye'));
    await tcp.waitClosed();
    let tcpAgain: StompConn | undefined;
    for (let i = 0; i < 50 && !tcpAgain; i++) {
      const c = await connectTcp(server.tcpPort!);
      c.send('CONNECT', { 'accept-version': '1.2', host: '/', login: 'guest', passcode: 'guest' });
      const reply = await c.next((f) => f.command === 'CONNECTED' || f.command === 'ERROR');
      if (reply.command === 'CONNECTED') tcpAgain = c;
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(tcpAgain, 'a TCP connection is admitted after one closed');
    open.push(tcpAgain);
  });
});

describe('limits.maxConnectionsPerAddress = 0 is unlimited', SUITE, () => {
  let server: ThumperServer;
  before(async () => {
    server = await startThumper({ THUMPER_LIMITS_MAX_CONNECTIONS_PER_ADDRESS: '0' });
  });
  after(() => server.stop());

  it('admits 20 connections from one address', async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? connectWs(server.wsUrl) : connectTcp(server.tcpPort!))));
    await Promise.all(conns.map((c) => login(c)));
    await Promise.all(conns.map((c) => c.close()));
  });
});
