/**
 * The producer's options, their defaults (the C++ KPL's unless noted) and their
 * validation.
 *
 * @module
 */

import { LOGGER_METHODS, OptionChecks } from "./_option_checks.ts";
import { isValidStream, STREAM_RULE } from "./_stream_ref.ts";
import type { Clock } from "./clock.ts";
import {
  credentialsProblem,
  type KinesisClient,
  type KinesisCredentials,
  type KinesisTransport,
} from "./kinesis_client.ts";
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
  /**
   * How the default client sends: `"direct"` writes each request once and signs it with Web
   * Crypto, `"sdk"` sends through `@aws-sdk/client-kinesis`. Both take the region,
   * credentials and endpoint from the SDK; ignored when `kinesisClient` is given.
   * @default {"direct"}
   */
  transport?: KinesisTransport;
  /**
   * The stream for records that do not name one: a stream name, or a stream ARN
   * (`arn:aws:kinesis:us-east-1:123456789012:stream/events`), which requests then carry as
   * `StreamARN`.
   */
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
   * (52224 .. 10485760: Kinesis takes up to 10 MiB per call). A Kinesis record larger than
   * this, or larger than 1 MiB, travels alone in its own call. @default {5242880}
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
  /**
   * Store each shard's records in the order they were admitted, retries included: at most
   * one PutRecords request in flight and one entry per request carry a shard's records, and
   * a failed entry is sent again before anything later of its shard (see docs/ordering.md).
   * @default {false}
   */
  preserveOrder?: boolean;
  /** Admitted records not yet settled before `put()` waits (≥ 1). @default {100000} */
  maxOutstandingRecords?: number;
  /** Admitted bytes not yet settled before `put()` waits (≥ maxRecordSize). @default {268435456} */
  maxOutstandingBytes?: number;
  /**
   * Largest record, data plus partition key bytes (1 .. 10485760), or `"stream"`: each
   * stream's own limit, read once with DescribeStreamSummary (`MaxRecordSizeInKiB`). Kinesis
   * streams take 1 MiB records unless their limit was raised (up to 10 MiB); a record over
   * the stream's limit fails at once with the service's code. @default {1048576}
   */
  maxRecordSize?: number | "stream";
  /** Most PutRecords calls in flight (1 .. 256; the C++ `MaxConnections`). @default {24} */
  maxInFlightRequests?: number;
  /**
   * Most bytes (data plus partition keys, what Kinesis counts against a call's limit) of
   * the PutRecords calls in flight (≥ 1). Past it the next call waits for one to settle,
   * while records keep buffering within `maxOutstandingRecords` and `maxOutstandingBytes`;
   * a call larger than the bound goes alone. It bounds the memory of request bodies and
   * transport copies (see docs/performance.md, "Memory"). @default {16777216}
   */
  maxInFlightBytes?: number;
  /**
   * Per-request timeout (100 .. 600000), for calls within Kinesis' classic limits (records
   * up to 1 MiB, calls up to 5 MiB). A larger call gets this much per MiB of its largest
   * record, or per 5 MiB of the call, whichever is more, but no longer than its records'
   * TTL allows. @default {6000}
   */
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
  transport: KinesisTransport;
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
  preserveOrder: boolean;
  maxOutstandingRecords: number;
  maxOutstandingBytes: number;
  /** The largest record size; 10 MiB when each stream's own limit is read. */
  maxRecordSize: number;
  /** `maxRecordSize: "stream"`: read each stream's limit with DescribeStreamSummary. */
  recordSizeFromStream: boolean;
  maxInFlightRequests: number;
  maxInFlightBytes: number;
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
/**
 * The default `maxInFlightBytes`, chosen by peak memory against records/s end to end
 * (docs/performance.md, "Memory").
 */
