// The answer to an HTTP upgrade request that will not become a WebSocket (wrong path, origin not
// allowed, shutting down): a plain HTTP response written on the raw socket, which is then closed.

import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** An HTTP answer on the raw socket, before any upgrade; the socket is closed once it is written. */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
