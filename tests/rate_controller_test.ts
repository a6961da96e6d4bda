import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ACCEPTED_FLOOR,
  CUT_BASE,
  CUT_JITTER,
  CUT_PER_PRESSURE,
  CUT_PER_RATE,
  MAX_CUT,
  RATE_FLOOR,
  RateController,
} from "../src/_rate_controller.ts";

const fresh = (sentAt: number, extra: { pressure?: number; used?: number } = {}) => ({
  sentAt,
  pressure: extra.pressure ?? 0,
  used: extra.used ?? Infinity,
});
const busy = (quietMs: number) => ({ quietMs, limited: true });

/** Successes every 50 ms from `from` for `ms`, with the stream quiet since `quietSince`. */
function succeedFor(control: RateController, from: number, ms: number, quietSince: number) {
  for (let t = from + 50; t <= from + ms; t += 50) control.succeeded(t, busy(t - quietSince));
  return from + ms;
}

test("RateController starts at the ceiling and stays there while nothing is throttled", () => {
  const control = new RateController(1.5, () => 0.5);
  assert.equal(control.rate, 1.5);
  succeedFor(control, 0, 5000, -Infinity);
  assert.equal(control.rate, 1.5);
});

test("RateController cuts the rate on a throttle, by the documented depth", () => {
  const control = new RateController(1, () => 0.5);
  assert.equal(control.throttled(100, fresh(90)), "cut");
  // Jitter 0.5 is the middle of its range: the cut is exactly its depth.
  assert.ok(Math.abs(control.rate - (1 - (CUT_BASE + CUT_PER_RATE))) < 1e-9, `${control.rate}`);
});

test("RateController ignores a throttle of a request sent before its last cut", () => {
  const control = new RateController(1, () => 0.5);
  control.throttled(100, fresh(90));
  const after = control.rate;
  assert.equal(control.throttled(120, fresh(95)), "stale");
  assert.equal(control.rate, after);
  assert.equal(control.throttled(200, fresh(150)), "cut", "a request sent after the cut counts");
  assert.ok(control.rate < after);
});

test("RateController cuts deeper under stream pressure, and never more than half", () => {
  const calm = new RateController(1, () => 0.5);
  const pressed = new RateController(1, () => 0.5);
  calm.throttled(100, fresh(90, { pressure: 0 }));
  pressed.throttled(100, fresh(90, { pressure: 0.6 }));
  const expected = 1 - Math.min(MAX_CUT, CUT_BASE + CUT_PER_RATE + CUT_PER_PRESSURE * 0.6);
  assert.ok(Math.abs(pressed.rate - expected) < 1e-9);
  assert.ok(pressed.rate < calm.rate);
  const worst = new RateController(1, () => 0.999);
  worst.throttled(100, fresh(90, { pressure: 1 }));
  assert.equal(worst.rate, 1 - MAX_CUT);
});

test("RateController cuts from the rate the shard used when that was lower", () => {
  const control = new RateController(1.5, () => 0.5);
  control.throttled(100, fresh(90, { used: 0.2 }));
  assert.ok(control.rate < 0.2 && control.rate > 0.15, `${control.rate}`);
});

test("RateController's jitter keeps the cut within half its jitter of its depth", () => {
  const depth = CUT_BASE + CUT_PER_RATE;
  for (const random of [0, 0.25, 0.75, 0.9999]) {
    const control = new RateController(1, () => random);
    control.throttled(100, fresh(90));
    const cut = 1 - control.rate;
    assert.ok(Math.abs(cut - depth) <= CUT_JITTER / 2 + 1e-9, `cut ${cut}`);
  }
  const low = new RateController(1, () => 0);
  const high = new RateController(1, () => 0.9999);
  low.throttled(100, fresh(90));
  high.throttled(100, fresh(90));
  assert.ok(low.rate > high.rate, "the jitter does change the cut");
});

test("RateController never goes below its floor", () => {
  const control = new RateController(1.5, () => 0.9999);
  for (let i = 0; i < 200; i++) control.throttled(i * 10, fresh(i * 10, { pressure: 1 }));
  assert.equal(control.rate, RATE_FLOOR);
});

test("RateController grows on successes, slowly right after a throttle of the stream", () => {
  const control = new RateController(1, () => 0.5);
  control.throttled(0, fresh(0));
  const cut = control.rate;
  // The stream keeps being throttled (quiet time 0): 1% of the rate per second.
  for (let t = 50; t <= 1000; t += 50) control.succeeded(t, busy(0));
  assert.ok(control.rate > cut, "successes raise the rate");
  assert.ok(control.rate < cut * 1.02, `slow while the stream is throttled: ${control.rate}`);
});

test("RateController recovers fast once the stream stays quiet, up to the ceiling", () => {
  const control = new RateController(1.5, () => 0.5);
  control.throttled(0, fresh(0, { used: 0.35 }));
  const start = control.rate;
  succeedFor(control, 0, 3000, 0);
  assert.ok(control.rate >= 0.9, `from ${start} to ${control.rate} in 3 quiet seconds`);
  succeedFor(control, 3000, 3000, 0);
  assert.equal(control.rate, 1.5, "never above the ceiling");
});

