/**
 * Builds the producer's internal per-record state for stage-level tests, the way
 * `Producer` does on admission.
 */
import { PendingRecord } from "../../src/_pending_record.ts";
import { hashPartitionKey, parseExplicitHashKey } from "../../src/hash_key.ts";

export interface RecordSpec {
  stream?: string;
  partitionKey?: string;
  explicitHashKey?: string;
  data?: Uint8Array | number;
  now?: number;
  deadline?: number;
  expiresAt?: number;
}

let seq = 0;

export function pendingRecord(spec: RecordSpec = {}): PendingRecord {
  const partitionKey = spec.partitionKey ?? `key-${seq}`;
  const data = spec.data instanceof Uint8Array
    ? spec.data
    : new Uint8Array(spec.data ?? 10).fill(seq % 251);
  const record = {
    stream: spec.stream ?? "stream",
    partitionKey,
    data,
    ...(spec.explicitHashKey === undefined ? {} : { explicitHashKey: spec.explicitHashKey }),
  };
  const key = { h0: 0, h1: 0, h2: 0, h3: 0 };
  const keyBytes = hashPartitionKey(partitionKey, key);
  if (spec.explicitHashKey !== undefined) parseExplicitHashKey(spec.explicitHashKey, key);
  const pending = new PendingRecord(record, record.stream, data, keyBytes);
  pending.h0 = key.h0;
  pending.h1 = key.h1;
  pending.h2 = key.h2;
  pending.h3 = key.h3;
  const now = spec.now ?? 0;
  pending.seq = ++seq;
  pending.arrivedAt = now;
  pending.waitingSince = now;
  pending.deadline = spec.deadline ?? now + 100;
  pending.expiresAt = spec.expiresAt ?? now + 30_000;
  return pending;
}

/** A decimal hash key in the middle of shard `index` of `count` equal shards. */
export function hashInShard(index: number, count: number, offset = 0n): string {
  const width = (1n << 128n) / BigInt(count);
  return (width * BigInt(index) + width / 2n + offset).toString();
}
