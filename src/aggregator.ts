/**
 * Packs user records into Kinesis records, one deadline batcher per predicted shard.
 *
 * @module
 */

import type { BufferPool } from "./_buffer_pool.ts";
import type { PendingRecord } from "./_pending_record.ts";
import { AggregateBuilder } from "./codec.ts";
import { AggregatedRecord, type KinesisRecord } from "./kinesis_record.ts";
import { Deadline, type DeadlineTask, type Scheduler } from "./scheduler.ts";
import type { Shard } from "./shard_map.ts";

/** Options for {@linkcode Aggregator}. */
export interface AggregatorOptions {
  /** Drives the per-buffer deadlines. */
  scheduler: Scheduler;
  /** When `false` every user record becomes its own Kinesis record at once. */
  enabled: boolean;
  /** Most user records in one aggregated record. */
  maxCount: number;
  /** Most bytes in one aggregated record. */
  maxSize: number;
  /** Predicts a record's shard, or `null` when it cannot be predicted now. */
  predict(record: PendingRecord): Shard | null;
  /** Receives every Kinesis record the aggregator closes. */
  onKinesisRecord(record: KinesisRecord): void;
  /**
   * Where aggregates are encoded; each goes back through its Kinesis record's `release()`.
   * Without one, each aggregate is a fresh allocation.
   */
  pool?: BufferPool | undefined;
}

/**
 * One open aggregated record: the user records bound for one shard (or, while the shard
 * cannot be predicted, for one hash key) and the earliest of their deadlines.
 */
class Buffer implements DeadlineTask {
  readonly shard: Shard | null;
  readonly builder = new AggregateBuilder();
  readonly deadline: Deadline;
  readonly #onDue: (buffer: Buffer) => void;
  records: PendingRecord[] = [];
  earliest = Infinity;
  samePartitionKey = true;
  anyExplicitHashKey = false;
  readonly pool: BufferPool | undefined;

  constructor(onDue: (buffer: Buffer) => void, shard: Shard | null, pool?: BufferPool) {
    this.#onDue = onDue;
    this.shard = shard;
    this.deadline = new Deadline(this);
    this.pool = pool;
  }

  onDeadline(): void {
    this.#onDue(this);
  }
}

/**
 * Buffers user records per predicted shard and closes an aggregated Kinesis record when
 * its count or size limit is reached or its earliest deadline passes. Records never share
 * a Kinesis record across shards. A record whose shard cannot be predicted (the shard map
 * is not ready) shares one only with records of the same hash key, which always land
 * together; when the map becomes ready, {@linkcode Aggregator.reroute} moves them to
 * their shards' buffers.
 */
export class Aggregator {
  readonly #options: AggregatorOptions;
  readonly #scheduler: Scheduler;
  readonly #byShard = new Map<Shard, Buffer>();
  readonly #byPartitionKey = new Map<string, Buffer>();
  readonly #byExplicitHashKey = new Map<string, Buffer>();
  #buffered = 0;
  /** What a buffer's deadline calls: one function for every buffer. */
  readonly #emitDue = (buffer: Buffer): void => this.#emit(buffer);
  #holdUnpredictedUntil = 0;
  #flushAfterHold = false;

  /**
   * Creates an aggregator.
   *
   * @param options Limits, the shard predictor and the downstream callback.
   */
  constructor(options: AggregatorOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
  }

  /** How many user records are buffered. */
  get bufferedRecords(): number {
    return this.#buffered;
  }

