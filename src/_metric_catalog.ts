// The producer's metric table, after the C++ KPL's (aws/metrics/metrics_constants.h in
// https://github.com/awslabs/amazon-kinesis-producer, and the KPL metrics page of the
// Kinesis developer guide): each name's unit, the level at which it is uploaded, whether
// it carries an error code, what kind of quantity it is and what it means. The one frozen
// table the manager, the unit/level lookups and every sink read.

import type { MetricName, MetricUnit } from "./metrics_sink.ts";

/** The level a metric belongs to in the C++ KPL. */
export type MetricNameLevel = "summary" | "detailed";

/**
 * What kind of quantity a metric is: `count` samples add up (records, bytes, errors),
 * `gauge` samples each state a level (pending records), `distribution` samples are each
 * one observation whose spread matters (durations, ratios).
 */
export type MetricKind = "count" | "gauge" | "distribution";

/** What the catalog knows about one metric name. */
export interface MetricDefinition {
  readonly name: MetricName;
  readonly index: number;
  readonly unit: MetricUnit;
  readonly level: MetricNameLevel;
  /** Only `ErrorsByCode` keeps the `error_code` dimension. */
  readonly byCode: boolean;
  readonly kind: MetricKind;
  /** One line for dashboards and instrument descriptions. */
  readonly description: string;
}

function define(
  name: MetricName,
  unit: MetricUnit,
  level: MetricNameLevel,
  facts: { kind: MetricKind; description: string },
): MetricDefinition {
  const index = indexOf++;
  return Object.freeze({ name, index, unit, level, byCode: name === "ErrorsByCode", ...facts });
}

let indexOf = 0;
const count = (description: string) => ({ kind: "count" as const, description });
const distribution = (description: string) => ({ kind: "distribution" as const, description });

// UserRecordExpired is summary-level: the C++ KPL's configuration docs leave it out of
// the summary list, but its code (metrics_constants.h) registers it there, and the code
// is what existing dashboards were built on.
const definitions: readonly MetricDefinition[] = Object.freeze([
  define("UserRecordsReceived", "Count", "detailed", count("User records the producer accepted")),
  define("UserRecordsPending", "Count", "detailed", {
    kind: "gauge",
    description: "User records accepted and not yet finished",
  }),
  define("UserRecordsPut", "Count", "summary", count("User records that reached Kinesis")),
  define(
    "UserRecordsDataPut",
    "Bytes",
    "detailed",
    count("Data bytes of user records that reached Kinesis"),
  ),
  define(
    "KinesisRecordsPut",
    "Count",
    "summary",
    count("Kinesis records (aggregated or not) that PutRecords accepted"),
  ),
  define(
    "KinesisRecordsDataPut",
    "Bytes",
    "detailed",
    count("Bytes of Kinesis records that PutRecords accepted"),
  ),
  define(
    "ErrorsByCode",
    "Count",
    "summary",
    count("Failed Kinesis records and requests, by error code"),
  ),
  define("AllErrors", "Count", "summary", count("Failed Kinesis records and requests")),
  define(
    "RetriesPerRecord",
    "Count",
    "detailed",
    distribution("Retries a user record needed before it finished"),
  ),
  define(
    "UserRecordExpired",
    "Count",
    "summary",
    count("User records that expired before reaching Kinesis"),
  ),
  define(
    "BufferingTime",
    "Milliseconds",
    "summary",
    distribution("Time a user record waited before each attempt"),
  ),
  define(
    "RequestTime",
    "Milliseconds",
    "detailed",
    distribution("Duration of PutRecords requests"),
  ),
  define(
    "UserRecordsPerKinesisRecord",
    "Count",
    "detailed",
    distribution("User records aggregated into one Kinesis record"),
  ),
  define(
    "KinesisRecordsPerPutRecordsRequest",
    "Count",
    "detailed",
    distribution("Kinesis records in one PutRecords request"),
  ),
  define(
    "UserRecordsPerPutRecordsRequest",
    "Count",
    "detailed",
    distribution("User records in one PutRecords request"),
  ),
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
