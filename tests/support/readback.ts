/**
 * Reads a whole stream back and checks it against what a producer said it did.
 *
 * `readStream()` lists every shard (open and closed), reads each from TRIM_HORIZON with
 * GetRecords and deaggregates every Kinesis record with `aws-kinesis-agg`, an implementation
 * we did not write. `reconcile()` matches the user records found against the producer's
 * successful results, by position (shard, sequence number, sub-sequence number) and by
 * payload, and counts what is missing, duplicated, misplaced or unexpected.
 *
 * @module
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  type Shard,
} from "@aws-sdk/client-kinesis";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { listAllShards } from "./kinesis_sdk.ts";

/** One user record found in the stream. */
export interface FoundRecord {
  /** The shard it was read from. */
  shardId: string;
  /** Sequence number of the Kinesis record that carries it. */
  sequenceNumber: string;
  /** Index inside the aggregated record; 0 for a record that is not aggregated. */
  subSequenceNumber: number;
  /** Whether it came out of an aggregated (KPL format) Kinesis record. */
  aggregated: boolean;
  /** The user record's partition key (the Kinesis record's own key when not aggregated). */
  partitionKey: string;
  /**
   * The explicit hash key stored with an aggregated user record; always `undefined` for a
   * record that is not aggregated, since GetRecords does not return it.
   */
  explicitHashKey: string | undefined;
  /** The user record's data. */
  data: Uint8Array;
}

/** What {@linkcode readStream} read. */
export interface StreamContents {
  /** Every shard, open and closed, as ListShards returned them. */
  shards: Shard[];
  /** Kinesis records read (before deaggregation). */
  kinesisRecords: number;
  /** User records after deaggregation, shard by shard, in stream order. */
  records: FoundRecord[];
}

/** Options for {@linkcode readStream}. */
export interface ReadStreamOptions {
  /**
   * An open shard is done after this many consecutive empty GetRecords at its tip.
   * @default {2}
   */
  emptyReadsAtTip?: number;
  /**
   * Upper bound on GetRecords calls per shard.
   * @default {10000}
   */
  maxReadsPerShard?: number;
  /**
   * GetRecords Limit.
   * @default {10000}
   */
  limit?: number;
}

/** What a producer reported for one record it put successfully. */
export interface PutResult {
  shardId: string;
  sequenceNumber: string;
  /** @default {0} */
  subSequenceNumber?: number;
  /** The payload; a string counts as its UTF-8 bytes. */
  data: Uint8Array | string;
  /** Checked against the record found when given. */
  partitionKey?: string;
}

/** The outcome of {@linkcode reconcile}. */
export interface Reconciliation {
  /** Results given. */
  put: number;
  /** User records found in the stream. */
  found: number;
  /** Extra copies: for each payload found more than once, the copies beyond the first. */
  duplicates: number;
  /** Results whose payload is nowhere in the stream. */
  missing: number;
  /**
   * Results whose payload is in the stream but not at the reported position, or whose
   * position holds another payload or partition key.
   */
  mismatched: number;
  /** Found records whose payload no result names (e.g. applied but reported failed). */
  unexpected: number;
  /** Up to 20 examples of each problem, for assertion messages. */
  examples: {
    missing: PutResult[];
    mismatched: Array<{ expected: PutResult; found: FoundRecord[] }>;
    duplicates: FoundRecord[];
    unexpected: FoundRecord[];
  };
}

interface AggUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  sequenceNumber: string;
  subSequenceNumber?: number;
  data: string;
}

interface AggModule {
  deaggregateSync(
    record: { data: string; partitionKey: string; sequenceNumber: string },
    computeChecksums: boolean,
    callback: (error: Error | null | undefined, records?: AggUserRecord[]) => void,
  ): void;
}

interface ProtobufRecords {
  records: object[];
}

interface AggCommon {
  magicNumber: string;
  AggregatedRecord: { decode(bytes: Uint8Array): ProtobufRecords };
}

// aws-kinesis-agg is CommonJS; createRequire loads it the same way under Deno and Bun, and
// its bundled d.ts (which imports the v2 SDK and aws-lambda types) stays out of type-checking.
const require = createRequire(import.meta.url);
const agg = require("aws-kinesis-agg") as AggModule;
const aggCommon = require("aws-kinesis-agg/lib/common.js") as AggCommon;
const EXAMPLES = 20;

