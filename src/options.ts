/**
 * The producer's options, their defaults (the C++ KPL's unless noted) and their
 * validation.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import type { KinesisClient, KinesisCredentials } from "./kinesis_client.ts";
import type { Logger } from "./logger.ts";
import type { MetricsGranularity, MetricsLevel } from "./metrics.ts";
import type { MetricsSink } from "./metrics_sink.ts";

/** Options for {@linkcode Producer}. */
export interface ProducerOptions {
  /** AWS region of the default client. @default {the SDK's provider chain} */
  region?: string;
  /** Endpoint URL of the default client, e.g. a local emulator. */
  endpoint?: string;
  /** Credentials of the default client. @default {the SDK's provider chain} */
  credentials?: KinesisCredentials | (() => Promise<KinesisCredentials>);
  /** A Kinesis client to use instead of the AWS SDK; wins over region/endpoint/credentials. */
  kinesisClient?: KinesisClient;
  /** The stream for records that do not name one. */
  stream?: string;
  /** Pack user records into aggregated Kinesis records. @default {true} */
  aggregationEnabled?: boolean;
  /** Most user records in one aggregated record (≥ 1). @default {4294967295} */
  aggregationMaxCount?: number;
  /** Most bytes in one aggregated record (64 .. maxRecordSize). @default {51200} */
  aggregationMaxSize?: number;
  /** Most Kinesis records per PutRecords call (1 .. 500). @default {500} */
  collectionMaxCount?: number;
  /**
   * Most bytes per PutRecords call, counted as Σ(partition key + data)
   * (52224 .. 5242880). @default {5242880}
   */
  collectionMaxSize?: number;
  /** How long a record may wait for companions before it is sent (≥ 0). @default {100} */
  recordMaxBufferedTimeMs?: number;
  /**
   * How long after admission a record that has not been stored fails with `Expired`
   * (≥ 100). Absolute: retries never extend it. @default {30000}
   */
  recordTtlMs?: number;
  /** Per-shard send ceiling, in percent of 1000 records/s and 1 MiB/s (> 0). @default {150} */
  rateLimit?: number;
  /**
   * Adapt each shard's send rate to Kinesis' answers: lower it when Kinesis throttles the
   * shard, raise it again while records are stored, never above `rateLimit` (see
   * docs/fleet.md). `false` keeps every shard at `rateLimit` and only pauses a throttled
   * shard, as the C++ KPL does. @default {true}
   */
  adaptiveRate?: boolean;
  /** Fail throttled records at once instead of retrying them. @default {false} */
  failIfThrottled?: boolean;
  /** Admitted records not yet settled before `put()` waits (≥ 1). @default {100000} */
  maxOutstandingRecords?: number;
  /** Admitted bytes not yet settled before `put()` waits (≥ maxRecordSize). @default {268435456} */
  maxOutstandingBytes?: number;
  /** Largest record, data plus partition key bytes (≤ 10 MiB). @default {1048576} */
  maxRecordSize?: number;
  /** Most PutRecords calls in flight (1 .. 256; the C++ `MaxConnections`). @default {24} */
  maxInFlightRequests?: number;
  /** Per-request timeout (100 .. 600000). @default {6000} */
  requestTimeoutMs?: number;
  /** Which metrics are recorded. @default {"none"} */
  metricsLevel?: MetricsLevel;
  /** Which dimensions metrics keep. @default {"stream" for summary, "shard" for detailed} */
  metricsGranularity?: MetricsGranularity;
  /** Where metrics go. @default {nowhere} */
  metricsSink?: MetricsSink;
  /** How often metrics are exported (≥ 1). @default {60000} */
  metricsUploadIntervalMs?: number;
  /** Where the producer reports what it cannot return to a caller. @default {warnings to the console} */
  logger?: Logger;
  /** Time source; inject a fake one in tests. @default {the system clock} */
  clock?: Clock;
  /** Jitter source in [0, 1); inject a seeded one in tests. @default {Math.random} */
  random?: () => number;
}

/** {@linkcode ProducerOptions} with every default filled in. */
export interface ResolvedProducerOptions {
  region: string | undefined;
  endpoint: string | undefined;
  credentials: KinesisCredentials | (() => Promise<KinesisCredentials>) | undefined;
  kinesisClient: KinesisClient | undefined;
  stream: string | undefined;
  aggregationEnabled: boolean;
  aggregationMaxCount: number;
  aggregationMaxSize: number;
  collectionMaxCount: number;
  collectionMaxSize: number;
  recordMaxBufferedTimeMs: number;
  recordTtlMs: number;
  rateLimit: number;
  adaptiveRate: boolean;
  failIfThrottled: boolean;
  maxOutstandingRecords: number;
  maxOutstandingBytes: number;
  maxRecordSize: number;
  maxInFlightRequests: number;
  requestTimeoutMs: number;
  metricsLevel: MetricsLevel;
  metricsGranularity: MetricsGranularity | undefined;
  metricsSink: MetricsSink | undefined;
  metricsUploadIntervalMs: number;
  logger: Logger | undefined;
  clock: Clock | undefined;
  random: () => number;
}

const MiB = 1024 * 1024;
const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

/**
 * Fills defaults in and checks every option.
 *
 * @param options What the caller passed.
 * @returns The complete options.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When an option is out of range.
 */
