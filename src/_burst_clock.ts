// Reading the clock is a call into the runtime that costs more than most of what a put
// does, and puts come in synchronous bursts (a loop of put() calls, or one response's
// entries). A burst shares one reading, forgotten at the next microtask, so time never
// stands still across an await or a timer.

import type { Clock } from "./clock.ts";

export class BurstClock {
  readonly #clock: Clock;
  readonly #maxUses: number;
  #now = 0;
  #uses = 0;
  #ending = false;
  readonly #end = (): void => {
    this.#uses = 0;
    this.#ending = false;
  };

  /**
   * @param clock The clock to read.
   * @param maxUses How many calls of one burst share a reading (`Infinity`: all of them).
   */
  constructor(clock: Clock, maxUses: number) {
    this.#clock = clock;
    this.#maxUses = maxUses;
  }

  now(): number {
    if (this.#uses > 0) {
      this.#uses--;
      return this.#now;
    }
    this.#now = this.#clock.now();
    this.#uses = this.#maxUses - 1;
    if (!this.#ending) {
      this.#ending = true;
      queueMicrotask(this.#end);
    }
    return this.#now;
  }
}
