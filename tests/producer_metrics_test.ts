// The producer's metrics (src/_producer_metrics.ts) on a fake Kinesis, one C++ KPL rule at a
// time (docs/metrics.md states them with their source); the whole set against kinesalite is
// tests/scenarios/metrics_against_kinesalite_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InMemorySink } from "../sinks/mod.ts";
import type { MetricName, MetricSnapshot, MetricsSink } from "../src/metrics_sink.ts";
import type { PutRecordsOutput } from "../src/kinesis_client.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";
import { harness } from "./support/harness.ts";
import { hashInShard } from "./support/records.ts";

function detailed(extra: Parameters<typeof harness>[0] = {}) {
  const sink = new InMemorySink();
  const h = harness({ metricsLevel: "detailed", metricsSink: sink, ...extra });
  return { ...h, sink };
}

function names(snapshots: readonly MetricSnapshot[]): string[] {
  return [...new Set(snapshots.map((snapshot) => snapshot.name))].sort();
}

test("Producer counts a Record Count Mismatch in no ErrorsByCode or AllErrors series", async () => {
  const { producer, clock, kinesis, sink } = detailed({ aggregationEnabled: false });
  kinesis.putHook = (): PutRecordsOutput => ({ FailedRecordCount: 0, Records: [] });
  const pending = [0, 1, 2].map((i) => producer.put({ partitionKey: `k${i}`, data: "x" }));
  await clock.advance(200);
  const results = await Promise.all(pending);
  await producer.close();
  assert.deepEqual(
    results.map((result) => result.errorCode),
    Array(3).fill("Record Count Mismatch"),
  );
  assert.equal(sink.total("ErrorsByCode").count, 0);
  assert.deepEqual(sink.total("AllErrors").count, 0, "no entry was answered, no request failed");
  assert.equal(sink.total("KinesisRecordsPut").count, 0);
  assert.deepEqual(
    [sink.total("UserRecordsPut").count, sink.total("UserRecordsPut").sum],
    [3, 0],
  );
  assert.equal(sink.total("RequestTime").count, kinesis.putCalls.length);
});

test("Producer counts no ProducerClosed in ErrorsByCode and no request metrics for calls close() ended", async () => {
  const { producer, clock, kinesis, sink } = detailed({
    aggregationEnabled: false,
    collectionMaxCount: 1,
    maxInFlightRequests: 1,
  });
  kinesis.holding = true;
  const pending = [0, 1, 2].map((i) => producer.put({ partitionKey: `k${i}`, data: "x" }));
  await clock.advance(200);
  assert.equal(kinesis.heldCalls, 1, "one call in flight, the others queued");
  const closing = producer.close({ timeoutMs: 0 });
  await clock.advance(1);
  await closing;
  const results = await Promise.all(pending);
  assert.deepEqual(results.map((result) => result.errorCode), Array(3).fill("ProducerClosed"));
  assert.equal(sink.total("ErrorsByCode").count, 0);
  assert.equal(sink.total("AllErrors").count, 0);
  assert.equal(sink.total("RequestTime").count, 0, "no call was answered");
  assert.equal(sink.total("KinesisRecordsPerPutRecordsRequest").count, 0);
  assert.deepEqual(
    [sink.total("UserRecordsPut").count, sink.total("UserRecordsPut").sum],
    [3, 0],
  );
  assert.equal(sink.eventsByName("UserRecordsPending").at(-1)?.value, 0);
});

