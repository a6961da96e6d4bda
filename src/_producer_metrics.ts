// The producer's metrics: which names it puts, with which values and dimensions, and at
// which point of a record's life (docs/metrics.md lists them; the names, values and
// places follow the C++ KPL's metrics, documented at
// https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-kpl.html). Every method
// is called only when metrics are on, so a producer without metrics pays one branch.

import type { PendingRecord } from "./_pending_record.ts";
import { streamNameOf } from "./_stream_ref.ts";
import { ErrorCodes } from "./error_codes.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import type {
  MetricPutDimensions,
  MetricsGranularity,
  MetricsLevel,
  MetricsManager,
  MetricStats,
  MetricsView,
} from "./metrics.ts";
import type { MetricSnapshot } from "./metrics_sink.ts";
import type { RecordResult } from "./record.ts";
import type { PutRecordsCall } from "./sender.ts";
import type { Shard } from "./shard_map.ts";

/** One stream's dimension objects, made once each. */
class StreamDimensions {
  readonly stream: MetricPutDimensions;
  readonly #name: string;
  readonly #shards = new Map<string, MetricPutDimensions>();

  constructor(name: string) {
    this.#name = name;
    this.stream = { stream: name };
  }

  shard(shardId: string | undefined): MetricPutDimensions {
    if (shardId === undefined) return this.stream;
    let dimensions = this.#shards.get(shardId);
    if (dimensions === undefined) {
      dimensions = { stream: this.#name, shard: shardId };
      this.#shards.set(shardId, dimensions);
    }
    return dimensions;
  }

  predicted(shard: Shard | null): MetricPutDimensions {
    return shard === null ? this.stream : this.shard(shard.id);
  }
}

export class ProducerMetrics {
  readonly #metrics: MetricsManager;
  readonly #streams = new Map<string, StreamDimensions>();

  constructor(metrics: MetricsManager) {
    this.#metrics = metrics;
  }

  /** A record was admitted. */
  received(stream: string): void {
    this.#metrics.put("UserRecordsReceived", 1, this.#dimensions(stream).stream);
  }

  /** A record settled with `result`, on `shardId` (where it landed, or was predicted to). */
  settled(record: PendingRecord, result: RecordResult, shardId: string | undefined): void {
    const metrics = this.#metrics;
    const dimensions = this.#dimensions(record.stream).shard(shardId);
    metrics.put("UserRecordsPut", result.success ? 1 : 0, dimensions);
    if (result.success) metrics.put("UserRecordsDataPut", record.data.length, dimensions);
    const attempts = result.attempts;
    metrics.put("RetriesPerRecord", Math.max(0, attempts.length - 1), dimensions);
    if (result.errorCode === ErrorCodes.expired) metrics.put("UserRecordExpired", 1, dimensions);
    for (const attempt of attempts) metrics.put("BufferingTime", attempt.delayMs, dimensions);
  }

  /** A PutRecords call ended: its timing, its size and every error it reported. */
  called(call: PutRecordsCall): void {
    // A call that close() ended (queued, or aborted in flight) has no answer to time or
    // count: its records were already failed with ProducerClosed.
    if (call.error?.code === ErrorCodes.producerClosed) return;
    const metrics = this.#metrics;
    const dimensions = this.#dimensions(call.stream);
    metrics.put("RequestTime", call.endedAt - call.startedAt, dimensions.stream);
    metrics.put("KinesisRecordsPerPutRecordsRequest", call.records.length, dimensions.stream);
    let userRecords = 0;
    for (const record of call.records) {
      userRecords += record.count;
      metrics.put(
        "UserRecordsPerKinesisRecord",
        record.count,
        dimensions.predicted(record.predictedShard),
      );
    }
    metrics.put("UserRecordsPerPutRecordsRequest", userRecords, dimensions.stream);
    if (call.error !== undefined) {
      // As in the C++ KPL, only errors Kinesis or the transport reported are counted; the
      // producer's own verdicts show in UserRecordsPut (and UserRecordExpired).
      if (isProducerVerdict(call.error.code)) return;
      metrics.put("ErrorsByCode", 1, { stream: call.stream, errorCode: call.error.code });
      metrics.put("AllErrors", 1, dimensions.stream);
      return;
    }
    const entries = call.entries ?? [];
    // A response that does not match its request says nothing about any entry.
    if (entries.length !== call.records.length) return;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      this.#entry(
        dimensions,
        call.records[i]!,
        entry.SequenceNumber,
        entry.ShardId,
        entry.ErrorCode,
      );
    }
  }

  /** Samples each stream's pending records. */
  pending(stream: string, count: number): void {
    this.#metrics.put("UserRecordsPending", count, this.#dimensions(stream).stream);
  }

  // Per-entry metrics go on the shard the entry was predicted to, stored or not, as in the
  // C++ KPL: that is the shard the limiter paced it for; UserRecordsPut shows where the
  // user records actually landed.
  #entry(
    dimensions: StreamDimensions,
    record: KinesisRecord,
    sequenceNumber: string | undefined,
    shardId: string | undefined,
    errorCode: string | undefined,
  ): void {
    const metrics = this.#metrics;
    const stored = Boolean(sequenceNumber && shardId);
    const shard = dimensions.predicted(record.predictedShard);
    metrics.put("KinesisRecordsPut", stored ? 1 : 0, shard);
    metrics.put("AllErrors", stored ? 0 : 1, shard);
    if (stored) {
      metrics.put("KinesisRecordsDataPut", record.data.length, shard);
    } else {
      metrics.put("ErrorsByCode", 1, { ...shard, errorCode: errorCode || "InternalFailure" });
    }
  }

  #dimensions(stream: string): StreamDimensions {
    let dimensions = this.#streams.get(stream);
    if (dimensions === undefined) {
      // A stream given by ARN is still named by its name: dashboards key on the name.
      dimensions = new StreamDimensions(streamNameOf(stream));
      this.#streams.set(stream, dimensions);
    }
    return dimensions;
  }
}

/** Whether a code is the producer's own verdict rather than an error it was given. */
function isProducerVerdict(code: string): boolean {
  return code === ErrorCodes.recordCountMismatch || code === ErrorCodes.producerClosed ||
    code === ErrorCodes.expired || code === ErrorCodes.wrongShard;
}

/** The read-only face of a producer's manager: `producer.metrics`. */
export class ManagerView implements MetricsView {
  readonly #metrics: MetricsManager;

  constructor(metrics: MetricsManager) {
    this.#metrics = metrics;
  }

  get level(): MetricsLevel {
    return this.#metrics.level;
  }

  get granularity(): MetricsGranularity {
    return this.#metrics.granularity;
  }

  get enabled(): boolean {
    return this.#metrics.enabled;
  }

  get exportErrors(): number {
    return this.#metrics.exportErrors;
  }

  get recordErrors(): number {
    return this.#metrics.recordErrors;
  }

  snapshot(): ReadonlyMap<string, MetricStats> {
    return this.#metrics.snapshot();
  }

  snapshots(): MetricSnapshot[] {
    return this.#metrics.snapshots();
  }

  flush(): Promise<void> {
    return this.#metrics.flush();
  }
}
