/**
 * A metrics sink that submits to the Datadog HTTP API over Web `fetch`: counts and the
 * pending gauge to the v2 series endpoint, timings and ratios as distributions with their
 * raw values. No Datadog library is needed.
 *
 * @module
 */

import type { BackoffPolicy } from "../src/_backoff.ts";
import { byteLength, chunkBySize, postWithRetry, type VendorSinkOptions } from "./_vendor.ts";

export type { VendorSinkOptions } from "./_vendor.ts";
import { findMetricDefinition, type MetricKind } from "../src/_metric_catalog.ts";
import { type Clock, systemClock } from "../src/clock.ts";
import { consoleLogger, type Logger } from "../src/logger.ts";
import type {
  EventfulMetricsSink,
  MetricDimensions,
  MetricEvent,
  MetricName,
  MetricSnapshot,
} from "../src/metrics_sink.ts";

/** The `fetch` the sink calls; the global one by default. */
export type DatadogFetch = (input: string, init: RequestInit) => Promise<Response>;

/** Options for {@linkcode DatadogSink}. */
export interface DatadogSinkOptions extends VendorSinkOptions {
  /**
   * The Datadog site, such as `"datadoghq.eu"` or `"us5.datadoghq.com"`; requests go to
   * `https://api.{site}`.
   *
   * @default {"datadoghq.com"}
   */
  site?: string;
  /** Overrides `https://api.{site}`, such as a proxy's or a test server's URL. */
  baseUrl?: string;
  /** The API key; without it, `DD_API_KEY` from the environment. */
  apiKey?: string;
  /** The application key, sent when given; without it, `DD_APP_KEY` if set. */
  appKey?: string;
  /**
   * What every metric name starts with, such as `webkpl.UserRecordsPut`.
   *
   * @default {"webkpl."}
   */
  metricPrefix?: string;
  /**
   * Tags added to every series, such as `["env:prod", "service:orders"]`.
   *
   * @default {[]}
   */
  tags?: readonly string[];
  /** The host the series are reported for. */
  host?: string;
  /** The `fetch` to call. */
  fetch?: DatadogFetch;
  /**
   * How many times a request is retried after a 408, 429, 5xx or network failure.
   *
   * @default {3}
   */
  maxRetries?: number;
  /** The clock that times retry back-off. */
  clock?: Clock;
  /**
   * How many raw samples (distribution values and pending-gauge samples) are kept between
   * two exports; beyond that, samples are dropped and counted in `droppedSamples`.
   *
   * @default {100000}
   */
  maxBufferedSamples?: number;
}

/** Where each metric goes: the catalog's kind, as a Datadog series type (v2 `type`). */
const SERIES_TYPE: Readonly<Record<MetricKind, SeriesType>> = {
  count: 1,
  gauge: 3,
  distribution: 4,
};
type SeriesType = 1 | 3 | 4;

function kindOf(name: string): SeriesType | undefined {
  const definition = findMetricDefinition(name);
  return definition === undefined ? undefined : SERIES_TYPE[definition.kind];
}

/**
 * The documented limit of the v2 series endpoint: 500 kB (512000 bytes) per payload. The
 * distribution points endpoint documents none, so the same bound is used for it. Bodies
 * are sent uncompressed, so the 5 MB limit on decompressed payloads never applies.
 */
const MAX_PAYLOAD_BYTES = 512_000;
const SERIES_PATH = "/api/v2/series";
const DISTRIBUTION_PATH = "/api/v1/distribution_points";
/** Failed posts wait 500 ms, doubling per failure up to 30 s, with jitter. */
const RETRY_BACKOFF: BackoffPolicy = { firstMs: 500, maxMs: 30_000, factor: 2 };
const MAX_TAG_LENGTH = 200;
const METRIC_PREFIX = /^(?:[A-Za-z][A-Za-z0-9_.]*)?$/;
const SITE = /^[a-z0-9]+(?:[.-][a-z0-9]+)*$/;

/** Raw samples of one series since the last export, in arrival order. */
interface RawSeries {
  name: MetricName;
  dimensions: MetricDimensions;
  seconds: number[];
  values: number[];
}

/** Raw series by name, stream, shard and error code. */
type RawIndex = Map<string, Map<string, Map<string, Map<string, RawSeries>>>>;

