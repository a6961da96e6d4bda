/**
 * Builds the producer's internal per-record state for stage-level tests, the way
 * `Producer` does on admission.
 */
import type { PendingRecord } from "../../src/_pending_record.ts";
import { validateRecord } from "../../src/_validate.ts";

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

const RULES = {
  defaultStream: undefined,
  maxRecordSize: Number.POSITIVE_INFINITY,
  knownStreams: new Map<string, unknown>(),
};

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
  // Created and admitted as the producer does, so the fields the record keeps for life stay
  // readonly and its deadlines come from the one place that sets them.
  const pending = validateRecord(record, RULES);
  const now = spec.now ?? 0;
  const deadline = spec.deadline ?? now + 100;
  const expiresAt = spec.expiresAt ?? now + 30_000;
  pending.admit(++seq, now, expiresAt - now, deadline - now);
  return pending;
}

/** A decimal hash key in the middle of shard `index` of `count` equal shards. */
export function hashInShard(index: number, count: number, offset = 0n): string {
  const width = (1n << 128n) / BigInt(count);
  return (width * BigInt(index) + width / 2n + offset).toString();
}
