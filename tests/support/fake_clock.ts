/**
 * A clock for tests: time moves only when the test says so, and timers fire in order of
 * their due time as it moves.
 */
import type { Clock, TimerHandle } from "../../src/clock.ts";

interface FakeTimer {
  id: number;
  at: number;
  callback: () => void;
}

/** A {@linkcode Clock} whose time advances only through `advance()`. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: FakeTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, delayMs), callback };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }

  setPersistent(): void {}

  /** How many timers are armed. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer that comes due on the way, in order,
   * and letting promise callbacks run after each one.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (let fired = 0; fired < 100_000; fired++) {
      await settle();
      const next = this.#earliest();
      if (next === undefined || next.at > end) break;
      this.#now = Math.max(this.#now, next.at);
      this.#timers = this.#timers.filter((timer) => timer !== next);
      next.callback();
    }
    this.#now = end;
    await settle();
  }

  #earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const timer of this.#timers) {
      if (
        best === undefined || timer.at < best.at || (timer.at === best.at && timer.id < best.id)
      ) {
        best = timer;
      }
    }
    return best;
  }
}

/** Lets queued promise callbacks run (a bounded number of microtask turns). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}