/**
 * Submits the producer's metrics to Datadog.
 *
 * | Metric | Datadog type | Endpoint | Value |
 * | --- | --- | --- | --- |
 * | UserRecordsReceived, UserRecordsPut, UserRecordsDataPut, KinesisRecordsPut, KinesisRecordsDataPut, ErrorsByCode, AllErrors, UserRecordExpired | count | `POST /api/v2/series` | the window's sum, stamped at the window start with `interval` = the window length in seconds |
 * | UserRecordsPending | gauge | `POST /api/v2/series` | each sampled pending count (the last one of each second) |
 * | BufferingTime, RequestTime, RetriesPerRecord, UserRecordsPerKinesisRecord, KinesisRecordsPerPutRecordsRequest, UserRecordsPerPutRecordsRequest | distribution | `POST /api/v1/distribution_points` | every raw sample |
 *
 * The sink is eventful: `record` keeps the raw samples of the distributions and the
 * gauge (up to `maxBufferedSamples`), and `export` sends them with the counts of the
 * snapshots. Timestamps are epoch seconds. Every series is tagged with `tags` plus
 * `stream:`, `shard:` and `error_code:` from its dimensions.
 *
 * Payloads are split to stay under 512000 bytes. A request answered 408, 429 or 5xx, or
 * failing on the network, is retried up to `maxRetries` times with exponential back-off
 * (honouring `Retry-After`); when it still fails, or is refused with another status, the
 * export rejects and the rest of that export is not sent. The keys go only into the
 * `DD-API-KEY` and `DD-APPLICATION-KEY` headers, never into a log line or an error.
 *
 * @example Sending to a Datadog-compatible endpoint
 * ```ts
 * import { DatadogSink } from "@webkpl/kpl/sinks/datadog";
 *
 * const bodies: string[] = [];
 * const sink = new DatadogSink({
 *   apiKey: "example-key",
 *   tags: ["env:example"],
 *   fetch: (_url, init) => {
 *     bodies.push(init.body as string);
 *     return Promise.resolve(new Response('{"errors":[]}', { status: 202 }));
 *   },
 * });
 * const now = Date.now();
 * await sink.export([{
 *   name: "UserRecordsPut", unit: "Count", dimensions: { stream: "orders" },
 *   count: 10, sum: 9, min: 0, max: 1, windowStart: now - 60_000, windowEnd: now,
 * }]);
 * console.log(JSON.parse(bodies[0]!).series[0].type); // 1, a count
 * await sink.close();
 * ```
 */
export class DatadogSink implements EventfulMetricsSink {
  readonly #apiKey: string;
  readonly #appKey: string | undefined;
  readonly #baseUrl: string;
  readonly #prefix: string;
  readonly #tags: readonly string[];
  readonly #host: string | undefined;
  readonly #fetch: DatadogFetch;
  readonly #logger: Logger;
  readonly #maxRetries: number;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  readonly #maxBuffered: number;
  #raw: RawIndex = new Map();
  #buffered = 0;
  #dropped = 0;
  #droppedAtLastExport = 0;
  #closed = false;

