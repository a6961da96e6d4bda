/**
 * {@linkcode NullSink}: the sink that discards everything.
 *
 * @module
 */

import type { MetricSnapshot, MetricsSink } from "../src/metrics_sink.ts";

/**
 * A sink that discards everything. It is not eventful, so a manager using it does no
 * per-sample work beyond its own aggregation.
 *
 * @example Discarding exports
 * ```ts
 * import { isEventfulMetricsSink, NullSink } from "@webkpl/kpl/sinks";
 *
 * const sink = new NullSink();
 * sink.export([]);
 * console.log(isEventfulMetricsSink(sink)); // false
 * ```
 */
export class NullSink implements MetricsSink {
  /**
   * Does nothing.
   *
   * @param _snapshots Ignored.
   */
  export(_snapshots: readonly MetricSnapshot[]): void {}
}
