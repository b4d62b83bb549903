// Names of `/topic` and `/exchange` subscription queues (reference §1.4). They must match what
// RabbitMQ's plugin derives, byte for byte, so a durable subscription created through RabbitMQ is
// found again through Thumper (and the reverse): stomp-subscription- + base64url(md5(ETF({Name, Id}))).

import { createHash } from 'node:crypto';

const PREFIX = 'stomp-subscription-';

// Erlang external term format tags (minor version 1, as term_to_binary_compat:term_to_binary_1).
const VERSION_MAGIC = 0x83;
const SMALL_TUPLE_EXT = 0x68;
const NIL_EXT = 0x6a;
const STRING_EXT = 0x6b;
const LIST_EXT = 0x6c;
const BINARY_EXT = 0x6d;
const SMALL_INTEGER_EXT = 0x61;
const STRING_EXT_MAX = 0xffff;

/**
 * `name`: the routing-key part of the destination after `%2F` decoding (`''` for `/exchange/x`).
 * `id`: the `id` header for a durable subscription (a string: an Erlang list of its UTF-8 bytes in
 * 3.10.8), or random bytes for a non-durable one (a Buffer: an Erlang binary).
 */
export function subscriptionQueueName(name: string, id: string | Buffer): string {
  const term = Buffer.concat([
    Buffer.from([VERSION_MAGIC, SMALL_TUPLE_EXT, 2]),
    encodeByteList(Buffer.from(name, 'utf8')),
    typeof id === 'string' ? encodeByteList(Buffer.from(id, 'utf8')) : encodeBinary(id),
  ]);
  return PREFIX + createHash('md5').update(term).digest('base64url');
}

/** An Erlang string (list of bytes): `[]` is NIL_EXT, up to 65535 bytes STRING_EXT, else LIST_EXT. */
function encodeByteList(bytes: Buffer): Buffer {
  if (bytes.length === 0) return Buffer.from([NIL_EXT]);
  if (bytes.length <= STRING_EXT_MAX) {
    const head = Buffer.alloc(3);
    head[0] = STRING_EXT;
    head.writeUInt16BE(bytes.length, 1);
    return Buffer.concat([head, bytes]);
  }
  const out = Buffer.alloc(5 + bytes.length * 2 + 1);
  out[0] = LIST_EXT;
  out.writeUInt32BE(bytes.length, 1);
  let at = 5;
  for (const b of bytes) {
    out[at++] = SMALL_INTEGER_EXT;
    out[at++] = b;
  }
  out[at] = NIL_EXT;
  return out;
}

function encodeBinary(bytes: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = BINARY_EXT;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}