  /**
   * Creates a sink; nothing is sent until the first export.
   *
   * @param options Where to send and how.
   * @throws {TypeError} If no API key is given or found in the environment, or an option
   * has the wrong type.
   * @throws {RangeError} If `site`, `baseUrl`, `metricPrefix`, a tag, `maxRetries`,
   * `requestTimeoutMs` or `maxBufferedSamples` is out of range.
   */
  constructor(options: DatadogSinkOptions = {}) {
    const {
      site = "datadoghq.com",
      baseUrl,
      metricPrefix = "webkpl.",
      tags = [],
      host,
      fetch = globalThis.fetch,
      logger = consoleLogger,
      maxRetries = 3,
      clock = systemClock,
      requestTimeoutMs = 10_000,
      maxBufferedSamples = 100_000,
    } = options;
    const apiKey = options.apiKey ?? fromEnvironment("DD_API_KEY");
    if (typeof apiKey !== "string" || apiKey === "") {
      // The value itself is never shown: it may be a secret of the wrong shape.
      throw new TypeError(
        `Cannot create DatadogSink as 'apiKey' must be a non-empty string, or DD_API_KEY must be set: current type is ${
          apiKey === "" ? "empty string" : typeof apiKey
        }`,
      );
    }
    const appKey = options.appKey ?? fromEnvironment("DD_APP_KEY");
    if (appKey !== undefined && (typeof appKey !== "string" || appKey === "")) {
      throw new TypeError(
        `Cannot create DatadogSink as 'appKey' must be a non-empty string when given: current type is ${
          appKey === "" ? "empty string" : typeof appKey
        }`,
      );
    }
    if (typeof site !== "string" || !SITE.test(site)) {
      throw new RangeError(
        `Cannot create DatadogSink as 'site' must be a host name such as "datadoghq.eu": current value is ${
          JSON.stringify(site)
        }`,
      );
    }
    this.#baseUrl = baseUrl === undefined ? `https://api.${site}` : checkBaseUrl(baseUrl);
    if (typeof metricPrefix !== "string" || !METRIC_PREFIX.test(metricPrefix)) {
      throw new RangeError(
        `Cannot create DatadogSink as 'metricPrefix' must start with a letter and hold only letters, digits, '_' and '.': current value is ${
          JSON.stringify(metricPrefix)
        }`,
      );
    }
    if (!Array.isArray(tags)) {
      throw new TypeError(
        `Cannot create DatadogSink as 'tags' must be an array of strings: current type is ${typeof tags}`,
      );
    }
    for (const tag of tags) {
      if (typeof tag !== "string" || tag === "" || tag.length > MAX_TAG_LENGTH) {
        throw new RangeError(
          `Cannot create DatadogSink as each of 'tags' must be a string of 1 to ${MAX_TAG_LENGTH} characters: current value is ${
            JSON.stringify(tag)
          }`,
        );
      }
    }
    if (host !== undefined && (typeof host !== "string" || host === "")) {
      throw new TypeError(
        `Cannot create DatadogSink as 'host' must be a non-empty string when given: current value is ${
          JSON.stringify(host)
        }`,
      );
    }
    if (typeof fetch !== "function") {
      throw new TypeError(
        `Cannot create DatadogSink as 'fetch' must be a function: current type is ${typeof fetch}`,
      );
    }
    checkInteger("maxRetries", maxRetries, 0, 10);
    checkInteger("requestTimeoutMs", requestTimeoutMs, 1, 600_000);
    checkInteger("maxBufferedSamples", maxBufferedSamples, 0, 10_000_000);
    this.#apiKey = apiKey;
    this.#appKey = appKey;
    this.#prefix = metricPrefix;
    this.#tags = [...tags];
    this.#host = host;
    this.#fetch = fetch;
    this.#logger = logger;
    this.#maxRetries = maxRetries;
    this.#clock = clock;
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#maxBuffered = maxBufferedSamples;
  }

  /** How many raw samples were dropped because the buffer was full, since creation. */
  get droppedSamples(): number {
    return this.#dropped;
  }

  /**
   * Keeps a raw sample of a distribution or of the pending gauge for the next export;
   * counts come from the snapshots instead, so their samples are ignored here.
   *
   * @param event The sample.
   */
  record(event: MetricEvent): void {
    const kind = kindOf(event.name);
    if (kind === undefined || kind === SERIES_TYPE.count || this.#closed) return;
    if (this.#buffered >= this.#maxBuffered || !Number.isFinite(event.value)) {
      this.#dropped++;
      return;
    }
    const series = this.#rawSeries(event.name, event.dimensions);
    series.seconds.push(Math.floor(event.timestamp / 1000));
    series.values.push(event.value);
    this.#buffered++;
  }