test("RateController does not grow a rate the shard is not using", () => {
  const control = new RateController(1, () => 0.5);
  control.throttled(0, fresh(0));
  const cut = control.rate;
  for (let t = 50; t <= 5000; t += 50) control.succeeded(t, { quietMs: t, limited: false });
  assert.equal(control.rate, cut);
});

test("RateController counts at most a second of growth between two successes", () => {
  const control = new RateController(1.5, () => 0.5);
  control.throttled(0, fresh(0, { used: 0.1 }));
  const cut = control.rate;
  control.succeeded(60_000, busy(0));
  // One second at 1% of the rate, not sixty.
  assert.ok(Math.abs(control.rate - cut * 1.01) < 1e-9, `${control.rate}`);
});

/**
 * Drives a controller on a shard with backlog for `seconds`: the shard uses its rate
 * (capped by the demand, in shares of the shard limits), Kinesis stores `accepts(used)` of
 * it and throttles the rest, one throttle a round trip while any is throttled. A reading
 * (used, accepted, throttled share) comes with a throttle every half second, as the
 * limiter gives it. Returns the rate every half second.
 */
function drive(
  control: RateController,
  seconds: number,
  accepts: (used: number) => number,
  demand = 1.5,
): number[] {
  const rates: number[] = [];
  const rttMs = 50;
  let readAt = 0;
  let usedSum = 0;
  let acceptedSum = 0;
  let lastThrottleAt = -Infinity;
  for (let t = rttMs; t <= seconds * 1000; t += rttMs) {
    const used = Math.min(control.rate, demand);
    const accepted = Math.min(used, accepts(used));
    usedSum += used;
    acceptedSum += accepted;
    if (accepted < used) {
      const reading = t - readAt >= 500;
      const context = reading
        ? {
          sentAt: t - rttMs,
          pressure: 0,
          used: usedSum / ((t - readAt) / rttMs),
          accepted: acceptedSum / ((t - readAt) / rttMs),
          throttledShare: 1 - acceptedSum / usedSum,
        }
        : fresh(t - rttMs);
      if (reading) {
        readAt = t;
        usedSum = 0;
        acceptedSum = 0;
      }
      if (control.throttled(t, context) !== "tolerated") lastThrottleAt = t;
    } else {
      control.succeeded(t, busy(t - lastThrottleAt));
    }
    if (t % 500 === 0) rates.push(control.rate);
  }
  return rates;
}

test("RateController: random throttles at a fixed fraction do not drive the rate to the floor", () => {
  for (const fraction of [0.05, 0.1, 0.2]) {
    const control = new RateController(1.5, () => 0.5);
    const rates = drive(control, 20, (used) => (1 - fraction) * used);
    const late = rates.slice(-10);
    // A fixed rate sends at the ceiling and gets (1 - fraction) of it stored; the adaptive
    // rate finds out within seconds that its cuts do not lower the share, and goes back.
    assert.ok(
      late.every((rate) => rate >= 1.4),
      `fraction ${fraction}: ${rates.map((rate) => rate.toFixed(2)).join(" ")}`,
    );
    assert.ok(Math.abs(control.tolerated - fraction) < 0.05, `tolerated ${control.tolerated}`);
  }
});

test("RateController: capacity throttles still converge to the share", () => {
  // A third of the shard is ours (peers hold the rest): everything above it is throttled.
  for (const share of [1, 1 / 3]) {
    const control = new RateController(1.5, () => 0.5);
    const rates = drive(control, 20, () => share);
    const late = rates.slice(-10);
    const mean = late.reduce((sum, rate) => sum + rate, 0) / late.length;
    assert.ok(
      mean > 0.7 * share && mean < 1.15 * share,
      `share ${share}: ${rates.map((rate) => rate.toFixed(2)).join(" ")}`,
    );
    assert.ok(Number.isNaN(control.tolerated), "a full shard is never tolerated");
  }
});

test("RateController: a shard that tolerated random throttles cuts again once it is full", () => {
  const control = new RateController(1.5, () => 0.5);
  drive(control, 10, (used) => 0.9 * used);
  assert.equal(control.rate, 1.5);
  // Now peers arrive, and the shard takes a third from us, whatever we send.
  const rates = drive(control, 20, () => 0.3);
  assert.ok(Number.isNaN(control.tolerated));
  const late = rates.slice(-10);
  assert.ok(late.every((rate) => rate < 0.45), rates.map((rate) => rate.toFixed(2)).join(" "));
});

test("RateController never cuts below a share of what the shard accepted at the last reading", () => {
  const control = new RateController(1.5, () => 0.999);
  const reading = { used: 1, accepted: 0.9, throttledShare: 0.1 };
  control.throttled(1000, { ...fresh(990, { pressure: 1 }), ...reading });
  assert.ok(Math.abs(control.rate - ACCEPTED_FLOOR * 0.9) < 1e-9, `${control.rate}`);
  // Without a reading the last one still bounds the cut.
  control.throttled(1100, fresh(1050, { pressure: 1 }));
  assert.ok(Math.abs(control.rate - ACCEPTED_FLOOR * 0.9) < 1e-9, `${control.rate}`);
});
