import { test } from "node:test";
import assert from "node:assert/strict";
import {
  metricLevel,
  metricNames,
  type MetricPutDimensions,
  MetricsManager,
  type MetricsManagerOptions,
  metricUnit,
} from "../src/metrics.ts";
import type {
  MetricEvent,
  MetricName,
  MetricSnapshot,
  MetricsSink,
  MetricUnit,
} from "../src/metrics_sink.ts";
import type { Logger } from "../src/logger.ts";
import { Scheduler } from "../src/scheduler.ts";
import { onScheduler } from "../src/_metrics_scheduler.ts";
import { InMemorySink } from "../sinks/mod.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";
import { FakeClock, settle } from "./support/fake_clock.ts";

// FakeClock starts on a whole second, which the window arithmetic below relies on.
const T0 = 1_700_000_000_000;

function setup(options: MetricsManagerOptions = {}) {
  const clock = new FakeClock(T0);
  const scheduler = new Scheduler(clock);
  const logger = new CapturingLogger();
  const sink = new InMemorySink();
  // The manager runs on a scheduler the test holds, as a producer's does.
  const metrics = new MetricsManager(
    onScheduler({ level: "detailed", sink, logger, ...options }, scheduler),
  );
  return { clock, scheduler, logger, sink, metrics };
}

const SHARD0 = "shardId-000000000000";
const SHARD1 = "shardId-000000000001";

test("metricUnit() and metricLevel() follow the C++ KPL table for all 15 names", () => {
  const table: Record<MetricName, [MetricUnit, "summary" | "detailed"]> = {
    UserRecordsReceived: ["Count", "detailed"],
    UserRecordsPending: ["Count", "detailed"],
    UserRecordsPut: ["Count", "summary"],
    UserRecordsDataPut: ["Bytes", "detailed"],
    KinesisRecordsPut: ["Count", "summary"],
    KinesisRecordsDataPut: ["Bytes", "detailed"],
    ErrorsByCode: ["Count", "summary"],
    AllErrors: ["Count", "summary"],
    RetriesPerRecord: ["Count", "detailed"],
    UserRecordExpired: ["Count", "summary"],
    BufferingTime: ["Milliseconds", "summary"],
    RequestTime: ["Milliseconds", "detailed"],
    UserRecordsPerKinesisRecord: ["Count", "detailed"],
    KinesisRecordsPerPutRecordsRequest: ["Count", "detailed"],
    UserRecordsPerPutRecordsRequest: ["Count", "detailed"],
  };
  assert.deepEqual([...metricNames].sort(), Object.keys(table).sort());
  for (const name of metricNames) {
    assert.deepEqual([metricUnit(name), metricLevel(name)], table[name], name);
  }
  assert.throws(() => metricUnit("BufferedTime" as MetricName), TypeError);
  assert.throws(() => metricLevel("ExpiredRecords" as MetricName), /'name' must be one of/);
});

