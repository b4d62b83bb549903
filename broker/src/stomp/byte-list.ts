// The bytes a streaming decoder keeps between chunks: the unfinished line or body, or input held
// while paused. While a chunk is being decoded its pieces are kept as views (a frame that lies
// inside one chunk is never copied); settle(), at the end of each chunk, compacts what has to
// stay. Without that, memory would not be bounded by the byte count a limit checks: a client that
// sends one byte per WebSocket message would cost one Buffer object (~100 bytes of heap) per byte,
// and a few bytes left over from a large chunk would pin the whole chunk.

/** Pieces up to this size are copied into shared blocks instead of being kept one object each. */
const SMALL_PIECE_BYTES = 4096;
const BLOCK_BYTES = 16 * 1024;

export class ByteList {
  #items: Buffer[] = [];
  #bytes = 0;
  /** Items before this index are compacted. */
  #settled = 0;
  /** The block small pieces are packed into; items[#blockIndex] is its used part [0, #blockTo). */
  #block: Buffer | undefined;
  #blockIndex = -1;
  #blockTo = 0;

  /** Bytes kept. */
  get bytes(): number {
    return this.#bytes;
  }

  get isEmpty(): boolean {
    return this.#items.length === 0;
  }

  /** The pieces, oldest first (views; valid until the next change). */
  get items(): readonly Buffer[] {
    return this.#items;
  }

  /**
   * Memory the list keeps alive: every distinct backing store its pieces point into, plus a fixed
   * cost per piece. An upper bound (a pooled small Buffer counts its whole pool slab).
   */
  get retainedBytes(): number {
    const stores = new Set<ArrayBufferLike>();
    let total = 0;
    for (const item of this.#items) {
      total += PIECE_OVERHEAD_BYTES;
      if (stores.has(item.buffer)) continue;
      stores.add(item.buffer);
      total += item.buffer.byteLength;
    }
    return total;
  }

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#items.push(piece);
    this.#bytes += piece.length;
  }

  /** All pieces (then `tail`) as one Buffer: a view when there is only one; the list is emptied. */
  take(tail?: Buffer): Buffer {
    const items = tail && tail.length > 0 ? [...this.#items, tail] : this.#items;
    const total = this.#bytes + (tail?.length ?? 0);
    this.clear();
    if (items.length === 1) return items[0]!;
    return Buffer.concat(items, total);
  }

  /** Removes and returns the pieces, oldest first. */
  drain(): Buffer[] {
    const items = this.#items;
    this.clear();
    return items;
  }

  clear(): void {
    this.#items = [];
    this.#bytes = 0;
    this.#settled = 0;
    this.#block = undefined;
    this.#blockIndex = -1;
  }

  /** Compacts the pieces pushed since the last call; the caller's chunks may then be released. */
  settle(): void {
    const items = this.#items;
    for (let i = this.#settled; i < items.length; i++) {
      const piece = items[i]!;
      if (piece.length <= SMALL_PIECE_BYTES) {
        const block = this.#block;
        if (block && this.#blockIndex === i - 1 && this.#blockTo + piece.length <= block.length) {
          piece.copy(block, this.#blockTo);
          this.#blockTo += piece.length;
          items[i - 1] = block.subarray(0, this.#blockTo);
          items.splice(i, 1);
          i--;
          continue;
        }
        const fresh = Buffer.allocUnsafeSlow(BLOCK_BYTES);
        piece.copy(fresh, 0);
        this.#block = fresh;
        this.#blockIndex = i;
        this.#blockTo = piece.length;
        items[i] = fresh.subarray(0, piece.length);
      } else if (piece.buffer.byteLength > 2 * piece.length) {
        // A small part of a large chunk: copy it so the chunk can go.
        items[i] = Buffer.from(piece);
      }
    }
    this.#settled = items.length;
  }
}

/** What one kept Buffer object costs besides its bytes (object, view and array slot), roughly. */
export const PIECE_OVERHEAD_BYTES = 128;
