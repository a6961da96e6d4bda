/**
 * A Kinesis record (KR): one entry of a PutRecords request, carrying one user record
 * raw (the record itself) or several in the aggregated format.
 *
 * @module
 */

import type { BufferPool } from "./_buffer_pool.ts";
import type { PendingRecord } from "./_pending_record.ts";
import { hashKeyToDecimal } from "./hash_key.ts";
import type { Shard } from "./shard_map.ts";

/** The partition key of an aggregated record whose members have different keys. */
export const AGGREGATED_PARTITION_KEY = "a";

/**
 * One PutRecords entry. A user record sent alone is its own entry (the
 * {@linkcode PendingRecord} itself: its keys, data and deadlines are the entry's), so a
 * record travelling alone, every record with aggregation off, needs no wrapper; two or
 * more travel as an {@linkcode AggregatedRecord}, whose members document these fields.
 */
export type KinesisRecord = Pick<
  AggregatedRecord,
  | "stream"
  | "predictedShard"
  | "partitionKey"
  | "explicitHashKey"
  | "data"
  | "requestSize"
  | "deadline"
  | "expiresAt"
  | "count"
  | "member"
  | "release"
>;

/**
 * The user records of `record`, in sub-sequence order, as a new array: for paths that run
 * once per call or on failures, not per stored record.
 *
 * @param record The entry.
 * @returns Its members.
 */
export function membersOf(record: KinesisRecord): PendingRecord[] {
  const members: PendingRecord[] = new Array(record.count);
  for (let i = 0; i < members.length; i++) members[i] = record.member(i);
  return members;
}

/** A PutRecords entry of two or more user records in the aggregated format. */
export class AggregatedRecord {
  /** The stream it goes to. */
  readonly stream: string;
  /** The user records, in sub-sequence order. */
  readonly records: PendingRecord[];
  /** The shard its hash key was predicted to, or `null` when unpredicted. */
  predictedShard: Shard | null;
  /** The entry's partition key. */
  readonly partitionKey: string;
  /** The entry's explicit hash key, when it routes by one. */
  readonly explicitHashKey: string | undefined;
  /** The entry's data. */
  readonly data: Uint8Array;
  /** What the entry counts against a request's 5 MiB: partition key bytes + data bytes. */
  readonly requestSize: number;
  /** Earliest deadline of its user records. */
  readonly deadline: number;
  /** Earliest expiry of its user records. */
  readonly expiresAt: number;
  /** Where `data`'s memory goes back to once nothing reads it, until {@linkcode release}. */
  #pool: BufferPool | undefined = undefined;

  /** Creates an entry; use {@linkcode AggregatedRecord.create}. */
  private constructor(
    records: PendingRecord[],
    partitionKey: string,
    explicitHashKey: string | undefined,
    data: Uint8Array,
    partitionKeyBytes: number,
  ) {
    const first = records[0]!;
    this.stream = first.stream;
    this.records = records;
    this.predictedShard = first.predictedShard;
    this.partitionKey = partitionKey;
    this.explicitHashKey = explicitHashKey;
    this.data = data;
    this.requestSize = partitionKeyBytes + data.length;
    let deadline = Infinity;
    let expiresAt = Infinity;
    for (const record of records) {
      if (record.deadline < deadline) deadline = record.deadline;
      if (record.expiresAt < expiresAt) expiresAt = record.expiresAt;
    }
    this.deadline = deadline;
    this.expiresAt = expiresAt;
  }

  /** How many user records it carries (a record sent alone, as a `KinesisRecord`: 1). */
  get count(): number {
    return this.records.length;
  }

  /**
   * Its user record at sub-sequence `index`.
   *
   * @param index From 0 to `count - 1`.
   * @returns The user record.
   */
  member(index: number): PendingRecord {
    return this.records[index]!;
  }

  /**
   * An entry of two or more user records in the aggregated format, routed by the first
   * record's hash key. When every member shares one partition key the entry carries that
   * key instead of `"a"`, so consumers that group by partition key still work; when none
   * has an explicit hash key either, the key alone routes it and no hash key is sent.
   *
   * @param records The user records, in the order they were encoded.
   * @param data The encoded aggregated record.
   * @param routing What the members have in common, and the pool `data` was taken from.
   * @returns The entry.
   */
  static create(
    records: PendingRecord[],
    data: Uint8Array,
    routing: {
      samePartitionKey: boolean;
      anyExplicitHashKey: boolean;
      pool?: BufferPool | undefined;
    },
  ): AggregatedRecord {
    const first = records[0]!;
    const record = routing.samePartitionKey
      ? new AggregatedRecord(
        records,
        first.partitionKey,
        routing.anyExplicitHashKey ? hashKeyToDecimal(first) : undefined,
        data,
        first.size - first.data.length,
      )
      : new AggregatedRecord(
        records,
        AGGREGATED_PARTITION_KEY,
        hashKeyToDecimal(first),
        data,
        AGGREGATED_PARTITION_KEY.length,
      );
    record.#pool = routing.pool;
    return record;
  }

  /**
   * Gives `data`'s memory back to its pool, for another aggregate. Its owner calls this
   * once nothing can read `data` any more: when the PutRecords call carrying it has
   * settled, or when it expired before any call. Later calls do nothing.
   */
  release(): void {
    const pool = this.#pool;
    if (pool === undefined) return;
    this.#pool = undefined;
    pool.give(this.data);
  }
}
