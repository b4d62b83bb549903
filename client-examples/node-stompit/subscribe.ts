// A backend-side (or command-line) subscriber over plain TCP with stompit: logs in, subscribes to
// the user's feed (/exchange/feed/<user>) with `ack: client-individual`, prints and ACKs each
// message, and leaves after N messages or on Ctrl-C. An ERROR frame from Thumper is printed with
// its `message` header and its body, and the process exits 1.
//
//   npx tsx client-examples/node-stompit/subscribe.ts user_x user_x-secret 3
//
// STOMP_HOST (default 127.0.0.1) and STOMP_PORT (default 61613) say where Thumper's STOMP TCP
// listener is.

import stompit from 'stompit';
import type { Client, IncomingFrame, StompitError } from 'stompit';

const SUBSCRIPTION_ID = 'feed';
/** How long a graceful DISCONNECT may take before we leave anyway. */
const DISCONNECT_GRACE_MS = 5000;

interface Args {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Messages to receive before leaving; Infinity = until Ctrl-C. */
  readonly count: number;
}

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args | string {
  const [user, password, countText] = argv;
  if (user === undefined || password === undefined) return 'usage: subscribe.ts <user> <password> [count]   (STOMP_HOST, STOMP_PORT)';
  const count = countText === undefined ? Infinity : Number(countText);
  if (!Number.isInteger(count) && count !== Infinity) return `count must be a whole number, got ${JSON.stringify(countText)}`;
  if (count < 1) return 'count must be at least 1';
  const port = Number(env['STOMP_PORT'] || 61613);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `STOMP_PORT must be a port number, got ${JSON.stringify(env['STOMP_PORT'])}`;
  return { host: env['STOMP_HOST'] || '127.0.0.1', port, user, password, count };
}

/** One readable line (or two, with the ERROR body) saying what went wrong; never the passcode. */
function describeError(error: StompitError | Error): string {
  const e = error as Partial<StompitError>;
  if (e.isApplicationError?.() === true) {
    // An ERROR frame: `message` header first, then its body (RabbitMQ-style detail).
    return `ERROR from the server: ${error.message}${e.longMessage ? `\n${e.longMessage.trimEnd()}` : ''}`;
  }
  if (e.isTransportError?.() === true) return `connection failed: ${error.message}`;
  if (e.isProtocolError?.() === true) return `STOMP protocol error: ${error.message}`;
  return error.message;
}

function fail(error: StompitError | Error): never {
  console.error(describeError(error));
  process.exit(1);
}

/**
 * stompit's subscribe() takes no receipt callback; registering the listener and sending SUBSCRIBE
 * ourselves is the same thing plus a RECEIPT, so we can say when the subscription really exists.
 */
function subscribeWithReceipt(client: Client, destination: string, onMessage: (message: IncomingFrame) => void, onSubscribed: () => void): void {
  client.setImplicitSubscription(SUBSCRIPTION_ID, 'client-individual', (error, message) => {
    // stompit also hands the session's fatal error to every subscription; the client's 'error'
    // listener reports it once.
    if (error === null) onMessage(message);
  });
  client.sendFrame('SUBSCRIBE', { id: SUBSCRIPTION_ID, destination, ack: 'client-individual' }, { onReceipt: onSubscribed }).end();
}

function leave(client: Client, why: string): void {
  console.log(why);
  const timer = setTimeout(() => process.exit(0), DISCONNECT_GRACE_MS);
  // DISCONNECT with a receipt: every ACK sent before it has been processed when the RECEIPT comes.
  client.disconnect(() => {
    clearTimeout(timer);
    process.exit(0);
  });
}

function run(args: Args): void {
  const destination = `/exchange/feed/${args.user}`;
  let received = 0;
  stompit.connect(
    {
      host: args.host,
      port: args.port,
      // `host` here is the STOMP virtual host header, not the TCP host above.
      connectHeaders: { host: '/', login: args.user, passcode: args.password, 'heart-beat': '10000,10000' },
    },
    (error, client) => {
      if (error !== null) fail(error);
      client.on('error', fail);
      const { version, 'heart-beat': heartBeat } = client.headers;
      console.log(`connected to ${args.host}:${args.port} as ${args.user} (STOMP ${version ?? '1.0'}, heart-beat ${heartBeat ?? '0,0'})`);
      process.once('SIGINT', () => leave(client, `interrupted after ${received} message(s)`));

      subscribeWithReceipt(
        client,
        destination,
        (message) => {
          message.readString('utf-8', (readError, body) => {
            if (readError !== null) fail(readError);
            received++;
            const of = args.count === Infinity ? '' : `/${args.count}`;
            console.log(`message ${received}${of} on ${message.headers['destination'] ?? '?'} (message-id ${message.headers['message-id'] ?? '?'}): ${body ?? ''}`);
            client.ack(message);
            if (received === args.count) leave(client, `received ${received} message(s), disconnecting`);
          });
        },
        () => {
          const until = args.count === Infinity ? 'Ctrl-C' : `${args.count} message(s)`;
          console.log(`subscribed to ${destination} (ack client-individual); waiting for ${until}`);
        },
      );
    },
  );
}

const isStompitError = (e: unknown): e is StompitError => e instanceof Error && typeof (e as Partial<StompitError>).isApplicationError === 'function';

// stompit 1.0.0 destroys the wrong object when an ERROR frame has a text/plain body (Client.js
// onError calls `this.destroy` with `this` = the frame; gdaws/stompit#116, unmerged). Thumper and
// RabbitMQ always send such bodies, so the ERROR surfaces as an uncaught exception instead of reaching
// the connect callback or client.on('error'). This catches exactly that case and reports it the
// same way.
process.on('uncaughtException', (error) => {
  if (isStompitError(error)) fail(error);
  console.error(error);
  process.exit(1);
});

const args = parseArgs(process.argv.slice(2), process.env);
if (typeof args === 'string') {
  console.error(args);
  process.exit(2);
}
run(args);
