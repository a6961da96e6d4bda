/**
 * The producer: the public API, and the one place where the pipeline's parts are wired
 * together. Records flow one way; `docs/architecture.md` draws the flow and says which
 * file owns which step:
 *
 * ```
 * put ─► validate ─► admission ─► StreamPipeline: ShardMap.predict ─► Aggregator ─► Limiter
 *     ─► Collector ─► Sender (PutRecords) ─► Retrier (verdict) ─► settle | back to the pipeline
 * ```
 *
 * @module
 */

import { Admission } from "./_admission.ts";
import { BufferPool } from "./_buffer_pool.ts";
import { BurstClock } from "./_burst_clock.ts";
import { OutstandingLedger } from "./_ledger.ts";
import { onScheduler } from "./_metrics_scheduler.ts";
import { PendingRecord, type RecordOwner } from "./_pending_record.ts";
import type { ProducerPort } from "./_producer_port.ts";
import { ManagerView, ProducerMetrics } from "./_producer_metrics.ts";
import { Settlement } from "./_settlement.ts";
import { StreamPipeline } from "./_stream_pipeline.ts";
import { checkRecordSize, type RecordRules, validateRecord } from "./_validate.ts";
import { RecordLimit } from "./_record_limit.ts";
import { within } from "./_within.ts";
import { type Clock, systemClock } from "./clock.ts";
import { ErrorCodes } from "./error_codes.ts";
import { NotReadyError, ProducerClosedError } from "./errors.ts";
import { checkReadiness } from "./_readiness.ts";
import { createDefaultKinesisClient, firstLine, type KinesisClient } from "./kinesis_client.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import type { ShardState } from "./limiter.ts";
import { consoleLogger, type Logger } from "./logger.ts";
import { MetricsManager, type MetricsView } from "./metrics.ts";
import {
  type ProducerOptions,
  type ResolvedProducerOptions,
  resolveProducerOptions,
} from "./options.ts";
import type { RecordReceipt, RecordResult, UserRecord } from "./record.ts";
import { type Landing, Retrier, Verdict } from "./retrier.ts";
import { Deadline, Scheduler } from "./scheduler.ts";
import { type PutRecordsCall, Sender } from "./sender.ts";
import {
  createRecordTransform,
  createRecordWritable,
  type RecordTransformOptions,
  type RecordWritableOptions,
  sharedRecordWritable,
} from "./streams.ts";

