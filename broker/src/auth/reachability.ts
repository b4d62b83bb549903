// For /readyz: can this node reach its HTTP auth service? A node that cannot would refuse every
// CONNECT ("auth service unavailable"), so a load balancer should send clients elsewhere. A TCP
// connect to the user path's host every few seconds answers that without loading the service.

import { connect } from 'node:net';

export interface Reachability {
  isReachable(): boolean;
  stop(): void;
}

export function watchReachability(url: string, intervalMs: number, timeoutMs: number): Reachability {
  const target = new URL(url);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  let reachable = true; // optimistic until the first probe says otherwise: start-up is not delayed
  let stopped = false;
  const probe = (): void => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      if (!stopped) reachable = ok;
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  };
  probe();
  const interval = setInterval(probe, intervalMs);
  interval.unref();
  return {
    isReachable: () => reachable,
    stop() {
      stopped = true;
      clearInterval(interval);
    },
  };
}
