// STOMP frame encoder: Frame -> wire bytes. Runs once per delivered message, so the output is
// allocated once at its final size and written in place.

import type { Frame, StompVersion } from './frame.js';
import { escapeHeader } from './escape.js';

const NUL = 0x00;

/** A server heart-beat: one EOL (STOMP 1.2 §Heart-beating). */
export const HEARTBEAT_EOL: Buffer = Buffer.from('\n');

/**
 * `COMMAND\n`, `name:value\n` per header in the given order, `\n`, body, NUL
 * (STOMP 1.2 §STOMP Frames). No EOL follows the NUL (RabbitMQ adds one by default; clients
 * ignore it either way, and without it every frame is one byte shorter).
 * A `content-length` header is appended last when the body is non-empty and the caller did not
 * set one, so bodies may carry NUL bytes (STOMP 1.2 §Header content-length).
 */
export function encodeFrame(frame: Frame, version: StompVersion): Buffer {
  const body = frame.body;
  let head = frame.command + '\n';
  let hasContentLength = false;
  for (const [name, value] of frame.headers) {
    if (name === 'content-length') hasContentLength = true;
    head += escapeHeader(name, version) + ':' + escapeHeader(value, version) + '\n';
  }
  if (!hasContentLength && body.length > 0) head += 'content-length:' + String(body.length) + '\n';
  head += '\n';
  const headBytes = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes + body.length + 1);
  out.write(head, 0, 'utf8');
  body.copy(out, headBytes);
  out[headBytes + body.length] = NUL;
  return out;
}

