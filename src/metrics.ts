/**
 * The producer's metrics: the 15 metrics of the C++ KPL, aggregated in process into
 * one-second buckets per series and handed to any {@linkcode MetricsSink} as deltas.
 *
 * - **Level** picks which names are recorded, by their C++ level: `summary` records
 *   UserRecordsPut, KinesisRecordsPut, ErrorsByCode, AllErrors, UserRecordExpired and
 *   BufferingTime; `detailed` records all 15; `none` records nothing and costs one branch.
 * - **Granularity** picks which dimensions are kept: `global` none, `stream` the stream,
 *   `shard` the stream and the shard. `error_code` stays on ErrorsByCode at every
 *   granularity. A sample put with fewer dimensions keeps what it has.
 * - **Series** are leaves: a sample is counted in the one series of its kept dimensions,
 *   never also in a stream or global roll-up, so summing the series of a name gives its
 *   total. Sinks whose backend cannot sum across dimensions build roll-ups themselves.
 * - **Exports** are deltas: each covers the samples since the previous export and no
 *   other, so summed over every successful export each count and sum equals what was put.
 *
 * The names are the C++ KPL's (for example `BufferingTime` and `UserRecordExpired`, listed on
 * the KPL metrics page of the Kinesis developer guide), so existing dashboards keep working;
 * `docs/metrics.md` lists all 15.
 *
 * @module
 */

import {
  findMetricDefinition,
  type MetricDefinition,
  metricDefinitions,
} from "./_metric_catalog.ts";
import { BurstClock } from "./_burst_clock.ts";
import { describeValue } from "./_describe.ts";
import { LOGGER_METHODS, OptionChecks } from "./_option_checks.ts";
import { MetricSeries, type Stats, WINDOW_SECONDS } from "./_metric_series.ts";
import { type Clock, systemClock } from "./clock.ts";
import { consoleLogger, type Logger } from "./logger.ts";
import {
  type EventfulMetricsSink,
  isEventfulMetricsSink,
  type MetricName,
  type MetricSnapshot,
  type MetricsSink,
  type MetricUnit,
} from "./metrics_sink.ts";
import { schedulerOf } from "./_metrics_scheduler.ts";
import { Deadline, Scheduler } from "./scheduler.ts";

/** Which metric names are recorded: none, the C++ summary set, or all 15. */
export type MetricsLevel = "none" | "summary" | "detailed";

/** Which dimensions a series keeps: none, the stream, or the stream and the shard. */
export type MetricsGranularity = "global" | "stream" | "shard";

/** The dimensions a producer stage passes to {@linkcode MetricsManager.put}. */
export interface MetricPutDimensions {
  /** The stream name. */
  stream?: string;
  /** The shard id, in the full `shardId-000000000001` form. */
  shard?: string;
  /** The error code; kept on `ErrorsByCode` only. */
  errorCode?: string;
}

/** Count, sum, smallest and largest sample of a series over a window. */
export interface MetricStats {
  /** How many samples were put. */
  readonly count: number;
  /** The sum of the samples. */
  readonly sum: number;
  /** The smallest sample. */
  readonly min: number;
  /** The largest sample. */
  readonly max: number;
}

/** Options for {@linkcode MetricsManager}. */
export interface MetricsManagerOptions {
  /**
   * Which metric names are recorded.
   *
   * @default {"none"}
   */
  level?: MetricsLevel;
  /**
   * Which dimensions are kept.
   *
   * @default {"stream" at level "summary", "shard" at level "detailed", "global" at "none"}
   */
  granularity?: MetricsGranularity;
  /**
   * Where exports go. Without one, metrics are still kept for
   * {@linkcode MetricsManager.snapshot} and exports are discarded.
   */
  sink?: MetricsSink;
  /**
   * How often the samples since the previous export are handed to the sink, in
   * milliseconds; at most 2147483647 (the longest timer delay runtimes support).
   *
   * @default {60000}
   */
  uploadIntervalMs?: number;
  /**
   * The source of time.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Where export and sink failures are reported.
   *
   * @default {consoleLogger}
   */
  logger?: Logger;
}