export function resolveProducerOptions(options: ProducerOptions): ResolvedProducerOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot create producer as options must be an object: current value is ${options}`,
    );
  }
  const maxRecordSize = integer(options, "maxRecordSize", 1 * MiB, 1, 10 * MiB);
  const resolved: ResolvedProducerOptions = {
    region: optionalString(options, "region"),
    endpoint: endpoint(options),
    credentials: options.credentials,
    kinesisClient: kinesisClient(options),
    stream: streamOption(options),
    aggregationEnabled: boolean(options, "aggregationEnabled", true),
    aggregationMaxCount: integer(
      options,
      "aggregationMaxCount",
      4294967295,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    aggregationMaxSize: integer(options, "aggregationMaxSize", 51200, 64, maxRecordSize),
    collectionMaxCount: integer(options, "collectionMaxCount", 500, 1, 500),
    collectionMaxSize: integer(options, "collectionMaxSize", 5 * MiB, 52224, 5 * MiB),
    recordMaxBufferedTimeMs: number(options, "recordMaxBufferedTimeMs", 100, 0, Infinity),
    recordTtlMs: number(options, "recordTtlMs", 30_000, 100, Infinity),
    rateLimit: positive(options, "rateLimit", 150),
    adaptiveRate: boolean(options, "adaptiveRate", true),
    failIfThrottled: boolean(options, "failIfThrottled", false),
    maxOutstandingRecords: integer(
      options,
      "maxOutstandingRecords",
      100_000,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    maxOutstandingBytes: integer(
      options,
      "maxOutstandingBytes",
      256 * MiB,
      maxRecordSize,
      Number.MAX_SAFE_INTEGER,
    ),
    maxRecordSize,
    maxInFlightRequests: integer(options, "maxInFlightRequests", 24, 1, 256),
    requestTimeoutMs: number(options, "requestTimeoutMs", 6000, 100, 600_000),
    metricsLevel: oneOf<MetricsLevel>(options, "metricsLevel", "none", [
      "none",
      "summary",
      "detailed",
    ]),
    metricsGranularity: options.metricsGranularity === undefined
      ? undefined
      : oneOf<MetricsGranularity>(options, "metricsGranularity", "shard", [
        "global",
        "stream",
        "shard",
      ]),
    metricsSink: metricsSink(options),
    metricsUploadIntervalMs: number(options, "metricsUploadIntervalMs", 60_000, 1, Infinity),
    logger: logger(options),
    clock: options.clock,
    random: options.random ?? Math.random,
  };
  if (typeof resolved.random !== "function") {
    throw new TypeError(
      `Cannot create producer as 'random' must be a function: current value is ${typeof options
        .random}`,
    );
  }
  return resolved;
}

/**
 * Whether `name` is a valid Kinesis stream name (1 to 128 of `a-z A-Z 0-9 _ . -`).
 *
 * @param name A candidate name.
 * @returns `true` when valid.
 */
export function isValidStreamName(name: unknown): name is string {
  return typeof name === "string" && STREAM_NAME.test(name);
}

function fail(name: string, rule: string, value: unknown): never {
  const shown = typeof value === "string" ? `'${value}'` : String(value);
  throw new (typeof value === "number" ? RangeError : TypeError)(
    `Cannot create producer as '${name}' must be ${rule}: current value is ${shown}`,
  );
}

function get(options: ProducerOptions, name: keyof ProducerOptions): unknown {
  return options[name];
}

function integer(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = get(options, name) ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? `an integer of at least ${min}`
      : `an integer between ${min} and ${max}`;
    fail(name, range, value);
  }
  return value;
}

function number(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = get(options, name) ?? fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < min || value > max) {
    fail(
      name,
      max === Infinity ? `a number of at least ${min}` : `a number between ${min} and ${max}`,
      value,
    );
  }
  return value;
}

function positive(options: ProducerOptions, name: keyof ProducerOptions, fallback: number): number {
  const value = get(options, name) ?? fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    fail(name, "a positive number", value);
  }
  return value;
}

function boolean(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: boolean,
): boolean {
  const value = get(options, name) ?? fallback;
  if (typeof value !== "boolean") fail(name, "a boolean", value);
  return value;
}

function optionalString(options: ProducerOptions, name: keyof ProducerOptions): string | undefined {
  const value = get(options, name);
  if (value !== undefined && (typeof value !== "string" || value === "")) {
    fail(name, "a non-empty string", value);
  }
  return value;
}

function oneOf<T extends string>(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: T,
  allowed: readonly T[],
): T {
  const value = get(options, name) ?? fallback;
  if (!allowed.includes(value as T)) {
    fail(name, `one of ${allowed.map((item) => `'${item}'`).join(", ")}`, value);
  }
  return value as T;
}

function endpoint(options: ProducerOptions): string | undefined {
  const value = optionalString(options, "endpoint");
  if (value !== undefined && !URL.canParse(value)) fail("endpoint", "a URL", value);
  return value;
}

function streamOption(options: ProducerOptions): string | undefined {
  const value = options.stream;
  if (value !== undefined && !isValidStreamName(value)) {
    fail("stream", "a stream name of 1 to 128 letters, digits, '_', '.' or '-'", value);
  }
  return value;
}

function kinesisClient(options: ProducerOptions): KinesisClient | undefined {
  const client = options.kinesisClient;
  if (
    client !== undefined &&
    (typeof client?.putRecords !== "function" || typeof client?.listShards !== "function")
  ) {
    fail("kinesisClient", "an object with putRecords() and listShards()", typeof client);
  }
  return client;
}

function metricsSink(options: ProducerOptions): MetricsSink | undefined {
  const sink = options.metricsSink;
  if (sink !== undefined && typeof sink?.export !== "function") {
    fail("metricsSink", "an object with export()", typeof sink);
  }
  return sink;
}

function logger(options: ProducerOptions): Logger | undefined {
  const value = options.logger;
  if (
    value !== undefined &&
    !(["debug", "info", "warn", "error"] as const).every((level) =>
      typeof value?.[level] === "function"
    )
  ) {
    fail("logger", "an object with debug(), info(), warn() and error()", typeof value);
  }
  return value;
}