/**
 * Reads every user record of a stream: all shards, open and closed, from TRIM_HORIZON.
 *
 * @param client A Kinesis client (talk to the emulator directly, not through a chaos proxy).
 * @param stream Stream name.
 * @param options Loop bounds.
 * @returns Shards, the number of Kinesis records, and the deaggregated user records.
 * @throws {Error} When a shard needs more than `maxReadsPerShard` reads, or a record does not
 *   deaggregate (bad checksum or protobuf).
 *
 * @example Put two records, read them back, reconcile
 * ```ts
 * import assert from "node:assert/strict";
 * import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
 * import { startKinesalite } from "./emulators.ts";
 * import { createStream, createTestClient } from "./kinesis_sdk.ts";
 *
 * await using kinesalite = await startKinesalite();
 * const client = createTestClient(kinesalite.endpoint);
 * await createStream(client, "events", { shardCount: 2 });
 * const records = ["one", "two"].map((data) => ({ partitionKey: data, data }));
 * const output = await client.send(new PutRecordsCommand({
 *   StreamName: "events",
 *   Records: records.map((r) => ({ PartitionKey: r.partitionKey, Data: new TextEncoder().encode(r.data) })),
 * }));
 * const results = (output.Records ?? []).map((entry, index) => ({
 *   shardId: entry.ShardId ?? "",
 *   sequenceNumber: entry.SequenceNumber ?? "",
 *   ...records[index]!,
 * }));
 * const contents = await readStream(client, "events");
 * const report = reconcile(contents.records, results);
 * assert.deepEqual([report.found, report.missing, report.mismatched], [2, 0, 0]);
 * client.destroy();
 * ```
 */
export async function readStream(
  client: KinesisClient,
  stream: string,
  options: ReadStreamOptions = {},
): Promise<StreamContents> {
  const { emptyReadsAtTip = 2, maxReadsPerShard = 10_000, limit = 10_000 } = options;
  const shards = await listAllShards(client, stream);
  const records: FoundRecord[] = [];
  let kinesisRecords = 0;
  for (const shard of shards) {
    const shardId = shard.ShardId ?? "";
    const start = await client.send(
      new GetShardIteratorCommand({
        StreamName: stream,
        ShardId: shardId,
        ShardIteratorType: "TRIM_HORIZON",
      }),
    );
    let iterator = start.ShardIterator;
    let emptyReads = 0;
    let reads = 0;
    while (iterator !== undefined && emptyReads < emptyReadsAtTip) {
      if (++reads > maxReadsPerShard) {
        throw new Error(`${shardId} of ${stream} not drained after ${maxReadsPerShard} reads`);
      }
      const page = await client.send(
        new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }),
      );
      const batch = page.Records ?? [];
      for (const record of batch) {
        kinesisRecords++;
        const users = deaggregate(shardId, {
          data: record.Data ?? new Uint8Array(),
          partitionKey: record.PartitionKey ?? "",
          sequenceNumber: record.SequenceNumber ?? "",
        });
        for (const user of users) records.push(user);
      }
      // An open shard never ends its iterator; empty reads at the tip end the loop instead.
      emptyReads = batch.length === 0 && (page.MillisBehindLatest ?? 0) === 0 ? emptyReads + 1 : 0;
      iterator = page.NextShardIterator;
    }
  }
  return { shards, kinesisRecords, records };
}

/**
 * Deaggregates one Kinesis record with `aws-kinesis-agg`; a record that is not in the KPL
 * format comes back as one user record with sub-sequence number 0.
 *
 * aws-kinesis-agg reports explicit hash key table entry 0 for a user record that has no
 * explicit hash key (protobuf's default index), so presence is read from the decoded
 * protobuf instead.
 *
 * @param shardId The shard the record was read from.
 * @param record The Kinesis record's data, partition key and sequence number.
 * @returns The user records inside, in order.
 * @throws {Error} When an aggregated record has a bad checksum or bad protobuf.
 *
 * @example A plain record passes through
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const [record] = deaggregate("shardId-000000000000", {
 *   data: new TextEncoder().encode("hello"),
 *   partitionKey: "k",
 *   sequenceNumber: "1",
 * });
 * assert.equal(record?.aggregated, false);
 * assert.equal(record?.subSequenceNumber, 0);
 * ```
 */