  /**
   * Sends the counts of `snapshots` and every raw sample kept since the previous export.
   *
   * @param snapshots The series of one export window; series with no samples are skipped.
   * @returns When every request has been accepted.
   * @throws {Error} If the sink is closed, or a request failed after its retries or was
   * refused; the message says which endpoint, the HTTP status or network failure, and how
   * many requests were not sent.
   */
  async export(snapshots: readonly MetricSnapshot[]): Promise<void> {
    if (this.#closed) throw new Error("Cannot export to DatadogSink as it is closed");
    const series: string[] = [];
    for (const snapshot of snapshots) {
      if (kindOf(snapshot.name) !== SERIES_TYPE.count || !(snapshot.count > 0)) continue;
      if (!Number.isFinite(snapshot.sum)) continue;
      series.push(this.#countEntry(snapshot));
    }
    const distributions: string[] = [];
    const raw = this.#raw;
    this.#raw = new Map();
    this.#buffered = 0;
    for (const byStream of raw.values()) {
      for (const byShard of byStream.values()) {
        for (const byCode of byShard.values()) {
          for (const entry of byCode.values()) {
            if (kindOf(entry.name) === SERIES_TYPE.gauge) series.push(...this.#gaugeEntries(entry));
            else distributions.push(...this.#distributionEntries(entry));
          }
        }
      }
    }
    const dropped = this.#dropped - this.#droppedAtLastExport;
    this.#droppedAtLastExport = this.#dropped;
    if (dropped > 0) {
      this.#logger.warn(
        `Datadog sink dropped ${dropped} raw samples since the previous export because more than ${this.#maxBuffered} were buffered; raise 'maxBufferedSamples' or export more often`,
      );
    }
    const requests = [
      ...pack(series).map((body) => ({ path: SERIES_PATH, body })),
      ...pack(distributions).map((body) => ({ path: DISTRIBUTION_PATH, body })),
    ];
    for (let i = 0; i < requests.length; i++) {
      const { path, body } = requests[i]!;
      const failure = await this.#post(path, body);
      if (failure !== undefined) {
        throw new Error(
          this.#redact(
            `Datadog ${path} request ${failure}; ${
              requests.length - i
            } of ${requests.length} requests of this export were not sent`,
          ),
        );
      }
    }
  }

  /**
   * Drops the buffered samples; later samples are ignored and exports reject.
   */
  close(): void {
    this.#closed = true;
    this.#raw = new Map();
    this.#buffered = 0;
  }

  /**
   * Same as {@linkcode DatadogSink.close}.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #rawSeries(name: MetricName, dimensions: MetricDimensions): RawSeries {
    // Nested maps find a series without building a key string per sample.
    let byStream = this.#raw.get(name);
    if (byStream === undefined) this.#raw.set(name, byStream = new Map());
    let byShard = byStream.get(dimensions.stream ?? "");
    if (byShard === undefined) byStream.set(dimensions.stream ?? "", byShard = new Map());
    let byCode = byShard.get(dimensions.shard ?? "");
    if (byCode === undefined) byShard.set(dimensions.shard ?? "", byCode = new Map());
    let series = byCode.get(dimensions.error_code ?? "");
    if (series === undefined) {
      series = { name, dimensions, seconds: [], values: [] };
      byCode.set(dimensions.error_code ?? "", series);
    }
    return series;
  }

  #tagsOf(dimensions: MetricDimensions): string[] {
    const tags = [...this.#tags];
    if (dimensions.stream) tags.push(`stream:${dimensions.stream}`);
    if (dimensions.shard) tags.push(`shard:${dimensions.shard}`);
    if (dimensions.error_code) tags.push(`error_code:${dimensions.error_code}`);
    return tags;
  }

  #countEntry(snapshot: MetricSnapshot): string {
    const entry: Record<string, unknown> = {
      metric: this.#prefix + snapshot.name,
      type: SERIES_TYPE.count,
      interval: Math.max(1, Math.ceil((snapshot.windowEnd - snapshot.windowStart) / 1000)),
      points: [{ timestamp: Math.floor(snapshot.windowStart / 1000), value: snapshot.sum }],
      tags: this.#tagsOf(snapshot.dimensions),
    };
    if (snapshot.unit === "Bytes") entry.unit = "byte";
    if (this.#host !== undefined) entry.resources = [{ name: this.#host, type: "host" }];
    return JSON.stringify(entry);
  }

  /** One gauge point per second, holding the last sample of that second. */
  #gaugeEntries(series: RawSeries): string[] {
    const points: string[] = [];
    const { seconds, values } = series;
    for (let i = 0; i < seconds.length; i++) {
      if (seconds[i + 1] === seconds[i]) continue;
      points.push(`{"timestamp":${seconds[i]},"value":${values[i]}}`);
    }
    const head: Record<string, unknown> = {
      metric: this.#prefix + series.name,
      type: SERIES_TYPE.gauge,
      tags: this.#tagsOf(series.dimensions),
    };
    if (this.#host !== undefined) head.resources = [{ name: this.#host, type: "host" }];
    return splitEntry(head, points);
  }

  /** One distribution point per second, holding every sample of that second. */
  #distributionEntries(series: RawSeries): string[] {
    const head: Record<string, unknown> = {
      metric: this.#prefix + series.name,
      tags: this.#tagsOf(series.dimensions),
      type: "distribution",
    };
    if (this.#host !== undefined) head.host = this.#host;
    const budget = MAX_PAYLOAD_BYTES - entryOverhead(head) - 64;
    const points: string[] = [];
    const { seconds, values } = series;
    let start = 0;
    while (start < seconds.length) {
      const second = seconds[start]!;
      const prefix = `[${second},[`;
      let point = prefix;
      let end = start;
      // Samples of one second can outgrow a payload, so a point is cut where it would.
      while (end < seconds.length && seconds[end] === second) {
        const value = String(values[end]);
        if (point.length > prefix.length && point.length + value.length + 3 > budget) break;
        point += point.length > prefix.length ? `,${value}` : value;
        end++;
      }
      points.push(`${point}]]`);
      start = end;
    }
    return splitEntry(head, points);
  }

  /**
   * Sends one body, retrying what Datadog asks to be retried.
   *
   * @returns Nothing on success, else why it failed (never holding a key).
   */
  async #post(path: string, body: string): Promise<string | undefined> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "accept": "application/json",
      "dd-api-key": this.#apiKey,
    };
    if (this.#appKey !== undefined) headers["dd-application-key"] = this.#appKey;
    const attempts = this.#maxRetries + 1;
    return await postWithRetry({
      fetch: this.#fetch,
      url: this.#baseUrl + path,
      headers,
      body,
      timeoutMs: this.#requestTimeoutMs,
      attempts,
      backoff: RETRY_BACKOFF,
      clock: this.#clock,
      onRetry: (failure, delay, next) =>
        this.#logger.debug(
          this.#redact(
            `Datadog ${path} request ${failure}; retrying in ${
              Math.round(delay)
            } ms (attempt ${next} of ${attempts})`,
          ),
        ),
    });
  }

