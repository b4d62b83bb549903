// Pure helpers for the broker URLs: the per-vhost connection URL (the vhost comes from the STOMP
// session, not from the configured URL) and a password-free form for logs and error messages.

export interface ConnectionTuning {
  readonly heartbeatSeconds: number;
  /** Asked of the broker as channel_max, so it enforces our per-connection cap too. */
  readonly channelMax: number;
}

/**
 * The configured URL with its path replaced by `vhost` and the tuning in the query, which is how
 * amqplib reads them. The vhost is percent-encoded as one path segment: '/' → '%2F'.
 */
export function vhostUrl(base: string, vhost: string, tuning: ConnectionTuning): string {
  const url = new URL(base);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  url.searchParams.set('heartbeat', String(tuning.heartbeatSeconds));
  url.searchParams.set('channelMax', String(tuning.channelMax));
  return url.toString();
}

/** The URL without its password (user kept), for logs. Unparseable input is not echoed. */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '<invalid URL>';
  }
  url.password = '';
  return url.toString();
}

/** The vhost named by a configured URL's path ('/' when there is none), as amqplib reads it. */
export function urlVhost(raw: string): string {
  const path = new URL(raw).pathname;
  return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/';
}
