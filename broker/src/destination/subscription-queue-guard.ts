// Thumper's one deliberate tightening of RabbitMQ's destination rules, for per-user isolation.
// Every `/topic` and `/exchange` subscription queue is called `stomp-subscription-…` (reference
// §1.4), whoever owns it, so a permission rule can only grant all of them or none. RabbitMQ's
// plugin lets a client name one directly (`/amq/queue/<it>`, `/queue/<it>`, `x-queue-name: <it>`)
// and so consume, feed or delete another user's subscription; a durable one's name is even
// predictable from its routing key and `id`. Thumper reaches these queues only through the
// destination that derives their name, where the topic permission on the routing key applies.

import { stompError, type StompError } from '../errors.js';
import { getHeader, type Frame } from '../stomp/frame.js';
import type { Destination } from './types.js';

export const SUBSCRIPTION_QUEUE_PREFIX = 'stomp-subscription-';

/** The ACCESS_REFUSED for a frame that names a subscription queue directly, or undefined. */
export function directSubscriptionQueueUse(dest: Destination | undefined, frame: Frame, vhost: string): StompError | undefined {
  let named: string | undefined;
  if (dest && (dest.kind === 'queue' || dest.kind === 'amq-queue' || dest.kind === 'reply-queue')) {
    named = dest.name;
  } else if (frame.command !== 'SEND' && (dest === undefined || dest.kind === 'topic' || dest.kind === 'exchange')) {
    // SUBSCRIBE and UNSUBSCRIBE on /topic and /exchange take `x-queue-name` (reference §1.4, §1.5).
    named = getHeader(frame, 'x-queue-name');
  }
  if (named === undefined || !named.startsWith(SUBSCRIPTION_QUEUE_PREFIX)) return undefined;
  return stompError(
    'ACCESS_REFUSED',
    `ACCESS_REFUSED - queue '${named}' in vhost '${vhost}' is a subscription queue: ` +
      'it is reached only through the /topic or /exchange destination it was created for',
  );
}
