/**
 * The producer: the one place where the pipeline's stages are wired together.
 *
 * ```
 * put ─► validate ─► hash key ─► ShardMap.predict ─► Aggregator (per shard) ─► Limiter (per shard)
 *     ─► Collector (per stream) ─► Sender (PutRecords) ─► Retrier ─► settle | back to Aggregator
 * ```
 *
 * @module
 */

import { PendingRecord, type RecordOwner } from "./_pending_record.ts";
import type { ProducerPort } from "./_producer_port.ts";
import { BurstClock } from "./_burst_clock.ts";
import { Aggregator } from "./aggregator.ts";
import { type Clock, systemClock } from "./clock.ts";
import { Collector } from "./collector.ts";
import { ErrorCodes } from "./error_codes.ts";
import { ProducerClosedError, ValidationError } from "./errors.ts";
import {
  assertPartitionKey,
  type HashKey,
  hashPartitionKey,
  parseExplicitHashKey,
} from "./hash_key.ts";
import {
  createDefaultKinesisClient,
  type KinesisClient,
  type PutRecordsResultEntry,
} from "./kinesis_client.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import { Limiter, type ShardState } from "./limiter.ts";
import { consoleLogger, type Logger } from "./logger.ts";
import { type MetricPutDimensions, MetricsManager } from "./metrics.ts";
import {
  isValidStreamName,
  type ProducerOptions,
  type ResolvedProducerOptions,
  resolveProducerOptions,
} from "./options.ts";
import type { Attempt, RecordReceipt, RecordResult, UserRecord } from "./record.ts";
import {
  expiredMessage,
  failedAttempt,
  type Landing,
  Retrier,
  type RetrierHost,
} from "./retrier.ts";
import { Deadline, type DeadlineTask, Scheduler } from "./scheduler.ts";
import { type PutRecordsCall, Sender } from "./sender.ts";
import { type Shard, ShardMap } from "./shard_map.ts";
import {
  createRecordTransform,
  createRecordWritable,
  type RecordTransformOptions,
  type RecordWritableOptions,
} from "./streams.ts";
import { utf8Length } from "./_utf8.ts";

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

const UTF8 = new TextEncoder();
const PENDING_SAMPLE_INTERVAL_MS = 200;
/**
 * How many admissions of one synchronous burst share a clock reading. Reading the clock
 * is a call into the runtime (a few percent of a record's cost); sharing it among 64
 * puts that ran back to back dates a record at most those puts' time (well under a
 * millisecond) early.
 */
const ADMISSIONS_PER_CLOCK_READ = 64;
const FIRST_LISTING_GRACE_MS = 1000;
const MIN_FINAL_EXPORT_MS = 1000;

/** One stream's stages. */
class StreamPipeline {
  readonly name: string;
  readonly shardMap: ShardMap;
  readonly aggregator: Aggregator;
  readonly limiter: Limiter;
  readonly collector: Collector;
  /** Metric dimensions `{ stream }`, made once. */
  readonly dimensions: MetricPutDimensions;
  /** Admitted records of this stream not yet settled. */
  pending = 0;
  /** Stored records waiting for the shard map to know the shard they landed on. */
  landings: Landing[] = [];

  constructor(
    name: string,
    shardMap: ShardMap,
    aggregator: Aggregator,
    limiter: Limiter,
    collector: Collector,
  ) {
    this.name = name;
    this.shardMap = shardMap;
    this.aggregator = aggregator;
    this.limiter = limiter;
    this.collector = collector;
    this.dimensions = { stream: name };
  }
}

/** A put waiting for room under `maxOutstandingRecords`/`maxOutstandingBytes`. */
interface AdmissionWaiter {
  record: PendingRecord;
  resolve(): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Set when the signal aborted; the queue skips it. */
  cancelled: boolean;
}

/** A `flush()` or `close()` waiting for every record up to `target` to settle. */
interface SettleWaiter {
  target: number;
  resolve(): void;
}

/** Sends a record around again once its backoff has passed. */
class RetryTimer implements DeadlineTask {
  readonly record: PendingRecord;
  readonly #due: (record: PendingRecord, now: number) => void;

  constructor(record: PendingRecord, due: (record: PendingRecord, now: number) => void) {
    this.record = record;
    this.#due = due;
  }

