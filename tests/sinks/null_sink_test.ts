import { test } from "node:test";
import assert from "node:assert/strict";
import { isEventfulMetricsSink, NullSink } from "../../sinks/mod.ts";

test("NullSink accepts exports, keeps nothing and is not eventful", () => {
  const sink = new NullSink();
  assert.equal(
    sink.export([{
      name: "AllErrors",
      unit: "Count",
      dimensions: {},
      count: 1,
      sum: 1,
      min: 1,
      max: 1,
      windowStart: 0,
      windowEnd: 1_000,
    }]),
    undefined,
  );
  assert.equal(isEventfulMetricsSink(sink), false);
  assert.deepEqual(Object.keys(sink), []);
});