test("MetricsManager rejects bad options with an error naming the option", () => {
  const cases: [MetricsManagerOptions, ErrorConstructor, RegExp][] = [
    [
      { level: "verbose" as "none" },
      TypeError,
      /'level' must be one of 'none', 'summary', 'detailed': current value is 'verbose'/,
    ],
    [{ granularity: "host" as "global" }, TypeError, /'granularity' must be one of/],
    [
      { uploadIntervalMs: 0 },
      RangeError,
      /'uploadIntervalMs' must be a number between 1 and 2147483647: current value is 0/,
    ],
    [{ uploadIntervalMs: 2 ** 31 }, RangeError, /'uploadIntervalMs'/],
    [{ uploadIntervalMs: Infinity }, RangeError, /'uploadIntervalMs'/],
    [{ uploadIntervalMs: NaN }, TypeError, /'uploadIntervalMs' must be a number/],
    [{ uploadIntervalMs: "60000" as unknown as number }, TypeError, /'uploadIntervalMs'/],
    [{ sink: {} as MetricsSink }, TypeError, /'sink' must be an object with export\(\)/],
    [{ sink: null as unknown as MetricsSink }, TypeError, /'sink'.*current value is null/],
    [{ clock: { now: () => 0 } as unknown as FakeClock }, TypeError, /'clock' must be a Clock/],
    [{ logger: { warn() {} } as unknown as Logger }, TypeError, /'logger'/],
  ];
  for (const [options, type, message] of cases) {
    assert.throws(() => new MetricsManager(options), (error: unknown) => {
      assert.ok(error instanceof type, `${String(error)} is a ${type.name}`);
      assert.match((error as Error).message, message);
      assert.match((error as Error).message, /^Cannot create metrics manager as '/);
      return true;
    });
  }
});

test("MetricsManager defaults: level none, granularity by level", async () => {
  const none = new MetricsManager();
  assert.equal(none.level, "none");
  assert.equal(none.enabled, false);
  const summary = new MetricsManager({ level: "summary", clock: new FakeClock() });
  assert.equal(summary.granularity, "stream");
  assert.equal(summary.enabled, true);
  const detailed = new MetricsManager({ level: "detailed", clock: new FakeClock() });
  assert.equal(detailed.granularity, "shard");
  const explicit = new MetricsManager({
    level: "detailed",
    granularity: "global",
    clock: new FakeClock(),
  });
  assert.equal(explicit.granularity, "global");
  await Promise.all([none.close(), summary.close(), detailed.close(), explicit.close()]);
});

test("MetricsManager.put() at level none records nothing and never touches the sink", async () => {
  const calls: string[] = [];
  const sink = {
    export: () => void calls.push("export"),
    record: () => void calls.push("record"),
    start: () => void calls.push("start"),
    close: () => void calls.push("close"),
  };
  const clock = new FakeClock(T0);
  const metrics = new MetricsManager({ level: "none", sink, clock });
  metrics.put("UserRecordsPut", 1, { stream: "s" });
  // At none put returns before it looks at its arguments, so even a bad name is ignored.
  metrics.put("NotAMetric" as MetricName, NaN);
  metrics.start();
  await metrics.flush();
  await clock.advance(120_000);
  assert.equal(metrics.snapshot().size, 0);
  assert.deepEqual(metrics.snapshots(), []);
  assert.equal(clock.pendingTimers, 0);
  await metrics.close();
  assert.deepEqual(calls, []);
});

test("MetricsManager.put() rejects unknown names and non-finite values", async () => {
  const { metrics } = setup();
  assert.throws(() => metrics.put("BufferedTime" as MetricName, 1), /'name' must be one of/);
  assert.throws(
    () => metrics.put("RequestTime", NaN),
    /Cannot put metric RequestTime as 'value' must be a finite number: current value is NaN/,
  );
  assert.throws(() => metrics.put("RequestTime", Infinity), TypeError);
  assert.equal(metrics.snapshot().size, 0);
  await metrics.close();
});

test("MetricsManager aggregates samples of one second into one bucket", async () => {
  const { clock, metrics } = setup();
  const dims = { stream: "s", shard: SHARD0 };
  for (const value of [5, 3, 9, 1]) {
    metrics.put("BufferingTime", value, dims);
    await clock.advance(200);
  }
  assert.deepEqual(
    metrics.snapshot().get(`BufferingTime{stream=s,shard=${SHARD0}}`),
    { count: 4, sum: 18, min: 1, max: 9 },
  );
  await metrics.close();
});

test("MetricsManager.snapshot() is a rolling 60 s window including the current second", async () => {
  const { clock, metrics } = setup();
  const key = "RequestTime{stream=s}";
  metrics.put("RequestTime", 100, { stream: "s" }); // second 0
  await clock.advance(30_000);
  metrics.put("RequestTime", 10, { stream: "s" }); // second 30
  await clock.advance(29_999); // 59.999 s: second 0 is the oldest of the 60
  assert.deepEqual(metrics.snapshot().get(key), { count: 2, sum: 110, min: 10, max: 100 });
  await clock.advance(1); // 60 s: second 0 has left the window
  assert.deepEqual(metrics.snapshot().get(key), { count: 1, sum: 10, min: 10, max: 10 });
  await clock.advance(30_000);
  assert.equal(metrics.snapshot().has(key), false);
  assert.deepEqual(metrics.snapshots(), []);
  await metrics.close();
});

test("MetricsManager.snapshot() reuses a ring slot a minute later without mixing buckets", async () => {
  const { clock, metrics } = setup();
  const key = "RequestTime{stream=s}";
  metrics.put("RequestTime", 7, { stream: "s" }); // second 0
  await clock.advance(60_000);
  metrics.put("RequestTime", 2, { stream: "s" }); // second 60, same slot as second 0
  assert.deepEqual(metrics.snapshot().get(key), { count: 1, sum: 2, min: 2, max: 2 });
  await metrics.close();
});

test("MetricsManager.snapshots() reports the rolling window as snapshots", async () => {
  const { clock, metrics } = setup({ level: "summary" });
  await clock.advance(2_500);
  metrics.put("AllErrors", 1, { stream: "s", shard: SHARD0 });
  metrics.put("AllErrors", 0, { stream: "s", shard: SHARD1 });
  const snapshots = metrics.snapshots();
  assert.deepEqual(snapshots, [{
    name: "AllErrors",
    unit: "Count",
    dimensions: { stream: "s" },
    count: 2,
    sum: 1,
    min: 0,
    max: 1,
    windowStart: T0 + 3_000 - 60_000,
    windowEnd: T0 + 3_000,
  }]);
  await metrics.close();
});

test("MetricsManager keeps the rolling window after the samples were exported", async () => {
  const { clock, metrics, sink } = setup();
  metrics.put("UserRecordsReceived", 1, { stream: "s" });
  await clock.advance(1_000);
  await metrics.flush();
  assert.equal(sink.total("UserRecordsReceived").count, 1);
  assert.equal(metrics.snapshot().get("UserRecordsReceived{stream=s}")?.count, 1);
  await metrics.close();
});

test("MetricsManager level × granularity matrix selects names and dimensions", async () => {
  const summaryNames = [
    "UserRecordsPut",
    "KinesisRecordsPut",
    "ErrorsByCode",
    "AllErrors",
    "UserRecordExpired",
    "BufferingTime",
  ];
  const full: MetricPutDimensions = { stream: "s", shard: SHARD1, errorCode: "Throttled" };
  for (const level of ["summary", "detailed"] as const) {
    for (const granularity of ["global", "stream", "shard"] as const) {
      const { metrics, sink } = setup({ level, granularity });
      for (const name of metricNames) metrics.put(name, 1, full);
      const names = level === "summary" ? summaryNames : [...metricNames];
      const dims = granularity === "global"
        ? ""
        : granularity === "stream"
        ? "stream=s"
        : `stream=s,shard=${SHARD1}`;
      const expected = names.map((name) => {
        const parts = [dims, name === "ErrorsByCode" ? "error_code=Throttled" : ""]
          .filter((part) => part !== "");
        return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
      });
      const label = `${level}/${granularity}`;
      assert.deepEqual([...metrics.snapshot().keys()].sort(), expected.sort(), label);
      assert.equal(sink.events.length, names.length, label);
      await metrics.close();
      for (const snapshot of sink.snapshots) {
        const want: Record<string, string> = {};
        if (granularity !== "global") want.stream = "s";
        if (granularity === "shard") want.shard = SHARD1;
        if (snapshot.name === "ErrorsByCode") want.error_code = "Throttled";
        assert.deepEqual(snapshot.dimensions, want, `${label} ${snapshot.name}`);
      }
      assert.equal(sink.snapshots.length, names.length, label);
    }
  }
});

test("MetricsManager.put() keeps the dimensions a sample has when it has fewer than the granularity", async () => {
  const { metrics } = setup({ level: "detailed", granularity: "shard" });
  metrics.put("RequestTime", 3, { stream: "s" });
  metrics.put("UserRecordsPending", 10);
  metrics.put("AllErrors", 1, { stream: "s", shard: "" });
  metrics.put("ErrorsByCode", 1, { stream: "s", errorCode: "" });
  metrics.put("AllErrors", 1, { stream: "s", errorCode: "Kept only on ErrorsByCode" });
  assert.deepEqual([...metrics.snapshot().keys()].sort(), [
    "AllErrors{stream=s}",
    "ErrorsByCode{stream=s}",
    "RequestTime{stream=s}",
    "UserRecordsPending",
  ]);
  assert.equal(metrics.snapshot().get("AllErrors{stream=s}")?.count, 2);
  await metrics.close();
});

test("MetricsManager keeps one series per distinct dimension set", async () => {
  const { metrics } = setup();
  // Alternate so the last-series shortcut misses on every put.
  for (let i = 0; i < 10; i++) {
    metrics.put("UserRecordsPut", 1, { stream: i % 2 ? "a" : "b", shard: SHARD0 });
    metrics.put("UserRecordsPut", 1, { stream: "a", shard: i % 2 ? SHARD0 : SHARD1 });
  }
  const snapshot = metrics.snapshot();
  assert.equal(snapshot.get(`UserRecordsPut{stream=a,shard=${SHARD0}}`)?.count, 10);
  assert.equal(snapshot.get(`UserRecordsPut{stream=b,shard=${SHARD0}}`)?.count, 5);
  assert.equal(snapshot.get(`UserRecordsPut{stream=a,shard=${SHARD1}}`)?.count, 5);
  assert.equal(metrics.seriesCount, 3);
  await metrics.close();
});

// A deterministic pseudo-random sequence, so a failing run can be replayed.
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Sample {
  at: number;
  key: string;
  value: number;
}

function keyOf(snapshot: MetricSnapshot): string {
  const d = snapshot.dimensions;
  return `${snapshot.name}/${d.stream ?? ""}/${d.shard ?? ""}/${d.error_code ?? ""}`;
}

for (const intervalMs of [333, 1_000, 15_000, 60_000, 150_000]) {
  test(`MetricsManager exports exact deltas over 10 exports every ${intervalMs} ms`, async () => {
    const { clock, metrics, sink } = setup({ uploadIntervalMs: intervalMs });
    const random = lcg(intervalMs);
    const truth: Sample[] = [];
    const shards = [SHARD0, SHARD1];
    // Start off the second, so upload ticks fall inside a second that has samples.
    await clock.advance(250);
    metrics.start();
    // Advance in steps shorter than the interval, putting samples all along, until ten
    // exports have gone out; then close to export the rest.
    for (let step = 0; step < 10_000 && sink.exports.length < 10; step++) {
      await clock.advance(1 + Math.floor(random() * Math.max(1, intervalMs / 3)));
      const puts = 1 + Math.floor(random() * 4);
      for (let i = 0; i < puts; i++) {
        const shard = shards[Math.floor(random() * 2)]!;
        const value = Math.floor(random() * 1_000);
        metrics.put("BufferingTime", value, { stream: "s", shard });
        truth.push({ at: clock.now(), key: `BufferingTime/s/${shard}/`, value });
      }
    }
    assert.equal(sink.exports.length, 10);
    await clock.advance(Math.floor(intervalMs / 2));
    metrics.put("BufferingTime", 1, { stream: "s", shard: SHARD0 });
    truth.push({ at: clock.now(), key: `BufferingTime/s/${SHARD0}/`, value: 1 });
    await metrics.close();

    let previousEnd = T0;
    let exported = 0;
    for (const [index, batch] of sink.exports.entries()) {
      const { windowStart, windowEnd } = batch[0]!;
      assert.equal(windowStart, previousEnd, `export ${index} starts where the last ended`);
      assert.ok(windowEnd > windowStart);
      if (index < sink.exports.length - 1) {
        assert.equal(windowEnd % 1_000, 0, `periodic export ${index} ends on a whole second`);
      }
      previousEnd = windowEnd;
      for (const snapshot of batch) {
        assert.equal(snapshot.windowStart, windowStart);
        assert.equal(snapshot.windowEnd, windowEnd);
        // close() takes the samples of its own millisecond too: windowEnd is "now".
        const last: boolean = index === sink.exports.length - 1;
        const inWindow: Sample[] = truth.filter((sample) =>
          sample.key === keyOf(snapshot) && sample.at >= windowStart &&
          (sample.at < windowEnd || last && sample.at === windowEnd)
        );
        const values = inWindow.map((sample) => sample.value);
        assert.equal(snapshot.count, inWindow.length, `export ${index} ${keyOf(snapshot)}`);
        assert.equal(snapshot.sum, values.reduce((a, b) => a + b, 0));
        assert.equal(snapshot.min, Math.min(...values));
        assert.equal(snapshot.max, Math.max(...values));
        assert.ok(snapshot.count > 0, "zero-count series are not exported");
        exported += snapshot.count;
      }
    }
    assert.equal(exported, truth.length, "every sample exported exactly once");
    assert.equal(previousEnd, clock.now(), "the final export ends at close");
    const sum = truth.reduce((total, sample) => total + sample.value, 0);
    assert.equal(sink.total("BufferingTime").sum, sum);
    assert.equal(sink.total("BufferingTime").count, truth.length);
  });
}

test("MetricsManager periodic exports leave the partial current second for the next one", async () => {
  const { clock, metrics, sink } = setup({ uploadIntervalMs: 10_000 });
  metrics.start();
  await clock.advance(9_500);
  metrics.put("UserRecordsReceived", 1, { stream: "s" }); // second 9, complete at 10 s
  await clock.advance(500);
  metrics.put("UserRecordsReceived", 1, { stream: "s" }); // 10.000 s: second 10
  await clock.advance(0);
  assert.equal(sink.exports.length, 1);
  assert.deepEqual(
    sink.exports[0]!.map((s) => [s.count, s.windowStart, s.windowEnd]),
    [[1, T0, T0 + 10_000]],
  );
  await clock.advance(10_000);
  assert.deepEqual(
    sink.exports[1]!.map((s) => [s.count, s.windowStart, s.windowEnd]),
    [[1, T0 + 10_000, T0 + 20_000]],
  );
  await metrics.close();
  assert.equal(sink.exports.length, 2, "close with nothing left does not call export");
});

test("MetricsManager.flush() exports the partial second once and close() does not repeat it", async () => {
  const { clock, metrics, sink } = setup();
  await clock.advance(400);
  metrics.put("UserRecordsPut", 1, { stream: "s", shard: SHARD0 });
  await metrics.flush();
  assert.equal(sink.exports.length, 1);
  assert.deepEqual(
    sink.exports[0]!.map((s) => [s.count, s.windowStart, s.windowEnd]),
    [[1, T0, T0 + 400]],
  );
  await metrics.flush();
  assert.equal(sink.exports.length, 1, "an empty export does not call the sink");
  await clock.advance(100);
  metrics.put("UserRecordsPut", 0, { stream: "s", shard: SHARD0 }); // same second, after flush
  await metrics.flush();
  await metrics.flush();
  await clock.advance(300);
  metrics.put("UserRecordsPut", 1, { stream: "s", shard: SHARD0 });
  await metrics.close();
  await metrics.close();
  assert.deepEqual(
    sink.exports.map((batch) => batch.map((s) => [s.count, s.sum, s.windowStart, s.windowEnd])),
    [
      [[1, 1, T0, T0 + 400]],
      [[1, 0, T0 + 400, T0 + 500]],
      [[1, 1, T0 + 500, T0 + 800]],
    ],
  );
  assert.deepEqual(sink.total("UserRecordsPut"), { count: 3, sum: 2, min: 0, max: 1 });
});

test("MetricsManager.close() exports the partial second and closes the sink once", async () => {
  const { clock, metrics, sink, scheduler } = setup({ uploadIntervalMs: 60_000 });
  metrics.start();
  await clock.advance(61_700);
  metrics.put("KinesisRecordsPut", 1, { stream: "s", shard: SHARD1 });
  const closing = metrics.close();
  assert.equal(metrics.close(), closing);
  await closing;
  assert.equal(sink.closed, true);
  const last = sink.exports.at(-1)!;
  assert.deepEqual(last.map((s) => [s.name, s.count, s.windowStart, s.windowEnd]), [
    ["KinesisRecordsPut", 1, T0 + 60_000, T0 + 61_700],
  ]);
  assert.equal(scheduler.size, 0, "the upload deadline is cancelled");
  // The scheduler is the caller's: closing it releases the one timer it may keep armed.
  scheduler.close();
  assert.equal(clock.pendingTimers, 0);
  metrics.put("KinesisRecordsPut", 1, { stream: "s", shard: SHARD1 });
  await metrics.flush();
  assert.equal(sink.total("KinesisRecordsPut").count, 1, "puts after close are ignored");
  assert.equal(metrics.snapshot().get(`KinesisRecordsPut{stream=s,shard=${SHARD1}}`)?.count, 1);
});

test("MetricsManager.close() includes samples put while an earlier export is running", async () => {
  const { sink, release } = slowSink();
  const clock = new FakeClock(T0);
  const metrics = new MetricsManager({
    level: "summary",
    sink,
    clock,
    logger: new CapturingLogger(),
  });
  metrics.put("AllErrors", 1, { stream: "s" });
  const flushing = metrics.flush();
  await settle();
  const closing = metrics.close();
  metrics.put("AllErrors", 1, { stream: "s" }); // still before the final hand-off
  release(0);
  await flushing;
  await settle();
  release(1);
  await closing;
  assert.deepEqual(sink.batches.map((batch) => batch.map((s) => s.count)), [[1], [1]]);
  assert.equal(sink.closes, 1);
});

test("MetricsManager.start() is idempotent and starts the sink once", async () => {
  const clock = new FakeClock(T0);
  const scheduler = new Scheduler(clock);
  let starts = 0;
  let exports = 0;
  const sink = { start: () => void starts++, export: () => void exports++ };
  const metrics = new MetricsManager(
    onScheduler({ level: "detailed", sink, uploadIntervalMs: 5_000 }, scheduler),
  );
  metrics.start();
  metrics.start();
  await settle();
  assert.equal(starts, 1);
  assert.equal(scheduler.size, 1, "one upload deadline, on the given scheduler");
  metrics.put("UserRecordsReceived", 1);
  await clock.advance(6_000);
  assert.equal(exports, 1);
  await metrics.close();
  metrics.start();
  assert.equal(scheduler.size, 0, "start() after close() does nothing");
  assert.equal(starts, 1);
  scheduler.close();
  assert.equal(clock.pendingTimers, 0);
});

test("MetricsManager closes a sink that only has Symbol.asyncDispose, after its final export", async () => {
  const log: string[] = [];
  const sink: MetricsSink = {
    export: (snapshots) => void log.push(`export ${snapshots.length}`),
    [Symbol.asyncDispose]: () => {
      log.push("dispose");
      return Promise.resolve();
    },
  };
  const metrics = new MetricsManager({ level: "summary", sink, clock: new FakeClock(T0) });
  metrics.put("UserRecordsPut", 1);
  await metrics[Symbol.asyncDispose]();
  await metrics.close();
  assert.deepEqual(log, ["export 1", "dispose"]);
});

test("MetricsManager counts and logs an export that throws, and put() and flush() never see it", async () => {
  const { clock } = setup();
  const logger = new CapturingLogger();
  let calls = 0;
  const sink = {
    export() {
      calls++;
      throw new Error("backend down");
    },
  };
  const metrics = new MetricsManager({ level: "summary", sink, clock, logger });
  metrics.put("UserRecordsPut", 1, { stream: "s" });
  metrics.put("UserRecordsPut", 1, { stream: "t" });
  await metrics.flush();
  assert.equal(metrics.exportErrors, 1);
  assert.equal(
    logger.at("warn", "error").length,
    1,
    "one log line per failed export, not per series",
  );
  assert.match(logger.at("warn", "error")[0]!.message, /metrics export failed; 2 series/);
  assert.equal((logger.at("warn", "error")[0]!.data[0] as Error).message, "backend down");
  metrics.put("UserRecordsPut", 1, { stream: "s" });
  await metrics.close();
  assert.equal(calls, 2);
  assert.equal(metrics.exportErrors, 2);
  assert.equal(metrics.snapshot().get("UserRecordsPut{stream=s}")?.count, 2);
});

test("MetricsManager counts an export that rejects and drops only that window", async () => {
  const clock = new FakeClock(T0);
  const logger = new CapturingLogger();
  const memory = new InMemorySink();
  let fail = true;
  const sink = {
    export(snapshots: readonly MetricSnapshot[]) {
      if (fail) return Promise.reject(new Error("throttled"));
      memory.export(snapshots);
      return Promise.resolve();
    },
  };
  const metrics = new MetricsManager({ level: "summary", sink, clock, logger });
  metrics.start();
  metrics.put("AllErrors", 1, { stream: "s" });
  await clock.advance(60_000);
  assert.equal(metrics.exportErrors, 1);
  assert.equal(logger.at("warn", "error").length, 1);
  fail = false;
  metrics.put("AllErrors", 1, { stream: "s" });
  await clock.advance(60_000);
  await metrics.close();
  assert.equal(metrics.exportErrors, 1);
  assert.deepEqual(memory.total("AllErrors"), { count: 1, sum: 1, min: 1, max: 1 });
});

test("MetricsManager logs a sink whose start() or close() fails and still exports", async () => {
  const logger = new CapturingLogger();
  const memory = new InMemorySink();
  const sink = {
    start: () => Promise.reject(new Error("no start")),
    export: (snapshots: readonly MetricSnapshot[]) => memory.export(snapshots),
    close: () => {
      throw new Error("no close");
    },
  };
  const metrics = new MetricsManager({
    level: "summary",
    sink,
    clock: new FakeClock(T0),
    logger,
  });
  metrics.put("UserRecordsPut", 1);
  await metrics.close();
  assert.equal(memory.total("UserRecordsPut").count, 1);
  assert.equal(metrics.exportErrors, 0);
  assert.deepEqual(logger.at("warn", "error").map((call) => call.message), [
    "metrics sink start() failed",
    "metrics sink close() failed",
  ]);
});

interface SlowSink extends MetricsSink {
  readonly batches: (readonly MetricSnapshot[])[];
  active: number;
  maxActive: number;
  closes: number;
}

function slowSink(): { sink: SlowSink; release: (index: number) => void } {
  const resolvers: (() => void)[] = [];
  const sink: SlowSink = {
    batches: [],
    active: 0,
    maxActive: 0,
    closes: 0,
    export(snapshots) {
      sink.batches.push(snapshots);
      sink.active++;
      sink.maxActive = Math.max(sink.maxActive, sink.active);
      return new Promise<void>((resolve) => resolvers.push(resolve));
    },
    close() {
      sink.closes++;
    },
  };
  const release = (index: number) => {
    assert.ok(resolvers[index], `export ${index} was handed to the sink`);
    sink.active--;
    resolvers[index]!();
  };
  return { sink, release };
}

test("MetricsManager never overlaps exports to a slow sink and loses nothing", async () => {
  const { sink, release } = slowSink();
  const clock = new FakeClock(T0);
  const metrics = new MetricsManager({
    level: "summary",
    sink,
    clock,
    uploadIntervalMs: 10_000,
    logger: new CapturingLogger(),
  });
  metrics.start();
  let truth = 0;
  for (let i = 0; i < 90; i++) {
    metrics.put("UserRecordsPut", 1, { stream: "s" });
    truth++;
    await clock.advance(500);
  }
  // Exports became due at 10, 20, 30 and 40 s; only the first was handed over.
  assert.equal(sink.batches.length, 1);
  assert.equal(sink.maxActive, 1);
  assert.equal(metrics.snapshot().get("UserRecordsPut{stream=s}")?.count, 90, "puts go on");
  release(0);
  await settle();
  // The waiting export went out at once and covers everything since the first hand-off.
  assert.equal(sink.batches.length, 2);
  assert.equal(sink.batches[1]![0]!.windowStart, sink.batches[0]![0]!.windowEnd);
  assert.equal(sink.batches[1]![0]!.windowEnd, T0 + 45_000);
  metrics.put("UserRecordsPut", 1, { stream: "s" });
  truth++;
  const flushing = metrics.flush();
  await clock.advance(30_000);
  assert.equal(sink.batches.length, 2, "flush waits for the running export");
  release(1);
  await settle();
  assert.equal(sink.batches.length, 3);
  release(2);
  await flushing;
  const closing = metrics.close();
  await settle();
  if (sink.batches.length === 4) release(3);
  await closing;
  assert.equal(sink.maxActive, 1);
  const exported = sink.batches.flat().reduce((total, s) => total + s.count, 0);
  assert.equal(exported, truth);
  for (let i = 1; i < sink.batches.length; i++) {
    assert.equal(sink.batches[i]![0]!.windowStart, sink.batches[i - 1]![0]!.windowEnd);
  }
});

test("MetricsManager calls an eventful sink's record() inside put() with kept dimensions", async () => {
  const { clock, metrics, sink } = setup({ level: "summary", granularity: "stream" });
  await clock.advance(1_234);
  metrics.put("ErrorsByCode", 1, { stream: "s", shard: SHARD0, errorCode: "Throttled" });
  assert.equal(sink.events.length, 1, "recorded synchronously");
  metrics.put("RequestTime", 12, { stream: "s" }); // detailed-only: filtered out
  assert.deepEqual(
    sink.events,
    [{
      name: "ErrorsByCode",
      unit: "Count",
      value: 1,
      timestamp: T0 + 1_234,
      dimensions: { stream: "s", error_code: "Throttled" },
    }] satisfies MetricEvent[],
  );
  await metrics.close();
});

test("MetricsManager counts a throwing record() and logs it once per upload interval", async () => {
  const clock = new FakeClock(T0);
  const logger = new CapturingLogger();
  const memory = new InMemorySink();
  const sink = {
    export: (snapshots: readonly MetricSnapshot[]) => memory.export(snapshots),
    record() {
      throw new Error("record broke");
    },
  };
  const metrics = new MetricsManager({
    level: "detailed",
    sink,
    clock,
    logger,
    uploadIntervalMs: 10_000,
  });
  metrics.start();
  for (let i = 0; i < 5; i++) metrics.put("UserRecordsReceived", 1, { stream: "s" });
  assert.equal(metrics.recordErrors, 5);
  assert.equal(logger.at("warn", "error").length, 1);
  await clock.advance(10_000);
  metrics.put("UserRecordsReceived", 1, { stream: "s" });
  assert.equal(metrics.recordErrors, 6);
  assert.equal(logger.at("warn", "error").length, 2, "logged again in the next interval");
  await metrics.close();
  assert.equal(memory.total("UserRecordsReceived").count, 6, "samples still aggregated");
  assert.equal(metrics.exportErrors, 0);
});

test("MetricsManager drops idle series once exported and out of the window", async () => {
  const { clock, metrics, sink } = setup({ uploadIntervalMs: 10_000 });
  metrics.start();
  for (let shard = 0; shard < 50; shard++) {
    metrics.put("UserRecordsPut", 1, { stream: "s", shard: `shardId-${shard}` });
  }
  assert.equal(metrics.seriesCount, 50);
  await clock.advance(30_000);
  assert.equal(metrics.seriesCount, 50, "still in the rolling window");
  assert.equal(sink.total("UserRecordsPut").count, 50);
  await clock.advance(40_000);
  assert.equal(metrics.seriesCount, 0);
  metrics.put("UserRecordsPut", 1, { stream: "s", shard: "shardId-7" });
  assert.equal(metrics.seriesCount, 1);
  await metrics.close();
  assert.equal(sink.total("UserRecordsPut").count, 51);
});

test("MetricsManager without a sink keeps the window and bounds its memory", async () => {
  const clock = new FakeClock(T0);
  const metrics = new MetricsManager({ level: "detailed", clock, uploadIntervalMs: 1_000 });
  metrics.start();
  metrics.put("RequestTime", 5, { stream: "s" });
  await metrics.flush();
  assert.equal(metrics.snapshot().get("RequestTime{stream=s}")?.count, 1);
  await clock.advance(61_000);
  assert.equal(metrics.seriesCount, 0);
  await metrics.close();
  assert.equal(clock.pendingTimers, 0);
});

test("MetricsManager skips the sink when a window has no samples", async () => {
  const { clock, metrics, sink } = setup({ uploadIntervalMs: 1_000 });
  metrics.start();
  metrics.put("UserRecordsReceived", 1, { stream: "s" });
  await clock.advance(10_000);
  assert.equal(sink.exports.length, 1);
  metrics.put("UserRecordsReceived", 1, { stream: "s" });
  await clock.advance(10_000);
  assert.equal(sink.exports.length, 2);
  await metrics.close();
  assert.equal(sink.exports.length, 2);
  assert.equal(sink.started, true);
});

test("MetricsManager.put() reads the clock once per synchronous burst", async () => {
  const fake = new FakeClock(T0);
  let reads = 0;
  // A clock that moves 400 ms at every read shows which puts shared a reading.
  const clock = {
    now: () => (reads++, fake.now() + 400 * reads),
    setTimer: fake.setTimer.bind(fake),
    clearTimer: fake.clearTimer.bind(fake),
    setPersistent: () => {},
  };
  const sink = new InMemorySink();
  const metrics = new MetricsManager({ level: "detailed", sink, clock });
  const before = reads;
  for (let i = 0; i < 100; i++) metrics.put("UserRecordsReceived", 1, { stream: "s" });
  assert.equal(reads - before, 1);
  await Promise.resolve();
  metrics.put("UserRecordsReceived", 1, { stream: "s" });
  assert.equal(reads - before, 2, "the next microtask reads the clock again");
  const stamps = new Set(sink.events.map((event) => event.timestamp));
  assert.equal(stamps.size, 2);
  assert.equal(sink.events[0]!.timestamp, sink.events[99]!.timestamp);
  assert.notEqual(sink.events[99]!.timestamp, sink.events[100]!.timestamp);
  await metrics.close();
  assert.equal(sink.total("UserRecordsReceived").count, 101);
});
