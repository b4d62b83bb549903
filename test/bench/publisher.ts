// The backend side of the fan-out and feed scenarios: an AMQP publisher (amqplib confirm channel)
// on the RabbitMQ node, used for Web-STOMP and Thumper's AMQP engine alike, and a STOMP SEND
// publisher for the embedded engine, which has no AMQP port. Both bound what is unconfirmed, so a
// fast publisher measures the path to the subscribers, not an ever-growing send buffer.

import amqp from 'amqplib';
import type { BenchClient } from './stomp-ws-client.js';

export interface Route {
  /** AMQP side: exchange and routing key. */
  readonly exchange: string;
  readonly routingKey: string;
  /** STOMP side: the same place as a destination. */
  readonly destination: string;
}

export interface Publisher {
  /** What publishes, for the report. */
  readonly kind: string;
  /** Resolves when the message is handed over and the unconfirmed window has room again. */
  publish(route: Route, body: Buffer): Promise<void>;
  /** Resolves when everything published so far is confirmed (or received, for STOMP). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const AMQP_WINDOW = 512;

export async function amqpPublisher(url: string): Promise<Publisher> {
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  let unconfirmed = 0;
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const confirmed = (err: unknown): void => {
    if (err) failure ??= new Error(`publish not confirmed: ${String(err)}`);
    unconfirmed--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const room = async (limit: number): Promise<void> => {
    while (unconfirmed > limit) {
      if (failure) throw failure;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (failure) throw failure;
  };
  return {
    kind: 'AMQP 0-9-1 (amqplib confirm channel)',
    async publish(route, body) {
      unconfirmed++;
      channel.publish(route.exchange, route.routingKey, body, { contentType: 'text/plain' }, confirmed);
      await room(AMQP_WINDOW - 1);
    },
    flush: () => room(0),
    async close() {
      await channel.close().catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

/** SENDs with a receipt on every RECEIPT_EVERY-th frame and at most RECEIPT_WINDOW receipts awaited. */
const RECEIPT_EVERY = 64;
const RECEIPT_WINDOW = 8;

export function stompPublisher(client: BenchClient): Publisher {
  let sent = 0;
  const pending: Array<Promise<void>> = [];
  return {
    kind: 'STOMP SEND over WebSocket (receipt every 64th)',
    async publish(route, body) {
      sent++;
      if (sent % RECEIPT_EVERY !== 0) {
        client.send(route.destination, body);
        return;
      }
      pending.push(client.send(route.destination, body, `p${sent}`) ?? Promise.resolve());
      if (pending.length >= RECEIPT_WINDOW) await pending.shift();
    },
    async flush() {
      pending.push(client.send('/topic/bench.flush', Buffer.from('flush'), `flush${sent}`) ?? Promise.resolve());
      await Promise.all(pending.splice(0));
    },
    async close() {
      client.close();
    },
  };
}