const LEVEL_RANK: Readonly<Record<MetricsLevel, number>> = { none: 0, summary: 1, detailed: 2 };
const GRANULARITY_RANK: Readonly<Record<MetricsGranularity, number>> = {
  global: 0,
  stream: 1,
  shard: 2,
};
const LEVELS = Object.keys(LEVEL_RANK) as MetricsLevel[];
const GRANULARITIES = Object.keys(GRANULARITY_RANK) as MetricsGranularity[];
const CLOCK_METHODS: readonly string[] = ["now", "setTimer", "clearTimer", "setPersistent"];
const MAX_TIMER_DELAY_MS = 2_147_483_647;
const check = new OptionChecks("metrics manager");

type SeriesByCode = Map<string | undefined, MetricSeries>;
type SeriesByShard = Map<string | undefined, SeriesByCode>;

// Per-name state, built once in the constructor for all 15 names, so `put` does one map
// lookup to learn whether the name is recorded and which dimensions it keeps.
class NameState {
  readonly definition: MetricDefinition;
  readonly recorded: boolean;
  readonly keepStream: boolean;
  readonly keepShard: boolean;
  readonly keepCode: boolean;
  /** stream → shard → error code → series; `undefined` keys stand for a missing dimension. */
  readonly registry: Map<string | undefined, SeriesByShard> = new Map();
  /** The series of the previous put: consecutive puts usually share their dimensions. */
  last: MetricSeries | undefined = undefined;

  constructor(definition: MetricDefinition, level: number, granularity: number) {
    this.definition = definition;
    this.recorded = level >= LEVEL_RANK[definition.level];
    this.keepStream = granularity >= GRANULARITY_RANK.stream;
    this.keepShard = granularity >= GRANULARITY_RANK.shard;
    this.keepCode = definition.byCode;
  }
}

// One requested export. Requests that arrive while an export is running merge into the
// next one, so a slow sink never has more than one export running and one waiting.
interface ExportJob {
  /** Whether the export covers the partial current second (flush and close do). */
  partial: boolean;
  /** Whether this is close()'s final export, after which puts are ignored. */
  final: boolean;
  readonly done: Promise<void>;
  readonly resolve: () => void;
}

/**
 * What a producer shows of its metrics: the rolling window, a forced export and the
 * error counters, read-only. The producer owns its manager (it records into it and closes
 * it); this view cannot do either.
 *
 * @example Reading a producer's metrics
 * ```ts
 * import { Producer } from "@webkpl/kpl";
 *
 * const missing = () => Promise.reject(new Error("not used"));
 * await using producer = new Producer({
 *   stream: "events",
 *   metricsLevel: "summary",
 *   kinesisClient: { listShards: missing, putRecords: missing },
 * });
 * console.log(producer.metrics.level); // "summary"
 * console.log(producer.metrics.snapshots()); // []
 * await producer.metrics.flush();
 * ```
 */
export interface MetricsView {
  /** Which metric names are recorded. */
  readonly level: MetricsLevel;
  /** Which dimensions are kept. */
  readonly granularity: MetricsGranularity;
  /** Whether anything is recorded (the level is not `none`). */
  readonly enabled: boolean;
  /** How many exports threw or rejected; their samples were dropped. */
  readonly exportErrors: number;
  /** How many samples an eventful sink's `record` threw on. */
  readonly recordErrors: number;
  /**
   * Statistics per series over the rolling window of the last 60 seconds.
   *
   * @returns Stats keyed by series, such as `UserRecordsPut{stream=events}`.
   */
  snapshot(): ReadonlyMap<string, MetricStats>;
  /**
   * The same window as {@linkcode MetricsView.snapshot}, as snapshots.
   *
   * @returns One snapshot per series with samples in the window.
   */
  snapshots(): MetricSnapshot[];
  /**
   * Exports now everything not yet exported. Never rejects.
   *
   * @returns A promise that settles when the sink has taken the export.
   */
  flush(): Promise<void>;
}

