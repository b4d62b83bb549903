// A backend publishing to one user's feed over AMQP with amqplib, the way the seed use case does it:
// topic exchange `feed` (durable), routing key = the user name, persistent messages, publisher
// confirms. Thumper delivers it to every STOMP client of that user subscribed to
// /exchange/feed/<user>.
//
//   npx tsx client-examples/node-publisher/publish.ts user_x "hello"
//
// AMQP_URL (default: the docker compose stack's publisher login), FEED_USER and FEED_TEXT stand in
// for missing arguments. Exits 0 once the broker has confirmed the message.

import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';

const DEFAULT_AMQP_URL = 'amqp://publisher:publisher-secret@127.0.0.1:5672';
const EXCHANGE = 'feed';

interface Args {
  readonly amqpUrl: string;
  readonly user: string;
  readonly text: string;
}

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args | string {
  // An empty variable counts as unset.
  const user = argv[0] ?? (env['FEED_USER'] || undefined);
  const text = argv[1] ?? (env['FEED_TEXT'] || 'hello');
  if (user === undefined || user === '') return 'usage: publish.ts <user> [message text]   (or FEED_USER, FEED_TEXT; AMQP_URL)';
  // The routing key is matched against the subscriber's binding word by word: a user name with
  // `.`, `*` or `#` would reach other users' bindings.
  if (/[.*#]/.test(user)) return `user name ${JSON.stringify(user)} must not contain '.', '*' or '#'`;
  return { amqpUrl: env['AMQP_URL'] || DEFAULT_AMQP_URL, user, text };
}

/** The URL without its password, for printing. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable AMQP_URL)';
  }
}

async function publish(args: Args): Promise<void> {
  const connection = await amqp.connect(args.amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    // Same flags as everyone else declaring `feed` (Thumper's tests, the other examples): a declare
    // with different flags would close the channel with PRECONDITION_FAILED.
    await channel.assertExchange(EXCHANGE, 'topic', { durable: true });
    const messageId = randomUUID();
    channel.publish(EXCHANGE, args.user, Buffer.from(args.text, 'utf8'), {
      persistent: true,
      contentType: 'text/plain',
      messageId,
      timestamp: Math.floor(Date.now() / 1000),
    });
    // Resolves once the broker has taken responsibility for the message (publisher confirms).
    await channel.waitForConfirms();
    console.log(
      `published ${JSON.stringify(args.text)} to exchange ${EXCHANGE}, routing key ${args.user} ` +
        `(message-id ${messageId}, persistent, confirmed by ${redact(args.amqpUrl)})`,
    );
    await channel.close();
  } finally {
    await connection.close();
  }
}

const args = parseArgs(process.argv.slice(2), process.env);
if (typeof args === 'string') {
  console.error(args);
  process.exit(2);
}
try {
  await publish(args);
} catch (err) {
  console.error(`publish failed: ${(err as Error).message}`);
  process.exit(1);
}
