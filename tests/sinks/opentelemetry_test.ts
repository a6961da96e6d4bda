import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { metrics } from "@opentelemetry/api";
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import { OpenTelemetrySink } from "../../sinks/opentelemetry.ts";
import type { MetricDimensions, MetricName, MetricUnit } from "../../src/metrics_sink.ts";

/** A reader the test collects from on demand: no timers, cumulative temporality. */
class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

async function collect(reader: MetricReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  const byName = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
  }
  return byName;
}

function setUp(prefix?: string) {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  const sink = new OpenTelemetrySink(
    prefix === undefined ? { meterProvider: provider } : {
      meterProvider: provider,
      instrumentPrefix: prefix,
    },
  );
  return { reader, provider, sink };
}

const UNITS: Record<MetricName, MetricUnit> = {
  UserRecordsReceived: "Count",
  UserRecordsPending: "Count",
  UserRecordsPut: "Count",
  UserRecordsDataPut: "Bytes",
  KinesisRecordsPut: "Count",
  KinesisRecordsDataPut: "Bytes",
  ErrorsByCode: "Count",
  AllErrors: "Count",
  RetriesPerRecord: "Count",
  UserRecordExpired: "Count",
  BufferingTime: "Milliseconds",
  RequestTime: "Milliseconds",
  UserRecordsPerKinesisRecord: "Count",
  KinesisRecordsPerPutRecordsRequest: "Count",
  UserRecordsPerPutRecordsRequest: "Count",
};

function event(name: MetricName, value: number, dimensions: MetricDimensions) {
  return { name, unit: UNITS[name], value, timestamp: 1_700_000_000_000, dimensions };
}

/** The instrument kind, read from what the SDK exports for it. */
function kind(metric: MetricData): string {
  if (metric.dataPointType === DataPointType.HISTOGRAM) return "Histogram";
  if (metric.dataPointType === DataPointType.SUM) {
    return metric.isMonotonic ? "Counter" : "UpDownCounter";
  }
  return `other ${metric.dataPointType}`;
}

function attributesKey(attributes: object): string {
  return JSON.stringify(Object.entries(attributes).sort());
}

