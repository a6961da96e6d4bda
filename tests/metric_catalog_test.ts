import assert from "node:assert/strict";
import { test } from "node:test";
import { findMetricDefinition, metricDefinitions } from "../src/_metric_catalog.ts";

test("The metric catalog lists the 15 names once each, indexed in order, each described", () => {
  assert.equal(metricDefinitions.length, 15);
  assert.equal(new Set(metricDefinitions.map((definition) => definition.name)).size, 15);
  metricDefinitions.forEach((definition, i) => {
    assert.equal(definition.index, i);
    assert.ok(definition.description.length > 0, definition.name);
    assert.ok(Object.isFrozen(definition));
    assert.equal(findMetricDefinition(definition.name), definition);
  });
});

test("The metric catalog keeps the error code dimension for ErrorsByCode alone", () => {
  const byCode = metricDefinitions.filter((definition) => definition.byCode);
  assert.deepEqual(byCode.map((definition) => definition.name), ["ErrorsByCode"]);
  assert.equal(findMetricDefinition("BufferedTime"), undefined);
});
