import assert from "node:assert/strict";
import { test } from "node:test";
import { MetricSeries, type Stats, WINDOW_SECONDS } from "../src/_metric_series.ts";
import { findMetricDefinition } from "../src/_metric_catalog.ts";

function series(): MetricSeries {
  return new MetricSeries(findMetricDefinition("ErrorsByCode")!, "s", "shard-1", "Expired");
}

function empty(): Stats {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity };
}

test("MetricSeries names its dimensions once, frozen, in a stable key", () => {
  const errors = series();
  assert.deepEqual(errors.dimensions, { stream: "s", shard: "shard-1", error_code: "Expired" });
  assert.ok(Object.isFrozen(errors.dimensions));
  assert.equal(errors.key, "ErrorsByCode{stream=s,shard=shard-1,error_code=Expired}");
  const global = new MetricSeries(
    findMetricDefinition("AllErrors")!,
    undefined,
    undefined,
    undefined,
  );
  assert.equal(global.key, "AllErrors");
});

test("MetricSeries.takeUnexported() hands each completed second's samples over once", () => {
  const errors = series();
  errors.add(100, 2);
  errors.add(100, 5);
  errors.add(101, 1);
  const into = empty();
  assert.equal(errors.takeUnexported(101, into), true);
  assert.deepEqual(into, { count: 2, sum: 7, min: 2, max: 5 }, "second 101 is not over yet");
  assert.equal(errors.takeUnexported(101, empty()), false, "nothing twice");
  const rest = empty();
  assert.equal(errors.takeUnexported(Infinity, rest), true);
  assert.deepEqual(rest, { count: 1, sum: 1, min: 1, max: 1 });
});

test("MetricSeries.addWindow() sums the last 60 seconds, the current one included", () => {
  const errors = series();
  errors.add(1_000, 4);
  errors.add(1_030, 6);
  errors.add(1_059, 1);
  const window = empty();
  errors.addWindow(1_059, window);
  assert.deepEqual(window, { count: 3, sum: 11, min: 1, max: 6 });
  const later = empty();
  errors.addWindow(1_000 + WINDOW_SECONDS, later);
  assert.deepEqual(later, { count: 2, sum: 7, min: 1, max: 6 }, "second 1000 has left");
});

test("MetricSeries.isIdle() once everything is exported and the window has passed", () => {
  const errors = series();
  errors.add(10, 1);
  assert.equal(errors.isIdle(10 + WINDOW_SECONDS), false, "not exported");
  errors.takeUnexported(Infinity, empty());
  assert.equal(errors.isIdle(10 + WINDOW_SECONDS - 1), false, "still in the window");
  assert.equal(errors.isIdle(10 + WINDOW_SECONDS), true);
});
