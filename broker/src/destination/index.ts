// The destination → RabbitMQ mapping (reference §1): parsing, MESSAGE formatting, subscription
// queue names, queue/consumer arguments and the SEND/SUBSCRIBE/UNSUBSCRIBE plans. All pure.

export * from './types.js';
export {
  DESTINATION_PREFIXES,
  REPLY_TO_DESTINATION_PREFIXES,
  parseDestination,
  parseEndpoint,
  replyToTempQueue,
  unescapeName,
} from './parse.js';
export { escapeName, formatDestination } from './format.js';
export { subscriptionQueueName } from './queue-name.js';
export { QUEUE_ARGUMENT_HEADERS, consumerArguments, queueArguments } from './queue-args.js';
export {
  checkDurableId,
  declareChecks,
  hasDurableHeader,
  parseAckMode,
  planSend,
  planSubscribe,
  planUnsubscribe,
  withoutDeclareChecks,
  type PlanOptions,
  type SubscribePlanOptions,
} from './plan.js';
export { SUBSCRIPTION_QUEUE_PREFIX, directSubscriptionQueueUse } from './subscription-queue-guard.js';
