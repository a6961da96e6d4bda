// The producer's 15 metrics, checked against truths computed without them: what crossed
// the wire (counted by a wrapping Kinesis client), what each RecordResult says, and what
// the stream holds when read back. The C++ KPL's rules, as docs/metrics.md states them with
// their source, decide the expected values; the fake-Kinesis tests pin the rules one at a time.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient as SdkKinesisClient } from "@aws-sdk/client-kinesis";
import { InMemorySink } from "../sinks/mod.ts";
import { metricLevel, metricNames } from "../src/metrics.ts";
import type { MetricName, MetricSnapshot, MetricsSink } from "../src/metrics_sink.ts";
import type { PutRecordsOutput } from "../src/kinesis_client.ts";
import type { RecordResult } from "../src/record.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";
import { type Emulator, startKinesalite } from "./support/emulators.ts";
import { createTestClient } from "./support/kinesis_sdk.ts";
import { harness } from "./support/harness.ts";
import { hashInShard } from "./support/records.ts";
import { cell, expectedTotals, formatTable, type Totals } from "./support/metrics_truth.ts";
import { type MetricsWorkloadRun, runMetricsWorkload } from "./support/metrics_workload.ts";

const SYNTHETIC_CODES = ["Expired", "Wrong Shard", "Record Count Mismatch", "ProducerClosed"];
const SHARD_ID = /^shardId-\d{12}$/;

function exported(sink: InMemorySink, name: MetricName): Totals {
  const { count, sum } = sink.total(name);
  return { count, sum };
}

function sameTotals(expected: Totals, actual: Totals): boolean {
  return expected.count === actual.count &&
    (Number.isNaN(expected.sum) || expected.sum === actual.sum);
}

/** Rows of the exactness table for the names recorded at `level`, plus ErrorsByCode per code. */
function exactnessRows(
  run: MetricsWorkloadRun,
  sink: InMemorySink,
  names: readonly MetricName[],
): { rows: string[][]; mismatches: string[] } {
  const truth = expectedTotals(run.results, run.wire);
  const rows: string[][] = [];
  const mismatches: string[] = [];
  for (const name of names) {
    const expected = truth.get(name);
    if (expected === undefined) continue;
    const actual = exported(sink, name);
    const ok = sameTotals(expected, actual);
    rows.push([name, cell(expected), cell({ ...actual, sum: expected.sum }), ok ? "=" : "DIFF"]);
    if (!ok) mismatches.push(`${name}: expected ${cell(expected)}, exported ${cell(actual)}`);
  }
  const codes = new Set([...run.wire.errorsByCode.keys()]);
  for (const snapshot of sink.byName("ErrorsByCode")) codes.add(snapshot.dimensions.error_code!);
  for (const code of [...codes].sort()) {
    const expected = run.wire.errorsByCode.get(code) ?? 0;
    const actual = sink.total("ErrorsByCode", { error_code: code });
    const ok = actual.count === expected && actual.sum === expected;
    rows.push([
      `  ErrorsByCode{${code}}`,
      `${expected} / ${expected}`,
      `${actual.count} / ${actual.sum}`,
      ok ? "=" : "DIFF",
    ]);
    if (!ok) mismatches.push(`ErrorsByCode{${code}}: expected ${expected}, exported ${actual.sum}`);
  }
  return { rows, mismatches };
}

/** The value of the last UserRecordsPending sample per stream, from the events. */
function lastPending(sink: InMemorySink): Map<string, number> {
  const last = new Map<string, number>();
  for (const event of sink.eventsByName("UserRecordsPending")) {
    last.set(event.dimensions.stream!, event.value);
  }
  return last;
}