export function deaggregate(
  shardId: string,
  record: { data: Uint8Array; partitionKey: string; sequenceNumber: string },
): FoundRecord[] {
  const bytes = Buffer.from(record.data.buffer, record.data.byteOffset, record.data.byteLength);
  // The same test aws-kinesis-agg applies: the magic number alone.
  const aggregated = bytes.subarray(0, 4).toString("hex") === aggCommon.magicNumber;
  let userRecords: AggUserRecord[] = [];
  let failure: Error | null | undefined;
  agg.deaggregateSync(
    {
      data: bytes.toString("base64"),
      partitionKey: record.partitionKey,
      sequenceNumber: record.sequenceNumber,
    },
    true,
    (error, found) => {
      failure = error;
      userRecords = found ?? [];
    },
  );
  if (failure) {
    throw new Error(
      `Record ${record.sequenceNumber} on ${shardId} does not deaggregate: ${failure.message}`,
      { cause: failure },
    );
  }
  const hasExplicitHashKey = aggregated
    ? aggCommon.AggregatedRecord.decode(bytes.subarray(4, bytes.length - 16)).records.map(
      (entry) => Object.hasOwn(entry, "explicit_hash_key_index"),
    )
    : [];
  return userRecords.map((user, index) => ({
    shardId,
    sequenceNumber: user.sequenceNumber,
    subSequenceNumber: user.subSequenceNumber ?? 0,
    aggregated,
    partitionKey: user.partitionKey,
    explicitHashKey: hasExplicitHashKey[index] ? user.explicitPartitionKey : undefined,
    data: new Uint8Array(Buffer.from(user.data, "base64")),
  }));
}

/**
 * Matches the records found in a stream against a producer's successful results.
 *
 * Payloads must be unique per record (include an index) for the payload counts to mean
 * anything.
 *
 * @param found Records from {@linkcode readStream}.
 * @param expected The producer's successful results.
 * @returns Counts and examples; a clean run has `missing`, `mismatched`, `duplicates` and
 *   `unexpected` all 0 and `found === put`.
 *
 * @example A record reported but not found
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const report = reconcile([], [{ shardId: "shardId-000000000000", sequenceNumber: "1", data: "x" }]);
 * assert.equal(report.missing, 1);
 * ```
 */
export function reconcile(
  found: readonly FoundRecord[],
  expected: readonly PutResult[],
): Reconciliation {
  const byPosition = new Map<string, FoundRecord>();
  const byPayload = new Map<string, FoundRecord[]>();
  for (const record of found) {
    byPosition.set(
      positionKey(record.shardId, record.sequenceNumber, record.subSequenceNumber),
      record,
    );
    const key = payloadKey(record.data);
    const copies = byPayload.get(key);
    if (copies === undefined) byPayload.set(key, [record]);
    else copies.push(record);
  }
  const report: Reconciliation = {
    put: expected.length,
    found: found.length,
    duplicates: 0,
    missing: 0,
    mismatched: 0,
    unexpected: 0,
    examples: { missing: [], mismatched: [], duplicates: [], unexpected: [] },
  };
  const expectedPayloads = new Set<string>();
  for (const result of expected) {
    const key = payloadKey(result.data);
    expectedPayloads.add(key);
    const copies = byPayload.get(key);
    if (copies === undefined) {
      report.missing++;
      if (report.examples.missing.length < EXAMPLES) report.examples.missing.push(result);
      continue;
    }
    const atPosition = byPosition.get(
      positionKey(result.shardId, result.sequenceNumber, result.subSequenceNumber ?? 0),
    );
    const placed = atPosition !== undefined && payloadKey(atPosition.data) === key &&
      (result.partitionKey === undefined || atPosition.partitionKey === result.partitionKey);
    if (!placed) {
      report.mismatched++;
      if (report.examples.mismatched.length < EXAMPLES) {
        report.examples.mismatched.push({ expected: result, found: copies });
      }
    }
  }
  for (const [key, copies] of byPayload) {
    if (copies.length > 1) {
      report.duplicates += copies.length - 1;
      for (const copy of copies.slice(1)) {
        if (report.examples.duplicates.length < EXAMPLES) report.examples.duplicates.push(copy);
      }
    }
    if (!expectedPayloads.has(key)) {
      report.unexpected += copies.length;
      for (const copy of copies) {
        if (report.examples.unexpected.length < EXAMPLES) report.examples.unexpected.push(copy);
      }
    }
  }
  return report;
}

function positionKey(shardId: string, sequenceNumber: string, subSequenceNumber: number): string {
  return `${shardId}/${sequenceNumber}/${subSequenceNumber}`;
}

function payloadKey(data: Uint8Array | string): string {
  return typeof data === "string"
    ? Buffer.from(data, "utf8").toString("base64")
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}
