// The WebSocket endpoint on the shared HTTP server: which upgrades are accepted (path, Origin),
// which subprotocol is echoed, and the ping/pong sweep (in slices) that finds dead peers. Each
// accepted socket becomes a WsTransport handed to `onConnection`.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerTokenOf, clientIp } from './credentials.js';
import { refuseUpgrade } from './refuse-upgrade.js';
import { sliceSchedule, SpreadSweep } from './spread-sweep.js';
import { WsTransport } from './ws-transport.js';

export interface WsServerOptions {
  /** The endpoint, e.g. `/ws`; `/ws/` is accepted too (reference §4). */
  readonly path: string;
  /** Exact origins (lower case, no trailing `/`); empty allows every origin. */
  readonly allowedOrigins: readonly string[];
  /** 0 disables the ping sweep. */
  readonly pingIntervalMs: number;
  readonly maxPayloadBytes: number;
  readonly perMessageDeflate: boolean;
  readonly log: Logger;
  readonly onConnection: (transport: WsTransport, info: ConnectionInfo) => void;
  /** Passed to each WsTransport (tests use small values). */
  readonly highWaterBytes?: number;
  readonly lowWaterBytes?: number;
}

export interface ConnectionInfo {
  /** `address:port` of the peer, for logs. */
  readonly remote: string;
  readonly protocol: string;
}

export interface WsServer {
  /** For the HTTP server's `upgrade` event: answers 404/403/503 itself when it refuses. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  readonly connectionCount: number;
  /** Stops accepting upgrades and the ping sweep; open connections are the caller's to close. */
  close(): void;
}

/** Subprotocols by preference; STOMP versions they stand for. */
const STOMP_SUBPROTOCOLS = [
  ['v12.stomp', '1.2'],
  ['v11.stomp', '1.1'],
  ['v10.stomp', '1.0'],
] as const;

/**
 * Reference §4: the highest of v12/v11/v10.stomp offered is echoed; plain `stomp` only when no
 * versioned one is offered; nothing STOMP offered → accept without a protocol header (false).
 */
export function selectSubprotocol(offered: ReadonlySet<string>): string | false {
  for (const [name] of STOMP_SUBPROTOCOLS) if (offered.has(name)) return name;
  return offered.has('stomp') ? 'stomp' : false;
}

/** `v11.stomp, v12.stomp` → ['1.2', '1.1']. The offer does not pin the version; accept-version does. */
export function offeredStompVersions(header: string | undefined): string[] {
  const offered = new Set((header ?? '').split(',').map((p) => p.trim()));
  return STOMP_SUBPROTOCOLS.filter(([name]) => offered.has(name)).map(([, version]) => version);
}

/** The endpoint path and the same with a trailing slash; the query string is ignored. */
export function isWsPath(wsPath: string, url: string | undefined): boolean {
  const pathname = (url ?? '').split('?')[0] ?? '';
  return pathname === wsPath || pathname === `${wsPath}/`;
}

/** Browsers always send Origin; an allow-list refuses requests without one too (fail closed). */
export function isOriginAllowed(allowed: readonly string[], origin: string | undefined): boolean {
  if (allowed.length === 0) return true;
  if (origin === undefined) return false;
  return allowed.includes(origin.trim().toLowerCase().replace(/\/$/, ''));
}

export function createWsServer(options: WsServerOptions): WsServer {
  const { log } = options;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: options.maxPayloadBytes,
    perMessageDeflate: options.perMessageDeflate,
    handleProtocols: (protocols) => selectSubprotocol(protocols),
  });
  let accepting = true;

  // Each transport is pinged once per interval, its slice of them at a time (spread-sweep.ts).
  // With pings off it only counts them.
  const schedule = options.pingIntervalMs > 0 ? sliceSchedule(options.pingIntervalMs) : { slots: 1, tickMs: 0 };
  const transports = new SpreadSweep<WsTransport>(schedule.slots, (t) => {
    if (!t.pingTick()) log.info({ remote: t.remoteAddress }, 'WebSocket peer did not answer ping: terminated');
  });
  const sweep = options.pingIntervalMs > 0 ? setInterval(() => transports.tick(), schedule.tickMs) : undefined;
  sweep?.unref();

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreError); // a reset during the handshake is the peer's business
    if (!isWsPath(options.path, req.url)) return refuseUpgrade(socket, 404, 'Not Found');
    if (!accepting) return refuseUpgrade(socket, 503, 'Server shutting down');
    const origin = req.headers.origin ?? headerValue(req.headers['sec-websocket-origin']);
    if (!isOriginAllowed(options.allowedOrigins, origin)) {
      log.info({ origin, remote: remoteOf(req) }, 'WebSocket upgrade refused: origin not allowed');
      return refuseUpgrade(socket, 403, 'Origin not allowed');
    }
    const accepted: AcceptedUpgrade = {
      socket,
      remoteAddress: clientIp(req.socket.remoteAddress),
      remote: remoteOf(req),
      bearerToken: bearerTokenOf(req.headers, req.url),
      offeredVersions: offeredStompVersions(req.headers['sec-websocket-protocol']),
    };
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, accepted));
  }

  // Apart from handleUpgrade so that nothing the connection keeps (its closures, the transport)
  // can reach the upgrade request: a closure there would hold `req`, its headers and `head` for
  // the connection's lifetime, about 1.5 KiB each.
  function accept(ws: WebSocket, upgrade: AcceptedUpgrade): void {
    const transport = new WsTransport(ws, {
      remoteAddress: upgrade.remoteAddress,
      bearerToken: upgrade.bearerToken,
      offeredVersions: upgrade.offeredVersions,
      socket: upgrade.socket,
      ...(options.highWaterBytes !== undefined ? { highWaterBytes: options.highWaterBytes } : {}),
      ...(options.lowWaterBytes !== undefined ? { lowWaterBytes: options.lowWaterBytes } : {}),
    });
    transports.add(transport);
    void transport.closed.then(() => transports.delete(transport));
    options.onConnection(transport, { remote: upgrade.remote, protocol: ws.protocol });
  }

  return {
    handleUpgrade,
    get connectionCount() {
      return transports.size;
    },
    close() {
      accepting = false;
      if (sweep) clearInterval(sweep);
      wss.close();
    },
  };
}

/** What a connection needs from its upgrade request, taken before the request can be dropped. */
interface AcceptedUpgrade {
  readonly socket: Duplex;
  readonly remoteAddress: string;
  readonly remote: string;
  readonly bearerToken: string | undefined;
  readonly offeredVersions: readonly string[];
}

const ignoreError = (): void => {};

function remoteOf(req: IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket;
  return `${remoteAddress ?? 'unknown'}:${remotePort ?? 0}`;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