function outcomeSummary(results: readonly RecordResult[]): Record<string, number> {
  const outcomes: Record<string, number> = {};
  for (const result of results) {
    const key = result.success ? "success" : result.errorCode!;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  return outcomes;
}

describe("Producer metrics against kinesalite", () => {
  let emulator: Emulator;
  let admin: SdkKinesisClient;

  before(async () => {
    emulator = await startKinesalite();
    admin = createTestClient(emulator.endpoint);
  });

  after(async () => {
    admin?.destroy();
    await emulator?.stop();
  });

  test("Producer metrics at level detailed: sums over all exports equal the truth for every name", async () => {
    const sink = new InMemorySink();
    const run = await runMetricsWorkload({
      endpoint: emulator.endpoint,
      admin,
      level: "detailed",
      sink,
    });
    const { results, wire, streams } = run;

    // The workload went through every path it was built for.
    const outcomes = outcomeSummary(results);
    assert.ok(outcomes.success! > 500, JSON.stringify(outcomes));
    for (const code of ["KMSAccessDeniedException", "Expired", "ResourceNotFoundException"]) {
      assert.ok(outcomes[code]! > 0, `some records end ${code}: ${JSON.stringify(outcomes)}`);
    }
    assert.ok(outcomes["Record Count Mismatch"]! > 0, JSON.stringify(outcomes));
    assert.ok(results.some((result) => result.success && result.attempts.length > 1));
    assert.ok(sink.exports.length >= 3, `${sink.exports.length} exports`);

    const { rows, mismatches } = exactnessRows(run, sink, metricNames);
    const pending = lastPending(sink);
    rows.push([
      "UserRecordsPending (last sample per stream)",
      "0, 0, 0",
      [...Object.values(streams)].map((stream) => pending.get(stream)).join(", "),
      [...Object.values(streams)].every((stream) => pending.get(stream) === 0) ? "=" : "DIFF",
    ]);
    console.log(
      formatTable(
        `Exactness at level detailed (count / sum over ${sink.exports.length} exports; ` +
          `outcomes ${JSON.stringify(outcomes)})`,
        ["metric", "expected", "exported", ""],
        rows,
      ),
    );
    assert.deepEqual(mismatches, []);
    for (const stream of Object.values(streams)) assert.equal(pending.get(stream), 0, stream);

    // Independent cross-checks of the wire counter: the stream read back, and the
    // distinct Kinesis records the successful results name.
    assert.deepEqual(wire.stored.get(streams.main), run.readback);
    const landed = new Set(
      results.filter((result) => result.success).map((r) => `${r.shardId}/${r.sequenceNumber}`),
    );
    assert.equal(landed.size, wire.entriesStored);
    assert.equal(sink.total("KinesisRecordsPut").sum, run.readback.entries);
    assert.equal(sink.total("KinesisRecordsDataPut").sum, run.readback.bytes);
    for (const [stream, count] of run.perStream) {
      assert.equal(sink.total("UserRecordsReceived", { stream }).sum, count, stream);
    }

    // Nothing lost or counted twice between exports: every sample put (an event) is in
    // exactly one export, and each export starts where the previous one ended.
    for (const name of metricNames) {
      assert.equal(sink.total(name).count, sink.eventsByName(name).length, name);
    }
    const windows = sink.exports.map((batch) => [batch[0]!.windowStart, batch[0]!.windowEnd]);
    for (let i = 1; i < windows.length; i++) {
      assert.equal(windows[i]![0], windows[i - 1]![1], `export ${i} starts where ${i - 1} ended`);
    }
    for (const batch of sink.exports) {
      for (const snapshot of batch) assert.equal(snapshot.windowStart, batch[0]!.windowStart);
    }

    // Dimensions: full shard ids of the stream, error codes only on ErrorsByCode and
    // never one of the producer's own codes.
    for (const snapshot of sink.snapshots) {
      const { stream, shard, error_code } = snapshot.dimensions;
      assert.ok(Object.values(streams).includes(stream!), `${snapshot.name} has a stream`);
      if (shard !== undefined) {
        assert.match(shard, SHARD_ID);
        assert.ok(run.shards.get(stream!)?.includes(shard), `${snapshot.name} on ${shard}`);
      }
      assert.equal(error_code !== undefined, snapshot.name === "ErrorsByCode", snapshot.name);
      assert.ok(!SYNTHETIC_CODES.includes(error_code!), `ErrorsByCode{${error_code}}`);
    }
    assert.ok(sink.byName("UserRecordsPut").some((snapshot) => snapshot.dimensions.shard));
  });

  test("Producer metrics at level summary: only the six summary names, per stream, equal to the truth", async () => {
    const sink = new InMemorySink();
    const run = await runMetricsWorkload({
      endpoint: emulator.endpoint,
      admin,
      level: "summary",
      sink,
      records: 600,
      seed: 2,
    });
    const summaryNames = metricNames.filter((name) => metricLevel(name) === "summary");
    const { rows, mismatches } = exactnessRows(run, sink, summaryNames);
    console.log(
      formatTable(
        `Exactness at level summary (count / sum over ${sink.exports.length} exports)`,
        ["metric", "expected", "exported", ""],
        rows,
      ),
    );
    assert.deepEqual(mismatches, []);
    assert.deepEqual(
      [...new Set(sink.snapshots.map((snapshot) => snapshot.name))].sort(),
      [...summaryNames].sort(),
    );
    assert.deepEqual(summaryNames.length, 6);
    for (const snapshot of sink.snapshots) {
      assert.equal(snapshot.dimensions.shard, undefined, `${snapshot.name} has no shard`);
      assert.notEqual(snapshot.dimensions.stream, undefined, `${snapshot.name} has a stream`);
    }
    assert.ok(sink.exports.length >= 3, `${sink.exports.length} exports`);
  });
});

// ---------------------------------------------------------------------------
// The rules one at a time, on a fake clock and an in-process Kinesis.

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
