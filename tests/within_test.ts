import assert from "node:assert/strict";
import { test } from "node:test";
import { within } from "../src/_within.ts";
import { Scheduler } from "../src/scheduler.ts";
import { FakeClock } from "./support/fake_clock.ts";

function setup() {
  const clock = new FakeClock();
  return { clock, scheduler: new Scheduler(clock) };
}

test("within() is done when the promise settles first, and leaves no timer", async () => {
  const { clock, scheduler } = setup();
  assert.equal(await within(Promise.resolve(), 1000, scheduler), "done");
  assert.equal(scheduler.size, 0, "the deadline was cancelled");
  scheduler.close();
  assert.equal(clock.pendingTimers, 0);
});

test("within() times out after ms on the scheduler's clock", async () => {
  const { clock, scheduler } = setup();
  const waiting = within(new Promise(() => {}), 1000, scheduler);
  await clock.advance(999);
  let outcome: string | undefined;
  void waiting.then((value) => (outcome = value));
  await clock.advance(0);
  assert.equal(outcome, undefined, "not before the deadline");
  await clock.advance(1);
  assert.equal(await waiting, "timeout");
  scheduler.close();
});

test("within() stops when the signal aborts, and at once for an aborted signal", async () => {
  const { scheduler } = setup();
  const controller = new AbortController();
  const waiting = within(new Promise(() => {}), 1000, scheduler, controller.signal);
  controller.abort();
  assert.equal(await waiting, "aborted");
  assert.equal(await within(new Promise(() => {}), 1000, scheduler, controller.signal), "aborted");
  assert.equal(scheduler.size, 0, "the deadline was cancelled");
  scheduler.close();
});

test("within() rejects when the promise rejects first", async () => {
  const { scheduler } = setup();
  await assert.rejects(within(Promise.reject(new Error("boom")), 1000, scheduler), /boom/);
  assert.equal(scheduler.size, 0);
  scheduler.close();
});