  onDeadline(now: number): void {
    this.#due(this.record, now);
  }
}

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
  readonly #metricsOn: boolean;
  /** UserRecordsPending is a detailed metric; below that the sampler would only spin. */
  readonly #samplePendingOn: boolean;
  readonly #streams = new Map<string, StreamPipeline>();
  readonly #sender: Sender;
  readonly #retrier: Retrier;
  readonly #pendingSampler: Deadline;
  #client: Promise<KinesisClient> | undefined;

  #outstandingRecords = 0;
  #outstandingBytes = 0;
  #seq = 0;
  #oldest: PendingRecord | null = null;
  #newest: PendingRecord | null = null;
  /** Puts waiting for room, oldest first from `#admissionHead`. */
  #admission: AdmissionWaiter[] = [];
  #admissionHead = 0;
  #settleWaiters: SettleWaiter[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  #admissionScheduled = false;
  readonly #admitLater = (): void => {
    this.#admissionScheduled = false;
    this.#admitWaiting();
  };
  /** The clock reading admissions of one synchronous burst share. */
  readonly #admitClock: BurstClock;

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
    const metricsOptions = {
      level: resolved.metricsLevel,
      uploadIntervalMs: resolved.metricsUploadIntervalMs,
      clock: this.#clock,
      scheduler: this.#scheduler,
      logger: this.#logger,
      ...(resolved.metricsGranularity === undefined
        ? {}
        : { granularity: resolved.metricsGranularity }),
      ...(resolved.metricsSink === undefined ? {} : { sink: resolved.metricsSink }),
    };
    this.#metrics = new MetricsManager(metricsOptions);
    this.#metricsOn = this.#metrics.enabled;
    this.#samplePendingOn = this.#metrics.level === "detailed";
    this.#sender = new Sender({
      client: () => this.#getClient(),
      scheduler: this.#scheduler,
      maxInFlight: resolved.maxInFlightRequests,
      requestTimeoutMs: resolved.requestTimeoutMs,
      logger: this.#logger,
      onExpired: (record) => this.#retrier.expired(record, this.#clock.now()),
      onResult: (call) => this.#onResult(call),
    });
    this.#retrier = new Retrier({
      failIfThrottled: resolved.failIfThrottled,
      random: resolved.random,
      host: this.#retrierHost(),
    });
    this.#pendingSampler = new Deadline({ onDeadline: (now) => this.#samplePending(now) });
  }

  /** Admitted records that have not settled yet. */
  get outstandingRecords(): number {
    return this.#outstandingRecords;
  }

  /** Bytes (data plus partition key) of admitted records that have not settled yet. */
  get outstandingBytes(): number {
    return this.#outstandingBytes;
  }

  /** Milliseconds since the oldest unsettled record was admitted; 0 when none is. */
  get oldestRecordAgeMs(): number {
    return this.#oldest === null ? 0 : Math.max(0, this.#clock.now() - this.#oldest.arrivedAt);
  }

  /** The metrics manager, whatever sink is plugged in. */
  get metrics(): MetricsManager {
    return this.#metrics;
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
    return name === undefined ? [] : this.#streams.get(name)?.limiter.states() ?? [];
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
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
    return this.#waitForSettled(this.#seq, signal);
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
    const waiting = this.#admission.slice(this.#admissionHead);
    this.#admission = [];
    this.#admissionHead = 0;
    for (const waiter of waiting) {
      if (waiter.cancelled) continue;
      this.#detachAbort(waiter);
      waiter.reject(
        new ProducerClosedError("The producer was closed while the record waited for admission"),
      );
    }
    this.#closing = this.#shutdown(timeoutMs, options?.signal);
    return this.#closing;
  }

  /** Closes the producer with the default timeout (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------------
  // Streams

  #writable: WritableStream<UserRecord | UserRecord[]> | undefined;

  /**
   * A writable stream into the producer, created on first access and the same instance
   * every time. A chunk is a record or an array of records; `write()` resolves once the
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
    return this.#writable ??= createRecordWritable(this.#port);
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
  };

  #tryAdmit(record: UserRecord, owner: RecordOwner | null): RecordReceipt | undefined {
    const pending = this.#prepare(record);
    if (this.#hasWaiters() || !this.#hasRoom(pending.size)) return undefined;
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
    if (!this.#hasWaiters() && this.#hasRoom(pending.size)) {
      this.#admit(pending);
      return pending;
    }
    return new Promise<PendingRecord>((resolve, reject) => {
      const waiter: AdmissionWaiter = {
        record: pending,
        resolve: () => resolve(pending),
        reject,
        signal,
        onAbort: undefined,
        cancelled: false,
      };
      if (signal !== undefined) {
        waiter.onAbort = () => {
          waiter.cancelled = true;
          reject(signal.reason);
          // The head may have been the one blocking smaller records behind it.
          this.#admitWaiting();
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#admission.push(waiter);
    });
  }

  #prepare(record: UserRecord): PendingRecord {
    if (this.#closed) throw new ProducerClosedError();
    if (typeof record !== "object" || record === null) {
      throw new ValidationError(
        `A record must be an object: got ${record === null ? "null" : typeof record}`,
        {
          field: "record",
        },
      );
    }
    const stream: unknown = record.stream ?? this.#options.stream;
    if (stream === undefined) {
      throw new ValidationError(
        "The record has no 'stream' and the producer has no default 'stream'",
        { field: "stream" },
      );
    }
    let pipeline = typeof stream === "string" ? this.#streams.get(stream) : undefined;
    if (typeof stream !== "string" || (pipeline === undefined && !isValidStreamName(stream))) {
      const shown = typeof stream === "string" ? `'${stream.slice(0, 140)}'` : typeof stream;
      throw new ValidationError(
        `The record's 'stream' must be 1 to 128 letters, digits, '_', '.' or '-': got ${shown}`,
        { field: "stream" },
      );
    }
    const partitionKey = record.partitionKey;
    assertPartitionKey(partitionKey);
    const explicitHashKey = record.explicitHashKey;
    let partitionKeyBytes: number;
    if (explicitHashKey === undefined || explicitHashKey === null) {
      partitionKeyBytes = hashPartitionKey(partitionKey, scratch);
    } else {
      parseExplicitHashKey(explicitHashKey, scratch);
      partitionKeyBytes = utf8Length(partitionKey);
    }
    const raw = record.data;
    let data: Uint8Array;
    if (raw instanceof Uint8Array) data = raw;
    else if (typeof raw === "string") data = UTF8.encode(raw);
    else {
      throw new ValidationError(
        `A record's 'data' must be a Uint8Array or a string: got ${
          raw === null ? "null" : typeof raw
        }`,
        { field: "data" },
      );
    }
    const size = data.length + partitionKeyBytes;
    if (size > this.#options.maxRecordSize) {
      throw new ValidationError(
        `A record's data plus partition key must be at most ${this.#options.maxRecordSize} bytes ('maxRecordSize'): got ${size}`,
        { field: "data" },
      );
    }
    const pending = new PendingRecord(record, stream, data, partitionKeyBytes);
    pending.h0 = scratch.h0;
    pending.h1 = scratch.h1;
    pending.h2 = scratch.h2;
    pending.h3 = scratch.h3;
    pipeline ??= this.#createPipeline(stream);
    return pending;
  }

  #hasRoom(size: number): boolean {
    return this.#outstandingRecords < this.#options.maxOutstandingRecords &&
      this.#outstandingBytes + size <= this.#options.maxOutstandingBytes;
  }

  #admit(record: PendingRecord): void {
    const now = this.#admitClock.now();
    record.seq = ++this.#seq;
    record.arrivedAt = now;
    record.waitingSince = now;
    record.expiresAt = now + this.#options.recordTtlMs;
    record.deadline = now + this.#options.recordMaxBufferedTimeMs;
    if (this.#newest === null) {
      this.#oldest = record;
    } else {
      this.#newest.next = record;
      record.prev = this.#newest;
    }
    this.#newest = record;
    if (this.#outstandingRecords++ === 0) this.#scheduler.persistent = true;
    this.#outstandingBytes += record.size;
    const pipeline = this.#streams.get(record.stream)!;
    pipeline.pending++;
    if (this.#metricsOn) this.#metrics.put("UserRecordsReceived", 1, pipeline.dimensions);
    pipeline.aggregator.put(record);
  }

  #hasWaiters(): boolean {
    return this.#admissionHead < this.#admission.length;
  }

  #admitWaiting(): void {
    const queue = this.#admission;
    while (this.#admissionHead < queue.length) {
      const waiter = queue[this.#admissionHead]!;
      if (!waiter.cancelled) {
        if (!this.#hasRoom(waiter.record.size)) break;
        this.#detachAbort(waiter);
        this.#admit(waiter.record);
        waiter.resolve();
      }
      queue[this.#admissionHead++] = undefined as unknown as AdmissionWaiter;
    }
    if (this.#admissionHead === queue.length) {
      this.#admission = [];
      this.#admissionHead = 0;
    } else if (this.#admissionHead > 1024 && this.#admissionHead * 2 > queue.length) {
      this.#admission = queue.slice(this.#admissionHead);
      this.#admissionHead = 0;
    }
  }

  #detachAbort(waiter: AdmissionWaiter): void {
    if (waiter.onAbort !== undefined) {
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.onAbort = undefined;
    }
  }

  #createPipeline(stream: string): StreamPipeline {
    const options = this.#options;
    const scheduler = this.#scheduler;
    const shardMap = new ShardMap({
      stream,
      scheduler,
      requestTimeoutMs: options.requestTimeoutMs,
      logger: this.#logger,
      listShards: (input, callOptions) =>
        this.#getClient().then((client) => client.listShards(input, callOptions)),
      onUpdate: () => {
        this.#settleLandings(pipeline);
        pipeline.aggregator.reroute();
        if (pipeline.aggregator.releaseUnpredicted()) pipeline.collector.flush();
      },
      onFailure: () => {
        this.#settleLandings(pipeline);
        if (pipeline.aggregator.releaseUnpredicted()) pipeline.collector.flush();
      },
    });
    const aggregator = new Aggregator({
      scheduler,
      enabled: options.aggregationEnabled,
      maxCount: options.aggregationMaxCount,
      // An aggregated record's data plus its partition key must fit in one Kinesis record.
      maxSize: Math.min(options.aggregationMaxSize, options.maxRecordSize - 1024),
      predict: (record) => {
        const generation = shardMap.generation;
        if (record.predictAfterGeneration >= generation) return null;
        record.predictedGeneration = generation;
        return shardMap.predict(record);
      },
      onKinesisRecord: (record) => this.#route(pipeline, record),
    });
    const limiter = new Limiter({
      scheduler,
      rateLimit: options.rateLimit,
      adaptive: options.adaptiveRate,
      random: options.random,
      onAdmit: (record) => pipeline.collector.put(record),
      onExpired: (record) => this.#retrier.expired(record, this.#clock.now()),
    });
    const collector = new Collector({
      scheduler,
      maxCount: options.collectionMaxCount,
      maxSize: options.collectionMaxSize,
      lingerMs: options.aggregationEnabled
        ? Math.min(50, 0.2 * options.recordMaxBufferedTimeMs)
        : 0,
      onRequest: (records) => this.#sender.send(stream, records),
    });
    const pipeline = new StreamPipeline(stream, shardMap, aggregator, limiter, collector);
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
    // Records that arrive before the first listing wait for it (briefly), so a burst at
    // start-up is aggregated by shard rather than sent key by key.
    aggregator.holdUnpredicted(this.#clock.now() + FIRST_LISTING_GRACE_MS);
    shardMap.start();
    return pipeline;
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
        }).catch((error: unknown) => {
          const failure = new Error(`The Kinesis client could not be created: ${String(error)}`);
          failure.name = ErrorCodes.clientError;
          throw failure;
        });
      // The failure is reported through every call that needs the client.
      this.#client.catch(() => {});
    }
    return this.#client;
  }

  // ---------------------------------------------------------------------------
  // Pipeline routing

  #route(pipeline: StreamPipeline, record: KinesisRecord): void {
    // A record aggregated without a prediction still shares one hash key, so once the map
    // has a snapshot it is paced by that key's shard like everything else.
    if (record.predictedShard === null) {
      record.predictedShard = pipeline.shardMap.predict(record.records[0]!);
    }
    if (record.predictedShard === null) pipeline.collector.put(record);
    else pipeline.limiter.put(record);
  }

  #settleLandings(pipeline: StreamPipeline): void {
    if (pipeline.landings.length === 0) return;
    const landings = pipeline.landings;
    pipeline.landings = [];
    for (const landing of landings) {
      this.#retrier.settleLanding(landing, pipeline.shardMap.get(landing.shardId));
    }
  }

  #flushStages(): void {
    for (const pipeline of this.#streams.values()) {
      pipeline.aggregator.flush();
      pipeline.collector.flush();
    }
  }

  #onResult(call: PutRecordsCall): void {
    // A call that close() ended (queued, or aborted in flight) has no answer to time or
    // count: its records were already failed with ProducerClosed.
    if (this.#metricsOn && call.error?.code !== ErrorCodes.producerClosed) {
      this.#requestMetrics(call);
    }
    this.#retrier.handle(call);
  }

  readonly #retryDue = (record: PendingRecord, now: number): void => {
    if (record.outcome !== undefined) return;
    if (now >= record.expiresAt) {
      this.#expire(record, now);
      return;
    }
    record.deadline = now;
    this.#streams.get(record.stream)!.aggregator.put(record);
  };

  #expire(record: PendingRecord, now: number): void {
    const message = expiredMessage(record);
    record.addAttempt(syntheticAttempt(record, now, ErrorCodes.expired, message));
    this.#fail(record, ErrorCodes.expired, message);
  }

  #retrierHost(): RetrierHost {
    return {
      succeed: (record, shardId, sequenceNumber, subSequenceNumber) => {
        this.#settle(record, {
          success: true,
          shardId,
          sequenceNumber,
          subSequenceNumber,
          attempts: record.attempts ?? [],
          record: record.record,
        }, shardId);
      },
      fail: (record, code, message) => {
        if (record.attempts === null || record.attempts.at(-1)?.errorCode !== code) {
          record.addAttempt(syntheticAttempt(record, this.#clock.now(), code, message));
        }
        this.#fail(record, code, message);
      },
      retry: (record, delayMs) => {
        if (record.outcome !== undefined) return;
        const now = this.#clock.now();
        if (now >= record.expiresAt) {
          this.#expire(record, now);
          return;
        }
        if (delayMs <= 0) {
          record.deadline = Math.min(
            now + this.#options.recordMaxBufferedTimeMs / 2,
            record.expiresAt,
          );
          this.#streams.get(record.stream)!.aggregator.put(record);
        } else {
          this.#scheduler.schedule(
            new Deadline(new RetryTimer(record, this.#retryDue)),
            Math.min(now + delayMs, record.expiresAt),
          );
        }
      },
      throttled: (stream, shard, sentAt) =>
        this.#streams.get(stream)?.limiter.throttled(shard, sentAt),
      stored: (stream, shard) => this.#streams.get(stream)?.limiter.succeeded(shard),
      mispredicted: (stream, seenAt, predicted) =>
        this.#streams.get(stream)?.shardMap.invalidate(seenAt, predicted),
      shard: (stream, id) => this.#streams.get(stream)?.shardMap.get(id),
      awaitShard: (landing) => {
        const pipeline = this.#streams.get(landing.stream)!;
        if (pipeline.shardMap.state !== "updating") return false;
        pipeline.landings.push(landing);
        return true;
      },
      requestFailed: (call, code) => {
        // As in the C++ KPL, only errors Kinesis or the transport reported are counted;
        // the producer's own verdicts show in UserRecordsPut (and UserRecordExpired).
        if (!this.#metricsOn || isProducerVerdict(code)) return;
        const pipeline = this.#streams.get(call.stream)!;
        this.#metrics.put("ErrorsByCode", 1, { stream: call.stream, errorCode: code });
        this.#metrics.put("AllErrors", 1, pipeline.dimensions);
      },
      entryDone: (call, record, entry) => {
        if (this.#metricsOn) this.#entryMetrics(call, record, entry);
      },
    };
  }

  // ---------------------------------------------------------------------------
  // Settlement

  #fail(record: PendingRecord, code: string, message: string): void {
    this.#settle(record, {
      success: false,
      shardId: undefined,
      sequenceNumber: undefined,
      subSequenceNumber: undefined,
      attempts: record.attempts ?? [],
      record: record.record,
      errorCode: code,
      errorMessage: message,
    }, record.predictedShard?.id);
  }

  #settle(record: PendingRecord, result: RecordResult, shardId: string | undefined): void {
    if (record.outcome !== undefined) return;
    // Unlink from the outstanding list first, so anything the result triggers sees the
    // producer's counts already updated.
    const { prev, next } = record;
    if (prev === null) this.#oldest = next;
    else prev.next = next;
    if (next === null) this.#newest = prev;
    else next.prev = prev;
    record.prev = null;
    record.next = null;
    this.#outstandingBytes -= record.size;
    if (--this.#outstandingRecords === 0) this.#scheduler.persistent = false;
    const pipeline = this.#streams.get(record.stream)!;
    pipeline.pending--;
    if (this.#metricsOn) this.#recordMetrics(pipeline, record, result, shardId);
    try {
      record.deliver(result);
    } catch (error) {
      this.#logger.error("A result handler threw", error);
    }
    // Admission runs after the current stage has finished, never inside it: admitting
    // feeds the same stages that are settling this record.
    if (this.#hasWaiters() && !this.#admissionScheduled) {
      this.#admissionScheduled = true;
      queueMicrotask(this.#admitLater);
    }
    if (this.#settleWaiters.length > 0) this.#wakeSettleWaiters();
  }

  #waitForSettled(target: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#oldest === null || this.#oldest.seq > target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#settleWaiters = this.#settleWaiters.filter((item) => item !== waiter);
        reject(signal!.reason);
      };
      const waiter: SettleWaiter = {
        target,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      // Targets only grow, so the list stays sorted.
      this.#settleWaiters.push(waiter);
    });
  }

  #wakeSettleWaiters(): void {
    const oldest = this.#oldest;
    let woken = 0;
    for (const waiter of this.#settleWaiters) {
      if (oldest !== null && oldest.seq <= waiter.target) break;
      waiter.resolve();
      woken++;
    }
    if (woken > 0) this.#settleWaiters = this.#settleWaiters.slice(woken);
  }

  async #shutdown(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    this.#flushStages();
    const drained = this.#oldest === null
      ? "done"
      : await this.#within(this.#waitForSettled(this.#seq, undefined), timeoutMs, signal);
    const now = this.#clock.now();
    const message = drained === "aborted"
      ? "close() was aborted before the record was confirmed"
      : `close() timed out after ${timeoutMs} ms before the record was confirmed`;
    while (this.#oldest !== null) {
      const record = this.#oldest;
      record.addAttempt(syntheticAttempt(record, now, ErrorCodes.producerClosed, message));
      this.#fail(record, ErrorCodes.producerClosed, message);
    }
    // Every record has settled: nothing may be sent again.
    this.#scheduler.cancel(this.#pendingSampler);
    for (const pipeline of this.#streams.values()) pipeline.shardMap.close();
    this.#sender.close();
    await this.#sender.idle();
    if (this.#samplePendingOn) this.#samplePending(this.#clock.now(), false);
    // A sink that never answers must not hold close() forever.
    const exportBudget = Math.max(MIN_FINAL_EXPORT_MS, timeoutMs);
    if (await this.#within(this.#metrics.close(), exportBudget, undefined) === "timeout") {
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

  /** Waits for `promise`, at most `ms` on the producer's clock or until `signal` aborts. */
  async #within(
    promise: Promise<unknown>,
    ms: number,
    signal: AbortSignal | undefined,
  ): Promise<"done" | "timeout" | "aborted"> {
    let cleanup = (): void => {};
    const stop = new Promise<"timeout" | "aborted">((resolve) => {
      const timer = new Deadline({ onDeadline: () => resolve("timeout") });
      this.#scheduler.schedule(timer, this.#clock.now() + ms);
      const onAbort = () => resolve("aborted");
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();
      cleanup = () => {
        this.#scheduler.cancel(timer);
        signal?.removeEventListener("abort", onAbort);
      };
    });
    try {
      return await Promise.race([promise.then(() => "done" as const), stop]);
    } finally {
      cleanup();
    }
  }

  // ---------------------------------------------------------------------------
  // Metrics (names, values and places as in the C++ KPL; see cpp-kpl-notes §7.1)

  #shardDimensions(pipeline: StreamPipeline, shardId: string | undefined): MetricPutDimensions {
    if (shardId === undefined) return pipeline.dimensions;
    const shard = pipeline.shardMap.get(shardId);
    if (shard === undefined) return { stream: pipeline.name, shard: shardId };
    return shard.dimensions ??= { stream: pipeline.name, shard: shardId };
  }

  #recordMetrics(
    pipeline: StreamPipeline,
    record: PendingRecord,
    result: RecordResult,
    shardId: string | undefined,
  ): void {
    const metrics = this.#metrics;
    const dimensions = this.#shardDimensions(pipeline, shardId);
    metrics.put("UserRecordsPut", result.success ? 1 : 0, dimensions);
    if (result.success) metrics.put("UserRecordsDataPut", record.data.length, dimensions);
    const attempts = result.attempts;
    metrics.put("RetriesPerRecord", Math.max(0, attempts.length - 1), dimensions);
    if (result.errorCode === ErrorCodes.expired) metrics.put("UserRecordExpired", 1, dimensions);
    for (const attempt of attempts) metrics.put("BufferingTime", attempt.delayMs, dimensions);
  }

  // Per-entry metrics go on the shard the entry was predicted to, stored or not, as in the
  // C++ KPL: that is the shard the limiter paced it for; UserRecordsPut shows where the
  // user records actually landed.
  #entryMetrics(call: PutRecordsCall, record: KinesisRecord, entry: PutRecordsResultEntry): void {
    const metrics = this.#metrics;
    const pipeline = this.#streams.get(call.stream)!;
    const stored = Boolean(entry.SequenceNumber && entry.ShardId);
    const dimensions = predictedDimensions(pipeline, record.predictedShard);
    metrics.put("KinesisRecordsPut", stored ? 1 : 0, dimensions);
    metrics.put("AllErrors", stored ? 0 : 1, dimensions);
    if (stored) {
      metrics.put("KinesisRecordsDataPut", record.data.length, dimensions);
    } else {
      metrics.put("ErrorsByCode", 1, {
        ...dimensions,
        errorCode: entry.ErrorCode || "InternalFailure",
      });
    }
  }

  #requestMetrics(call: PutRecordsCall): void {
    const metrics = this.#metrics;
    const pipeline = this.#streams.get(call.stream)!;
    metrics.put("RequestTime", call.endedAt - call.startedAt, pipeline.dimensions);
    metrics.put("KinesisRecordsPerPutRecordsRequest", call.records.length, pipeline.dimensions);
    let userRecords = 0;
    for (const record of call.records) {
      userRecords += record.records.length;
      metrics.put(
        "UserRecordsPerKinesisRecord",
        record.records.length,
        predictedDimensions(pipeline, record.predictedShard),
      );
    }
    metrics.put("UserRecordsPerPutRecordsRequest", userRecords, pipeline.dimensions);
  }

  #samplePending(now: number, reschedule = true): void {
    for (const pipeline of this.#streams.values()) {
      this.#metrics.put("UserRecordsPending", pipeline.pending, pipeline.dimensions);
    }
    if (reschedule) {
      this.#scheduler.schedule(this.#pendingSampler, now + PENDING_SAMPLE_INTERVAL_MS);
    }
  }
}

/** The metric dimensions of a Kinesis record's predicted shard, cached on the shard. */
function predictedDimensions(pipeline: StreamPipeline, shard: Shard | null): MetricPutDimensions {
  if (shard === null) return pipeline.dimensions;
  return shard.dimensions ??= { stream: pipeline.name, shard: shard.id };
}

/** Whether a code is the producer's own verdict rather than an error it was given. */
function isProducerVerdict(code: string): boolean {
  return code === ErrorCodes.recordCountMismatch || code === ErrorCodes.producerClosed ||
    code === ErrorCodes.expired || code === ErrorCodes.wrongShard;
}

/** Where `#prepare` computes a record's hash key before the record object exists. */
const scratch: HashKey = { h0: 0, h1: 0, h2: 0, h3: 0 };

/** An attempt that ended without a request: an expiry, or what close() could not finish. */
function syntheticAttempt(
  record: PendingRecord,
  now: number,
  errorCode: string,
  errorMessage: string,
): Attempt {
  return failedAttempt({ startedAt: now, endedAt: now }, record, errorCode, errorMessage);
}
