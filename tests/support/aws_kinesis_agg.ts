/**
 * A typed, synchronous face for the npm package `aws-kinesis-agg` (CommonJS, callback API,
 * and type declarations that need aws-sdk v2), used as an independent implementation of the
 * aggregated record format in interop tests and as the baseline in benchmarks.
 */
import awsKinesisAgg from "aws-kinesis-agg";
import { Buffer } from "node:buffer";

/** A user record as `aws-kinesis-agg` takes it. */
export interface AggInputRecord {
  partitionKey: string;
  explicitHashKey?: string | undefined;
  data: Uint8Array;
}

/** A Kinesis record as `aws-kinesis-agg` writes it. */
export interface AggEncodedRecord {
  partitionKey: string;
  ExplicitHashKey?: string;
  data: Uint8Array;
}

/** A user record as `aws-kinesis-agg` deaggregates it (data decoded from its base64). */
export interface AggUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  sequenceNumber?: string;
  subSequenceNumber?: number;
  data: Uint8Array;
}

interface RawUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  sequenceNumber?: string;
  subSequenceNumber?: number;
  data: string;
}

type ReadyCallback = (error: Error | null, encoded?: AggEncodedRecord) => void;

interface AwsKinesisAggModule {
  RecordAggregator: new () => {
    aggregateRecords(records: unknown[], forceFlush: boolean, onReady: ReadyCallback): void;
  };
  deaggregateSync(
    record: { data: Uint8Array; partitionKey: string; sequenceNumber?: string },
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: RawUserRecord[]) => void,
  ): void;
}

const agg = awsKinesisAgg as unknown as AwsKinesisAggModule;

/**
 * Aggregates records with `RecordAggregator.aggregateRecords` (the synchronous core of its
 * `aggregate()`), returning every Kinesis record it emits (one unless over 1 MB).
 */
export function aggAggregate(records: readonly AggInputRecord[]): AggEncodedRecord[] {
  const out: AggEncodedRecord[] = [];
  let failure: Error | undefined;
  // It converts string data in place, so give it copies of the record objects.
  const input = records.map((r) => ({ ...r }));
  new agg.RecordAggregator().aggregateRecords(input, true, (error, encoded) => {
    if (error) failure = error;
    else if (encoded) out.push(encoded);
  });
  if (failure) throw failure;
  return out;
}

/** Deaggregates with `deaggregateSync`, checking the MD5; throws what it reports. */
export function aggDeaggregate(
  record: { data: Uint8Array; partitionKey: string; sequenceNumber?: string },
  computeChecksums = true,
): AggUserRecord[] {
  let result: RawUserRecord[] | undefined;
  let failure: Error | undefined;
  agg.deaggregateSync(record, computeChecksums, (error, records) => {
    if (error) failure = error;
    result = records;
  });
  if (failure) throw failure;
  return (result ?? []).map((r) => {
    const user: AggUserRecord = {
      partitionKey: r.partitionKey,
      data: new Uint8Array(Buffer.from(r.data, "base64")),
    };
    if (r.explicitPartitionKey !== undefined) user.explicitPartitionKey = r.explicitPartitionKey;
    if (r.sequenceNumber !== undefined) user.sequenceNumber = r.sequenceNumber;
    if (r.subSequenceNumber !== undefined) user.subSequenceNumber = r.subSequenceNumber;
    return user;
  });
}
