import assert from "node:assert/strict";
import { test } from "node:test";
import { isEventfulMetricsSink, type MetricsSink } from "../src/metrics_sink.ts";

test("isEventfulMetricsSink() is true for a sink with a record() method only", () => {
  const plain: MetricsSink = { export() {} };
  const eventful = { export() {}, record() {} };
  const notAFunction = { export() {}, record: true } as unknown as MetricsSink;
  assert.equal(isEventfulMetricsSink(plain), false);
  assert.equal(isEventfulMetricsSink(eventful), true);
  assert.equal(isEventfulMetricsSink(notAFunction), false);
});
