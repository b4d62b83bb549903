// The shipped gateway with every transport on: WebSocket /ws, SockJS /stomp, TCP and TLS (certificate
// files from configuration), all sharing one session implementation and one engine. One user's
// tabs and devices on four transports all receive one message; config mistakes stop start-up.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { startThumper, type ThumperServer } from '../helpers/thumper-server.js';

const require = createRequire(import.meta.url);
interface SockJsSocket {
  onopen: (() => void) | null;
  onmessage: ((e: { data: string }) => void) | null;
  send(data: string): void;
  close(): void;
}
const SockJS = require('sockjs-client') as new (url: string, reserved: null, options: { transports: string[] }) => SockJsSocket;

/** A STOMP peer over any byte or message stream: frames in, NUL-split frames out. */
class Peer {
  readonly frames: string[] = [];
  #buffer = '';
  #waiters: Array<() => void> = [];
  constructor(readonly name: string, readonly write: (text: string) => void, readonly end: () => void) {}
  push(text: string): void {
    this.#buffer += text;
    let nul: number;
    while ((nul = this.#buffer.indexOf('\0')) >= 0) {
      const frame = this.#buffer.slice(0, nul).replace(/^\n+/, '');
      this.#buffer = this.#buffer.slice(nul + 1);
      this.frames.push(frame);
    }
    for (const w of this.#waiters.splice(0)) w();
  }
  send(command: string, headers: Record<string, string>, body = ''): void {
    this.write(`${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}\n`).join('')}\n${body}\0`);
  }
  async waitFor(prefix: string, what = prefix): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.frames.find((f) => f.startsWith(prefix));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`${this.name}: no ${what}; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

async function overWs(url: string): Promise<Peer> {
  const ws = new WebSocket(url, ['v12.stomp']);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const peer = new Peer('ws', (t) => ws.send(t), () => ws.close());
  ws.on('message', (data) => peer.push(data.toString()));
  return peer;
}

async function overTcp(port: number): Promise<Peer> {
  const socket = netConnect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const peer = new Peer('tcp', (t) => socket.write(t), () => socket.destroy());
  socket.on('data', (d) => peer.push(d.toString()));
  return peer;
}

async function overTls(port: number, ca: string): Promise<Peer> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const peer = new Peer('tls', (t) => socket.write(t), () => socket.destroy());
  socket.on('data', (d) => peer.push(d.toString()));
  return peer;
}

async function overSockjs(baseUrl: string, transport: string): Promise<Peer> {
  const sock = new SockJS(`${baseUrl}/stomp`, null, { transports: [transport] });
  await new Promise<void>((resolve) => (sock.onopen = resolve));
  const peer = new Peer(`sockjs-${transport}`, (t) => sock.send(t), () => sock.close());
  sock.onmessage = (e) => peer.push(e.data);
  return peer;
}

describe('gateway: every transport on one node', () => {
  let dir: string;
  let ca: string;
  let thumper: ThumperServer;
  const peers: Peer[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'thumper-tls-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.crt',
      '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
    ca = readFileSync(join(dir, 'server.crt'), 'utf8');
    thumper = await startThumper({
      THUMPER_TLS_ENABLED: 'true',
      THUMPER_TLS_CERT_FILE: join(dir, 'server.crt'),
      THUMPER_TLS_KEY_FILE: join(dir, 'server.key'),
    });
  });
  after(async () => {
    for (const p of peers) p.end();
    await thumper?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one SEND reaches the same user over WebSocket, SockJS, TCP and TLS', { timeout: 30_000 }, async () => {
    assert.ok(thumper.tcpPort && thumper.tlsPort, 'TCP and TLS listeners are up');
    peers.push(
      await overWs(thumper.wsUrl),
      await overSockjs(thumper.httpUrl, 'xhr-streaming'),
      await overTcp(thumper.tcpPort),
      await overTls(thumper.tlsPort, ca),
    );
    for (const [i, p] of peers.entries()) {
      p.send('CONNECT', { 'accept-version': '1.2', host: '/', login: 'user_x', passcode: 'x' });
      await p.waitFor('CONNECTED', `${p.name} CONNECTED`);
      p.send('SUBSCRIBE', { id: `s${i}`, destination: '/exchange/feed/user_x', receipt: `r${i}` });
      await p.waitFor('RECEIPT', `${p.name} RECEIPT`);
    }
    const sender = peers[2]!;
    sender.send('SEND', { destination: '/exchange/feed/user_x', 'content-type': 'text/plain' }, 'to every device');
    for (const p of peers) {
      const message = await p.waitFor('MESSAGE', `${p.name} MESSAGE`);
      assert.match(message, /\ndestination:\/exchange\/feed\/user_x\n/);
      assert.ok(message.endsWith('\n\nto every device'), `${p.name}: ${message}`);
    }
  });
});

describe('gateway: transport configuration errors', () => {
  it('an unreadable TLS key file stops start-up naming the key', async () => {
    await assert.rejects(
      startThumper({ THUMPER_TLS_ENABLED: 'true', THUMPER_TLS_CERT_FILE: '/nonexistent/cert.pem', THUMPER_TLS_KEY_FILE: '/nonexistent/key.pem' }),
      /tls\.certFile: cannot read \/nonexistent\/cert\.pem \(ENOENT\)/,
    );
  });
  it('TLS without a certificate is a configuration error', async () => {
    await assert.rejects(startThumper({ THUMPER_TLS_ENABLED: 'true' }), /THUMPER_TLS_ENABLED \(tls\.enabled\): the TLS listener needs tls\.certFile and tls\.keyFile/);
  });
});
