// Each vendor sink behind a real producer run against kinesalite (the workload of
// tests/support/metrics_workload.ts: successes, retries, permanent failures, expiries and a
// missing stream), with what its backend received checked against the truth computed from
// the wire and the RecordResults.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import { CloudWatchSink } from "../../sinks/cloudwatch.ts";
import { DatadogSink } from "../../sinks/datadog.ts";
import { OpenTelemetrySink } from "../../sinks/opentelemetry.ts";
import { silentLogger } from "../../src/logger.ts";
import { metricNames, metricUnit } from "../../src/metrics.ts";
import type { MetricName } from "../../src/metrics_sink.ts";
import { type CapturedDatum, startCloudWatchCapture } from "../support/cloudwatch_capture.ts";
import { startDatadogCapture } from "../support/datadog_capture.ts";
import { startKinesalite, useEmulator } from "../support/emulators.ts";
import { cell, expectedTotals, formatTable, type Totals } from "../support/metrics_truth.ts";
import { type MetricsWorkloadRun, runMetricsWorkload } from "../support/metrics_workload.ts";

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };
const DD_API_KEY = "dd-api-0123456789abcdef0123456789abcdef";

/** The truth of every name, plus ErrorsByCode per code as `ErrorsByCode{code}`. */
function truthOf(run: MetricsWorkloadRun): Map<string, Totals> {
  const truth = new Map<string, Totals>(expectedTotals(run.results, run.wire));
  for (const [code, count] of run.wire.errorsByCode) {
    truth.set(`ErrorsByCode{${code}}`, { count, sum: count });
  }
  return truth;
}

function add(into: Map<string, Totals>, key: string, count: number, sum: number): void {
  const totals = into.get(key) ?? { count: 0, sum: 0 };
  totals.count += count;
  totals.sum += sum;
  into.set(key, totals);
}

function sumsEqual(expected: Totals, actual: Totals | undefined, countToo: boolean): boolean {
  if (actual === undefined) return expected.count === 0;
  if (countToo && expected.count !== actual.count) return false;
  return Number.isNaN(expected.sum) || expected.sum === actual.sum;
}

