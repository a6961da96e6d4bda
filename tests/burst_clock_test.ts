import assert from "node:assert/strict";
import { test } from "node:test";
import { BurstClock } from "../src/_burst_clock.ts";
import type { Clock } from "../src/clock.ts";

/** A clock whose every reading is one more than the last, counting its reads. */
function countingClock(): Clock & { reads: number } {
  const clock = {
    reads: 0,
    now: () => ++clock.reads,
    setTimer: () => 0,
    clearTimer: () => {},
    setPersistent: () => {},
  };
  return clock;
}

test("BurstClock shares one reading within a synchronous burst and reads again after it", async () => {
  const clock = countingClock();
  const burst = new BurstClock(clock, Infinity);
  assert.deepEqual([burst.now(), burst.now(), burst.now()], [1, 1, 1]);
  assert.equal(clock.reads, 1);
  await Promise.resolve();
  assert.equal(burst.now(), 2, "a microtask later, time moves again");
});

test("BurstClock reads again after maxUses calls of one burst", () => {
  const clock = countingClock();
  const burst = new BurstClock(clock, 2);
  assert.deepEqual([burst.now(), burst.now(), burst.now(), burst.now()], [1, 1, 2, 2]);
});
