// The one HTTP server every web-facing endpoint shares: health probes, the WebSocket endpoint's
// upgrade, and mounts (SockJS, the example page, metrics) that each own a set of paths.
// node:http only, no framework.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { isWsPath } from '../transport/ws-server.js';

export interface HttpServerOptions {
  readonly wsPath: string;
  /** For /readyz: false while the engine cannot serve new sessions or the server is stopping. */
  readonly isReady: () => boolean;
  /** Every `Upgrade:` request no mount claims; the handler refuses paths it does not serve. */
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Asked in order, after /healthz and /readyz, before the 404. */
  readonly mounts?: readonly HttpMount[];
}

/** A part of the URL space served by someone else (SockJS under `/stomp`, the example page…). */
export interface HttpMount {
  readonly name: string;
  /** true: this mount serves `pathname` (requests and, if it has handleUpgrade, upgrades). */
  matches(pathname: string): boolean;
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

type Route = (req: IncomingMessage, res: ServerResponse) => void;

export function createHttpServer(options: HttpServerOptions): Server {
  // Exact-path routes. SockJS (`/stomp/...`), `/metrics` and the example page register here.
  const routes = new Map<string, Route>([
    ['/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' })],
    ['/readyz', (_req, res) => (options.isReady() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'unavailable' }))],
  ]);

  const server = createServer((req, res) => {
    // Reference §4: a plain GET on the WebSocket endpoint is 426 (the Upgrade header is required).
    if (isWsPath(options.wsPath, req.url)) {
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'Upgrade' });
      res.end('Upgrade Required: this endpoint speaks STOMP over WebSocket\n');
      return;
    }
    const pathname = pathnameOf(req.url);
    const route = routes.get(pathname);
    const mount = route ? undefined : options.mounts?.find((m) => m.matches(pathname));
    if (mount) {
      mount.handleRequest(req, res);
      return;
    }
    if (!route) {
      sendText(res, 404, 'Not Found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, 'Method Not Allowed\n');
      return;
    }
    route(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const pathname = pathnameOf(req.url);
    const mount = options.mounts?.find((m) => m.handleUpgrade !== undefined && m.matches(pathname));
    if (mount?.handleUpgrade) mount.handleUpgrade(req, socket, head);
    else options.onUpgrade(req, socket, head);
  });
  return server;
}

/** Resolves with the bound address (the real port when `port` is 0). */
export function listen(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address() as AddressInfo;
      resolve({ host: address.address, port: address.port });
    });
  });
}

/** Stops listening and ends idle keep-alive connections; resolves once every connection is gone. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function pathnameOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0] ?? '/';
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
