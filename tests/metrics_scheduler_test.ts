import assert from "node:assert/strict";
import { test } from "node:test";
import { onScheduler, schedulerOf } from "../src/_metrics_scheduler.ts";
import { Scheduler } from "../src/scheduler.ts";
import { FakeClock } from "./support/fake_clock.ts";

test("onScheduler() marks one options object with a scheduler that schedulerOf() finds", () => {
  const scheduler = new Scheduler(new FakeClock());
  const options = { level: "summary" as const };
  assert.equal(onScheduler(options, scheduler), options);
  assert.equal(schedulerOf(options), scheduler);
  assert.equal(schedulerOf({ level: "summary" }), undefined, "a copy is not marked");
  scheduler.close();
});