/**
 * Aggregates the producer's metrics and exports them to a sink.
 *
 * Samples go into one-second buckets (epoch-aligned) per series; a series is the metric
 * name plus the dimensions kept at the configured granularity. {@linkcode snapshot} and
 * {@linkcode snapshots} read a rolling 60-second window in process, whatever the sink.
 *
 * Every `uploadIntervalMs` the manager hands the sink one {@linkcode MetricSnapshot} per
 * series with samples since the previous export, covering the complete seconds since
 * then (`windowStart` inclusive, `windowEnd` exclusive, epoch milliseconds; windows of
 * consecutive exports touch and never overlap). {@linkcode flush} and {@linkcode close}
 * also cover the partial current second, ending their window at the current instant
 * (samples put in that very millisecond before the call are included: a millisecond clock
 * cannot order them); the samples put later go to the next export. A sample is in exactly one
 * export, so for a sink whose exports succeed, every count and sum summed over all exports
 * equals what was put. Series without samples in a window are left out, and an export
 * with no series does not call the sink.
 *
 * The sink cannot harm the producer: an export that throws or rejects is logged and
 * counted in {@linkcode exportErrors}, and its samples are dropped (retrying could send
 * part of a batch twice, and backends that aggregate what they receive would then count
 * it twice); `put`, `flush` and `close` never see the error. Exports never overlap: when
 * one is due while the previous is still running, it waits and then covers everything
 * since the previous hand-off. A failing `record` of an eventful sink is counted in
 * {@linkcode recordErrors} and logged at most once per upload interval.
 *
 * At level `none` the manager never touches the sink. Otherwise it owns the sink's
 * lifecycle: `start()` once before the first export, `close()` (or
 * `[Symbol.asyncDispose]()`) once after the final one.
 *
 * @example Counting records and reading the rolling window
 * ```ts
 * import { MetricsManager } from "@webkpl/kpl";
 *
 * const metrics = new MetricsManager({ level: "summary" });
 * metrics.put("UserRecordsPut", 1, { stream: "events", shard: "shardId-000000000000" });
 * metrics.put("UserRecordsPut", 0, { stream: "events", shard: "shardId-000000000001" });
 * metrics.put("RequestTime", 12, { stream: "events" }); // detailed-only: not recorded
 *
 * // At summary the granularity is "stream", so both samples share one series.
 * const stats = metrics.snapshot().get("UserRecordsPut{stream=events}");
 * console.log(stats); // { count: 2, sum: 1, min: 0, max: 1 }
 * console.log(metrics.snapshot().size); // 1
 * await metrics.close();
 * ```
 */
export class MetricsManager implements MetricsView {
  /** Which metric names are recorded. */
  readonly level: MetricsLevel;
  /** Which dimensions are kept. */
  readonly granularity: MetricsGranularity;

  readonly #off: boolean;
  readonly #sink: MetricsSink | undefined;
  readonly #eventful: EventfulMetricsSink | undefined;
  readonly #uploadIntervalMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #states: ReadonlyMap<string, NameState>;
  readonly #series: MetricSeries[] = [];

  #scheduler: Scheduler | undefined;
  readonly #ownsScheduler: boolean;
  #deadline: Deadline | undefined;
  #nextUploadAt = Infinity;

  /** Level `none`, or close()'s final export has been taken. */
  #ignorePuts: boolean;
  #closing: Promise<void> | undefined;
  #sinkStarted: Promise<void> | undefined;
  #exporting = false;
  #nextJob: ExportJob | undefined;
  #windowStart: number;

  #exportErrors = 0;
  #recordErrors = 0;
  #recordErrorLogged = false;

  // A clock read costs more than the rest of a put, and the producer puts several samples
  // per record in tight synchronous loops (one per response entry), so the samples of one
  // synchronous burst share the reading taken at its first put.
  readonly #burstClock: BurstClock;

