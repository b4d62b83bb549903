// The `destination` header of a MESSAGE, built from the delivery's exchange and routing key
// (reference §1.8; code: rabbit_stomp_util:format_destination/2). Deliberately not the inverse of
// parseDestination: only `%2F` is decoded on input, but `%` and non-ASCII bytes are escaped here.

/** Exchange `amq.topic` (literally, not the configured default) is shown as `/topic/…`. */
export function formatDestination(exchange: string, routingKey: string): string {
  if (exchange === '') return '/queue/' + escapeName(routingKey);
  if (exchange === 'amq.topic') return '/topic/' + escapeName(routingKey);
  if (routingKey === '') return '/exchange/' + escapeName(exchange);
  return '/exchange/' + escapeName(exchange) + '/' + escapeName(routingKey);
}

/**
 * Works on UTF-8 bytes like RabbitMQ: `/` → `%2F`, `%` → `%25`, bytes below 0x20 or above 0x7F →
 * `%XX` (upper-case hex). 0x7F itself passes through, as in RabbitMQ.
 */
export function escapeName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    if (byte === 0x2f) out += '%2F';
    else if (byte === 0x25) out += '%25';
    else if (byte < 0x20 || byte > 0x7f) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    else out += String.fromCharCode(byte);
  }
  return out;
}
