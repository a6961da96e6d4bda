/**
 * {@linkcode InMemorySink}: the sink that keeps everything it receives, for tests and
 * in-process inspection.
 *
 * @module
 */

import type { EventfulMetricsSink, MetricEvent, MetricSnapshot } from "../src/metrics_sink.ts";
import type { MetricDimensions, MetricName } from "../src/metrics_sink.ts";

/** Count, sum, smallest and largest value, as returned by {@linkcode InMemorySink.total}. */
export interface MetricTotal {
  /** How many samples. */
  readonly count: number;
  /** Their sum. */
  readonly sum: number;
  /** The smallest, or `Infinity` when there is none. */
  readonly min: number;
  /** The largest, or `-Infinity` when there is none. */
  readonly max: number;
}

/**
 * A sink that keeps every export (one batch of snapshots per call) and every sample it
 * is handed as an event, for tests and in-process inspection. Totals over exports are
 * exact: each sample is in exactly one export.
 *
 * @example Checking what a producer exported
 * ```ts
 * import { MetricsManager } from "@webkpl/kpl";
 * import { InMemorySink } from "@webkpl/kpl/sinks";
 *
 * const sink = new InMemorySink();
 * const metrics = new MetricsManager({ level: "summary", granularity: "shard", sink });
 * metrics.put("UserRecordsPut", 1, { stream: "a", shard: "shardId-000000000000" });
 * metrics.put("UserRecordsPut", 0, { stream: "a", shard: "shardId-000000000001" });
 * metrics.put("UserRecordsPut", 1, { stream: "b", shard: "shardId-000000000000" });
 * await metrics.close();
 *
 * console.log(sink.total("UserRecordsPut")); // { count: 3, sum: 2, min: 0, max: 1 }
 * console.log(sink.total("UserRecordsPut", { stream: "a" }).count); // 2
 * console.log(sink.byName("UserRecordsPut").length); // 3
 * console.log(sink.events.length); // 3
 * ```
 */
export class InMemorySink implements EventfulMetricsSink {
  readonly #exports: (readonly MetricSnapshot[])[] = [];
  readonly #events: MetricEvent[] = [];
  #started = false;
  #closed = false;

  /** Every export, in the order received; each is a copy of the batch handed over. */
  get exports(): readonly (readonly MetricSnapshot[])[] {
    return this.#exports;
  }

  /** Every exported snapshot, flattened in the order received. */
  get snapshots(): readonly MetricSnapshot[] {
    return this.#exports.flat();
  }

  /** Every sample received through `record`, in order. */
  get events(): readonly MetricEvent[] {
    return this.#events;
  }

  /** Whether `start()` has been called. */
  get started(): boolean {
    return this.#started;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Keeps a copy of the batch.
   *
   * @param snapshots The snapshots of one export.
   */
  export(snapshots: readonly MetricSnapshot[]): void {
    this.#exports.push(Object.freeze([...snapshots]));
  }

  /**
   * Keeps the sample.
   *
   * @param event One sample, as put.
   */
  record(event: MetricEvent): void {
    this.#events.push(event);
  }

  /** Marks the sink started. */
  start(): void {
    this.#started = true;
  }

  /** Marks the sink closed; what it kept stays readable. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Every exported snapshot of one metric, in the order received.
   *
   * @param name The metric name.
   * @returns The snapshots, possibly none.
   *
   * @example Filtering by name
   * ```ts
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * sink.export([
   *   { name: "AllErrors", unit: "Count", dimensions: {}, count: 2, sum: 1, min: 0, max: 1,
   *     windowStart: 0, windowEnd: 1000 },
   * ]);
   * console.log(sink.byName("AllErrors").length); // 1
   * console.log(sink.byName("UserRecordsPut").length); // 0
   * ```
   */
  byName(name: MetricName): MetricSnapshot[] {
    const result: MetricSnapshot[] = [];
    for (const batch of this.#exports) {
      for (const snapshot of batch) if (snapshot.name === name) result.push(snapshot);
    }
    return result;
  }

  /**
   * Combines every exported snapshot of `name` whose dimensions match `dimensions`: each
   * key given must be equal, keys left out match anything. So `total(name)` is the
   * metric's grand total and `total(name, { stream })` sums every series of that stream.
   *
   * @param name The metric name.
   * @param dimensions The dimensions to match; all series when omitted.
   * @returns The combined count, sum, min and max (count 0 when nothing matched).
   *
   * @example Totals per dimension
   * ```ts
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * const base = { name: "ErrorsByCode", unit: "Count", windowStart: 0, windowEnd: 1000 } as const;
   * sink.export([
   *   { ...base, dimensions: { error_code: "A" }, count: 2, sum: 2, min: 1, max: 1 },
   *   { ...base, dimensions: { error_code: "B" }, count: 1, sum: 1, min: 1, max: 1 },
   * ]);
   * console.log(sink.total("ErrorsByCode").sum); // 3
   * console.log(sink.total("ErrorsByCode", { error_code: "A" }).sum); // 2
   * console.log(sink.total("ErrorsByCode", { error_code: "C" }).count); // 0
   * ```
   */
  total(name: MetricName, dimensions?: MetricDimensions): MetricTotal {
    let count = 0;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const batch of this.#exports) {
      for (const snapshot of batch) {
        if (snapshot.name !== name || !matches(snapshot.dimensions, dimensions)) continue;
        count += snapshot.count;
        sum += snapshot.sum;
        if (snapshot.min < min) min = snapshot.min;
        if (snapshot.max > max) max = snapshot.max;
      }
    }
    return { count, sum, min, max };
  }

  /**
   * Every event of one metric whose dimensions match, as in {@linkcode total}.
   *
   * @param name The metric name.
   * @param dimensions The dimensions to match; all events of `name` when omitted.
   * @returns The events, in order.
   *
   * @example Events as they were put
   * ```ts
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * sink.record({ name: "RequestTime", unit: "Milliseconds", value: 12, timestamp: 0,
   *   dimensions: { stream: "s" } });
   * console.log(sink.eventsByName("RequestTime").map((e) => e.value)); // [12]
   * ```
   */
  eventsByName(name: MetricName, dimensions?: MetricDimensions): MetricEvent[] {
    return this.#events.filter((event) =>
      event.name === name && matches(event.dimensions, dimensions)
    );
  }

  /**
   * Forgets every export and event kept so far.
   *
   * @example Starting over
   * ```ts
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * sink.export([]);
   * sink.clear();
   * console.log(sink.exports.length); // 0
   * ```
   */
  clear(): void {
    this.#exports.length = 0;
    this.#events.length = 0;
  }
}

function matches(actual: MetricDimensions, wanted: MetricDimensions | undefined): boolean {
  if (wanted === undefined) return true;
  return (wanted.stream === undefined || actual.stream === wanted.stream) &&
    (wanted.shard === undefined || actual.shard === wanted.shard) &&
    (wanted.error_code === undefined || actual.error_code === wanted.error_code);
}
