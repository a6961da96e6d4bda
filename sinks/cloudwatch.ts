/**
 * A metrics sink that uploads to Amazon CloudWatch with `PutMetricData`, the way the C++
 * KPL does: one `StatisticValues` datum per series and window, the KPL's units and
 * dimension names, and the KPL's roll-up tree so that dashboards built for the C++ KPL
 * keep working.
 *
 * The AWS SDK (`@aws-sdk/client-cloudwatch`, talking through Web `fetch`) is loaded with a
 * dynamic `import()` the first time the sink starts or exports, so importing this module
 * costs nothing until metrics actually flow.
 *
 * @module
 */

import { consoleLogger, type Logger } from "../src/logger.ts";
import { byteLength, chunkBySize, type VendorSinkOptions } from "./_vendor.ts";

export type { VendorSinkOptions } from "./_vendor.ts";
import { errorText } from "../src/_describe.ts";
import type { MetricSnapshot, MetricsSink, MetricUnit } from "../src/metrics_sink.ts";

/** Static AWS credentials, or a function that resolves them (for refreshing credentials). */
export type CloudWatchCredentials =
  | CloudWatchCredentialIdentity
  | (() => Promise<CloudWatchCredentialIdentity>);

/** An access key pair, with a session token for temporary credentials. */
export interface CloudWatchCredentialIdentity {
  /** The access key id. */
  readonly accessKeyId: string;
  /** The secret access key. */
  readonly secretAccessKey: string;
  /** The session token of temporary credentials. */
  readonly sessionToken?: string;
}

/**
 * The part of a CloudWatch client the sink uses: an AWS SDK v3 `CloudWatchClient`, or
 * anything else that can send its `PutMetricDataCommand`.
 */
export interface CloudWatchClientLike {
  /**
   * Sends one command.
   *
   * @param command A `PutMetricDataCommand`.
   * @returns The service's response.
   */
  send(command: object): Promise<unknown>;
}

/** Options for {@linkcode CloudWatchSink}. */
export interface CloudWatchSinkOptions extends VendorSinkOptions {
  /**
   * The AWS region, such as `"us-east-1"`. Required unless `client` is given.
   */
  region?: string;
  /**
   * The CloudWatch namespace the metrics go to.
   *
   * @default {"KinesisProducerLibrary"}
   */
  namespace?: string;
  /** A custom endpoint URL, such as a local emulator's. */
  endpoint?: string;
  /** Credentials; without them the SDK's default provider chain is used. */
  credentials?: CloudWatchCredentials;
  /**
   * A client to send through instead of one the sink builds. The sink does not close it.
   */
  client?: CloudWatchClientLike;
  /**
   * Also upload the stream-level and global series computed from the finer ones, as the
   * C++ KPL does. CloudWatch cannot sum across dimensions, so KPL dashboards read these.
   *
   * @default {true}
   */
  rollUps?: boolean;
  /**
   * How many times the SDK tries one request, the first try included.
   *
   * @default {3}
   */
  maxAttempts?: number;
}

/** CloudWatch's limits on one `PutMetricData` request (API reference, PutMetricData). */
const MAX_DATUMS_PER_REQUEST = 1000;
const MAX_REQUEST_BYTES = 1_000_000;
const MAX_NAMESPACE_LENGTH = 255;

/** A CloudWatch `MetricDatum` with statistic values, as the SDK takes it. */
interface Datum {
  MetricName: string;
  Dimensions: { Name: string; Value: string }[];
  Timestamp: Date;
  Unit: MetricUnit;
  StatisticValues: { SampleCount: number; Sum: number; Minimum: number; Maximum: number };
}

/** One series of the roll-up tree while snapshots are combined into it. */
interface Series {
  name: string;
  unit: MetricUnit;
  dimensions: { Name: string; Value: string }[];
  count: number;
  sum: number;
  min: number;
  max: number;
  windowEnd: number;
}

type PutMetricDataCommandClass = new (input: {
  Namespace: string;
  MetricData: Datum[];
}) => object;

interface ClientSettings {
  region?: string;
  endpoint?: string;
  credentials?: CloudWatchCredentials;
  client?: CloudWatchClientLike;
  maxAttempts: number;
  requestTimeoutMs: number;
}