/** Options for calls that may wait. */
export interface SignalOptions {
  /** Stops waiting; the call rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/** Options for {@linkcode Producer.close}. */
export interface CloseOptions extends SignalOptions {
  /**
   * How long to wait for outstanding records before failing them with `ProducerClosed`.
   * @default {30000}
   */
  timeoutMs?: number;
}

const PENDING_SAMPLE_INTERVAL_MS = 200;
/**
 * How many admissions of one synchronous burst share a clock reading. Reading the clock
 * is a call into the runtime (a few percent of a record's cost); sharing it among 64
 * puts that ran back to back dates a record at most those puts' time (well under a
 * millisecond) early.
 */
const ADMISSIONS_PER_CLOCK_READ = 64;
const MIN_FINAL_EXPORT_MS = 1000;

/**
 * A Kinesis producer: aggregation, shard prediction, per-shard rate limits, batching,
 * retries and one {@linkcode RecordResult} per record.
 *
 * @example Putting records and closing
 * ```ts ignore
 * import { Producer } from "@webkpl/kpl";
 *
 * await using producer = new Producer({ region: "us-east-1", stream: "events" });
 * const result = await producer.put({ partitionKey: "user-1", data: "hello" });
 * if (!result.success) console.error(result.errorCode, result.errorMessage);
 * ```
 */
export class Producer implements AsyncDisposable {
  readonly #options: ResolvedProducerOptions;
  readonly #clock: Clock;
  readonly #scheduler: Scheduler;
  readonly #logger: Logger;
  readonly #metrics: MetricsManager;
  readonly #metricsView: MetricsView;
  /** Set when metrics are on: the producer's own puts into them. */
  readonly #emit: ProducerMetrics | undefined;
  /** UserRecordsPending is a detailed metric; below that the sampler would only spin. */
  readonly #samplePendingOn: boolean;
  readonly #streams = new Map<string, StreamPipeline>();
  /** The pipeline `#pipelineOf` found last. */
  #lastPipeline: StreamPipeline | undefined = undefined;
  /** Each stream's record size limit, when `maxRecordSize` is `"stream"`. */
  readonly #recordLimits = new Map<string, RecordLimit>();
  readonly #rules: RecordRules;
  readonly #ledger: OutstandingLedger;
  readonly #admission: Admission;
  readonly #sender: Sender;
  /** Where aggregates are encoded; idle buffers up to what may be in flight are kept. */
  readonly #pool: BufferPool | undefined;
  readonly #retrier: Retrier;
  readonly #settlement: Settlement;
  #spareVerdict: Verdict | undefined = undefined;
  readonly #pendingSampler: Deadline;
  /** The clock reading admissions of one synchronous burst share. */
  readonly #admitClock: BurstClock;
  #client: Promise<KinesisClient> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * Creates a producer. No I/O happens until the first record for a stream arrives.
   *
   * @param options Options; every one has a default.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(options: ProducerOptions = {}) {
    const resolved = resolveProducerOptions(options);
    this.#options = resolved;
    this.#clock = resolved.clock ?? systemClock;
    this.#scheduler = new Scheduler(this.#clock);
    this.#admitClock = new BurstClock(this.#clock, ADMISSIONS_PER_CLOCK_READ);
    this.#logger = resolved.logger ?? consoleLogger;
    this.#metrics = new MetricsManager(onScheduler({
      level: resolved.metricsLevel,
      uploadIntervalMs: resolved.metricsUploadIntervalMs,
      clock: this.#clock,
      logger: this.#logger,
      ...(resolved.metricsGranularity === undefined
        ? {}
        : { granularity: resolved.metricsGranularity }),
      ...(resolved.metricsSink === undefined ? {} : { sink: resolved.metricsSink }),
    }, this.#scheduler));
    this.#metricsView = new ManagerView(this.#metrics);
    this.#emit = this.#metrics.enabled ? new ProducerMetrics(this.#metrics) : undefined;
    this.#samplePendingOn = this.#metrics.level === "detailed";
    this.#rules = {
      defaultStream: resolved.stream,
      maxRecordSize: resolved.maxRecordSize,
      knownStreams: this.#streams,
    };
    this.#ledger = new OutstandingLedger(this.#scheduler);
    this.#admission = new Admission({
      ledger: this.#ledger,
      maxRecords: resolved.maxOutstandingRecords,
      maxBytes: resolved.maxOutstandingBytes,
      admit: (record) => this.#admit(record),
    });
    this.#pool = resolved.aggregationEnabled
      ? new BufferPool(resolved.aggregationMaxSize, resolved.maxInFlightBytes)
      : undefined;
    this.#sender = new Sender({
      client: () => this.#getClient(),
      scheduler: this.#scheduler,
      maxInFlight: resolved.maxInFlightRequests,
      maxInFlightBytes: resolved.maxInFlightBytes,
      requestTimeoutMs: resolved.requestTimeoutMs,
      logger: this.#logger,
      onExpired: this.#onExpired,
      onResult: (call) => this.#onResult(call),
    });
    this.#settlement = new Settlement({
      ledger: this.#ledger,
      admission: this.#admission,
      streams: this.#streams,
      scheduler: this.#scheduler,
      logger: this.#logger,
      metrics: this.#emit,
      recordMaxBufferedTimeMs: resolved.recordMaxBufferedTimeMs,
    });
    this.#retrier = new Retrier({
      failIfThrottled: resolved.failIfThrottled,
      random: resolved.random,
    });
    this.#pendingSampler = new Deadline({ onDeadline: (now) => this.#samplePending(now) });
  }

  /** Admitted records that have not settled yet. */
  get outstandingRecords(): number {
    return this.#ledger.records;
  }

  /** Bytes (data plus partition key) of admitted records that have not settled yet. */
  get outstandingBytes(): number {
    return this.#ledger.bytes;
  }

  /** Milliseconds since the oldest unsettled record was admitted; 0 when none is. */
  get oldestRecordAgeMs(): number {
    const oldest = this.#ledger.oldest;
    return oldest === null ? 0 : Math.max(0, this.#clock.now() - oldest.arrivedAt);
  }

  /**
   * The producer's metrics, read-only: the rolling window (`snapshot()`, `snapshots()`),
   * a forced export (`flush()`) and the error counters, whatever sink is plugged in.
   */
  get metrics(): MetricsView {
    return this.#metricsView;
  }

  /**
   * A read-only view of each shard of `stream` this producer has sent to: its current
   * adaptive send rate, how often Kinesis throttled it, and how many records wait for its
   * tokens. Plain objects, made at the call; for seeing why one shard is slow.
   *
   * @param stream A stream name; the default stream when omitted.
   * @returns One {@linkcode ShardState} per shard, or `[]` for a stream not used yet.
   *
   * @example Looking at a shard's rate
   * ```ts
   * import { Producer, type PutRecordsInput } from "@webkpl/kpl";
   *
   * const shardId = "shardId-000000000000";
   * const kinesisClient = {
   *   listShards: () =>
   *     Promise.resolve({
   *       Shards: [{
   *         ShardId: shardId,
   *         HashKeyRange: { StartingHashKey: "0", EndingHashKey: String(2n ** 128n - 1n) },
   *       }],
   *     }),
   *   putRecords: (input: PutRecordsInput) =>
   *     Promise.resolve({
   *       FailedRecordCount: 0,
   *       Records: input.Records.map((_, i) => ({ ShardId: shardId, SequenceNumber: `${i}` })),
   *     }),
   * };
   *
   * await using producer = new Producer({ stream: "events", kinesisClient });
   * await producer.put({ partitionKey: "user-1", data: "hello" });
   * const [state] = producer.shardStates();
   * console.log(state?.shardId, state?.ratePercent, state?.throttles); // shardId-000000000000 150 0
   * ```
   */
  shardStates(stream?: string): ShardState[] {
    const name = stream ?? this.#options.stream;
    return name === undefined ? [] : this.#streams.get(name)?.shardStates() ?? [];
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Checks what no record can get past, once, before records are put: that the Kinesis
   * client can be built (a region is known), that the credentials resolve, and that the
   * default stream (when there is one) answers ListShards. When the client or its
   * credentials are unusable, the producer keeps the verdict: every record put afterwards
   * fails at once with the same permanent code, without a request.
   *
   * @param options An abort signal that stops waiting.
   * @returns A promise that resolves when the check passed.
   * @throws {NotReadyError} With the code and whether it is permanent.
   *
   * @example Failing fast on credentials the service does not recognise
   * ```ts
   * import { isNotReadyError, Producer } from "@webkpl/kpl";
   *
   * const failing = () => Promise.reject(Object.assign(new Error("no"), { name: "UnrecognizedClientException" }));
   * await using producer = new Producer({
   *   stream: "events",
   *   kinesisClient: { listShards: failing, putRecords: failing },
   * });
   * try {
   *   await producer.ready();
   * } catch (error) {
   *   if (isNotReadyError(error)) console.log(error.code, error.permanent); // "UnrecognizedClientException" true
   * }
   * ```
   */
  async ready(options?: SignalOptions): Promise<void> {
    const failure = await checkReadiness({
      client: () => this.#getClient(),
      stream: this.#options.stream,
      scheduler: this.#scheduler,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      signal: options?.signal,
    });
    if (failure === undefined) {
      const stream = this.#options.stream;
      if (this.#options.recordSizeFromStream && stream !== undefined) {
        await this.#recordLimitOf(stream).read(stream, () => this.#getClient(), this.#logger);
      }
      return;
    }
    if (failure.affectsEveryRecord) {
      // From now on the client is this failure: requests fail with its code at once.
      const previous = this.#client;
      const latched = Object.assign(new Error(failure.message), { name: failure.code });
      this.#client = Promise.reject(latched);
      this.#client.catch(() => {});
      previous?.then((client) => client.close?.(), () => {});
    }
    throw new NotReadyError(`${failure.code}: ${failure.message}`, failure);
  }

  /**
   * Puts a record and resolves with its terminal result. Waits first for room under
   * `maxOutstandingRecords`/`maxOutstandingBytes` (backpressure).
   *
   * @param record The record.
   * @param options An abort signal that stops waiting for admission.
   * @returns The record's result; a delivery failure resolves with `success: false`.
   * @throws {ValidationError} When the record is malformed (rejected, synchronously checked).
   * @throws {ProducerClosedError} When the producer is closed.
   */
  put(record: UserRecord, options?: SignalOptions): Promise<RecordResult> {
    try {
      const admitted = this.#intake(record, null, options?.signal);
      // The common case, admitted at once, costs no promise but the result's.
      return admitted instanceof PendingRecord
        ? admitted.result
        : admitted.then((pending) => pending.result);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Puts a record and resolves as soon as it is admitted, with a receipt whose `result`
   * settles later: for callers that must not hold one pending promise per record.
   *
   * @param record The record.
   * @param options An abort signal that stops waiting for admission.
   * @returns The receipt.
   * @throws {ValidationError} When the record is malformed.
   * @throws {ProducerClosedError} When the producer is closed.
   */
  enqueue(record: UserRecord, options?: SignalOptions): Promise<RecordReceipt> {
    return this.#enqueue(record, null, options?.signal);
  }

  /**
   * Admits a record only if there is room now.
   *
   * @param record The record.
   * @returns The receipt, or `undefined` when the producer is full.
   * @throws {ValidationError} When the record is malformed.
   * @throws {ProducerClosedError} When the producer is closed.
   */
  tryPut(record: UserRecord): RecordReceipt | undefined {
    return this.#tryAdmit(record, null);
  }

  /**
   * Sends everything buffered now and resolves when every record outstanding at the call
   * has settled.
   *
   * @param options An abort signal that stops waiting (the records keep going).
   * @returns A promise that resolves once those records have settled.
   */
  flush(options?: SignalOptions): Promise<void> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.#flushStages();
    return this.#ledger.settled(signal);
  }

  /**
   * Stops intake, flushes, waits for outstanding records (failing what is left at the
   * timeout with `ProducerClosed`), exports the final metrics (waiting at most
   * max(1 s, `timeoutMs`) for the sink) and releases the client. Idempotent: later calls
   * return the first call's promise.
   *
   * @param options The timeout, and a signal that ends the wait early.
   * @returns A promise that resolves when the producer is fully closed.
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const timeoutMs = options?.timeoutMs ?? 30_000;
    if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(
        new RangeError(
          `Cannot close producer as 'timeoutMs' must be a number of at least 0: current value is ${timeoutMs}`,
        ),
      );
    }
    this.#closed = true;
    this.#admission.close(() =>
      new ProducerClosedError("The producer was closed while the record waited for admission")
    );
    this.#closing = this.#shutdown(timeoutMs, options?.signal);
    return this.#closing;
  }

  /** Closes the producer with the default timeout (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------------
  // Streams

  #writable: (() => WritableStream<UserRecord | UserRecord[]>) | undefined;

  /**
   * A writable stream into the producer, created on first access and the same instance
   * every time while it is open. A pipe that ends closes its destination, and a closed
   * stream takes no more writes, so once this stream has been closed, aborted or has
   * errored, the next access returns a fresh one: `await a.pipeTo(producer.writable)`
   * then `await b.pipeTo(producer.writable)` works (read the property for each pipe). A
   * chunk is a record or an array of records; `write()` resolves once the
   * producer has admitted the chunk's records (never on delivery), so `pipeTo` waits
   * whenever `maxOutstandingRecords`/`maxOutstandingBytes` is reached. `close()` sends
   * what is buffered and resolves when every record written through this stream has
   * settled, or rejects with a {@linkcode RecordsFailedError} listing the failures.
   * `abort()` stops intake; records already admitted still complete. The stream never
   * closes the producer. For handlers or a second concurrent pipe, use
   * {@linkcode Producer.createWritable}.
   *
   * @returns The producer's writable stream.
   *
   * @example Piping records into the producer
   * ```ts
   * import { Producer, type PutRecordsInput } from "@webkpl/kpl";
   *
   * // A stand-in for Kinesis with one shard that accepts everything.
   * const shardId = "shardId-000000000000";
   * const kinesisClient = {
   *   listShards: () =>
   *     Promise.resolve({
   *       Shards: [{
   *         ShardId: shardId,
   *         HashKeyRange: { StartingHashKey: "0", EndingHashKey: String(2n ** 128n - 1n) },
   *       }],
   *     }),
   *   putRecords: (input: PutRecordsInput) =>
   *     Promise.resolve({
   *       FailedRecordCount: 0,
   *       Records: input.Records.map((_, i) => ({ ShardId: shardId, SequenceNumber: `${i}` })),
   *     }),
   * };
   *
   * await using producer = new Producer({ stream: "events", kinesisClient });
   * const records = ReadableStream.from([
   *   { partitionKey: "user-1", data: "signed up" },
   *   { partitionKey: "user-2", data: "logged in" },
   * ]);
   * await records.pipeTo(producer.writable); // resolves once both records are stored
   * console.log(producer.writable); // producer.writable
   * console.log(producer.outstandingRecords); // 0
   * ```
   */
  get writable(): WritableStream<UserRecord | UserRecord[]> {
    return (this.#writable ??= sharedRecordWritable(this.#port))();
  }

  /**
   * Creates another writable stream into the producer, independent of
   * {@linkcode Producer.writable} and of every other one: its own queue size, its own
   * result handlers, and a `close()` that waits only for the records written through it.
   * With `onResult` or `onFailure`, `close()` resolves even when records failed, after the
   * handlers have seen every result.
   *
   * @param options Queue size and result handlers.
   * @returns A new writable stream.
   * @throws {TypeError} When a handler is not a function.
   * @throws {RangeError} When `highWaterMark` is negative.
   *
   * @example Counting failures instead of rejecting
   * ```ts
   * import { Producer, silentLogger } from "@webkpl/kpl";
   *
   * // A stand-in for Kinesis whose stream does not exist.
   * const missing = () =>
   *   Promise.reject(Object.assign(new Error("no such stream"), { name: "ResourceNotFoundException" }));
   * const kinesisClient = { listShards: missing, putRecords: missing };
   *
   * await using producer = new Producer({ stream: "missing", kinesisClient, logger: silentLogger });
   * const failures: string[] = [];
   * const writable = producer.createWritable({
   *   onFailure: (result) => failures.push(result.errorCode ?? ""),
   * });
   * await ReadableStream.from([{ partitionKey: "k", data: "x" }]).pipeTo(writable);
   * console.log(failures); // ["ResourceNotFoundException"]
   * ```
   */
  createWritable(options?: RecordWritableOptions): WritableStream<UserRecord | UserRecord[]> {
    return createRecordWritable(this.#port, options);
  }

  /**
   * Creates a transform stream that puts each record into the producer and emits its
   * {@linkcode RecordResult}, in input order, for `readable.pipeThrough(...)`. Failed
   * deliveries come out as results with `success: false`; a malformed record errors the
   * stream with a `ValidationError`.
   *
   * @param options How many results may wait behind an earlier, slower one.
   * @returns A new transform stream.
   * @throws {TypeError} When `maxPending` is not a number.
   * @throws {RangeError} When `maxPending` is not a positive integer.
   *
   * @example Results in input order
   * ```ts
   * import { Producer, type PutRecordsInput } from "@webkpl/kpl";
   *
   * const shardId = "shardId-000000000000";
   * const kinesisClient = {
   *   listShards: () =>
   *     Promise.resolve({
   *       Shards: [{
   *         ShardId: shardId,
   *         HashKeyRange: { StartingHashKey: "0", EndingHashKey: String(2n ** 128n - 1n) },
   *       }],
   *     }),
   *   putRecords: (input: PutRecordsInput) =>
   *     Promise.resolve({
   *       FailedRecordCount: 0,
   *       Records: input.Records.map((_, i) => ({ ShardId: shardId, SequenceNumber: `${i}` })),
   *     }),
   * };
   *
   * await using producer = new Producer({ stream: "events", kinesisClient });
   * const results = ReadableStream.from(["a", "b", "c"].map((key) => ({ partitionKey: key, data: key })))
   *   .pipeThrough(producer.createTransform());
   * const keys: string[] = [];
   * for await (const result of results) keys.push(result.record.partitionKey);
   * console.log(keys); // ["a", "b", "c"]
   * ```
   */
  createTransform(options?: RecordTransformOptions): TransformStream<UserRecord, RecordResult> {
    return createRecordTransform(this.#port, options);
  }

  // ---------------------------------------------------------------------------
  // Intake

  /** @internal The admission calls the producer's own streams use. */
  readonly #port: ProducerPort = {
    tryAdmit: (record, owner) => this.#tryAdmit(record, owner),
    admit: (record, owner, signal) => this.#enqueue(record, owner, signal),
    flushNow: () => this.#flushStages(),
    measuresSuccesses: () => this.#emit !== undefined,
  };

  #tryAdmit(record: UserRecord, owner: RecordOwner | null): RecordReceipt | undefined {
    const pending = this.#prepare(record);
    if (!this.#admission.mayEnter(pending.size)) return undefined;
    pending.owner = owner;
    this.#admit(pending);
    return pending;
  }

  #enqueue(
    record: UserRecord,
    owner: RecordOwner | null,
    signal: AbortSignal | undefined,
  ): Promise<RecordReceipt> {
    try {
      const admitted = this.#intake(record, owner, signal);
      return admitted instanceof PendingRecord ? Promise.resolve(admitted) : admitted;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Validates `record` and admits it now when there is room, or queues it for room.
   *
   * @returns The admitted record, or a promise of it that rejects on abort or close.
   * @throws {ValidationError | ProducerClosedError} Synchronously.
   */
  #intake(
    record: UserRecord,
    owner: RecordOwner | null,
    signal: AbortSignal | undefined,
  ): PendingRecord | Promise<PendingRecord> {
    const pending = this.#prepare(record);
    if (signal?.aborted) throw signal.reason;
    pending.owner = owner;
    if (this.#admission.mayEnter(pending.size)) {
      this.#admit(pending);
      return pending;
    }
    return this.#admission.wait(pending, signal);
  }

  #prepare(record: UserRecord): PendingRecord {
    if (this.#closed) throw new ProducerClosedError();
    const pending = validateRecord(record, this.#rules);
    if (this.#pipelineOf(pending.stream) === undefined) this.#createPipeline(pending.stream);
    if (this.#options.recordSizeFromStream) {
      const limit = this.#recordLimitOf(pending.stream);
      if (limit.fromStream) checkRecordSize(pending.size, limit.bytes, "the stream's limit");
    }
    return pending;
  }

  /** The stream's record size limit, read once when `maxRecordSize` is `"stream"`. */
  #recordLimitOf(stream: string): RecordLimit {
    let limit = this.#recordLimits.get(stream);
    if (limit === undefined) {
      limit = new RecordLimit(this.#options.maxRecordSize);
      this.#recordLimits.set(stream, limit);
      limit.read(stream, () => this.#getClient(), this.#logger);
    }
    return limit;
  }

  #admit(record: PendingRecord): void {
    const options = this.#options;
    const seq = this.#ledger.add(record);
    record.admit(seq, this.#admitClock.now(), options.recordTtlMs, options.recordMaxBufferedTimeMs);
    const pipeline = this.#pipelineOf(record.stream)!;
    pipeline.pending++;
    this.#emit?.received(record.stream);
    pipeline.put(record);
  }

  /**
   * The stream's pipeline, if it has one. Most producers put to one stream, and every put
   * looks its pipeline up twice (before and at admission): the last one found is kept at
   * hand. Pipelines are never removed, so it cannot go stale.
   */
  #pipelineOf(stream: string): StreamPipeline | undefined {
    const last = this.#lastPipeline;
    if (last !== undefined && last.name === stream) return last;
    const pipeline = this.#streams.get(stream);
    if (pipeline !== undefined) this.#lastPipeline = pipeline;
    return pipeline;
  }

  #createPipeline(stream: string): void {
    const pipeline = new StreamPipeline({
      stream,
      options: this.#options,
      scheduler: this.#scheduler,
      logger: this.#logger,
      listShards: (input, callOptions) =>
        this.#getClient().then((client) => client.listShards(input, callOptions)),
      send: (name, records) => this.#sender.send(name, records),
      pool: this.#pool,
      onExpired: this.#onExpired,
      onLandings: (owner, landings) => this.#onLandings(owner, landings),
    });
    this.#streams.set(stream, pipeline);
    if (this.#streams.size === 1) {
      this.#metrics.start();
      if (this.#samplePendingOn) {
        this.#scheduler.schedule(
          this.#pendingSampler,
          this.#clock.now() + PENDING_SAMPLE_INTERVAL_MS,
        );
      }
    }
  }

  #getClient(): Promise<KinesisClient> {
    if (this.#client === undefined) {
      const injected = this.#options.kinesisClient;
      this.#client = injected !== undefined
        ? Promise.resolve(injected)
        : createDefaultKinesisClient({
          region: this.#options.region,
          endpoint: this.#options.endpoint,
          credentials: this.#options.credentials,
          transport: this.#options.transport,
        }).catch((error: unknown) => {
          const failure = new Error(`The Kinesis client could not be created: ${firstLine(error)}`);
          failure.name = ErrorCodes.clientError;
          throw failure;
        });
      // The failure is reported through every call that needs the client.
      this.#client.catch(() => {});
    }
    return this.#client;
  }

  #flushStages(): void {
    for (const pipeline of this.#streams.values()) pipeline.flush();
  }

  // ---------------------------------------------------------------------------
  // Verdicts: the retrier decides, the settlement applies

  #onResult(call: PutRecordsCall): void {
    this.#emit?.called(call);
    const pipeline = this.#streams.get(call.stream)!;
    // One verdict serves call after call while calls succeed; a call finished while
    // another is being applied (the sender ends queued calls at once after close()) or
    // after one that went wrong gets a new one.
    const verdict = this.#spareVerdict ?? new Verdict();
    this.#spareVerdict = undefined;
    this.#retrier.decide(call, pipeline.shardMap, verdict);
    pipeline.learn(verdict);
    for (const landing of verdict.landings) pipeline.park(landing);
    this.#settlement.apply(verdict);
    if (verdict.recycle()) this.#spareVerdict = verdict;
    // The call has settled and its records went back to the pipeline as user records, not
    // as these aggregates: nothing reads their bytes any more.
    for (const record of call.records) record.release();
  }

  readonly #onExpired = (record: KinesisRecord): void => {
    this.#settlement.apply(this.#retrier.expired(record, this.#clock.now()));
    record.release();
  };

  #onLandings(pipeline: StreamPipeline, landings: Landing[]): void {
    const verdict = new Verdict();
    for (const landing of landings) {
      this.#retrier.land(verdict, landing, pipeline.shardMap.get(landing.shardId));
    }
    this.#settlement.apply(verdict);
  }

  async #shutdown(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    this.#flushStages();
    const ledger = this.#ledger;
    const drained = ledger.oldest === null
      ? "done"
      : await within(ledger.settled(undefined), timeoutMs, this.#scheduler, signal);
    this.#settlement.closeOutstanding(
      drained === "aborted"
        ? "close() was aborted before the record was confirmed"
        : `close() timed out after ${timeoutMs} ms before the record was confirmed`,
    );
    // Every record has settled: nothing may be sent again.
    this.#scheduler.cancel(this.#pendingSampler);
    for (const pipeline of this.#streams.values()) pipeline.close();
    for (const limit of this.#recordLimits.values()) limit.close();
    this.#sender.close();
    await this.#sender.idle();
    this.#pool?.close();
    if (this.#samplePendingOn) this.#samplePending(this.#clock.now(), false);
    // A sink that never answers must not hold close() forever.
    const exportBudget = Math.max(MIN_FINAL_EXPORT_MS, timeoutMs);
    if (await within(this.#metrics.close(), exportBudget, this.#scheduler) === "timeout") {
      this.#logger.warn(`The final metrics export did not finish within ${exportBudget} ms`);
    }
    this.#scheduler.close();
    if (this.#client !== undefined) {
      try {
        const client = await this.#client;
        await client.close?.();
      } catch {
        // A client that never came up has nothing to release.
      }
    }
    if (drained === "aborted") throw signal!.reason;
  }

  #samplePending(now: number, reschedule = true): void {
    for (const pipeline of this.#streams.values()) {
      this.#emit?.pending(pipeline.name, pipeline.pending);
    }
    if (reschedule) {
      this.#scheduler.schedule(this.#pendingSampler, now + PENDING_SAMPLE_INTERVAL_MS);
    }
  }
}