  /**
   * Creates a manager. Nothing runs until {@linkcode start}; puts are recorded at once.
   *
   * @param options Level, granularity, sink, upload interval, clock, logger.
   * @throws {TypeError} When an option has the wrong type or `level`/`granularity` is not
   *   one of the allowed strings.
   * @throws {RangeError} When `uploadIntervalMs` is not between 1 and 2147483647.
   */
  constructor(options: MetricsManagerOptions = {}) {
    const {
      level = "none",
      granularity,
      sink,
      uploadIntervalMs = 60_000,
      logger = consoleLogger,
    } = options;
    // A producer runs its manager on its own scheduler; a manager made by a user makes
    // its own on `clock` and closes it on close.
    const scheduler = schedulerOf(options);
    const clock = scheduler?.clock ?? options.clock ?? systemClock;
    check.oneOf("level", level, { of: LEVELS });
    if (granularity !== undefined) check.oneOf("granularity", granularity, { of: GRANULARITIES });
    if (sink !== undefined) check.methods("sink", sink, { methods: ["export"] });
    check.number("uploadIntervalMs", uploadIntervalMs, { min: 1, max: MAX_TIMER_DELAY_MS });
    check.methods("clock", clock, { kind: "a Clock", methods: CLOCK_METHODS });
    check.methods("logger", logger, { methods: LOGGER_METHODS });

    this.level = level;
    this.granularity = granularity ??
      (level === "detailed" ? "shard" : level === "summary" ? "stream" : "global");
    this.#off = level === "none";
    this.#ignorePuts = this.#off;
    this.#sink = sink;
    this.#eventful = sink !== undefined && isEventfulMetricsSink(sink) ? sink : undefined;
    this.#uploadIntervalMs = uploadIntervalMs;
    this.#clock = clock;
    this.#burstClock = new BurstClock(clock, Infinity);
    this.#logger = logger;
    this.#scheduler = scheduler;
    this.#ownsScheduler = scheduler === undefined;
    this.#windowStart = Math.floor(clock.now() / 1000) * 1000;

    const states = new Map<string, NameState>();
    const levelRank = LEVEL_RANK[level];
    const granularityRank = GRANULARITY_RANK[this.granularity];
    for (const definition of metricDefinitions) {
      states.set(definition.name, new NameState(definition, levelRank, granularityRank));
    }
    this.#states = states;
  }

  /** Whether anything is recorded (the level is not `none`). */
  get enabled(): boolean {
    return !this.#off;
  }

  /** How many exports threw or rejected; their samples were dropped. */
  get exportErrors(): number {
    return this.#exportErrors;
  }

  /**
   * How many series are held in memory. A series with nothing left to export and no
   * sample in the rolling window is dropped at the next export.
   */
  get seriesCount(): number {
    return this.#series.length;
  }

  /** How many calls to an eventful sink's `record` threw. */
  get recordErrors(): number {
    return this.#recordErrors;
  }

