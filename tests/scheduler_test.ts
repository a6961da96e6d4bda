import { test } from "node:test";
import assert from "node:assert/strict";
import { Deadline, Scheduler } from "../src/scheduler.ts";
import { FakeClock } from "./support/fake_clock.ts";

function recorder(log: string[], name: string) {
  return { onDeadline: () => void log.push(name) };
}

test("Scheduler runs deadlines in time order from one timer", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler(clock);
  const log: string[] = [];
  const a = new Deadline(recorder(log, "a"));
  const b = new Deadline(recorder(log, "b"));
  const c = new Deadline(recorder(log, "c"));
  scheduler.schedule(a, clock.now() + 30);
  scheduler.schedule(b, clock.now() + 10);
  scheduler.schedule(c, clock.now() + 20);
  assert.equal(clock.pendingTimers, 1);
  await clock.advance(15);
  assert.deepEqual(log, ["b"]);
  await clock.advance(100);
  assert.deepEqual(log, ["b", "c", "a"]);
  assert.equal(clock.pendingTimers, 0);
});

test("Scheduler.schedule() moves a deadline that is already scheduled", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler(clock);
  const log: string[] = [];
  const a = new Deadline(recorder(log, "a"));
  const b = new Deadline(recorder(log, "b"));
  scheduler.schedule(a, clock.now() + 10);
  scheduler.schedule(b, clock.now() + 20);
  scheduler.schedule(a, clock.now() + 30);
  await clock.advance(25);
  assert.deepEqual(log, ["b"]);
  scheduler.cancel(a);
  await clock.advance(25);
  assert.deepEqual(log, ["b"]);
  assert.equal(scheduler.size, 0);
});

test("Scheduler keeps equal deadlines in scheduling order and survives many entries", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler(clock);
  const log: string[] = [];
  const deadlines = Array.from({ length: 200 }, (_, i) => new Deadline(recorder(log, `d${i}`)));
  // Schedule in a scrambled order with several ties.
  for (let i = 0; i < deadlines.length; i++) {
    scheduler.schedule(deadlines[(i * 37) % 200]!, clock.now() + ((i * 37) % 200) % 10);
  }
  for (let i = 0; i < 200; i += 3) scheduler.cancel(deadlines[i]!);
  await clock.advance(10);
  const expected = deadlines
    .map((_, i) => i)
    .filter((i) => i % 3 !== 0)
    .sort((x, y) => (x % 10) - (y % 10) || order(x) - order(y))
    .map((i) => `d${i}`);
  assert.deepEqual(log, expected);

  function order(index: number): number {
    for (let i = 0; i < 200; i++) if ((i * 37) % 200 === index) return i;
    return -1;
  }
});

test("Scheduler.close() disarms the clock timer", () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler(clock);
  scheduler.schedule(new Deadline({ onDeadline() {} }), clock.now() + 10);
  assert.equal(clock.pendingTimers, 1);
  scheduler.close();
  assert.equal(clock.pendingTimers, 0);
  assert.equal(scheduler.size, 0);
});

test("Scheduler keeps one armed timer when the last deadline is cancelled, and it does nothing", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler(clock);
  const log: string[] = [];
  const a = new Deadline(recorder(log, "a"));
  scheduler.schedule(a, clock.now() + 10);
  scheduler.cancel(a);
  assert.equal(scheduler.size, 0);
  assert.equal(clock.pendingTimers, 1, "re-arming per record costs more than one idle wake-up");
  await clock.advance(20);
  assert.deepEqual(log, []);
  assert.equal(clock.pendingTimers, 0);
  scheduler.schedule(a, clock.now() + 5);
  await clock.advance(5);
  assert.deepEqual(log, ["a"]);
});
