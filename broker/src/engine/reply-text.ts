// AMQP 0-9-1 carries a channel error's reply-text as a shortstr (at most 255 bytes); RabbitMQ cuts
// longer texts to 252 bytes plus '...'. Both engines word errors the same way, so both cut the same way.

export function capReplyText(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length > 255 ? `${bytes.subarray(0, 252).toString('utf8')}...` : text;
}
