/**
 * The protocol between the producer's metrics and wherever they go. The core builds
 * one-second aggregates and hands them to a {@linkcode MetricsSink}; it never names a
 * backend. First-party sinks live in `@webkpl/kpl/sinks` and its vendor entry points.
 *
 * @module
 */

/** The 15 metric names of the C++ KPL, verbatim, so existing dashboards keep working. */
export type MetricName =
  | "UserRecordsReceived"
  | "UserRecordsPending"
  | "UserRecordsPut"
  | "UserRecordsDataPut"
  | "KinesisRecordsPut"
  | "KinesisRecordsDataPut"
  | "ErrorsByCode"
  | "AllErrors"
  | "RetriesPerRecord"
  | "UserRecordExpired"
  | "BufferingTime"
  | "RequestTime"
  | "UserRecordsPerKinesisRecord"
  | "KinesisRecordsPerPutRecordsRequest"
  | "UserRecordsPerPutRecordsRequest";

/** The unit a metric's values are measured in. */
export type MetricUnit = "Count" | "Bytes" | "Milliseconds";

/**
 * The dimensions kept on a metric. Which ones are present depends on the granularity:
 * none at `global`, `stream` at `stream`, `stream` and `shard` at `shard`; `error_code`
 * is kept on `ErrorsByCode` at every granularity. Shard values are always the full
 * `shardId-000000000001` form.
 */
export interface MetricDimensions {
  /** The stream name. */
  readonly stream?: string;
  /** The shard id, as `shardId-000000000001`. */
  readonly shard?: string;
  /** The error code of an `ErrorsByCode` sample. */
  readonly error_code?: string;
}

/**
 * The aggregate of one metric series (name plus dimensions) over a window of whole
 * seconds. Exports are deltas: a sample is in exactly one exported snapshot.
 */
export interface MetricSnapshot {
  /** The metric's name. */
  readonly name: MetricName;
  /** The unit of `sum`, `min` and `max`. */
  readonly unit: MetricUnit;
  /** The dimensions of the series. */
  readonly dimensions: MetricDimensions;
  /** How many samples were put. */
  readonly count: number;
  /** The sum of the samples. */
  readonly sum: number;
  /** The smallest sample. */
  readonly min: number;
  /** The largest sample. */
  readonly max: number;
  /** Start of the window, epoch milliseconds (inclusive). */
  readonly windowStart: number;
  /** End of the window, epoch milliseconds (exclusive). */
  readonly windowEnd: number;
}

/** One sample, as handed to an {@linkcode EventfulMetricsSink}. */
export interface MetricEvent {
  /** The metric's name. */
  readonly name: MetricName;
  /** The unit of `value`. */
  readonly unit: MetricUnit;
  /** The sample. */
  readonly value: number;
  /** When the sample was put, epoch milliseconds. */
  readonly timestamp: number;
  /** The dimensions of the series. */
  readonly dimensions: MetricDimensions;
}

/**
 * Where metrics go. `export` receives every complete one-second bucket since the
 * previous export; it may be slow or fail without harming the producer (a failure is
 * logged and counted, and exports never overlap).
 */
export interface MetricsSink {
  /**
   * Receives the snapshots of one export.
   *
   * @param snapshots One snapshot per series with samples in the window.
   */
  export(snapshots: readonly MetricSnapshot[]): Promise<void> | void;
  /** Called once before the first export. */
  start?(): Promise<void> | void;
  /** Called once after the final export. */
  close?(): Promise<void> | void;
  /** Called after the final export when the sink has no `close`. */
  [Symbol.asyncDispose]?(): PromiseLike<void>;
}

/**
 * A sink that also wants every sample as it happens. `record` runs synchronously inside
 * the producer's hot path: keep it cheap, and leave async work to `export`.
 */
export interface EventfulMetricsSink extends MetricsSink {
  /**
   * Receives one sample.
   *
   * @param event The sample.
   */
  record(event: MetricEvent): void;
}

/**
 * Whether `sink` wants per-sample events.
 *
 * @param sink Any metrics sink.
 * @returns `true` when `sink` has a `record` method.
 *
 * @example Checking a sink
 * ```ts
 * import { isEventfulMetricsSink, type MetricsSink } from "@webkpl/kpl";
 *
 * const plain: MetricsSink = { export() {} };
 * const eventful: MetricsSink = Object.assign({ export() {} }, { record() {} });
 * console.log(isEventfulMetricsSink(plain)); // false
 * console.log(isEventfulMetricsSink(eventful)); // true
 * ```
 */
export function isEventfulMetricsSink(sink: MetricsSink): sink is EventfulMetricsSink {
  return typeof (sink as Partial<EventfulMetricsSink>).record === "function";
}