const DEFAULT_MAX_IN_FLIGHT_BYTES = 16 * MiB;
const HTTP_URL = /^https?:\/\/[^/?#]/i;

// Every key of ProducerOptions, so a misspelt one (`recordMaxBufferedTime`) is refused
// instead of silently doing nothing. The type makes a new option fail to compile until it
// is listed here.
const OPTION_KEYS: Record<keyof ProducerOptions, true> = {
  region: true,
  endpoint: true,
  credentials: true,
  kinesisClient: true,
  transport: true,
  stream: true,
  aggregationEnabled: true,
  aggregationMaxCount: true,
  aggregationMaxSize: true,
  collectionMaxCount: true,
  collectionMaxSize: true,
  recordMaxBufferedTimeMs: true,
  recordTtlMs: true,
  rateLimit: true,
  adaptiveRate: true,
  failIfThrottled: true,
  preserveOrder: true,
  maxOutstandingRecords: true,
  maxOutstandingBytes: true,
  maxRecordSize: true,
  maxInFlightRequests: true,
  maxInFlightBytes: true,
  requestTimeoutMs: true,
  metricsLevel: true,
  metricsGranularity: true,
  metricsSink: true,
  metricsUploadIntervalMs: true,
  logger: true,
  clock: true,
  random: true,
};
const KNOWN_KEYS: ReadonlySet<string> = new Set(Object.keys(OPTION_KEYS));

/**
 * Fills defaults in and checks every option.
 *
 * @param options What the caller passed.
 * @returns The complete options.
 * @throws {TypeError} When an option has the wrong type or an unknown name.
 * @throws {RangeError} When an option is out of range.
 */
export function resolveProducerOptions(options: ProducerOptions): ResolvedProducerOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot create producer as options must be an object: current value is ${options}`,
    );
  }
  checkKeys(options);
  const recordSizeFromStream = options.maxRecordSize === "stream";
  const maxRecordSize = recordSizeFromStream ? 10 * MiB : maxRecordSizeOption(options);
  const resolved: ResolvedProducerOptions = {
    region: optionalString(options, "region"),
    endpoint: endpoint(options),
    credentials: credentials(options),
    kinesisClient: kinesisClient(options),
    transport: oneOf<KinesisTransport>(options, "transport", "direct", ["direct", "sdk"]),
    stream: streamOption(options),
    aggregationEnabled: boolean(options, "aggregationEnabled", true),
    aggregationMaxCount: number(
      options,
      "aggregationMaxCount",
      4294967295,
      1,
      Number.MAX_SAFE_INTEGER,
      true,
    ),
    aggregationMaxSize: number(options, "aggregationMaxSize", 51200, 64, maxRecordSize, true),
    collectionMaxCount: number(options, "collectionMaxCount", 500, 1, 500, true),
    collectionMaxSize: number(options, "collectionMaxSize", 5 * MiB, 52224, 10 * MiB, true),
    recordMaxBufferedTimeMs: number(options, "recordMaxBufferedTimeMs", 100, 0, Infinity),
    recordTtlMs: number(options, "recordTtlMs", 30_000, 100, Infinity),
    rateLimit: positive(options, "rateLimit", 150),
    adaptiveRate: boolean(options, "adaptiveRate", true),
    failIfThrottled: boolean(options, "failIfThrottled", false),
    preserveOrder: boolean(options, "preserveOrder", false),
    maxOutstandingRecords: number(
      options,
      "maxOutstandingRecords",
      100_000,
      1,
      Number.MAX_SAFE_INTEGER,
      true,
    ),
    maxOutstandingBytes: number(
      options,
      "maxOutstandingBytes",
      256 * MiB,
      maxRecordSize,
      Number.MAX_SAFE_INTEGER,
      true,
    ),
    maxRecordSize,
    recordSizeFromStream,
    maxInFlightRequests: number(options, "maxInFlightRequests", 24, 1, 256, true),
    maxInFlightBytes: number(
      options,
      "maxInFlightBytes",
      DEFAULT_MAX_IN_FLIGHT_BYTES,
      1,
      Number.MAX_SAFE_INTEGER,
      true,
    ),
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

function checkKeys(options: ProducerOptions): void {
  for (const key of Object.keys(options)) {
    if (KNOWN_KEYS.has(key)) continue;
    const nearest = nearestKey(key);
    throw new TypeError(
      `Cannot create producer as '${key.slice(0, 100)}' is not an option${
        nearest === undefined ? "" : `: did you mean '${nearest}'?`
      }`,
    );
  }
}

/** The valid key closest to `key` by edit distance, when it is close enough to be a typo. */
function nearestKey(key: string): string | undefined {
  const lower = key.slice(0, 100).toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of KNOWN_KEYS) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(3, Math.floor(lower.length / 3)) ? best : undefined;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, substitution);
    }
    previous = row;
  }
  return previous[b.length]!;
}

const check = new OptionChecks("producer");

function fail(name: string, rule: string, value: unknown): never {
  return check.fail(name, rule, value);
}

function get(options: ProducerOptions, name: keyof ProducerOptions): unknown {
  return options[name];
}

/** A number option between `min` and `max`; with `integer`, a whole number. */
function number(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  return check.number(name, get(options, name) ?? fallback, { min, max, integer });
}

function maxRecordSizeOption(options: ProducerOptions): number {
  const value = options.maxRecordSize;
  if (typeof value === "string") {
    fail("maxRecordSize", "an integer between 1 and 10485760, or 'stream'", value);
  }
  return number(options, "maxRecordSize", 1 * MiB, 1, 10 * MiB, true);
}

function positive(options: ProducerOptions, name: keyof ProducerOptions, fallback: number): number {
  return check.positive(name, get(options, name) ?? fallback);
}

function boolean(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: boolean,
): boolean {
  return check.boolean(name, get(options, name) ?? fallback);
}

function optionalString(options: ProducerOptions, name: keyof ProducerOptions): string | undefined {
  const value = get(options, name);
  if (value !== undefined && (typeof value !== "string" || value === "")) {
    // A number here is the wrong type, not out of range.
    throw new TypeError(
      `Cannot create producer as '${name}' must be a non-empty string: current value is ${
        typeof value === "string" ? "''" : typeof value
      }`,
    );
  }
  return value;
}

function oneOf<T extends string>(
  options: ProducerOptions,
  name: keyof ProducerOptions,
  fallback: T,
  allowed: readonly T[],
): T {
  return check.oneOf(name, get(options, name) ?? fallback, { of: allowed });
}

function endpoint(options: ProducerOptions): string | undefined {
  const value = optionalString(options, "endpoint");
  // `localhost:4567` parses as a URL with the scheme `localhost:`; the SDK then fails every
  // request until the TTL, so only http and https are accepted.
  if (value !== undefined && (!HTTP_URL.test(value) || !URL.canParse(value))) {
    fail("endpoint", "an http:// or https:// URL", value);
  }
  return value;
}

function credentials(
  options: ProducerOptions,
): KinesisCredentials | (() => Promise<KinesisCredentials>) | undefined {
  const value: unknown = options.credentials;
  if (value === undefined || typeof value === "function") {
    return value as (() => Promise<KinesisCredentials>) | undefined;
  }
  const problem = credentialsProblem(value);
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot create producer as 'credentials' must be { accessKeyId, secretAccessKey, sessionToken? } or a function: ${problem}`,
    );
  }
  return value as KinesisCredentials;
}

function streamOption(options: ProducerOptions): string | undefined {
  const value = options.stream;
  if (value !== undefined && !isValidStream(value)) fail("stream", STREAM_RULE, value);
  return value;
}

function kinesisClient(options: ProducerOptions): KinesisClient | undefined {
  const client = options.kinesisClient;
  if (client === undefined) return undefined;
  return check.methods("kinesisClient", client, { methods: ["putRecords", "listShards"] });
}

function metricsSink(options: ProducerOptions): MetricsSink | undefined {
  const sink = options.metricsSink;
  if (sink === undefined) return undefined;
  return check.methods("metricsSink", sink, { methods: ["export"] });
}

function logger(options: ProducerOptions): Logger | undefined {
  const value = options.logger;
  if (value === undefined) return undefined;
  return check.methods("logger", value, { methods: LOGGER_METHODS });
}