  /**
   * Records one sample. Synchronous and cheap: at level `none` it returns before looking
   * at its arguments, and otherwise it touches only the sample's series (plus one
   * `record` call when the sink is eventful). After {@linkcode close} it does nothing.
   *
   * The samples of one synchronous burst (puts with no `await` between them) share one
   * clock reading, taken at the first of them and forgotten at the next microtask: it
   * stamps their bucket and their events' `timestamp`.
   *
   * @param name One of the 15 C++ KPL metric names.
   * @param value The sample, in the metric's unit (see {@linkcode metricUnit}).
   * @param dimensions Where the sample belongs; dimensions beyond the granularity are
   *   dropped, empty strings count as missing, and `errorCode` is kept only on
   *   `ErrorsByCode`.
   * @throws {TypeError} When the level is not `none` and `name` is not one of the 15
   *   names or `value` is not a finite number: a bug in the caller, which a silently
   *   dropped series would hide.
   *
   * @example Granularity decides the series
   * ```ts
   * import { MetricsManager } from "@webkpl/kpl";
   *
   * const metrics = new MetricsManager({ level: "detailed", granularity: "global" });
   * metrics.put("ErrorsByCode", 1, { stream: "s", shard: "shardId-000000000000", errorCode: "E" });
   * console.log([...metrics.snapshot().keys()]); // ["ErrorsByCode{error_code=E}"]
   * await metrics.close();
   * ```
   */
  put(name: MetricName, value: number, dimensions?: MetricPutDimensions): void {
    if (this.#ignorePuts) return;
    const state = this.#states.get(name);
    if (state === undefined) throw unknownName("put metric", name);
    if (!Number.isFinite(value)) {
      throw new TypeError(
        `Cannot put metric ${name} as 'value' must be a finite number: current value is ${
          describeValue(value)
        }`,
      );
    }
    if (!state.recorded) return;

    let stream: string | undefined;
    let shard: string | undefined;
    let code: string | undefined;
    if (dimensions !== undefined) {
      if (state.keepStream) stream = dimensions.stream || undefined;
      if (state.keepShard) shard = dimensions.shard || undefined;
      if (state.keepCode) code = dimensions.errorCode || undefined;
    }
    let series = state.last;
    if (
      series === undefined || series.stream !== stream || series.shard !== shard ||
      series.errorCode !== code
    ) {
      series = this.#find(state, stream, shard, code);
      state.last = series;
    }
    const now = this.#burstClock.now();
    series.add(Math.floor(now / 1000), value);
    if (this.#eventful !== undefined) this.#record(series, value, now);
  }

  /**
   * The rolling window per series: the current (partial) second and the 59 before it.
   * Independent of exports. Keys are the metric name, followed, when the series has
   * dimensions, by `{stream=…,shard=…,error_code=…}` listing only the kept ones in that
   * order, e.g. `UserRecordsPut{stream=events,shard=shardId-000000000001}`.
   *
   * @returns A new map from series key to its stats; series with no sample in the
   *   window are left out.
   *
   * @example Reading one series
   * ```ts
   * import { MetricsManager } from "@webkpl/kpl";
   *
   * const metrics = new MetricsManager({ level: "detailed", granularity: "stream" });
   * metrics.put("RequestTime", 40, { stream: "events" });
   * metrics.put("RequestTime", 10, { stream: "events" });
   * const stats = metrics.snapshot().get("RequestTime{stream=events}");
   * console.log(stats); // { count: 2, sum: 50, min: 10, max: 40 }
   * await metrics.close();
   * ```
   */
  snapshot(): ReadonlyMap<string, MetricStats> {
    const result = new Map<string, MetricStats>();
    if (this.#off) return result;
    const nowSecond = Math.floor(this.#clock.now() / 1000);
    for (const series of this.#series) {
      const stats: Stats = { count: 0, sum: 0, min: Infinity, max: -Infinity };
      series.addWindow(nowSecond, stats);
      if (stats.count > 0) result.set(series.key, stats);
    }
    return result;
  }

  /**
   * The same rolling window as {@linkcode snapshot}, as snapshots whose window is the
   * 60 seconds ending with the current second (`windowEnd` is the end of that second).
   *
   * @returns One snapshot per series with samples in the window.
   *
   * @example Listing the window
   * ```ts
   * import { MetricsManager } from "@webkpl/kpl";
   *
   * const metrics = new MetricsManager({ level: "summary" });
   * metrics.put("AllErrors", 0, { stream: "events" });
   * const [snapshot] = metrics.snapshots();
   * console.log(snapshot?.name); // "AllErrors"
   * console.log(snapshot?.dimensions); // { stream: "events" }
   * console.log(snapshot!.windowEnd - snapshot!.windowStart); // 60_000
   * await metrics.close();
   * ```
   */
  snapshots(): MetricSnapshot[] {
    const result: MetricSnapshot[] = [];
    if (this.#off) return result;
    const nowSecond = Math.floor(this.#clock.now() / 1000);
    const windowEnd = (nowSecond + 1) * 1000;
    const windowStart = windowEnd - WINDOW_SECONDS * 1000;
    for (const series of this.#series) {
      const stats: Stats = { count: 0, sum: 0, min: Infinity, max: -Infinity };
      series.addWindow(nowSecond, stats);
      if (stats.count > 0) result.push(toSnapshot(series, stats, windowStart, windowEnd));
    }
    return result;
  }

  /**
   * Starts the upload loop on the scheduler and the sink's lifecycle. Idempotent; does
   * nothing at level `none` or after {@linkcode close}. The loop's timer never keeps a
   * process alive on its own.
   *
   * @example Starting and closing
   * ```ts
   * import { MetricsManager } from "@webkpl/kpl";
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * const metrics = new MetricsManager({ level: "summary", sink, uploadIntervalMs: 10_000 });
   * metrics.start();
   * metrics.put("UserRecordsPut", 1, { stream: "events" });
   * await metrics.close();
   * console.log(sink.total("UserRecordsPut").count); // 1
   * ```
   */
  start(): void {
    if (this.#off || this.#closing !== undefined || this.#deadline !== undefined) {
      return;
    }
    void this.#startSink();
    this.#scheduler ??= new Scheduler(this.#clock);
    this.#deadline = new Deadline({ onDeadline: (now) => this.#onUploadDue(now) });
    this.#nextUploadAt = this.#clock.now() + this.#uploadIntervalMs;
    this.#scheduler.schedule(this.#deadline, this.#nextUploadAt);
  }

  /**
   * Exports now: every sample not yet exported, the partial current second included.
   * When an export is running, waits for it first. Never rejects: sink failures are
   * logged and counted in {@linkcode exportErrors}.
   *
   * @returns A promise that settles when the export has been handed to the sink and the
   *   sink's promise has settled.
   *
   * @example Forcing an export
   * ```ts
   * import { MetricsManager } from "@webkpl/kpl";
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * const metrics = new MetricsManager({ level: "summary", sink });
   * metrics.put("KinesisRecordsPut", 1, { stream: "events" });
   * await metrics.flush();
   * await metrics.flush(); // nothing new: the sink is not called again
   * console.log(sink.exports.length); // 1
   * console.log(sink.total("KinesisRecordsPut").sum); // 1
   * await metrics.close();
   * ```
   */
  flush(): Promise<void> {
    if (this.#off || this.#closing !== undefined) {
      return this.#closing ?? Promise.resolve();
    }
    return this.#requestExport(true, false);
  }

  /**
   * Stops the upload loop, exports everything not yet exported (the partial current
   * second included), then closes the sink. Samples put while an earlier export is still
   * running are included; samples put after the final export are ignored. Idempotent;
   * never rejects.
   *
   * @returns A promise that settles when the sink is closed.
   *
   * @example Closing exports the rest
   * ```ts
   * import { MetricsManager } from "@webkpl/kpl";
   * import { InMemorySink } from "@webkpl/kpl/sinks";
   *
   * const sink = new InMemorySink();
   * const metrics = new MetricsManager({ level: "detailed", sink });
   * metrics.put("UserRecordsReceived", 1, { stream: "events" });
   * await metrics.close();
   * console.log(sink.total("UserRecordsReceived").count); // 1
   * console.log(sink.closed); // true
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * Same as {@linkcode close}, for `await using`.
   *
   * @returns A promise that settles when the sink is closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    if (this.#off) return;
    if (this.#deadline !== undefined) this.#scheduler?.cancel(this.#deadline);
    if (this.#ownsScheduler) this.#scheduler?.close();
    await this.#requestExport(true, true);
    await this.#callSink(closeSink, "close");
  }

  #find(
    state: NameState,
    stream: string | undefined,
    shard: string | undefined,
    code: string | undefined,
  ): MetricSeries {
    let byShard = state.registry.get(stream);
    if (byShard === undefined) {
      byShard = new Map();
      state.registry.set(stream, byShard);
    }
    let byCode = byShard.get(shard);
    if (byCode === undefined) {
      byCode = new Map();
      byShard.set(shard, byCode);
    }
    let series = byCode.get(code);
    if (series === undefined) {
      series = new MetricSeries(state.definition, stream, shard, code);
      byCode.set(code, series);
      this.#series.push(series);
    }
    return series;
  }

  #forget(series: MetricSeries): void {
    const state = this.#states.get(series.definition.name)!;
    if (state.last === series) state.last = undefined;
    const byShard = state.registry.get(series.stream);
    const byCode = byShard?.get(series.shard);
    if (byShard === undefined || byCode === undefined) return;
    byCode.delete(series.errorCode);
    if (byCode.size === 0) byShard.delete(series.shard);
    if (byShard.size === 0) state.registry.delete(series.stream);
  }

  #record(series: MetricSeries, value: number, timestamp: number): void {
    try {
      this.#eventful!.record({
        name: series.definition.name,
        unit: series.definition.unit,
        value,
        timestamp,
        dimensions: series.dimensions,
      });
    } catch (error) {
      this.#recordErrors++;
      if (!this.#recordErrorLogged) {
        this.#recordErrorLogged = true;
        this.#logger.error(
          "metrics sink record() threw; further failures are counted and logged at most once per upload interval",
          error,
        );
      }
    }
  }

  #onUploadDue(now: number): void {
    this.#recordErrorLogged = false;
    // Fixed rate, like the C++ loop; after a stall (a suspended process) skip the missed
    // ticks rather than firing them back to back: the next export covers them anyway.
    this.#nextUploadAt += this.#uploadIntervalMs;
    if (this.#nextUploadAt <= now) this.#nextUploadAt = now + this.#uploadIntervalMs;
    this.#scheduler!.schedule(this.#deadline!, this.#nextUploadAt);
    // With a sub-second interval most ticks complete no second; skip them cheaply.
    const nothingComplete = Math.floor(now / 1000) * 1000 <= this.#windowStart;
    if (nothingComplete && !this.#exporting && this.#nextJob === undefined) return;
    void this.#requestExport(false, false);
  }

  #requestExport(partial: boolean, final: boolean): Promise<void> {
    let job = this.#nextJob;
    if (job === undefined) {
      let resolve!: () => void;
      const done = new Promise<void>((settle) => resolve = settle);
      job = { partial, final, done, resolve };
      this.#nextJob = job;
      if (!this.#exporting) void this.#runExports();
    } else {
      job.partial ||= partial;
      job.final ||= final;
    }
    return job.done;
  }

  async #runExports(): Promise<void> {
    this.#exporting = true;
    try {
      await this.#startSink();
      for (let job = this.#nextJob; job !== undefined; job = this.#nextJob) {
        this.#nextJob = undefined;
        const snapshots = this.#collect(job.partial);
        if (job.final) this.#ignorePuts = true;
        if (snapshots.length > 0 && this.#sink !== undefined) {
          await this.#callSink(exportTo, "export", snapshots);
        }
        job.resolve();
      }
    } finally {
      this.#exporting = false;
    }
  }

  // Takes every unexported sample up to the end of the window (the current instant for a
  // partial export, else the start of the current second) and advances the window, so
  // the next export starts where this one ended. Idle series are dropped here, which
  // bounds the registry when shards or error codes come and go.
  #collect(partial: boolean): MetricSnapshot[] {
    const now = this.#clock.now();
    const nowSecond = Math.floor(now / 1000);
    const windowStart = this.#windowStart;
    const windowEnd = Math.max(windowStart, partial ? now : nowSecond * 1000);
    const endSecond = partial ? Infinity : nowSecond;
    this.#windowStart = windowEnd;

    const snapshots: MetricSnapshot[] = [];
    const stats: Stats = { count: 0, sum: 0, min: 0, max: 0 };
    const all = this.#series;
    let kept = 0;
    for (let i = 0; i < all.length; i++) {
      const series = all[i]!;
      if (series.takeUnexported(endSecond, stats)) {
        snapshots.push(toSnapshot(series, stats, windowStart, windowEnd));
      }
      if (series.isIdle(nowSecond)) this.#forget(series);
      else all[kept++] = series;
    }
    all.length = kept;
    return snapshots;
  }

  #startSink(): Promise<void> {
    this.#sinkStarted ??= this.#callSink(startSink, "start");
    return this.#sinkStarted;
  }

  async #callSink(
    call: (sink: MetricsSink, snapshots: readonly MetricSnapshot[]) => unknown,
    what: "start" | "export" | "close",
    snapshots: readonly MetricSnapshot[] = [],
  ): Promise<void> {
    const sink = this.#sink;
    if (sink === undefined) return;
    try {
      await call(sink, snapshots);
    } catch (error) {
      if (what === "export") {
        this.#exportErrors++;
        this.#logger.error(
          `metrics export failed; ${snapshots.length} series of this window were dropped`,
          error,
        );
      } else {
        this.#logger.error(`metrics sink ${what}() failed`, error);
      }
    }
  }
}

/**
 * The unit of a metric, as in the C++ KPL: `Bytes` for UserRecordsDataPut and
 * KinesisRecordsDataPut, `Milliseconds` for BufferingTime and RequestTime, `Count` for the
 * rest.
 *
 * @param name One of the 15 metric names.
 * @returns The unit its samples are measured in.
 * @throws {TypeError} When `name` is not one of the 15 names.
 *
 * @example Looking up a unit
 * ```ts
 * import { metricUnit } from "@webkpl/kpl";
 *
 * console.log(metricUnit("RequestTime")); // "Milliseconds"
 * ```
 */
export function metricUnit(name: MetricName): MetricUnit {
  const definition = findMetricDefinition(name);
  if (definition === undefined) throw unknownName("look up unit", name);
  return definition.unit;
}

/**
 * The level at which the C++ KPL records a metric: `summary` for UserRecordsPut,
 * KinesisRecordsPut, ErrorsByCode, AllErrors, UserRecordExpired and BufferingTime,
 * `detailed` for the rest.
 *
 * @param name One of the 15 metric names.
 * @returns The lowest level that records it.
 * @throws {TypeError} When `name` is not one of the 15 names.
 *
 * @example Looking up a level
 * ```ts
 * import { metricLevel } from "@webkpl/kpl";
 *
 * console.log(metricLevel("UserRecordExpired")); // "summary"
 * console.log(metricLevel("RetriesPerRecord")); // "detailed"
 * ```
 */
export function metricLevel(name: MetricName): "summary" | "detailed" {
  const definition = findMetricDefinition(name);
  if (definition === undefined) throw unknownName("look up level", name);
  return definition.level;
}

/**
 * The 15 metric names of the C++ KPL, in the order of its table.
 *
 * @example Every name has a unit
 * ```ts
 * import { metricNames, metricUnit } from "@webkpl/kpl";
 *
 * console.log(metricNames.length); // 15
 * console.log(metricNames.every((name) => metricUnit(name) !== undefined)); // true
 * ```
 */
export const metricNames: readonly MetricName[] = Object.freeze(
  metricDefinitions.map((definition) => definition.name),
);

function toSnapshot(
  series: MetricSeries,
  stats: Stats,
  windowStart: number,
  windowEnd: number,
): MetricSnapshot {
  return Object.freeze({
    name: series.definition.name,
    unit: series.definition.unit,
    dimensions: series.dimensions,
    count: stats.count,
    sum: stats.sum,
    min: stats.min,
    max: stats.max,
    windowStart,
    windowEnd,
  });
}

function startSink(sink: MetricsSink): unknown {
  return sink.start?.();
}

function exportTo(sink: MetricsSink, snapshots: readonly MetricSnapshot[]): unknown {
  return sink.export(snapshots);
}

function closeSink(sink: MetricsSink): unknown {
  if (typeof sink.close === "function") return sink.close();
  return sink[Symbol.asyncDispose]?.();
}

function unknownName(action: string, name: unknown): TypeError {
  return new TypeError(
    `Cannot ${action} as 'name' must be one of the 15 KPL metric names: current value is ${
      describeValue(name)
    }`,
  );
}