test("Producer counts Expired only in UserRecordExpired, with one BufferingTime sample per attempt", async () => {
  const { producer, clock, kinesis, sink } = detailed({
    aggregationEnabled: false,
    recordTtlMs: 1000,
  });
  kinesis.putHook = (input) => kinesis.store(input, () => false);
  const pending = producer.put({ partitionKey: "k", data: "abc" });
  await clock.advance(2000);
  const result = await pending;
  await producer.close();
  assert.equal(result.errorCode, "Expired");
  const failedAttempts = result.attempts.length - 1;
  assert.ok(failedAttempts >= 2, `${failedAttempts} InternalFailure attempts`);
  assert.deepEqual(
    [...new Set(sink.byName("ErrorsByCode").map((snapshot) => snapshot.dimensions.error_code))],
    ["InternalFailure"],
  );
  assert.equal(sink.total("ErrorsByCode").sum, failedAttempts);
  assert.deepEqual(
    [sink.total("UserRecordExpired").count, sink.total("UserRecordExpired").sum],
    [1, 1],
  );
  assert.deepEqual(
    sink.eventsByName("BufferingTime").map((event) => event.value),
    result.attempts.map((attempt) => attempt.delayMs),
  );
  assert.equal(sink.total("RetriesPerRecord").sum, result.attempts.length - 1);
  assert.equal(sink.total("UserRecordsDataPut").count, 0);
});

test("Producer measures the successes of records piped into a writable without handlers", async () => {
  const { producer, clock, sink } = detailed();
  const records = [0, 1, 2].map((i) => ({ partitionKey: `k${i}`, data: "abc" }));
  const piping = ReadableStream.from(records).pipeTo(producer.writable);
  await clock.advance(200);
  await piping;
  await producer.close();
  assert.equal(sink.total("UserRecordsPut").sum, 3);
  assert.equal(sink.total("UserRecordsDataPut").sum, 9);
  assert.equal(sink.eventsByName("BufferingTime").length, 3, "one attempt per record");
});

test("Producer puts per-entry metrics on the predicted shard and UserRecordsPut on the shard it landed on", async () => {
  const { producer, clock, kinesis, sink } = detailed({
    aggregationEnabled: false,
    shards: 2,
  });
  const key = hashInShard(0, 2);
  const first = producer.put({ partitionKey: "a", explicitHashKey: key, data: "1" });
  await clock.advance(200);
  assert.equal((await first).shardId, "shardId-000000000000");
  const child = kinesis.split("s", "shardId-000000000000")
    .find((shard) => shard.start <= BigInt(key) && BigInt(key) <= shard.end)!;
  await producer.metrics.flush();
  sink.clear();
  const second = producer.put({ partitionKey: "a", explicitHashKey: key, data: "22" });
  await clock.advance(200);
  const result = await second;
  await producer.close();
  assert.equal(result.shardId, child.id, "Kinesis stored it on a child");
  const shardOf = (name: MetricName) =>
    sink.eventsByName(name).map((event) => event.dimensions.shard);
  assert.deepEqual(shardOf("UserRecordsPut"), [child.id]);
  assert.deepEqual(shardOf("UserRecordsDataPut"), [child.id]);
  for (const name of ["KinesisRecordsPut", "KinesisRecordsDataPut", "AllErrors"] as const) {
    assert.deepEqual(shardOf(name), ["shardId-000000000000"], `${name} on the predicted shard`);
  }
  assert.deepEqual(shardOf("UserRecordsPerKinesisRecord"), ["shardId-000000000000"]);
});

