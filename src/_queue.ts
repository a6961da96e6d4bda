// A first-in, first-out queue on an array and a head index: taking from the front is O(1)
// and allocates nothing, and the array is cut down once most of it is taken slots.

/** Taken slots the array may carry before it is cut down (and only when they are most of it). */
const COMPACT_AFTER = 1024;

export class Queue<T> {
  readonly #compactAfter: number;
  #items: (T | undefined)[] = [];
  #head = 0;

  /** @param compactAfter Taken slots kept before the array is cut down. */
  constructor(compactAfter: number = COMPACT_AFTER) {
    this.#compactAfter = compactAfter;
  }

  /** Items in the queue. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Adds an item at the back. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** The item at the front, left in place. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Takes the item at the front. */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head >= items.length) return undefined;
    const item = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head > this.#compactAfter && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /**
   * Inserts `item` in order of `key`, after the items with an equal key. Items mostly
   * arrive in order, so this is usually a push.
   */
  insertOrdered(item: T, key: (item: T) => number): void {
    const items = this.#items;
    const value = key(item);
    const size = items.length;
    if (size === this.#head || key(items[size - 1]!) <= value) {
      items.push(item);
      return;
    }
    let low = this.#head;
    let high = size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (key(items[mid]!) <= value) low = mid + 1;
      else high = mid;
    }
    items.splice(low, 0, item);
  }

  /** Takes out the items `test` picks, keeping the others in order; returns those taken. */
  removeWhere(test: (item: T) => boolean): T[] {
    const items = this.#items;
    const removed: T[] = [];
    let kept = this.#head;
    for (let i = this.#head; i < items.length; i++) {
      const item = items[i]!;
      if (test(item)) removed.push(item);
      else items[kept++] = item;
    }
    items.length = kept;
    return removed;
  }

  /** Takes every item, front first, and leaves the queue empty. */
  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }
}
