// A growable ring buffer: O(1) push/shift at both ends and insertion near the head, which is where
// requeued messages go back. Arrays would make every shift O(n) on a 100 000-message queue.

export class Deque<T> {
  #items: (T | undefined)[] = new Array<T | undefined>(16);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  at(index: number): T | undefined {
    if (index < 0 || index >= this.#length) return undefined;
    return this.#items[(this.#head + index) & (this.#items.length - 1)];
  }

  peek(): T | undefined {
    return this.at(0);
  }

  push(item: T): void {
    this.#grow();
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = item;
    this.#length++;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#length--;
    return item;
  }

  /** Inserts so that the item ends up at `index` (0 = head); moves the shorter side. */
  insertAt(index: number, item: T): void {
    const i = Math.max(0, Math.min(index, this.#length));
    this.#grow();
    const mask = this.#items.length - 1;
    if (i < this.#length / 2) {
      this.#head = (this.#head - 1) & mask;
      for (let k = 0; k < i; k++) {
        this.#items[(this.#head + k) & mask] = this.#items[(this.#head + k + 1) & mask];
      }
    } else {
      for (let k = this.#length; k > i; k--) {
        this.#items[(this.#head + k) & mask] = this.#items[(this.#head + k - 1) & mask];
      }
    }
    this.#items[(this.#head + i) & mask] = item;
    this.#length++;
  }

  /** Removes and returns every item, head first. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    this.#items = new Array<T | undefined>(16);
    this.#head = 0;
    return out;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#length; i++) yield this.at(i) as T;
  }

  #grow(): void {
    if (this.#length < this.#items.length) return;
    const bigger = new Array<T | undefined>(this.#items.length * 2);
    for (let i = 0; i < this.#length; i++) bigger[i] = this.at(i);
    this.#items = bigger;
    this.#head = 0;
  }
}
