// What a transport learns about its client before any STOMP frame: the IP as RabbitMQ reports it,
// and a bearer token. Browsers cannot set headers on a WebSocket or SockJS connection, so the
// token may also come as an `access_token` query parameter (RFC 6750 §2.3).

import type { IncomingHttpHeaders } from 'node:http';

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) → `127.0.0.1`, as RabbitMQ sends `ip`. */
export function clientIp(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** `Authorization: Bearer <token>` (RFC 6750 §2.1), else `?access_token=<token>`; undefined if neither. */
export function bearerTokenOf(headers: IncomingHttpHeaders, url: string | undefined): string | undefined {
  const auth = headers.authorization;
  if (auth !== undefined) {
    const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i.exec(auth);
    if (match?.[1] !== undefined) return match[1];
  }
  if (url === undefined) return undefined;
  const query = url.indexOf('?');
  if (query < 0) return undefined;
  const token = new URLSearchParams(url.slice(query + 1)).get('access_token');
  return token === null || token === '' ? undefined : token;
}
