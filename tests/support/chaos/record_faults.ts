/**
 * Faults of single PutRecords entries: the chosen entries are taken out of the request before
 * it is forwarded and answered with a failure at their positions, so the emulator stores
 * exactly the records the client is told succeeded.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { PutRecordsEntry, ResultEntry } from "./wire.ts";

/** The faults of this group, drawn once per entry. */
export const RECORD_FAULTS = ["recordThrottle", "recordInternalFailure"] as const;

/** A fault of this group. */
export type RecordFault = typeof RECORD_FAULTS[number];

/** How each fault answers its entry. */
export const RECORD_ANSWERS: Readonly<Record<RecordFault, () => ResultEntry>> = {
  /** Answered ProvisionedThroughputExceededException, as for a shard over its limit. */
  recordThrottle: () => throttled(undefined),
  /** Answered InternalFailure. */
  recordInternalFailure: () => ({
    ErrorCode: "InternalFailure",
    ErrorMessage: "Internal service failure.",
  }),
};

/** The throttling answer Kinesis gives an entry, naming the shard when known. */
export function throttled(shardId: string | undefined): ResultEntry {
  return {
    ErrorCode: "ProvisionedThroughputExceededException",
    ErrorMessage: `Rate exceeded for shard ${
      shardId ?? "shardId-unknown"
    } in stream under account 000000000000.`,
  };
}

/**
 * Whether Kinesis routes `entry` into `[start, end]`: by its explicit hash key, else by the
 * MD5 of its partition key (the Kinesis PutRecords API reference describes the routing).
 */
export function routesInto(entry: PutRecordsEntry, [start, end]: [bigint, bigint]): boolean {
  const hash = entry.ExplicitHashKey !== undefined
    ? BigInt(entry.ExplicitHashKey)
    : BigInt(`0x${createHash("md5").update(entry.PartitionKey ?? "", "utf8").digest("hex")}`);
  return start <= hash && hash <= end;
}