test("Producer counts a Wrong Shard retry in no ErrorsByCode series and counts the stored entry", async () => {
  const { producer, clock, kinesis, sink } = detailed({ shards: 2 });
  const warm = producer.put({ partitionKey: "w", explicitHashKey: hashInShard(0, 2), data: "w" });
  await clock.advance(200);
  await warm;
  kinesis.split("s", "shardId-000000000000");
  await producer.metrics.flush();
  sink.clear();
  // Both predicted to the closed parent, aggregated together and routed by the first's
  // hash: the second lands on the child that does not hold its hash.
  const pending = [hashInShard(0, 4), hashInShard(1, 4)].map((explicitHashKey, i) =>
    producer.put({ partitionKey: `k${i}`, explicitHashKey, data: `d${i}` })
  );
  await clock.advance(2000);
  const results = await Promise.all(pending);
  await producer.close();
  assert.deepEqual(results.map((result) => result.success), [true, true]);
  const wrong = results[1]!.attempts.filter((attempt) => attempt.errorCode === "Wrong Shard");
  assert.equal(wrong.length, 1, JSON.stringify(results[1]!.attempts));
  assert.equal(sink.total("ErrorsByCode").count, 0);
  assert.equal(sink.total("AllErrors").sum, 0);
  assert.deepEqual(
    [sink.total("KinesisRecordsPut").count, sink.total("KinesisRecordsPut").sum],
    [kinesis.stored.length - 1, kinesis.stored.length - 1],
    "every stored entry after the warm-up, the wrong-shard one included",
  );
  assert.equal(sink.total("RetriesPerRecord").sum, 1);
});

test("Producer with a sink whose export always throws: every record succeeds, each failed export is counted and logged once", async () => {
  const logger = new CapturingLogger();
  let exportCalls = 0;
  const sink: MetricsSink = {
    export() {
      exportCalls++;
      throw new Error("backend down");
    },
  };
  const { producer, clock } = harness({
    metricsLevel: "detailed",
    metricsSink: sink,
    metricsUploadIntervalMs: 1000,
    logger,
  });
  const pending = [];
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 200; i++) {
      pending.push(producer.put({ partitionKey: `k${second}-${i}`, data: "x" }));
    }
    await clock.advance(1000);
  }
  const results = await Promise.all(pending);
  await producer.close();
  assert.ok(results.every((result) => result.success));
  assert.ok(exportCalls >= 5, `${exportCalls} exports`);
  assert.equal(producer.metrics.exportErrors, exportCalls);
  assert.equal(
    logger.at("error").length,
    exportCalls,
    "one log line per failed export, not per record",
  );
  assert.match(logger.at("error")[0]!.message, /metrics export failed/);
});

test("Producer with a sink whose record() always throws: every record succeeds, errors counted, logged once per interval", async () => {
  const logger = new CapturingLogger();
  let records = 0;
  const sink = {
    export() {},
    record() {
      records++;
      throw new Error("bad sink");
    },
  };
  const { producer, clock } = harness({
    metricsLevel: "detailed",
    metricsSink: sink,
    metricsUploadIntervalMs: 1000,
    logger,
  });
  const pending = [];
  const intervals = 4;
  for (let interval = 0; interval < intervals; interval++) {
    for (let i = 0; i < 100; i++) {
      pending.push(producer.put({ partitionKey: `k${interval}-${i}`, data: "x" }));
    }
    await clock.advance(1000);
  }
  const results = await Promise.all(pending);
  await producer.close();
  assert.ok(results.every((result) => result.success));
  assert.ok(records > 400 * 5, `${records} record() calls`);
  assert.equal(producer.metrics.recordErrors, records);
  console.log(`${logger.at("error").length} log lines for ${records} failures`);
  assert.ok(
    logger.at("error").length >= intervals && logger.at("error").length <= intervals + 1,
    `${logger.at("error").length} log lines for ${records} failures`,
  );
  assert.match(logger.at("error")[0]!.message, /record\(\) threw/);
});

test("Producer at level none or without a metrics option puts nothing and never calls the sink", async () => {
  let calls = 0;
  const sink = {
    export() {
      calls++;
    },
    record() {
      calls++;
    },
    start() {
      calls++;
    },
    close() {
      calls++;
    },
  };
  const { producer, clock } = harness({ metricsLevel: "none", metricsSink: sink });
  const pending = producer.put({ partitionKey: "k", data: "x" });
  await clock.advance(5000);
  assert.equal((await pending).success, true);
  await producer.close();
  assert.equal(calls, 0);
  assert.equal(producer.metrics.enabled, false);
  assert.deepEqual(names(producer.metrics.snapshots()), []);
});