interface Sdk {
  client: CloudWatchClientLike;
  PutMetricDataCommand: PutMetricDataCommandClass;
  destroy?: () => void;
}

/**
 * Uploads metric snapshots to CloudWatch.
 *
 * Each series with samples in the window becomes one datum with `StatisticValues`
 * (SampleCount, Sum, Minimum, Maximum), the metric's `Unit`, and a `Timestamp` at the
 * last millisecond of its window, so a window that ends on a minute boundary is counted
 * in its own minute. Dimensions are named `ErrorCode`, `StreamName` and `ShardId`, in
 * that order. With `rollUps` (the default) every series is also added into each of its
 * prefixes in that order: a shard series into its stream's series and into the global
 * series with no dimensions, and an `ErrorsByCode` series into its per-code series and
 * the total. Requests carry at most 1000 datums and stay under 1 MB; a request that still
 * fails after the SDK's few retries makes `export` reject, after the other requests of
 * the export were tried, and nothing is kept for later.
 *
 * The sink expects deltas (each sample in exactly one snapshot), which is what the
 * producer's metrics manager hands it.
 *
 * @example Uploading two shards and their roll-ups
 * ```ts
 * import { CloudWatchSink } from "@webkpl/kpl/sinks/cloudwatch";
 *
 * const sent: unknown[] = [];
 * const sink = new CloudWatchSink({ client: { send: async (command) => sent.push(command) } });
 * const window = { windowStart: 1_700_000_000_000, windowEnd: 1_700_000_001_000 };
 * await sink.export([
 *   { name: "UserRecordsPut", unit: "Count", count: 3, sum: 3, min: 1, max: 1, ...window,
 *     dimensions: { stream: "orders", shard: "shardId-000000000000" } },
 *   { name: "UserRecordsPut", unit: "Count", count: 2, sum: 1, min: 0, max: 1, ...window,
 *     dimensions: { stream: "orders", shard: "shardId-000000000001" } },
 * ]);
 * console.log(sent.length); // 1: one request holding 2 shard series, 1 stream series, 1 global
 * await sink.close();
 * ```
 */
export class CloudWatchSink implements MetricsSink {
  readonly #namespace: string;
  readonly #rollUps: boolean;
  readonly #settings: ClientSettings;
  readonly #logger: Logger;
  #sdk: Promise<Sdk> | undefined;
  #closed = false;

