/**
 * Time as the producer sees it. Every stage reads time and arms timers through a
 * {@linkcode Clock}, so tests can inject a fake one and step through deadlines without
 * waiting for real time to pass.
 *
 * @module
 */

import { refTimer, unrefTimer } from "./_timer_ref.ts";

/** An opaque handle for a timer armed by a {@linkcode Clock}. */
export type TimerHandle = unknown;

/** A source of time and timers. */
export interface Clock {
  /** Milliseconds since the Unix epoch; never goes backwards. */
  now(): number;
  /**
   * Calls `callback` once, about `delayMs` from now.
   *
   * @param callback What to run.
   * @param delayMs How long to wait, in milliseconds.
   * @returns A handle for {@linkcode Clock.clearTimer} and {@linkcode Clock.setPersistent}.
   */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  /**
   * Disarms a timer; a handle that already fired or was cleared is ignored.
   *
   * @param handle The timer to disarm.
   */
  clearTimer(handle: TimerHandle): void;
  /**
   * Says whether a pending timer keeps the process alive.
   *
   * @param handle The timer.
   * @param persistent `true` to keep the process alive until the timer fires.
   */
  setPersistent(handle: TimerHandle, persistent: boolean): void;
}

/**
 * The real clock: `performance.timeOrigin + performance.now()` (epoch milliseconds that
 * never step backwards when the wall clock is adjusted) and the runtime's timers.
 */
export const systemClock: Clock = {
  now(): number {
    return performance.timeOrigin + performance.now();
  },
  setTimer(callback: () => void, delayMs: number): TimerHandle {
    return setTimeout(callback, delayMs);
  },
  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as number);
  },
  setPersistent(handle: TimerHandle, persistent: boolean): void {
    if (persistent) refTimer(handle);
    else unrefTimer(handle);
  },
};
