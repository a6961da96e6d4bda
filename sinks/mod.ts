/**
 * Metrics sinks: the protocol a sink implements, and the two sinks that need no backend.
 * {@linkcode InMemorySink} keeps everything it receives, which makes it the sink to use in
 * tests; {@linkcode NullSink} discards everything. Sinks for hosted backends live in their
 * own entry points, so importing this one pulls in no vendor code.
 *
 * @example Writing a sink of your own
 * ```ts
 * import type { MetricSnapshot, MetricsSink } from "@webkpl/kpl/sinks";
 *
 * class LineSink implements MetricsSink {
 *   readonly lines: string[] = [];
 *   export(snapshots: readonly MetricSnapshot[]): void {
 *     for (const s of snapshots) this.lines.push(`${s.name} ${s.sum} ${s.unit} ${s.windowEnd}`);
 *   }
 * }
 * new LineSink().export([]);
 * ```
 *
 * @module
 */

export type {
  EventfulMetricsSink,
  MetricDimensions,
  MetricEvent,
  MetricName,
  MetricSnapshot,
  MetricsSink,
  MetricUnit,
} from "../src/metrics_sink.ts";
export { isEventfulMetricsSink } from "../src/metrics_sink.ts";
export { NullSink } from "./null_sink.ts";
export { InMemorySink, type MetricTotal } from "./in_memory_sink.ts";
