import { test } from "node:test";
import assert from "node:assert/strict";
import {
  InMemorySink,
  isEventfulMetricsSink,
  type MetricEvent,
  type MetricSnapshot,
} from "../../sinks/mod.ts";
import { MetricsManager } from "../../src/metrics.ts";
import { FakeClock } from "../support/fake_clock.ts";

function snapshot(
  name: MetricSnapshot["name"],
  dimensions: MetricSnapshot["dimensions"],
  values: number[],
  windowStart = 0,
): MetricSnapshot {
  return {
    name,
    unit: "Count",
    dimensions,
    count: values.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: Math.min(...values),
    max: Math.max(...values),
    windowStart,
    windowEnd: windowStart + 1_000,
  };
}

test("InMemorySink starts empty", () => {
  const sink = new InMemorySink();
  assert.deepEqual(sink.exports, []);
  assert.deepEqual(sink.snapshots, []);
  assert.deepEqual(sink.events, []);
  assert.deepEqual(sink.byName("UserRecordsPut"), []);
  assert.deepEqual(sink.total("UserRecordsPut"), {
    count: 0,
    sum: 0,
    min: Infinity,
    max: -Infinity,
  });
  assert.equal(sink.started, false);
  assert.equal(sink.closed, false);
  assert.equal(isEventfulMetricsSink(sink), true);
});

test("InMemorySink keeps each export as its own batch, copied, in order", () => {
  const sink = new InMemorySink();
  const first = [snapshot("AllErrors", { stream: "a" }, [0, 1])];
  sink.export(first);
  sink.export([snapshot("UserRecordsPut", {}, [1]), snapshot("AllErrors", {}, [1], 1_000)]);
  first.push(snapshot("AllErrors", {}, [5]));
  assert.equal(sink.exports.length, 2);
  assert.equal(sink.exports[0]!.length, 1, "a later change to the caller's array is not seen");
  assert.deepEqual(sink.snapshots.map((s) => s.name), ["AllErrors", "UserRecordsPut", "AllErrors"]);
  assert.deepEqual(sink.byName("AllErrors").map((s) => s.windowStart), [0, 1_000]);
});

test("InMemorySink.total() matches dimensions given and ignores those left out", () => {
  const sink = new InMemorySink();
  sink.export([
    snapshot("ErrorsByCode", { stream: "a", shard: "shardId-0", error_code: "X" }, [1, 1]),
    snapshot("ErrorsByCode", { stream: "a", shard: "shardId-1", error_code: "Y" }, [1]),
    snapshot("ErrorsByCode", { stream: "b", shard: "shardId-0", error_code: "X" }, [1]),
  ]);
  sink.export([
    snapshot("ErrorsByCode", { stream: "a", shard: "shardId-0", error_code: "X" }, [1]),
  ]);
  assert.equal(sink.total("ErrorsByCode").count, 5);
  assert.equal(sink.total("ErrorsByCode", { stream: "a" }).count, 4);
  assert.equal(sink.total("ErrorsByCode", { error_code: "X" }).count, 4);
  assert.equal(sink.total("ErrorsByCode", { stream: "a", shard: "shardId-0" }).count, 3);
  assert.equal(sink.total("ErrorsByCode", { stream: "b", error_code: "Y" }).count, 0);
  assert.equal(sink.total("AllErrors").count, 0);
});

test("InMemorySink.total() combines min and max across snapshots", () => {
  const sink = new InMemorySink();
  sink.export([snapshot("RequestTime", { stream: "a" }, [40, 10])]);
  sink.export([snapshot("RequestTime", { stream: "a" }, [70, 20])]);
  assert.deepEqual(sink.total("RequestTime"), { count: 4, sum: 140, min: 10, max: 70 });
});

test("InMemorySink keeps events and filters them by name and dimensions", () => {
  const sink = new InMemorySink();
  const event = (value: number, stream: string): MetricEvent => ({
    name: "BufferingTime",
    unit: "Milliseconds",
    value,
    timestamp: value,
    dimensions: { stream },
  });
  sink.record(event(1, "a"));
  sink.record(event(2, "b"));
  sink.record({ ...event(3, "a"), name: "RequestTime" });
  assert.equal(sink.events.length, 3);
  assert.deepEqual(sink.eventsByName("BufferingTime").map((e) => e.value), [1, 2]);
  assert.deepEqual(sink.eventsByName("BufferingTime", { stream: "b" }).map((e) => e.value), [2]);
});

test("InMemorySink.clear() forgets exports and events", () => {
  const sink = new InMemorySink();
  sink.export([snapshot("AllErrors", {}, [1])]);
  sink.record({ name: "AllErrors", unit: "Count", value: 1, timestamp: 0, dimensions: {} });
  sink.clear();
  assert.deepEqual(sink.exports, []);
  assert.deepEqual(sink.events, []);
  assert.equal(sink.total("AllErrors").count, 0);
});

test("InMemorySink under a MetricsManager: totals per stream equal the sum of its shards", async () => {
  const clock = new FakeClock();
  const sink = new InMemorySink();
  const metrics = new MetricsManager({ level: "detailed", sink, clock, uploadIntervalMs: 1_000 });
  metrics.start();
  const truth = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const stream = i % 3 === 0 ? "a" : "b";
    const shard = `shardId-00000000000${i % 4}`;
    metrics.put("UserRecordsDataPut", i, { stream, shard });
    truth.set(stream, (truth.get(stream) ?? 0) + i);
    await clock.advance(37);
  }
  await metrics.close();
  assert.equal(sink.started, true);
  assert.equal(sink.closed, true);
  assert.equal(sink.events.length, 300);
  assert.ok(sink.exports.length > 5);
  assert.equal(sink.total("UserRecordsDataPut", { stream: "a" }).sum, truth.get("a"));
  assert.equal(sink.total("UserRecordsDataPut", { stream: "b" }).sum, truth.get("b"));
  assert.equal(sink.total("UserRecordsDataPut").count, 300);
  let perShard = 0;
  for (let shard = 0; shard < 4; shard++) {
    perShard += sink.total("UserRecordsDataPut", { shard: `shardId-00000000000${shard}` }).sum;
  }
  assert.equal(perShard, truth.get("a")! + truth.get("b")!);
  const eventSum = sink.eventsByName("UserRecordsDataPut").reduce((t, e) => t + e.value, 0);
  assert.equal(eventSum, perShard, "events and exports agree");
});
