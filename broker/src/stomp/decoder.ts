// Streaming STOMP decoder: bytes in, frames and heart-beats out. No I/O.
// An explicit state machine (after stomp-js/stompjs src/parser.ts and ws lib/receiver.js) that
// scans with Buffer.indexOf instead of byte by byte. Its results do not depend on how the input is
// chunked: every error is raised at the first byte position that proves it, and when one chunk
// proves several, the earliest position wins (ties: frame size, then line length, then syntax).

import { isUtf8 } from 'node:buffer';
import { stompError } from '../errors.js';
import type { StompError } from '../errors.js';
import { EMPTY_BODY } from './frame.js';
import type { Frame, HeaderList, StompVersion } from './frame.js';
import { ByteList } from './byte-list.js';
import { findInvalidEscape, unescapeHeader } from './escape.js';
import type { HeaderEscaping } from './escape.js';

/** Every limit has a safe default; all are byte or item counts, positive integers. */
export interface DecoderLimits {
  /** Whole frame after CONNECT: command line, header lines, blank line, body and NUL. Default 4 MiB (RabbitMQ 3.12.2+ `stomp.max_frame_size`). */
  readonly maxFrameBytes: number;
  /** Whole frame until setAuthenticated(). Default 64 KiB (RabbitMQ 4.2.6+ pre-login limit). */
  readonly maxFrameBytesBeforeConnect: number;
  /** Header lines per frame, repeats included. Default 100. */
  readonly maxHeaders: number;
  /** One header line, name and value, without its EOL. Default 64 KiB. */
  readonly maxHeaderLineBytes: number;
}

export const DEFAULT_DECODER_LIMITS: DecoderLimits = Object.freeze({
  maxFrameBytes: 4 * 1024 * 1024,
  maxFrameBytesBeforeConnect: 64 * 1024,
  maxHeaders: 100,
  maxHeaderLineBytes: 64 * 1024,
});

export type DecodeEvent = { readonly type: 'frame'; readonly frame: Frame } | { readonly type: 'heartbeat' };

export interface DecodeResult {
  readonly events: DecodeEvent[];
  readonly error?: StompError;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const HEAD_END = Buffer.from('\n\n');
const HEARTBEAT: DecodeEvent = Object.freeze({ type: 'heartbeat' });
const CONTENT_LENGTH = /^[0-9]+$/;
/** How much of a bad line an error detail quotes. */
const QUOTE_CHARS = 40;

type State =
  | 'idle' // between frames: EOLs are heart-beats, NULs are skipped
  | 'idle-cr' // between frames, after a CR that must be followed by LF
  | 'command'
  | 'headers'
  | 'body' // no content-length: up to the first NUL
  | 'body-sized' // content-length bytes
  | 'body-end'; // the NUL that must follow a content-length body

export class StompDecoder {
  readonly #limits: DecoderLimits;
  /** Session mode: hold input after each frame until setAuthenticated() (see push). */
  readonly #pauseUntilAuthenticated: boolean;
  #paused = false;
  #emitted = false;
  readonly #held = new ByteList();
  #escaping: HeaderEscaping = 'connect';
  #authenticated = false;
  #frameLimit: number;
  #state: State = 'idle';
  #error: StompError | undefined;
  // The frame in progress.
  #frameBytes = 0;
  #command = '';
  #headers: HeaderList = [];
  #contentLength = 0;
  readonly #parts = new ByteList(); // the unfinished line, or the body so far
  // Where the next NUL, CR and blank line are in the current chunk, so that successive lines and
  // frames do not rescan the same bytes: -1 none left in the chunk, -2 not searched yet.
  #nulAt = -2;
  #crAt = -2;
  #headEndAt = -2;

