/**
 * A metrics sink that records every sample into OpenTelemetry instruments, so the
 * producer's metrics reach any OpenTelemetry exporter (OTLP, Prometheus, a vendor's).
 *
 * It depends on `@opentelemetry/api` only. The application brings the SDK and its
 * exporters, and either passes a `meter` or `meterProvider`, or registers a global
 * meter provider before the producer starts.
 *
 * @module
 */

import { metrics, ValueType } from "@opentelemetry/api";
import { findMetricDefinition } from "../src/_metric_catalog.ts";
import type {
  EventfulMetricsSink,
  MetricDimensions,
  MetricEvent,
  MetricName,
  MetricSnapshot,
  MetricUnit,
} from "../src/metrics_sink.ts";

/** The instrumentation scope name of the meter the sink asks a provider for. */
const METER_NAME = "@webkpl/kpl";

/**
 * The attributes of a sample: the series' dimensions. Shaped like OpenTelemetry's
 * `Attributes`.
 */
export type SampleAttributes = Readonly<Record<string, string | undefined>>;

/** What an instrument is created with; a subset of OpenTelemetry's `MetricOptions`. */
export interface InstrumentOptions {
  /** What the instrument measures. */
  description?: string;
  /** The unit, in UCUM notation. */
  unit?: string;
  /** `ValueType.INT` (0) or `ValueType.DOUBLE` (1). */
  valueType?: number;
  /** Bucket boundaries the SDK should prefer for a histogram. */
  advice?: { explicitBucketBoundaries?: number[] };
}

/**
 * The part of an OpenTelemetry `Meter` the sink uses; any `Meter` from
 * `@opentelemetry/api` fits.
 */
export interface MeterLike {
  /**
   * Creates a monotonic counter.
   *
   * @param name The instrument name.
   * @param options Description, unit and value type.
   * @returns The counter.
   */
  createCounter(
    name: string,
    options?: InstrumentOptions,
  ): { add(value: number, attributes?: SampleAttributes): void };
  /**
   * Creates a counter that can go down.
   *
   * @param name The instrument name.
   * @param options Description, unit and value type.
   * @returns The up-down counter.
   */
  createUpDownCounter(
    name: string,
    options?: InstrumentOptions,
  ): { add(value: number, attributes?: SampleAttributes): void };
  /**
   * Creates a histogram.
   *
   * @param name The instrument name.
   * @param options Description, unit and bucket advice.
   * @returns The histogram.
   */
  createHistogram(
    name: string,
    options?: InstrumentOptions,
  ): { record(value: number, attributes?: SampleAttributes): void };
}

/**
 * The part of an OpenTelemetry `MeterProvider` the sink uses; any `MeterProvider` from
 * `@opentelemetry/api` or `@opentelemetry/sdk-metrics` fits.
 */
export interface MeterProviderLike {
  /**
   * Returns the meter of an instrumentation scope.
   *
   * @param name The scope name.
   * @returns The meter.
   */
  getMeter(name: string): MeterLike;
}

/** Options for {@linkcode OpenTelemetrySink}. */
export interface OpenTelemetrySinkOptions {
  /** The meter to create instruments on. */
  meter?: MeterLike;
  /**
   * The provider to get a meter from, when no `meter` is given. Without either, the
   * global provider registered with `@opentelemetry/api` is used.
   */
  meterProvider?: MeterProviderLike;
  /**
   * What every instrument name starts with, such as `webkpl.UserRecordsPut`.
   *
   * @default {"webkpl."}
   */
  instrumentPrefix?: string;
}

/** How a metric is recorded; see {@linkcode OpenTelemetrySink}. */
type Recorder = (value: number, attributes: SampleAttributes) => void;

/** The OpenTelemetry instrument name rule (API specification, instrument name syntax). */
const INSTRUMENT_NAME = /^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$/;
const LONGEST_METRIC_NAME = "KinesisRecordsPerPutRecordsRequest";

/** Bucket advice for count-valued histograms; millisecond ones keep the SDK's defaults. */
const RETRY_BUCKETS = [0, 1, 2, 3, 4, 5, 10, 20, 50];
const RATIO_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/**
 * Records the producer's metrics into OpenTelemetry instruments named
 * `instrumentPrefix + name` (for example `webkpl.UserRecordsPut`), with the series'
 * dimensions as the attributes `stream`, `shard` and `error_code`.
 *
 * The sink is eventful: it takes every raw sample through `record`, so `export` has
 * nothing to do. That keeps the OpenTelemetry SDK in charge of aggregation and
 * temporality, and no value is ever derived from a window.
 *
 * | Metric | Instrument | Unit | What it receives |
 * | --- | --- | --- | --- |
 * | UserRecordsReceived, UserRecordsPut, KinesisRecordsPut, UserRecordExpired | Counter | `{record}` | each sample's value, so the sum is the number of records (successes for the `*Put` ones, whose failure samples are 0) |
 * | UserRecordsDataPut, KinesisRecordsDataPut | Counter | `By` | each sample's byte count |
 * | AllErrors, ErrorsByCode | Counter | `{error}` | each sample's value (1 per error) |
 * | UserRecordsPending | UpDownCounter | `{record}` | the change since the previous sample of the same series, so its value is the latest pending count |
 * | BufferingTime, RequestTime | Histogram | `ms` | each raw duration |
 * | RetriesPerRecord | Histogram | `{retry}` | each record's retry count |
 * | UserRecordsPerKinesisRecord, KinesisRecordsPerPutRecordsRequest, UserRecordsPerPutRecordsRequest | Histogram | `{record}` | each raw ratio sample |
 *
 * Without a `meter`, the sink asks the provider for the meter `@webkpl/kpl`. The meter is
 * resolved at `start` or at the first sample, so a global provider must be registered
 * before the producer starts recording.
 *
 * @example Recording into an OpenTelemetry meter
 * ```ts
 * import { OpenTelemetrySink } from "@webkpl/kpl/sinks/opentelemetry";
 * import { metrics } from "@opentelemetry/api";
 *
 * const sink = new OpenTelemetrySink({ meter: metrics.getMeter("example") });
 * sink.record({
 *   name: "UserRecordsPut",
 *   unit: "Count",
 *   value: 1,
 *   timestamp: Date.now(),
 *   dimensions: { stream: "orders", shard: "shardId-000000000000" },
 * });
 * console.log(sink.instrumentPrefix); // "webkpl."
 * ```
 */
