// Types of the destination → RabbitMQ mapping. The planner (pure) produces these; the session's
// plan executor runs them against whichever engine is configured, so both engines do the same thing.

/** A parsed STOMP destination (reference §1.1). Names are already `%2F`-decoded. */
export type Destination =
  | { readonly kind: 'exchange'; readonly exchange: string; readonly pattern: string | undefined }
  | { readonly kind: 'topic'; readonly name: string }
  | { readonly kind: 'queue'; readonly name: string }
  | { readonly kind: 'amq-queue'; readonly name: string }
  | { readonly kind: 'reply-queue'; readonly name: string }
  | { readonly kind: 'temp-queue'; readonly name: string };

export type Permission = 'configure' | 'write' | 'read';

/** What the authorizer must grant before the plan runs (reference §5.3), in RabbitMQ's order. */
export type PermissionCheck =
  | { readonly resource: 'exchange' | 'queue'; readonly name: string; readonly permission: Permission }
  | {
      readonly resource: 'topic';
      readonly name: string;
      readonly permission: 'read' | 'write';
      readonly routingKey: string;
      /**
       * RabbitMQ makes topic checks only on topic exchanges, except the one STOMP itself makes
       * first on every `/topic` SUBSCRIBE (reference §5.3): that one has `always: true`.
       */
      readonly always?: true;
    };

/** An AMQP field value as queue/consumer arguments need it (x-stream-offset may be a timestamp). */
export type ArgValue = string | number | { readonly type: 'timestamp'; readonly value: number };
export type ArgTable = Readonly<Record<string, ArgValue>>;

export interface QueueSpec {
  /** '' asks the engine for a server-generated name (`amq.gen-…`), used by temp queues. */
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly exclusive: boolean;
  readonly arguments: ArgTable;
}

export interface Binding {
  readonly exchange: string;
  readonly routingKey: string;
}

export interface SendPlan {
  readonly exchange: string; // '' is the default exchange
  readonly routingKey: string;
  /** `/queue/<n>`: declared the first time this session uses the name. */
  readonly declare: QueueSpec | undefined;
  readonly checks: readonly PermissionCheck[];
}

export type AckMode = 'auto' | 'client' | 'client-individual';

export interface SubscribePlan {
  readonly queue: QueueSpec;
  /** false: consume an existing queue (`/amq/queue`, `/reply-queue`); it must exist. */
  readonly declare: boolean;
  readonly bindings: readonly Binding[];
  /** `/exchange`, `/topic`: delete the just-declared queue if consume or bind fails. */
  readonly deleteOnFailure: boolean;
  readonly durableSubscription: boolean;
  readonly ack: AckMode;
  /** From `prefetch-count`; applies to this and later consumers of the session (RabbitMQ: basic.qos). */
  readonly prefetch: number | undefined;
  readonly consumerArgs: ArgTable;
  readonly checks: readonly PermissionCheck[];
}

export interface UnsubscribePlan {
  /** Durable `/topic` subscription removed with `durable:true` on UNSUBSCRIBE (reference §1.5). */
  readonly deleteQueue: string | undefined;
  readonly checks: readonly PermissionCheck[];
}
