// MetricsManager.put(): the producer calls it several times per record, so it must cost
// nothing at level "none" and little at "detailed". Run with `deno bench bench/metrics_bench.ts`.

import { type MetricPutDimensions, MetricsManager } from "../src/metrics.ts";
import type { MetricName } from "../src/metrics_sink.ts";
import { InMemorySink, NullSink } from "../sinks/mod.ts";

// The baseline: a method with put()'s signature that does nothing, called the same way,
// so the "none" case is compared with the cost of the call itself.
class NoopMetrics {
  put(_name: MetricName, _value: number, _dimensions?: MetricPutDimensions): void {}
}

const dims: MetricPutDimensions = { stream: "events", shard: "shardId-000000000001" };
const shardDims: MetricPutDimensions[] = Array.from({ length: 64 }, (_, i) => ({
  stream: "events",
  shard: `shardId-${String(i).padStart(12, "0")}`,
}));
const errorDims: MetricPutDimensions = {
  ...dims,
  errorCode: "ProvisionedThroughputExceededException",
};

const noop = new NoopMetrics();
const none = new MetricsManager({ level: "none" });
const summary = new MetricsManager({ level: "summary", sink: new NullSink() });
const detailed = new MetricsManager({ level: "detailed", sink: new NullSink() });
const detailedGlobal = new MetricsManager({
  level: "detailed",
  granularity: "global",
  sink: new NullSink(),
});
// Keep the InMemorySink's event list from growing for the whole run.
const eventfulSink = new InMemorySink();
const eventfulBounded = new MetricsManager({ level: "detailed", sink: eventfulSink });

let i = 0;

Deno.bench("no-op method call (baseline)", { group: "none", baseline: true }, () => {
  noop.put("UserRecordsPut", 1, dims);
});

Deno.bench("put() at level none", { group: "none" }, () => {
  none.put("UserRecordsPut", 1, dims);
});

Deno.bench("put() at summary, name filtered out by level", { group: "enabled" }, () => {
  summary.put("UserRecordsReceived", 1, dims);
});

Deno.bench("put() at detailed, same series", { group: "enabled", baseline: true }, () => {
  detailed.put("UserRecordsPut", 1, dims);
});

Deno.bench("put() at detailed, 64 shards round robin", { group: "enabled" }, () => {
  detailed.put("BufferingTime", 12, shardDims[i++ & 63]);
});

Deno.bench("put() at detailed, ErrorsByCode", { group: "enabled" }, () => {
  detailed.put("ErrorsByCode", 1, errorDims);
});

Deno.bench("put() at detailed, global granularity", { group: "enabled" }, () => {
  detailedGlobal.put("UserRecordsPut", 1, dims);
});

Deno.bench("put() at detailed, eventful sink (one event per put)", { group: "enabled" }, () => {
  eventfulBounded.put("UserRecordsPut", 1, dims);
  if (eventfulSink.events.length > 100_000) eventfulSink.clear();
});

Deno.bench("one record's worth: 7 puts at detailed", { group: "record" }, () => {
  const d = shardDims[i++ & 63]!;
  detailed.put("UserRecordsReceived", 1, d);
  detailed.put("UserRecordsPut", 1, d);
  detailed.put("UserRecordsDataPut", 512, d);
  detailed.put("RetriesPerRecord", 0, d);
  detailed.put("BufferingTime", 40, d);
  detailed.put("AllErrors", 0, d);
  detailed.put("UserRecordsPerKinesisRecord", 10, d);
});

// put() shares one clock reading per synchronous burst; the benches above run many
// iterations without yielding, so they mostly measure the burst case. These two yield to
// the microtask queue after every put, which forces a clock read each time: the worst case.
Deno.bench("await after a no-op call (baseline)", { group: "yield", baseline: true }, async () => {
  noop.put("UserRecordsPut", 1, dims);
  await null;
});

Deno.bench("await after put() at detailed (clock read per put)", { group: "yield" }, async () => {
  detailed.put("UserRecordsPut", 1, dims);
  await null;
});

Deno.bench("await after 7 puts at detailed (one record, one clock read)", {
  group: "yield",
}, async () => {
  const d = shardDims[i++ & 63]!;
  detailed.put("UserRecordsReceived", 1, d);
  detailed.put("UserRecordsPut", 1, d);
  detailed.put("UserRecordsDataPut", 512, d);
  detailed.put("RetriesPerRecord", 0, d);
  detailed.put("BufferingTime", 40, d);
  detailed.put("AllErrors", 0, d);
  detailed.put("UserRecordsPerKinesisRecord", 10, d);
  await null;
});

Deno.bench("snapshot() with 64 shard series × 2 names", { group: "read" }, () => {
  detailed.snapshot();
});
