// A user's app in Node with @stomp/stompjs over WebSocket (the `ws` package), logged in with a JWT:
// it asks the auth service (auth-backend's POST /login) for a token before every (re)connect,
// hands it to Thumper as the CONNECT passcode, subscribes to its own feed
// (/exchange/feed/<user>), answers each message on /exchange/replies/<user>, and leaves once N
// replies are confirmed by RECEIPT.
//
//   npx tsx client-examples/node-stompjs/client.ts user_x user_x-secret 3
//
// THUMPER_WS_URL (default ws://127.0.0.1:15674/ws) and AUTH_URL (default http://127.0.0.1:8000)
// say where Thumper and the auth service are.

import { Client } from '@stomp/stompjs';
import type { IFrame, IMessage, IStompSocket } from '@stomp/stompjs';
import { WebSocket } from 'ws';

const LOGIN_TIMEOUT_MS = 10_000;

interface Args {
  readonly wsUrl: string;
  readonly authUrl: string;
  readonly user: string;
  readonly password: string;
  /** Replies to confirm before leaving; Infinity = until Ctrl-C. */
  readonly count: number;
}

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args | string {
  const [user, password, countText] = argv;
  if (user === undefined || password === undefined) return 'usage: client.ts <user> <password> [count]   (THUMPER_WS_URL, AUTH_URL)';
  const count = countText === undefined ? Infinity : Number(countText);
  if ((!Number.isInteger(count) && count !== Infinity) || count < 1) return `count must be a whole number of at least 1, got ${JSON.stringify(countText)}`;
  return {
    wsUrl: env['THUMPER_WS_URL'] || 'ws://127.0.0.1:15674/ws',
    authUrl: (env['AUTH_URL'] || 'http://127.0.0.1:8000').replace(/\/$/, ''),
    user,
    password,
    count,
  };
}

function fail(why: string): never {
  console.error(why);
  process.exit(1);
}

/** POST /login → the token; the password goes to the auth service only, never to Thumper. */
async function fetchToken(authUrl: string, username: string, password: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${authUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
      signal: AbortSignal.timeout(LOGIN_TIMEOUT_MS),
    });
  } catch (err) {
    return fail(`login at ${authUrl}/login failed: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { token?: unknown; error?: unknown };
  if (res.status !== 200 || typeof body.token !== 'string') {
    return fail(`login at ${authUrl}/login refused: HTTP ${res.status} ${typeof body.error === 'string' ? body.error : ''}`.trimEnd());
  }
  return body.token;
}

function run(args: Args): void {
  const feed = `/exchange/feed/${args.user}`;
  const replies = `/exchange/replies/${args.user}`;
  let received = 0;
  let confirmed = 0;
  let receiptSeq = 0;

  const client = new Client({
    // Node has no global WebSocket in v20: `ws` stands in for the browser's. Thumper picks STOMP 1.2
    // from the subprotocol and the CONNECT's accept-version.
    webSocketFactory: () => new WebSocket(args.wsUrl, ['v12.stomp']) as unknown as IStompSocket,
    // Browsers cannot set headers on the WebSocket upgrade; there the token can ride in the URL
    // instead of the passcode (Thumper reads `?access_token=`):
    //   new WebSocket(`${args.wsUrl}?access_token=${encodeURIComponent(token)}`, ['v12.stomp'])
    // and connectHeaders then need only `host`.
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
    // After a dropped connection (or an expired token) stompjs reconnects; beforeConnect fetches a
    // fresh token each time, so a reconnect never presents a stale one.
    reconnectDelay: 2000,
    beforeConnect: async (c) => {
      const token = await fetchToken(args.authUrl, args.user, args.password);
      // The token's `sub` names the user; Thumper ignores `login` when a JWT is the passcode.
      c.connectHeaders = { host: '/', login: args.user, passcode: token };
    },
    debug: () => {},
  });

  const leave = (why: string): void => {
    console.log(why);
    void client.deactivate().then(() => process.exit(0));
  };

  const reply = (message: IMessage): void => {
    const receipt = `reply-${++receiptSeq}`;
    const body = `re: ${message.body}`;
    client.watchForReceipt(receipt, () => {
      confirmed++;
      console.log(`replied on ${replies}: ${JSON.stringify(body)} (RECEIPT ${receipt})`);
      if (confirmed === args.count) leave(`${confirmed} repl${confirmed === 1 ? 'y' : 'ies'} confirmed, disconnecting`);
    });
    client.publish({ destination: replies, body, headers: { 'content-type': 'text/plain', receipt } });
  };

  client.onConnect = (frame: IFrame) => {
    console.log(`connected to ${args.wsUrl} as ${args.user} with a JWT (STOMP ${frame.headers['version'] ?? '?'}, heart-beat ${frame.headers['heart-beat'] ?? '0,0'})`);
    client.watchForReceipt('subscribed', () => console.log(`subscribed to ${feed}`));
    client.subscribe(
      feed,
      (message) => {
        received++;
        console.log(`message ${received} on ${message.headers['destination'] ?? '?'}: ${message.body}`);
        reply(message);
      },
      { receipt: 'subscribed' },
    );
  };

  client.onStompError = (frame: IFrame) => {
    const message = frame.headers['message'] ?? 'ERROR';
    // A token that expires mid-session ends it; the reconnect logs in again.
    if (message === 'token expired') {
      console.log('token expired; reconnecting with a fresh one');
      return;
    }
    fail(`ERROR from the server: ${message}${frame.body ? `\n${frame.body.trimEnd()}` : ''}`);
  };
  client.onWebSocketClose = (event: { code?: number }) => {
    if (client.active) console.log(`connection closed (code ${event.code ?? '?'}); reconnecting`);
  };

  process.once('SIGINT', () => leave(`interrupted after ${received} message(s)`));
  client.activate();
}

const args = parseArgs(process.argv.slice(2), process.env);
if (typeof args === 'string') {
  console.error(args);
  process.exit(2);
}
run(args);
