// The C++ KPL's metric table (aws/metrics/metrics_constants.h and its docs): each name's
// unit, the level at which it is uploaded, and whether it carries an error code. Kept in
// one frozen table so the manager, the unit/level lookups and the sinks agree.

import type { MetricName, MetricUnit } from "./metrics_sink.ts";

/** The level a metric belongs to in the C++ KPL. */
export type MetricNameLevel = "summary" | "detailed";

/** What the catalog knows about one metric name. */
export interface MetricDefinition {
  readonly name: MetricName;
  readonly index: number;
  readonly unit: MetricUnit;
  readonly level: MetricNameLevel;
  /** Only `ErrorsByCode` keeps the `error_code` dimension. */
  readonly byCode: boolean;
}

function define(
  name: MetricName,
  index: number,
  unit: MetricUnit,
  level: MetricNameLevel,
): MetricDefinition {
  return Object.freeze({ name, index, unit, level, byCode: name === "ErrorsByCode" });
}

// UserRecordExpired is summary-level: the C++ config docs leave it out of the summary
// list, but the code registers it there (cpp-kpl-notes §7.1), and the code is what
// existing dashboards were built on.
const definitions: readonly MetricDefinition[] = Object.freeze([
  define("UserRecordsReceived", 0, "Count", "detailed"),
  define("UserRecordsPending", 1, "Count", "detailed"),
  define("UserRecordsPut", 2, "Count", "summary"),
  define("UserRecordsDataPut", 3, "Bytes", "detailed"),
  define("KinesisRecordsPut", 4, "Count", "summary"),
  define("KinesisRecordsDataPut", 5, "Bytes", "detailed"),
  define("ErrorsByCode", 6, "Count", "summary"),
  define("AllErrors", 7, "Count", "summary"),
  define("RetriesPerRecord", 8, "Count", "detailed"),
  define("UserRecordExpired", 9, "Count", "summary"),
  define("BufferingTime", 10, "Milliseconds", "summary"),
  define("RequestTime", 11, "Milliseconds", "detailed"),
  define("UserRecordsPerKinesisRecord", 12, "Count", "detailed"),
  define("KinesisRecordsPerPutRecordsRequest", 13, "Count", "detailed"),
  define("UserRecordsPerPutRecordsRequest", 14, "Count", "detailed"),
]);

/** Every definition, in the order of the C++ table. */
export const metricDefinitions: readonly MetricDefinition[] = definitions;

const byName: ReadonlyMap<string, MetricDefinition> = new Map(
  definitions.map((definition) => [definition.name, definition]),
);

/** The definition of `name`, or `undefined` when it is not one of the 15 names. */
export function findMetricDefinition(name: string): MetricDefinition | undefined {
  return byName.get(name);
}
