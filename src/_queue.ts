// A first-in, first-out queue on an array and a head index: taking from the front is O(1)
// and allocates nothing, and the array is cut down once most of it is taken slots.

/** Taken slots the array may carry before it is cut down (and only when they are most of it). */
const COMPACT_AFTER = 1024;

export class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

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
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > COMPACT_AFTER && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Takes every item, front first, and leaves the queue empty. */
  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }
}