export class OpenTelemetrySink implements EventfulMetricsSink {
  readonly #prefix: string;
  readonly #options: OpenTelemetrySinkOptions;
  readonly #recorders = new Map<string, Recorder>();
  readonly #pending = new Map<string, number>();
  #meter: MeterLike | undefined;

  /**
   * Creates a sink; instruments are created when their metric's first sample arrives.
   *
   * @param options The meter and naming.
   * @throws {TypeError} If `instrumentPrefix` is not a string.
   * @throws {RangeError} If `instrumentPrefix` would make an invalid instrument name.
   */
  constructor(options: OpenTelemetrySinkOptions = {}) {
    const { instrumentPrefix = "webkpl." } = options;
    if (typeof instrumentPrefix !== "string") {
      throw new TypeError(
        `Cannot create OpenTelemetrySink as 'instrumentPrefix' must be a string: current type is ${typeof instrumentPrefix}`,
      );
    }
    if (!INSTRUMENT_NAME.test(instrumentPrefix + LONGEST_METRIC_NAME)) {
      throw new RangeError(
        `Cannot create OpenTelemetrySink as 'instrumentPrefix' must start with a letter and hold only letters, digits, '_', '.', '-' and '/': current value is ${
          JSON.stringify(instrumentPrefix)
        }`,
      );
    }
    this.#prefix = instrumentPrefix;
    this.#options = options;
  }

  /** What every instrument name starts with. */
  get instrumentPrefix(): string {
    return this.#prefix;
  }

  /**
   * Resolves the meter now, so a global provider is captured when the producer starts.
   */
  start(): void {
    this.#resolveMeter();
  }

  /**
   * Records one sample into its metric's instrument.
   *
   * @param event The sample.
   */
  record(event: MetricEvent): void {
    const recorder = this.#recorders.get(event.name) ?? this.#create(event.name, event.unit);
    // The dimensions object is read-only and shaped like attributes, so it is passed as is
    // rather than copied per sample.
    recorder(event.value, event.dimensions as SampleAttributes);
  }

  /**
   * Does nothing: every sample already went to its instrument through `record`, and the
   * OpenTelemetry SDK aggregates and exports on its own schedule.
   *
   * @param _snapshots Ignored.
   */
  export(_snapshots: readonly MetricSnapshot[]): void {}

  #resolveMeter(): MeterLike {
    this.#meter ??= this.#options.meter ??
      (this.#options.meterProvider ?? metrics.getMeterProvider()).getMeter(METER_NAME);
    return this.#meter;
  }

  #create(name: MetricName, unit: MetricUnit): Recorder {
    const meter = this.#resolveMeter();
    const instrumentName = this.#prefix + name;
    const definition = findMetricDefinition(name);
    const description = definition?.description ?? name;
    let recorder: Recorder;
    if (definition?.kind === "distribution") {
      const advice = unit === "Milliseconds"
        ? undefined
        : { explicitBucketBoundaries: name === "RetriesPerRecord" ? RETRY_BUCKETS : RATIO_BUCKETS };
      const histogram = meter.createHistogram(instrumentName, {
        description,
        unit: otelUnit(name, unit),
        ...(advice === undefined ? {} : { advice }),
      });
      recorder = (value, attributes) => histogram.record(value, attributes);
    } else if (definition?.kind === "gauge") {
      const upDown = meter.createUpDownCounter(instrumentName, {
        description,
        unit: otelUnit(name, unit),
        valueType: ValueType.INT,
      });
      recorder = (value, attributes) => this.#movePending(upDown, value, attributes);
    } else {
      const counter = meter.createCounter(instrumentName, {
        description,
        unit: otelUnit(name, unit),
        valueType: ValueType.INT,
      });
      recorder = (value, attributes) => counter.add(value, attributes);
    }
    this.#recorders.set(name, recorder);
    return recorder;
  }

  /**
   * Moves the up-down counter by the change since the series' previous sample, so its
   * value is always the latest sampled count. Pending is sampled on a timer, not per
   * record, so building the key here costs nothing that matters.
   */
  #movePending(
    upDown: { add(value: number, attributes?: SampleAttributes): void },
    value: number,
    attributes: SampleAttributes,
  ): void {
    const dimensions = attributes as MetricDimensions;
    const key = `${dimensions.stream ?? ""}\n${dimensions.shard ?? ""}\n${
      dimensions.error_code ?? ""
    }`;
    const previous = this.#pending.get(key);
    if (previous === value) return;
    this.#pending.set(key, value);
    upDown.add(value - (previous ?? 0), attributes);
  }
}

function otelUnit(name: MetricName, unit: MetricUnit): string {
  if (unit === "Milliseconds") return "ms";
  if (unit === "Bytes") return "By";
  if (name === "AllErrors" || name === "ErrorsByCode") return "{error}";
  if (name === "RetriesPerRecord") return "{retry}";
  return "{record}";
}
