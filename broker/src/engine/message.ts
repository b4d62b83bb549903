// The engine-neutral message: AMQP 0-9-1 basic properties under amqplib's names, so the AMQP engine
// passes them through untouched and the memory engine stores the same shape.

export interface MessageProperties {
  contentType?: string;
  contentEncoding?: string;
  /** 2 = persistent. RabbitMQ's STOMP plugin leaves it unset unless `persistent:true`. */
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  /** Seconds since the epoch, as AMQP carries it. */
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
  /** The AMQP headers table. Values from STOMP are strings; from AMQP publishers, anything. */
  headers: Record<string, unknown>;
}

export interface OutboundMessage {
  readonly body: Buffer;
  readonly properties: MessageProperties;
}

export interface Delivery {
  readonly consumerTag: string;
  /** Per engine session, increasing from 1, as an AMQP channel numbers them. */
  readonly deliveryTag: number;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
}
