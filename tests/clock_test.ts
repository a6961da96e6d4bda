import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../src/clock.ts";

test("systemClock.now() reads epoch milliseconds, never going back", () => {
  const before = Date.now();
  const first = systemClock.now();
  const second = systemClock.now();
  // Date.now() truncates to whole milliseconds; the clock keeps the fraction.
  assert.ok(first >= before - 1 && first <= Date.now() + 1, `${first} near ${before}`);
  assert.ok(second >= first);
});

test("systemClock runs a timer it set and never one it cleared", async () => {
  const ran: string[] = [];
  const cleared = systemClock.setTimer(() => ran.push("cleared"), 0);
  systemClock.clearTimer(cleared);
  await new Promise<void>((resolve) => {
    const handle = systemClock.setTimer(() => {
      ran.push("set");
      resolve();
    }, 0);
    systemClock.setPersistent(handle, false);
    systemClock.setPersistent(handle, true);
  });
  assert.deepEqual(ran, ["set"]);
});