  /**
   * Creates a sink; nothing is loaded or connected until `start` or the first export.
   *
   * @param options Where and how to upload.
   * @throws {TypeError} If `region` is missing without a `client`, or an option has the
   * wrong type.
   * @throws {RangeError} If `namespace`, `maxAttempts` or `requestTimeoutMs` is out of
   * range.
   */
  constructor(options: CloudWatchSinkOptions = {}) {
    const {
      region,
      namespace = "KinesisProducerLibrary",
      client,
      rollUps = true,
      maxAttempts = 3,
      requestTimeoutMs = 10_000,
      logger = consoleLogger,
    } = options;
    if (client === undefined && (typeof region !== "string" || region === "")) {
      throw new TypeError(
        `Cannot create CloudWatchSink as 'region' must be a non-empty string when no 'client' is given: current value is ${
          JSON.stringify(region)
        }`,
      );
    }
    if (client !== undefined && typeof client?.send !== "function") {
      throw new TypeError(
        "Cannot create CloudWatchSink as 'client' must have a send(command) method",
      );
    }
    if (typeof namespace !== "string") {
      throw new TypeError(
        `Cannot create CloudWatchSink as 'namespace' must be a string: current type is ${typeof namespace}`,
      );
    }
    if (namespace.length < 1 || namespace.length > MAX_NAMESPACE_LENGTH) {
      throw new RangeError(
        `Cannot create CloudWatchSink as 'namespace' must be 1 to ${MAX_NAMESPACE_LENGTH} characters long: current length is ${namespace.length}`,
      );
    }
    if (namespace.startsWith("AWS/")) {
      throw new RangeError(
        `Cannot create CloudWatchSink as 'namespace' must not start with "AWS/", which AWS reserves: current value is ${
          JSON.stringify(namespace)
        }`,
      );
    }
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
      throw new RangeError(
        `Cannot create CloudWatchSink as 'maxAttempts' must be an integer between 1 and 10: current value is ${maxAttempts}`,
      );
    }
    if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
      throw new RangeError(
        `Cannot create CloudWatchSink as 'requestTimeoutMs' must be a positive number: current value is ${requestTimeoutMs}`,
      );
    }
    this.#namespace = namespace;
    this.#rollUps = rollUps;
    this.#logger = logger;
    this.#settings = { ...options, maxAttempts, requestTimeoutMs };
  }

  /** The CloudWatch namespace the sink uploads to. */
  get namespace(): string {
    return this.#namespace;
  }

  /**
   * Loads the AWS SDK and builds the client, so a missing dependency shows at start-up
   * rather than at the first export.
   *
   * @returns When the client is ready.
   * @throws {Error} If the sink is closed or the SDK cannot be loaded.
   */
  async start(): Promise<void> {
    await this.#load();
  }

  /**
   * Uploads one export: the series with samples, their roll-ups, in requests of at most
   * 1000 datums and 1 MB.
   *
   * @param snapshots The series of one export window; series with no samples are skipped.
   * @returns When every request has been answered.
   * @throws {Error} If the sink is closed, or any request failed after the SDK's retries;
   * the message says how many requests and datums were lost, and `cause` holds the first
   * failure.
   */
  async export(snapshots: readonly MetricSnapshot[]): Promise<void> {
    if (this.#closed) throw new Error("Cannot export to CloudWatchSink as it is closed");
    const data = toMetricData(snapshots, this.#rollUps, this.#logger);
    if (data.length === 0) return;
    const { client, PutMetricDataCommand } = await this.#load();
    const batches = batchMetricData(this.#namespace, data);
    let failedRequests = 0;
    let lostDatums = 0;
    let firstFailure: unknown;
    for (const batch of batches) {
      try {
        await client.send(
          new PutMetricDataCommand({ Namespace: this.#namespace, MetricData: batch }) as object,
        );
      } catch (error) {
        failedRequests++;
        lostDatums += batch.length;
        firstFailure ??= error;
      }
    }
    if (failedRequests > 0) {
      throw new Error(
        `CloudWatch PutMetricData failed for ${failedRequests} of ${batches.length} requests, ${lostDatums} datums were not stored: ${
          errorText(firstFailure)
        }`,
        { cause: firstFailure },
      );
    }
  }

  /**
   * Releases the client the sink built (an injected one is left open). Later exports
   * reject.
   *
   * @returns When the client is released.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const sdk = this.#sdk;
    this.#sdk = undefined;
    if (sdk === undefined) return;
    try {
      (await sdk).destroy?.();
    } catch {
      // The SDK never loaded, so there is nothing to release.
    }
  }

  /**
   * Same as {@linkcode CloudWatchSink.close}.
   *
   * @returns When the client is released.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #load(): Promise<Sdk> {
    if (this.#closed) {
      return Promise.reject(new Error("Cannot use CloudWatchSink as it is closed"));
    }
    this.#sdk ??= loadSdk(this.#settings);
    return this.#sdk;
  }
}

async function loadSdk(settings: ClientSettings): Promise<Sdk> {
  const sdk = await import("@aws-sdk/client-cloudwatch");
  const PutMetricDataCommand = sdk.PutMetricDataCommand as unknown as PutMetricDataCommandClass;
  if (settings.client !== undefined) return { client: settings.client, PutMetricDataCommand };
  const { FetchHttpHandler } = await import("@smithy/fetch-http-handler");
  const config: ConstructorParameters<typeof sdk.CloudWatchClient>[0] = {
    requestHandler: new FetchHttpHandler({ requestTimeout: settings.requestTimeoutMs }),
    maxAttempts: settings.maxAttempts,
  };
  if (settings.region !== undefined) config.region = settings.region;
  if (settings.endpoint !== undefined) config.endpoint = settings.endpoint;
  if (settings.credentials !== undefined) config.credentials = settings.credentials;
  const client = new sdk.CloudWatchClient(config);
  return {
    client: client as unknown as CloudWatchClientLike,
    PutMetricDataCommand,
    destroy: () => client.destroy(),
  };
}

/**
 * Turns snapshots into CloudWatch datums: skips empty series and ones CloudWatch would
 * reject, adds the roll-ups when asked, and orders the result by depth and then by name.
 */
function toMetricData(
  snapshots: readonly MetricSnapshot[],
  rollUps: boolean,
  logger: Logger,
): Datum[] {
  const series = new Map<string, Series>();
  for (const snapshot of snapshots) {
    if (!(snapshot.count > 0)) continue;
    if (!isUploadable(snapshot)) {
      logger.warn(
        `CloudWatch sink skipped a ${snapshot.name} series holding a value CloudWatch rejects (NaN or infinite)`,
      );
      continue;
    }
    const path = dimensionPath(snapshot);
    for (let depth = rollUps ? 0 : path.length; depth <= path.length; depth++) {
      addTo(series, snapshot, path.slice(0, depth));
    }
  }
  const data: Datum[] = [];
  for (const entry of series.values()) {
    data.push({
      MetricName: entry.name,
      Dimensions: entry.dimensions,
      Timestamp: new Date(entry.windowEnd - 1),
      Unit: entry.unit,
      StatisticValues: {
        SampleCount: entry.count,
        Sum: entry.sum,
        Minimum: entry.min,
        Maximum: entry.max,
      },
    });
  }
  return data.sort(byDepthThenName);
}

/** CloudWatch rejects NaN and infinities, so a series carrying one cannot be uploaded. */
function isUploadable(snapshot: MetricSnapshot): boolean {
  return Number.isFinite(snapshot.sum) && Number.isFinite(snapshot.min) &&
    Number.isFinite(snapshot.max) && Number.isFinite(snapshot.windowEnd);
}

/** The C++ KPL's dimension order: ErrorCode, then StreamName, then ShardId; blanks dropped. */
function dimensionPath(snapshot: MetricSnapshot): { Name: string; Value: string }[] {
  const { error_code: errorCode, stream, shard } = snapshot.dimensions;
  const path: { Name: string; Value: string }[] = [];
  if (errorCode) path.push({ Name: "ErrorCode", Value: errorCode });
  if (stream) path.push({ Name: "StreamName", Value: stream });
  if (shard) path.push({ Name: "ShardId", Value: shard });
  return path;
}

function addTo(
  series: Map<string, Series>,
  snapshot: MetricSnapshot,
  dimensions: { Name: string; Value: string }[],
): void {
  const key = JSON.stringify([snapshot.name, dimensions]);
  const entry = series.get(key);
  if (entry === undefined) {
    series.set(key, {
      name: snapshot.name,
      unit: snapshot.unit,
      dimensions,
      count: snapshot.count,
      sum: snapshot.sum,
      min: snapshot.min,
      max: snapshot.max,
      windowEnd: snapshot.windowEnd,
    });
    return;
  }
  entry.count += snapshot.count;
  entry.sum += snapshot.sum;
  entry.min = Math.min(entry.min, snapshot.min);
  entry.max = Math.max(entry.max, snapshot.max);
  entry.windowEnd = Math.max(entry.windowEnd, snapshot.windowEnd);
}

function byDepthThenName(a: Datum, b: Datum): number {
  return a.Dimensions.length - b.Dimensions.length ||
    compare(a.MetricName, b.MetricName) ||
    compare(dimensionKey(a), dimensionKey(b));
}

function dimensionKey(datum: Datum): string {
  return datum.Dimensions.map((dimension) => `${dimension.Name}=${dimension.Value}`).join("\n");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Splits datums into requests of at most 1000 datums whose JSON body stays under 1 MB.
 * The body estimate is the JSON the SDK sends (AWS JSON 1.0, timestamps as epoch
 * seconds); it is measured before gzip, so the compressed body is smaller still.
 */
function batchMetricData(namespace: string, data: Datum[]): Datum[][] {
  return chunkBySize(data, {
    baseBytes: byteLength(JSON.stringify({ Namespace: namespace, MetricData: [] })),
    maxBytes: MAX_REQUEST_BYTES,
    maxCount: MAX_DATUMS_PER_REQUEST,
    sizeOf: (datum) =>
      byteLength(JSON.stringify({ ...datum, Timestamp: datum.Timestamp.getTime() / 1000 })) + 1,
  });
}