  /**
   * `pauseUntilAuthenticated`: stop after every frame decoded before setAuthenticated() and hold
   * the rest until resume(), so frames a client pipelines behind CONNECT are decoded with the
   * negotiated version and limits. The session uses it; plain decoding (tests, tools) does not.
   */
  constructor(limits: Partial<DecoderLimits> = {}, options: { pauseUntilAuthenticated?: boolean } = {}) {
    this.#pauseUntilAuthenticated = options.pauseUntilAuthenticated ?? false;
    this.#limits = { ...DEFAULT_DECODER_LIMITS, ...limits };
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`Decoder limit ${name} must be a positive integer, got ${String(value)}`);
    }
    this.#frameLimit = this.#limits.maxFrameBytesBeforeConnect;
  }

  /**
   * Header escaping for frames decoded from now on; until called, frames are decoded as CONNECT-time
   * frames (see HeaderEscaping). Frames already returned by push(), such as frames a client sent
   * right behind its CONNECT in the same chunk, keep the rules they were decoded with.
   */
  setVersion(version: StompVersion): void {
    this.#escaping = version;
  }

  /** After a successful CONNECT: switch from maxFrameBytesBeforeConnect to maxFrameBytes. */
  setAuthenticated(): void {
    this.#authenticated = true;
    this.#frameLimit = this.#limits.maxFrameBytes;
  }

  /**
   * Bytes the decoder holds between pushes: the unfinished line or body (never more than the frame
   * limit), or input held while paused (never more than maxFrameBytes + maxFrameBytesBeforeConnect).
   */
  get bufferedBytes(): number {
    return this.#parts.bytes + this.#held.bytes;
  }

  /**
   * Memory those bytes keep alive, including the chunks they point into and a fixed cost per
   * piece (an upper bound; for tests and diagnostics, O(pieces)). Stays within a small multiple of
   * bufferedBytes plus a constant, however the input was chunked.
   */
  get retainedBytes(): number {
    return this.#parts.retainedBytes + this.#held.retainedBytes;
  }

  /**
   * Feeds bytes. Returns what was decoded; on a framing error, the events decoded before it and the
   * error, after which the decoder refuses further input (returning the same error).
   * Bodies of frames that lie inside one chunk are views of that chunk, not copies.
   */
  push(chunk: Buffer): DecodeResult {
    if (this.#error) return { events: [], error: this.#error };
    if (this.#paused) return this.#hold(chunk);
    this.#emitted = false;
    const events: DecodeEvent[] = [];
    this.#nulAt = -2;
    this.#crAt = -2;
    this.#headEndAt = -2;
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.#state) {
        case 'idle':
        case 'idle-cr':
          pos = this.#skipBetweenFrames(chunk, pos, events);
          break;
        case 'command':
          if (this.#frameBytes === 0) {
            const next = this.#readHead(chunk, pos);
            if (next !== -1) {
              pos = next;
              break;
            }
          }
          pos = this.#readLine(chunk, pos);
          break;
        case 'headers':
          pos = this.#readLine(chunk, pos);
          break;
        case 'body':
          pos = this.#readBodyToNul(chunk, pos, events);
          break;
        case 'body-sized':
          pos = this.#readSizedBody(chunk, pos);
          break;
        case 'body-end':
          pos = this.#readFinalNul(chunk, pos, events);
          break;
      }
      if (this.#error) return { events, error: this.#error };
      if (this.#emitted && this.#pauseUntilAuthenticated && !this.#authenticated) {
        // Until CONNECT succeeds, stop after each frame: what follows must be decoded with the
        // negotiated version's escaping and the larger frame limit (clients may pipeline).
        this.#paused = true;
        const held = pos < chunk.length ? this.#hold(chunk.subarray(pos)) : undefined;
        return held?.error ? { events, error: held.error } : { events };
      }
    }
    this.#parts.settle();
    return { events };
  }

  /** True while input is held after a frame decoded before authentication. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Decodes what was held since the pause (call after setVersion()/setAuthenticated(), or after a refused frame). */
  resume(): DecodeResult {
    this.#paused = false;
    this.#emitted = false;
    const held = this.#held.drain();
    const events: DecodeEvent[] = [];
    for (let i = 0; i < held.length; i++) {
      const r = this.push(held[i]!);
      events.push(...r.events);
      if (r.error) return { events, error: r.error };
      if (this.#paused) {
        for (const rest of held.slice(i + 1)) this.#hold(rest);
        break;
      }
    }
    return { events };
  }

  #hold(chunk: Buffer): DecodeResult {
    // Bounded: a client may not stream without limit while its CONNECT is being authorized. One
    // largest frame behind the CONNECT fits, so a client that pipelines a full-size SEND behind its
    // CONNECT in one WebSocket message (ws.maxPayloadBytes is maxFrameBytes + 4 KiB) is not refused.
    const holdLimit = this.#limits.maxFrameBytes + this.#limits.maxFrameBytesBeforeConnect;
    if (this.#held.bytes + chunk.length > holdLimit) {
      this.#fail(stompError('FRAME_TOO_LARGE', `More than ${holdLimit} bytes sent before CONNECTED`));
      return { events: [], error: this.#error! };
    }
    this.#held.push(chunk);
    this.#held.settle();
    return { events: [] };
  }

  /** The first NUL at or after pos in chunk, or -1. Positions only grow within one push. */
  #nextNul(chunk: Buffer, pos: number): number {
    if (this.#nulAt !== -1 && this.#nulAt < pos) this.#nulAt = chunk.indexOf(NUL, pos);
    return this.#nulAt;
  }

  #nextCr(chunk: Buffer, pos: number): number {
    if (this.#crAt !== -1 && this.#crAt < pos) this.#crAt = chunk.indexOf(CR, pos);
    return this.#crAt;
  }

  #nextHeadEnd(chunk: Buffer, pos: number): number {
    if (this.#headEndAt !== -1 && this.#headEndAt < pos) this.#headEndAt = chunk.indexOf(HEAD_END, pos);
    return this.#headEndAt;
  }

  #fail(error: StompError): number {
    this.#error = error;
    this.#parts.clear();
    this.#held.clear();
    this.#headers = [];
    return 0;
  }

  #frameTooLarge(extra = ''): number {
    const which = this.#authenticated ? '' : ' (limit before CONNECT)';
    return this.#fail(stompError('FRAME_TOO_LARGE', `Frame exceeds ${this.#frameLimit} bytes${which}${extra}`));
  }

  #malformed(detail: string): number {
    return this.#fail(stompError('MALFORMED_FRAME', detail));
  }

  // STOMP 1.2 §Heart-beating: EOLs between frames are heart-beats; stray NULs are skipped as
  // RabbitMQ does (reference §2.2).
  #skipBetweenFrames(chunk: Buffer, pos: number, events: DecodeEvent[]): number {
    while (pos < chunk.length) {
      const byte = chunk[pos]!;
      if (this.#state === 'idle-cr') {
        if (byte !== LF) return this.#malformed('CR not followed by LF between frames');
        events.push(HEARTBEAT);
        this.#state = 'idle';
      } else if (byte === LF) {
        events.push(HEARTBEAT);
      } else if (byte === CR) {
        this.#state = 'idle-cr';
      } else if (byte !== NUL) {
        this.#state = 'command';
        this.#frameBytes = 0;
        return pos;
      }
      pos++;
    }
    return pos;
  }

  /**
   * Fast path for the common case: the whole head (command line to blank line) lies in this chunk,
   * ends its lines with LF and breaks no rule. One UTF-8 check and one decode for all of it; on
   * anything unusual it returns -1 and #readLine, which locates errors exactly, takes over.
   */
  #readHead(chunk: Buffer, pos: number): number {
    const headEnd = this.#nextHeadEnd(chunk, pos);
    if (headEnd === -1 || headEnd + 2 - pos > this.#frameLimit) return -1;
    const nul = this.#nextNul(chunk, pos);
    const cr = this.#nextCr(chunk, pos);
    if ((nul !== -1 && nul < headEnd) || (cr !== -1 && cr < headEnd)) return -1;
    const head = chunk.subarray(pos, headEnd);
    if (!isUtf8(head)) return -1;
    const text = head.toString('utf8');
    const { maxHeaders, maxHeaderLineBytes } = this.#limits;
    const escaping = this.#escaping;
    const headers: HeaderList = [];
    let eol = text.indexOf('\n');
    const command = eol === -1 ? text : text.slice(0, eol);
    while (eol !== -1) {
      const from = eol + 1;
      eol = text.indexOf('\n', from);
      const line = eol === -1 ? text.slice(from) : text.slice(from, eol);
      // A UTF-16 unit stands for one to three UTF-8 bytes.
      if (headers.length >= maxHeaders || line.length > maxHeaderLineBytes) return -1;
      if (line.length * 3 > maxHeaderLineBytes && Buffer.byteLength(line, 'utf8') > maxHeaderLineBytes) return -1;
      const colon = line.indexOf(':');
      if (colon < 1) return -1;
      const name = unescapeHeader(line.slice(0, colon), escaping);
      const value = unescapeHeader(line.slice(colon + 1), escaping);
      if (name === undefined || value === undefined) return -1;
      headers.push([name, value]);
    }
    this.#command = command;
    this.#headers = headers;
    this.#frameBytes = headEnd + 2 - pos;
    this.#endHeaders();
    return headEnd + 2;
  }

  /** Command and header lines: STOMP 1.2 §Augmented BNF, EOL is LF or CR LF. */
  #readLine(chunk: Buffer, pos: number): number {
    const lf = chunk.indexOf(LF, pos);
    const end = lf === -1 ? chunk.length : lf;
    const last = lf === -1 ? chunk.length - 1 : lf;
    // The earliest byte in [pos, last] that proves an error.
    let errorAt = pos + (this.#frameLimit - this.#frameBytes);
    let error: 'frame' | 'line' | 'nul' | undefined = errorAt <= last ? 'frame' : undefined;
    if (this.#state === 'headers') {
      const lineAt = this.#lineOverflowAt(chunk, pos, end);
      if (lineAt !== -1 && (error === undefined || lineAt < errorAt)) {
        errorAt = lineAt;
        error = 'line';
      }
    }
    const nul = this.#nextNul(chunk, pos);
    if (nul !== -1 && nul < end && (error === undefined || nul < errorAt)) error = 'nul';
    if (error === 'frame') return this.#frameTooLarge();
    if (error === 'line') return this.#fail(stompError('HEADER_TOO_LONG', `Header line exceeds ${this.#limits.maxHeaderLineBytes} bytes`));
    if (error === 'nul') return this.#malformed(`NUL byte inside the ${this.#state === 'command' ? 'command line' : 'headers'}`);

    if (lf === -1) {
      this.#keep(chunk.subarray(pos));
      this.#frameBytes += chunk.length - pos;
      return chunk.length;
    }
    let line: Buffer;
    let loneCr: boolean;
    if (this.#parts.isEmpty) {
      line = chunk.subarray(pos, lf);
      const cr = this.#nextCr(chunk, pos);
      loneCr = cr !== -1 && cr < lf - 1;
    } else {
      line = this.#parts.take(chunk.subarray(pos, lf));
      loneCr = line.subarray(0, -1).includes(CR);
    }
    this.#frameBytes += lf + 1 - pos;
    const content = line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line;
    if (loneCr) return this.#malformed(`CR not followed by LF in ${quote(content)}`);
    if (this.#state === 'command') {
      // The session validates the command; it only has to survive as text.
      this.#command = content.toString('utf8');
      this.#state = 'headers';
    } else if (content.length === 0) {
      this.#endHeaders();
    } else {
      this.#addHeader(content);
    }
    return lf + 1;
  }

  /**
   * Where in chunk[pos, end) the current header line, which has no LF before `end`, proves to be
   * longer than the limit; -1 if it does not. A CR at the limit may still be the CR of a CR LF.
   */
  #lineOverflowAt(chunk: Buffer, pos: number, end: number): number {
    // Index, relative to pos, of the line's first byte beyond the limit.
    const over = this.#limits.maxHeaderLineBytes - this.#parts.bytes;
    // over < 0: that byte is already kept, so it is a CR (anything else would have failed).
    if (over < 0) return pos < end ? pos : -1;
    const at = pos + over;
    if (at >= end) return -1;
    if (chunk[at] !== CR) return at;
    return at + 1 < end ? at + 1 : -1;
  }

  #addHeader(content: Buffer): void {
    const limits = this.#limits;
    if (this.#headers.length >= limits.maxHeaders) {
      this.#fail(stompError('TOO_MANY_HEADERS', `Frame has more than ${limits.maxHeaders} headers`));
      return;
    }
    if (!isUtf8(content)) {
      this.#fail(stompError('INVALID_UTF8', `Header line ${quote(content)} is not valid UTF-8`));
      return;
    }
    // One decode per line; a multi-byte UTF-8 sequence never contains the byte of ':'.
    const text = content.toString('utf8');
    const colon = text.indexOf(':');
    if (colon === -1) {
      this.#malformed(`Header line without ':' ${JSON.stringify(excerpt(text))}`);
      return;
    }
    if (colon === 0) {
      this.#malformed(`Header with an empty name ${JSON.stringify(excerpt(text))}`);
      return;
    }
    const rawName = text.slice(0, colon);
    const rawValue = text.slice(colon + 1);
    const name = unescapeHeader(rawName, this.#escaping);
    const value = name === undefined ? undefined : unescapeHeader(rawValue, this.#escaping);
    if (name === undefined || value === undefined) {
      const sequence = findInvalidEscape(rawName, this.#escaping) ?? findInvalidEscape(rawValue, this.#escaping) ?? '\\';
      this.#fail(
        stompError('INVALID_ESCAPE', `Invalid escape sequence ${JSON.stringify(sequence)} in header '${excerpt(rawName)}' (STOMP ${this.#escaping})`),
      );
      return;
    }
    this.#headers.push([name, value]);
  }

  // STOMP 1.2 §Header content-length: the first occurrence, if any, sizes the body.
  #endHeaders(): void {
    let declared: string | undefined;
    for (const [name, value] of this.#headers) {
      if (name === 'content-length') {
        declared = value;
        break;
      }
    }
    if (declared === undefined) {
      this.#state = 'body';
      return;
    }
    if (!CONTENT_LENGTH.test(declared)) {
      this.#malformed(`Invalid content-length ${JSON.stringify(declared)}: not a non-negative decimal integer`);
      return;
    }
    const length = Number(declared);
    // Checked before buffering anything: the body plus its NUL must fit.
    if (this.#frameBytes + length + 1 > this.#frameLimit) {
      this.#frameTooLarge(` (content-length ${declared})`);
      return;
    }
    this.#contentLength = length;
    this.#state = length === 0 ? 'body-end' : 'body-sized';
  }

  #readBodyToNul(chunk: Buffer, pos: number, events: DecodeEvent[]): number {
    const nul = this.#nextNul(chunk, pos);
    const end = nul === -1 ? chunk.length : nul + 1;
    if (this.#frameBytes + (end - pos) > this.#frameLimit) return this.#frameTooLarge();
    this.#frameBytes += end - pos;
    if (nul === -1) {
      this.#keep(chunk.subarray(pos));
      return end;
    }
    this.#keep(chunk.subarray(pos, nul));
    this.#emit(events);
    return end;
  }

  #readSizedBody(chunk: Buffer, pos: number): number {
    const take = Math.min(this.#contentLength - this.#parts.bytes, chunk.length - pos);
    this.#keep(chunk.subarray(pos, pos + take));
    this.#frameBytes += take;
    if (this.#parts.bytes === this.#contentLength) this.#state = 'body-end';
    return pos + take;
  }

  #readFinalNul(chunk: Buffer, pos: number, events: DecodeEvent[]): number {
    if (chunk[pos] !== NUL) return this.#malformed(`Body longer than its content-length ${this.#contentLength}: no NUL after it`);
    this.#frameBytes += 1;
    this.#emit(events);
    return pos + 1;
  }

  #keep(part: Buffer): void {
    this.#parts.push(part);
  }

  #emit(events: DecodeEvent[]): void {
    const body = this.#parts.isEmpty ? EMPTY_BODY : this.#parts.take();
    events.push({ type: 'frame', frame: { command: this.#command, headers: this.#headers, body } });
    this.#emitted = true;
    this.#headers = [];
    this.#command = '';
    this.#state = 'idle';
  }
}

/** A bounded excerpt of a bad line for an error detail. */
function excerpt(text: string): string {
  return text.length > QUOTE_CHARS ? text.slice(0, QUOTE_CHARS) + '…' : text;
}

function quote(bytes: Buffer): string {
  return JSON.stringify(excerpt(bytes.toString('utf8')));
}
