/**
 * Groups Kinesis records of one stream into PutRecords requests.
 *
 * @module
 */

import type { KinesisRecord } from "./kinesis_record.ts";
import { Deadline, type DeadlineTask, type Scheduler } from "./scheduler.ts";
import type { Shard } from "./shard_map.ts";

/** Bytes for one shard that close a request early, as in the C++ KPL. */
export const SHARD_SHARE_TRIGGER = 256 * 1024;

/**
 * Kinesis records larger than this travel alone: Kinesis takes 1 MiB records on a stream
 * whose `MaxRecordSizeInKiB` was not raised, and an emulator may refuse a larger one for
 * the whole request (kinesalite answers `ValidationException`), which must fail only that
 * record, never its neighbours.
 */
export const ALONE_ABOVE_BYTES = 1024 * 1024;

/** Options for {@linkcode Collector}. */
export interface CollectorOptions {
  /** Drives the request deadline. */
  scheduler: Scheduler;
  /** Most Kinesis records per request (≤ 500). */
  maxCount: number;
  /** Most bytes per request, counted as Σ(partition key + data). */
  maxSize: number;
  /**
   * How long a Kinesis record waits at least, so records of many shards can share a
   * call: the C++ KPL's min(50 ms, 0.2 × recordMaxBufferedTime) when aggregating.
   */
  lingerMs: number;
  /** Receives each request's Kinesis records. */
  onRequest(records: KinesisRecord[]): void;
}

/**
 * Closes a request when it reaches `maxCount` records or `maxSize` bytes, when one
 * shard's share reaches 256 KiB (so no shard gets a burst), or at the earliest deadline
 * of its records. A Kinesis record larger than `maxSize` or than 1 MiB goes alone.
 */
export class Collector implements DeadlineTask {
  readonly #options: CollectorOptions;
  readonly #scheduler: Scheduler;
  readonly #deadline: Deadline;
  readonly #shareByShard = new Map<Shard, number>();
  /** Whether `#shareByShard` counts the request (see `#shareAfter`). */
  #sharesCounted = false;
  #records: KinesisRecord[] = [];
  #size = 0;

  /**
   * Creates a collector.
   *
   * @param options Limits, linger and the downstream callback.
   */
  constructor(options: CollectorOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
    this.#deadline = new Deadline(this);
  }

  /** How many Kinesis records are waiting. */
  get bufferedRecords(): number {
    return this.#records.length;
  }

  /**
   * Adds a Kinesis record; may close a request synchronously.
   *
   * @param record The Kinesis record.
   */
  put(record: KinesisRecord): void {
    const { maxCount, maxSize, lingerMs } = this.#options;
    const alone = record.requestSize > ALONE_ABOVE_BYTES;
    if (
      this.#records.length > 0 &&
      (alone || this.#records.length + 1 > maxCount || this.#size + record.requestSize > maxSize)
    ) {
      this.#emit();
    }
    this.#records.push(record);
    this.#size += record.requestSize;
    if (alone) {
      this.#emit();
      return;
    }
    const share = this.#shareAfter(record);
    if (
      this.#records.length >= maxCount || this.#size >= maxSize || share >= SHARD_SHARE_TRIGGER
    ) {
      this.#emit();
      return;
    }
    let due = record.deadline;
    if (lingerMs > 0) due = Math.max(due, this.#scheduler.clock.now() + lingerMs);
    this.#scheduler.scheduleNoLaterThan(this.#deadline, Math.min(due, record.expiresAt));
  }

  /** Closes the request being collected now. */
  flush(): void {
    this.#emit();
  }

  /** @internal The request's deadline. */
  onDeadline(): void {
    this.#emit();
  }

  /**
   * The bytes of `record`'s predicted shard in the request, `record` included. No shard's
   * share can reach the trigger before the whole request has, so the shares are counted
   * only from then on (with aggregation off, a 500-entry request of small records never
   * gets there, and each record saves two map operations).
   */
  #shareAfter(record: KinesisRecord): number {
    const shard = record.predictedShard;
    if (shard === null || this.#size < SHARD_SHARE_TRIGGER) return 0;
    const shares = this.#shareByShard;
    if (!this.#sharesCounted) {
      this.#sharesCounted = true;
      // `record` is the last of the request: counted here with the others.
      for (const earlier of this.#records) {
        const earlierShard = earlier.predictedShard;
        if (earlierShard !== null) {
          shares.set(earlierShard, (shares.get(earlierShard) ?? 0) + earlier.requestSize);
        }
      }
      return shares.get(shard)!;
    }
    const share = (shares.get(shard) ?? 0) + record.requestSize;
    shares.set(shard, share);
    return share;
  }

  #emit(): void {
    if (this.#records.length === 0) return;
    const records = this.#records;
    this.#records = [];
    this.#size = 0;
    this.#shareByShard.clear();
    this.#sharesCounted = false;
    this.#scheduler.cancel(this.#deadline);
    this.#options.onRequest(records);
  }
}