/** A small deterministic generator, so the sample sequence is the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

test("OpenTelemetrySink creates a Counter, UpDownCounter or Histogram per metric, named with the prefix", async () => {
  const { reader, provider, sink } = setUp();
  for (const name of Object.keys(UNITS) as MetricName[]) {
    sink.record(event(name, 1, { stream: "s" }));
  }
  const collected = await collect(reader);
  const kinds = Object.fromEntries(
    [...collected.values()].map((metric) => [metric.descriptor.name, kind(metric)]),
  );
  assert.deepEqual(kinds, {
    "webkpl.UserRecordsReceived": "Counter",
    "webkpl.UserRecordsPending": "UpDownCounter",
    "webkpl.UserRecordsPut": "Counter",
    "webkpl.UserRecordsDataPut": "Counter",
    "webkpl.KinesisRecordsPut": "Counter",
    "webkpl.KinesisRecordsDataPut": "Counter",
    "webkpl.ErrorsByCode": "Counter",
    "webkpl.AllErrors": "Counter",
    "webkpl.RetriesPerRecord": "Histogram",
    "webkpl.UserRecordExpired": "Counter",
    "webkpl.BufferingTime": "Histogram",
    "webkpl.RequestTime": "Histogram",
    "webkpl.UserRecordsPerKinesisRecord": "Histogram",
    "webkpl.KinesisRecordsPerPutRecordsRequest": "Histogram",
    "webkpl.UserRecordsPerPutRecordsRequest": "Histogram",
  });
  assert.equal(collected.get("webkpl.BufferingTime")!.descriptor.unit, "ms");
  assert.equal(collected.get("webkpl.UserRecordsDataPut")!.descriptor.unit, "By");
  assert.equal(collected.get("webkpl.UserRecordsPut")!.descriptor.unit, "{record}");
  assert.equal(collected.get("webkpl.ErrorsByCode")!.descriptor.unit, "{error}");
  assert.equal(collected.get("webkpl.RetriesPerRecord")!.descriptor.unit, "{retry}");
  await provider.shutdown();
});

test("OpenTelemetrySink counters sum to the truth for every attribute set", async () => {
  const { reader, provider, sink } = setUp();
  const next = random(7);
  const series: MetricDimensions[] = [
    { stream: "a", shard: "shardId-000000000000" },
    { stream: "a", shard: "shardId-000000000001" },
    { stream: "b", shard: "shardId-000000000000" },
    { stream: "b" },
  ];
  const truth = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    const dimensions = series[Math.floor(next() * series.length)]!;
    const success = next() < 0.9 ? 1 : 0;
    const bytes = 1 + Math.floor(next() * 4096);
    sink.record(event("UserRecordsPut", success, dimensions));
    sink.record(event("UserRecordsDataPut", bytes * success, dimensions));
    for (
      const [name, value] of [["UserRecordsPut", success], [
        "UserRecordsDataPut",
        bytes * success,
      ]] as const
    ) {
      const key = `${name} ${attributesKey(dimensions)}`;
      truth.set(key, (truth.get(key) ?? 0) + value);
    }
    if (success === 0) {
      const error = { ...dimensions, error_code: next() < 0.5 ? "InternalFailure" : "Throttled" };
      sink.record(event("ErrorsByCode", 1, error));
      const key = `ErrorsByCode ${attributesKey(error)}`;
      truth.set(key, (truth.get(key) ?? 0) + 1);
    }
  }
  // The collected values are read twice, to show cumulative counters do not drift.
  for (let round = 0; round < 2; round++) {
    const collected = await collect(reader);
    const received = new Map<string, number>();
    for (const name of ["UserRecordsPut", "UserRecordsDataPut", "ErrorsByCode"]) {
      for (const point of collected.get(`webkpl.${name}`)!.dataPoints) {
        received.set(`${name} ${attributesKey(point.attributes)}`, point.value as number);
      }
    }
    assert.deepEqual(received, truth);
  }
  await provider.shutdown();
});

test("OpenTelemetrySink histograms count every raw sample, never a window mean", async () => {
  const { reader, provider, sink } = setUp();
  const next = random(11);
  const dimensions = { stream: "s", shard: "shardId-000000000003" };
  const samples: number[] = [];
  for (let i = 0; i < 1234; i++) {
    const value = Math.floor(next() * 900);
    samples.push(value);
    sink.record(event("BufferingTime", value, dimensions));
  }
  for (const value of [0, 0, 1, 3, 0]) sink.record(event("RetriesPerRecord", value, dimensions));

  const collected = await collect(reader);
  const [buffering] = collected.get("webkpl.BufferingTime")!.dataPoints as DataPoint<Histogram>[];
  assert.equal(buffering!.value.count, samples.length);
  assert.equal(buffering!.value.sum, samples.reduce((a, b) => a + b, 0));
  assert.equal(buffering!.value.min, Math.min(...samples));
  assert.equal(buffering!.value.max, Math.max(...samples));
  assert.deepEqual(buffering!.attributes, dimensions);

  const [retries] = collected.get("webkpl.RetriesPerRecord")!.dataPoints as DataPoint<Histogram>[];
  assert.equal(retries!.value.count, 5);
  assert.equal(retries!.value.sum, 4);
  assert.deepEqual(retries!.value.buckets.boundaries, [0, 1, 2, 3, 4, 5, 10, 20, 50]);
  await provider.shutdown();
});

test("OpenTelemetrySink UserRecordsPending follows the sampled count and returns to 0", async () => {
  const { reader, provider, sink } = setUp();
  const sequences: [MetricDimensions, number[]][] = [
    [{ stream: "a" }, [0, 5, 12, 12, 3, 40, 0]],
    [{ stream: "b" }, [7, 7, 2, 9, 1, 1, 0]],
  ];
  for (let step = 0; step < 7; step++) {
    for (const [dimensions, values] of sequences) {
      sink.record(event("UserRecordsPending", values[step]!, dimensions));
    }
    const collected = await collect(reader);
    const points = collected.get("webkpl.UserRecordsPending")!.dataPoints;
    const values = Object.fromEntries(
      points.map((point) => [point.attributes.stream, point.value]),
    );
    assert.deepEqual(
      values,
      { a: sequences[0]![1][step], b: sequences[1]![1][step] },
      `step ${step}`,
    );
  }
  await provider.shutdown();
});

test("OpenTelemetrySink uses the global meter provider when given no meter", async () => {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  assert.ok(metrics.setGlobalMeterProvider(provider));
  try {
    const sink = new OpenTelemetrySink({ instrumentPrefix: "kpl_" });
    sink.start();
    sink.record(event("KinesisRecordsPut", 1, { stream: "s" }));
    sink.record(event("KinesisRecordsPut", 1, { stream: "s" }));
    const { resourceMetrics } = await reader.collect();
    const scope = resourceMetrics.scopeMetrics[0]!;
    assert.equal(scope.scope.name, "@webkpl/kpl");
    assert.equal(scope.metrics[0]!.descriptor.name, "kpl_KinesisRecordsPut");
    assert.equal(scope.metrics[0]!.dataPoints[0]!.value, 2);
  } finally {
    metrics.disable();
    await provider.shutdown();
  }
});

test("OpenTelemetrySink.export() adds nothing: counts come from record() alone", async () => {
  const { reader, provider, sink } = setUp();
  sink.record(event("UserRecordsReceived", 1, { stream: "s" }));
  await sink.export([{
    name: "UserRecordsReceived",
    unit: "Count",
    dimensions: { stream: "s" },
    count: 50,
    sum: 50,
    min: 1,
    max: 1,
    windowStart: 0,
    windowEnd: 1000,
  }]);
  const collected = await collect(reader);
  assert.equal(collected.get("webkpl.UserRecordsReceived")!.dataPoints[0]!.value, 1);
  await provider.shutdown();
});

test("new OpenTelemetrySink() rejects a prefix that makes invalid instrument names", () => {
  assert.throws(() => new OpenTelemetrySink({ instrumentPrefix: "1kpl." }), {
    name: "RangeError",
    message:
      `Cannot create OpenTelemetrySink as 'instrumentPrefix' must start with a letter and hold only letters, digits, '_', '.', '-' and '/': current value is "1kpl."`,
  });
  assert.throws(() => new OpenTelemetrySink({ instrumentPrefix: "my kpl " }), RangeError);
  assert.throws(() => new OpenTelemetrySink({ instrumentPrefix: "x".repeat(230) }), RangeError);
  assert.equal(new OpenTelemetrySink({ instrumentPrefix: "" }).instrumentPrefix, "");
});

/**
 * The bare specifiers reachable from `entry` through our own source files, static and
 * dynamic imports alike, skipping comments (doc examples import the published name).
 * Parsing import statements is enough: our files are ours.
 */
function packagesReachableFrom(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [entry];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;
  for (let file = queue.pop(); file !== undefined && seen.size < 1000; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    for (const match of code.matchAll(pattern)) {
      const specifier = match[1]!;
      if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier));
      else packages.add(specifier);
    }
  }
  return packages;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

test("importing sinks/opentelemetry.ts reaches @opentelemetry/api and no AWS SDK", () => {
  assert.deepEqual([...packagesReachableFrom(resolve(root, "sinks/opentelemetry.ts"))], [
    "@opentelemetry/api",
  ]);
  const cloudwatch = packagesReachableFrom(resolve(root, "sinks/cloudwatch.ts"));
  assert.ok(cloudwatch.has("@aws-sdk/client-cloudwatch"), "the walker sees dynamic imports");
});

test("importing mod.ts reaches no vendor package and no sink", () => {
  const packages = [...packagesReachableFrom(resolve(root, "mod.ts"))];
  const vendors = packages.filter((specifier) =>
    /opentelemetry|datadog|cloudwatch|sinks\//i.test(specifier)
  );
  assert.deepEqual(vendors, []);
});