  /**
   * Adds a user record; may close a Kinesis record synchronously.
   *
   * @param record The user record, with its deadline set.
   */
  put(record: PendingRecord): void {
    const shard = this.#options.predict(record);
    record.routeTo(shard);
    if (!this.#options.enabled) {
      this.#options.onKinesisRecord(record);
      return;
    }
    let buffer: Buffer | undefined;
    if (shard !== null) {
      buffer = this.#byShard.get(shard);
      if (buffer === undefined) {
        buffer = new Buffer(this.#emitDue, shard, this.#options.pool);
        this.#byShard.set(shard, buffer);
      }
    } else {
      const byKey = record.explicitHashKey === undefined
        ? this.#byPartitionKey
        : this.#byExplicitHashKey;
      const key = record.explicitHashKey ?? record.partitionKey;
      buffer = byKey.get(key);
      if (buffer === undefined) {
        buffer = new Buffer(this.#emitDue, null, this.#options.pool);
        byKey.set(key, buffer);
      }
    }
    this.#add(buffer, record);
  }

  /**
   * Keeps unpredicted records buffered until `until` even when their deadline passes.
   * The producer holds them while a stream's first shard listing is on its way, so the
   * records that arrive before it are aggregated by shard instead of by key.
   *
   * @param until Clock time at which the hold ends on its own.
   */
  holdUnpredicted(until: number): void {
    this.#holdUnpredictedUntil = until;
  }

  /**
   * Ends a hold: unpredicted buffers go out at their own deadlines again, or at once if
   * a flush was asked for during the hold.
   *
   * @returns Whether a flush deferred by the hold ran now.
   */
  releaseUnpredicted(): boolean {
    if (this.#holdUnpredictedUntil === 0) return false;
    this.#holdUnpredictedUntil = 0;
    if (this.#flushAfterHold) {
      this.#flushAfterHold = false;
      this.flush();
      return true;
    }
    for (const byKey of [this.#byPartitionKey, this.#byExplicitHashKey]) {
      for (const buffer of byKey.values()) {
        this.#scheduler.schedule(buffer.deadline, buffer.earliest);
      }
    }
    return false;
  }

  /**
   * Closes every buffered Kinesis record now. Records held for the first shard listing
   * are the exception: they go out as soon as the listing ends (or the hold runs out), so
   * a flush at start-up still aggregates them by shard.
   */
  flush(): void {
    for (const buffer of this.#byShard.values()) this.#emit(buffer);
    if (this.#holdUnpredictedUntil > this.#scheduler.clock.now()) {
      if (this.#byPartitionKey.size > 0 || this.#byExplicitHashKey.size > 0) {
        this.#flushAfterHold = true;
      }
      return;
    }
    for (const buffer of [...this.#byPartitionKey.values()]) this.#emit(buffer);
    for (const buffer of [...this.#byExplicitHashKey.values()]) this.#emit(buffer);
  }

  /**
   * Predicts again every record held unpredicted, moving it to its shard's buffer.
   * Called when the shard map has a new snapshot.
   */
  reroute(): void {
    const held: PendingRecord[] = [];
    for (const byKey of [this.#byPartitionKey, this.#byExplicitHashKey]) {
      for (const buffer of byKey.values()) this.#takeAll(buffer, held);
      byKey.clear();
    }
    // Records predicted to a shard that has since closed are predicted again, so they go
    // to the child that now holds their hash instead of riding on a stale prediction.
    for (const [shard, buffer] of this.#byShard) {
      if (shard.closedAt === undefined) continue;
      this.#takeAll(buffer, held);
      this.#byShard.delete(shard);
    }
    for (const record of held) this.put(record);
  }

  /** Closes `buffer`'s Kinesis record and hands it downstream. */
  #emit(buffer: Buffer): void {
    const records = buffer.records;
    if (records.length === 0) return;
    const record = records.length === 1
      ? records[0]!
      : AggregatedRecord.create(records, encode(buffer), buffer);
    this.#buffered -= records.length;
    this.#reset(buffer);
    if (buffer.shard === null) {
      const first = records[0]!;
      if (first.explicitHashKey === undefined) this.#byPartitionKey.delete(first.partitionKey);
      else this.#byExplicitHashKey.delete(first.explicitHashKey);
    }
    this.#options.onKinesisRecord(record);
  }

  #add(buffer: Buffer, record: PendingRecord): void {
    const { maxCount, maxSize } = this.#options;
    const builder = buffer.builder;
    // Full: what is buffered goes out and the record starts the next aggregate. Records can
    // come back into this buffer while emit() runs (siblings of a record that expired
    // downstream), so it is looked at again afterwards.
    while (buffer.records.length > 0 && !builder.tryAdd(record, maxSize)) this.#emit(buffer);
    if (buffer.records.length === 0) builder.add(record);
    const records = buffer.records;
    if (records.length === 0) {
      buffer.samePartitionKey = true;
      buffer.anyExplicitHashKey = false;
    } else if (buffer.samePartitionKey && record.partitionKey !== records[0]!.partitionKey) {
      buffer.samePartitionKey = false;
    }
    if (record.explicitHashKey !== undefined) buffer.anyExplicitHashKey = true;
    records.push(record);
    this.#buffered++;
    if (records.length >= maxCount || builder.size >= maxSize) {
      this.#emit(buffer);
    } else if (record.deadline < buffer.earliest) {
      buffer.earliest = record.deadline;
      const hold = buffer.shard === null ? this.#holdUnpredictedUntil : 0;
      this.#scheduler.schedule(
        buffer.deadline,
        Math.max(record.deadline, Math.min(hold, record.expiresAt)),
      );
    }
  }

  #takeAll(buffer: Buffer, into: PendingRecord[]): void {
    for (const record of buffer.records) into.push(record);
    this.#buffered -= buffer.records.length;
    this.#reset(buffer);
  }

  #reset(buffer: Buffer): void {
    buffer.records = [];
    buffer.builder.clear();
    buffer.earliest = Infinity;
    this.#scheduler.cancel(buffer.deadline);
  }
}

/** `buffer`'s aggregate, in memory from its pool when it has one. */
function encode(buffer: Buffer): Uint8Array {
  const { builder, pool } = buffer;
  if (pool === undefined) return builder.encode();
  const data = pool.take(builder.size);
  try {
    builder.encodeInto(data, 0);
  } catch (error) {
    pool.give(data);
    throw error;
  }
  return data;
}