  /** Removes the keys from text that may echo them, such as a server's error body. */
  #redact(text: string): string {
    let clean = text.replaceAll(this.#apiKey, "[redacted]");
    if (this.#appKey !== undefined) clean = clean.replaceAll(this.#appKey, "[redacted]");
    return clean;
  }
}

/** Reads an environment variable where the runtime exposes one and allows reading it. */
function fromEnvironment(name: string): string | undefined {
  const runtime = globalThis as {
    Deno?: { env?: { get(name: string): string | undefined } };
    process?: { env?: Record<string, string | undefined> };
  };
  try {
    const value = runtime.Deno?.env?.get(name);
    if (value) return value;
  } catch {
    // Deno without --allow-env: the environment is not ours to read.
  }
  try {
    const value = runtime.process?.env?.[name];
    if (value) return value;
  } catch {
    // Same, through the Node-compatible `process` of a runtime that guards it.
  }
  return undefined;
}

function checkBaseUrl(baseUrl: string): string {
  let url: URL | undefined;
  try {
    url = typeof baseUrl === "string" ? new URL(baseUrl) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new RangeError(
      `Cannot create DatadogSink as 'baseUrl' must be an http or https URL: current value is ${
        JSON.stringify(baseUrl)
      }`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot create DatadogSink as '${name}' must be an integer between ${min} and ${max}: current value is ${value}`,
    );
  }
}

/** The bytes of a series entry without its points. */
function entryOverhead(head: Record<string, unknown>): number {
  return byteLength(JSON.stringify({ ...head, points: [] }));
}

/**
 * Builds series entries carrying `points` (already JSON), starting a new entry for the
 * same series whenever one would no longer fit in a payload.
 */
function splitEntry(head: Record<string, unknown>, points: string[]): string[] {
  const opening = JSON.stringify({ ...head, points: [] }).slice(0, -2);
  const chunks = chunkBySize(points, {
    baseBytes: byteLength(opening) + 2,
    maxBytes: MAX_PAYLOAD_BYTES - 64,
    sizeOf: (point) => byteLength(point) + 1,
  });
  return chunks.map((chunk) => `${opening}${chunk.join(",")}]}`);
}

/** Packs series entries into `{"series":[...]}` bodies of at most 512000 bytes. */
function pack(entries: string[]): string[] {
  const opening = '{"series":[';
  const closing = "]}";
  const chunks = chunkBySize(entries, {
    baseBytes: opening.length + closing.length,
    maxBytes: MAX_PAYLOAD_BYTES,
    sizeOf: (entry) => byteLength(entry) + 1,
  });
  return chunks.map((chunk) => opening + chunk.join(",") + closing);
}