describe("Vendor sinks in a full producer run against kinesalite", () => {
  const env = useEmulator(startKinesalite);

  test("CloudWatchSink: global series equal the truth and the roll-up series sum to them", async () => {
    const capture = await startCloudWatchCapture();
    try {
      const sink = new CloudWatchSink({
        region: "us-east-1",
        endpoint: capture.url,
        credentials,
        namespace: "webkpl-test",
        logger: silentLogger,
      });
      const startedAt = Date.now();
      const run = await runMetricsWorkload({
        endpoint: env.emulator.endpoint,
        admin: env.client,
        level: "detailed",
        sink,
        seed: 3,
      });
      const endedAt = Date.now();
      assert.deepEqual(capture.violations, []);
      assert.ok(capture.requests.length >= 3, `${capture.requests.length} requests`);

      // Series by depth: global (no dimension, or only ErrorCode for the per-code
      // totals), per stream, per shard.
      const global = new Map<string, Totals>();
      const perStream = new Map<string, Totals>();
      const perShard = new Map<string, Totals>();
      const byStream = new Map<string, Totals>();
      const streamOf = (datum: CapturedDatum) =>
        datum.dimensions.find((dimension) => dimension.startsWith("StreamName="));
      for (const datum of capture.datums) {
        assert.equal(datum.unit, metricUnit(datum.name as MetricName), datum.name);
        assert.ok(datum.timestamp >= startedAt - 1000 && datum.timestamp <= endedAt, "timestamp");
        const code = datum.dimensions.find((dimension) => dimension.startsWith("ErrorCode="));
        const key = code === undefined ? datum.name : `${datum.name}{${code.slice(10)}}`;
        const rest = datum.dimensions.length - (code === undefined ? 0 : 1);
        const stats: [number, number] = [datum.sampleCount, datum.sum];
        if (rest === 0) add(global, key, ...stats);
        else if (rest === 1) {
          add(perStream, key, ...stats);
          // ErrorsByCode's total has no stream series of its own (ErrorCode comes first in
          // the tree); its streams are the per-code stream series.
          if (code !== undefined) add(perStream, datum.name, ...stats);
          add(byStream, `${key} ${streamOf(datum)}`, ...stats);
        } else add(perShard, `${key} ${streamOf(datum)}`, ...stats);
      }
      // A stream series holds its shards' samples plus those put on the stream alone.
      for (const [key, shards] of perShard) {
        const stream = byStream.get(key)!;
        assert.ok(shards.count <= stream.count, `${key}: shards ${shards.count} > ${stream.count}`);
      }

      const truth = truthOf(run);
      const rows: string[][] = [];
      const mismatches: string[] = [];
      for (const [key, expected] of truth) {
        const received = global.get(key);
        const streams = perStream.get(key);
        const ok = sumsEqual(expected, received, true) && sumsEqual(expected, streams, true);
        rows.push([
          key,
          cell(expected),
          cell({ count: received?.count ?? 0, sum: received?.sum ?? 0 }),
          cell({ count: streams?.count ?? 0, sum: streams?.sum ?? 0 }),
          ok ? "=" : "DIFF",
        ]);
        if (!ok) mismatches.push(key);
      }
      const pending = capture.datums
        .filter((datum) => datum.name === "UserRecordsPending" && datum.dimensions.length === 0)
        .sort((a, b) => a.timestamp - b.timestamp)
        .at(-1);
      rows.push(["UserRecordsPending (min of last window)", "0", String(pending?.minimum), "", ""]);
      console.log(
        formatTable(
          `CloudWatchSink totals (SampleCount / Sum over ${capture.requests.length} PutMetricData requests, ${capture.datums.length} datums)`,
          ["metric", "truth", "global series", "Σ stream series", ""],
          rows,
        ),
      );
      assert.deepEqual(mismatches, []);
      assert.equal(pending?.minimum, 0);
      assert.ok(capture.requests.every((request) => request.namespace === "webkpl-test"));
    } finally {
      await capture.close();
    }
  });

  test("OpenTelemetrySink: counter sums and histogram counts equal the truth, pending ends at 0", async () => {
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    try {
      const sink = new OpenTelemetrySink({ meterProvider: provider });
      const run = await runMetricsWorkload({
        endpoint: env.emulator.endpoint,
        admin: env.client,
        level: "detailed",
        sink,
        seed: 4,
      });
      const { resourceMetrics, errors } = await reader.collect();
      assert.deepEqual(errors, []);
      const collected = new Map<string, MetricData>();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) collected.set(metric.descriptor.name, metric);
      }
      assert.deepEqual(
        [...collected.keys()].sort(),
        metricNames.map((name) => `webkpl.${name}`).sort(),
      );

      const received = new Map<string, Totals>();
      const kinds = new Map<string, string>();
      for (const name of metricNames) {
        const metric = collected.get(`webkpl.${name}`)!;
        if (metric.dataPointType === DataPointType.HISTOGRAM) {
          kinds.set(name, "Histogram");
          for (const point of metric.dataPoints as DataPoint<Histogram>[]) {
            add(received, name, point.value.count, point.value.sum!);
          }
        } else {
          assert.equal(metric.dataPointType, DataPointType.SUM, name);
          kinds.set(name, metric.isMonotonic ? "Counter" : "UpDownCounter");
          for (const point of metric.dataPoints as DataPoint<number>[]) {
            add(received, name, 0, point.value);
            const code = point.attributes.error_code;
            if (code !== undefined) add(received, `${name}{${code}}`, 0, point.value);
          }
        }
      }
      const truth = truthOf(run);
      const rows: string[][] = [];
      const mismatches: string[] = [];
      for (const [key, expected] of truth) {
        const name = key.replace(/\{.*/, "");
        const histogram = kinds.get(name) === "Histogram";
        const got = received.get(key) ?? { count: 0, sum: 0 };
        // A counter carries only its sum; a histogram its count and sum.
        const ok = sumsEqual(expected, got, histogram);
        rows.push([
          key,
          kinds.get(name)!,
          histogram ? cell(expected) : `sum ${expected.sum}`,
          histogram
            ? cell({ ...got, sum: Number.isNaN(expected.sum) ? NaN : got.sum })
            : `sum ${got.sum}`,
          ok ? "=" : "DIFF",
        ]);
        if (!ok) mismatches.push(key);
      }
      const pending = collected.get("webkpl.UserRecordsPending")!.dataPoints as DataPoint<
        number
      >[];
      const pendingByStream = Object.fromEntries(
        pending.map((point) => [point.attributes.stream, point.value]),
      );
      rows.push([
        "UserRecordsPending (value after close)",
        "UpDownCounter",
        "0 per stream",
        Object.values(pendingByStream).join(", "),
        Object.values(pendingByStream).every((value) => value === 0) ? "=" : "DIFF",
      ]);
      console.log(
        formatTable(
          "OpenTelemetrySink totals (what a MeterProvider's reader collected after close)",
          ["metric", "instrument", "truth", "received", ""],
          rows,
        ),
      );
      assert.deepEqual(mismatches, []);
      assert.deepEqual(
        pendingByStream,
        Object.fromEntries(Object.values(run.streams).map((stream) => [stream, 0])),
      );
    } finally {
      await provider.shutdown();
    }
  });

  test("DatadogSink: count sums and distribution samples equal the truth, the pending gauge ends at 0", async () => {
    const capture = await startDatadogCapture(DD_API_KEY);
    try {
      const sink = new DatadogSink({
        apiKey: DD_API_KEY,
        baseUrl: capture.url,
        logger: silentLogger,
        tags: ["env:test"],
      });
      const startedAt = Math.floor(Date.now() / 1000);
      const run = await runMetricsWorkload({
        endpoint: env.emulator.endpoint,
        admin: env.client,
        level: "detailed",
        sink,
        seed: 5,
      });
      const endedAt = Math.ceil(Date.now() / 1000);
      assert.deepEqual(capture.violations, []);
      assert.ok(capture.requests.every((request) => request.status === 202));
      assert.ok(capture.requests.length >= 3, `${capture.requests.length} requests`);

      const received = new Map<string, Totals>();
      const kinds = new Map<string, string>();
      const pendingLast = new Map<string, number>();
      const codeOf = (tags: string[] | undefined) =>
        tags?.find((tag) => tag.startsWith("error_code:"))?.slice(11);
      for (const entry of capture.series) {
        const name = entry.metric.replace(/^webkpl\./, "");
        kinds.set(name, entry.type === 1 ? "count" : entry.type === 3 ? "gauge" : `${entry.type}`);
        assert.ok(entry.tags?.includes("env:test"), entry.metric);
        for (const point of entry.points) {
          assert.ok(point.timestamp >= startedAt - 1 && point.timestamp <= endedAt, "timestamp");
          if (entry.type === 3) {
            const stream = entry.tags!.find((tag) => tag.startsWith("stream:"))!.slice(7);
            pendingLast.set(stream, point.value);
            continue;
          }
          add(received, name, 0, point.value);
          const code = codeOf(entry.tags);
          if (code !== undefined) add(received, `${name}{${code}}`, 0, point.value);
        }
      }
      for (const entry of capture.distributions) {
        const name = entry.metric.replace(/^webkpl\./, "");
        kinds.set(name, "distribution");
        for (const [timestamp, values] of entry.points) {
          assert.ok(timestamp >= startedAt - 1 && timestamp <= endedAt, "timestamp");
          add(received, name, values.length, values.reduce((a, b) => a + b, 0));
        }
      }
      const truth = truthOf(run);
      const rows: string[][] = [];
      const mismatches: string[] = [];
      for (const [key, expected] of truth) {
        const name = key.replace(/\{.*/, "");
        const distribution = kinds.get(name) === "distribution";
        const got = received.get(key) ?? { count: 0, sum: 0 };
        // A count carries only the window's sum; a distribution every raw value.
        const ok = sumsEqual(expected, got, distribution);
        rows.push([
          key,
          kinds.get(name) ?? "(none)",
          distribution ? cell(expected) : `sum ${expected.sum}`,
          distribution
            ? cell({ ...got, sum: Number.isNaN(expected.sum) ? NaN : got.sum })
            : `sum ${got.sum}`,
          ok ? "=" : "DIFF",
        ]);
        if (!ok) mismatches.push(key);
      }
      rows.push([
        "UserRecordsPending (last gauge point)",
        kinds.get("UserRecordsPending") ?? "(none)",
        "0 per stream",
        [...pendingLast.values()].join(", "),
        [...pendingLast.values()].every((value) => value === 0) ? "=" : "DIFF",
      ]);
      console.log(
        formatTable(
          `DatadogSink totals (${capture.requests.length} requests to the v2 series and v1 distribution endpoints)`,
          ["metric", "type", "truth", "received", ""],
          rows,
        ),
      );
      assert.deepEqual(mismatches, []);
      assert.deepEqual(
        Object.fromEntries(pendingLast),
        Object.fromEntries(Object.values(run.streams).map((stream) => [stream, 0])),
      );
    } finally {
      await capture.close();
    }
  });
});

/** A reader the test collects from on demand: no timers, cumulative temporality. */
class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
