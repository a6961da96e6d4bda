/**
 * What a producer's metrics must add up to, worked out without the producer's metric code:
 *
 * - {@linkcode WireCounter} wraps a real Kinesis client and counts what really crossed the
 *   wire (calls, entries, the user records inside each entry as `aws-kinesis-agg`
 *   deaggregates them, stored entries and their bytes, errors per code). It can also
 *   script faults: a whole call that fails, entries answered with an error code instead
 *   of being sent, or a response with the wrong number of entries.
 * - {@linkcode expectedTotals} combines those counts with the `RecordResult`s into the
 *   expected count and sum of every metric that has a checkable truth.
 * - {@linkcode readKinesisRecords} reads a stream back and counts its Kinesis records and
 *   their bytes, the independent check on what the wire counter says was stored.
 *
 * @module
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient as SdkKinesisClient,
} from "@aws-sdk/client-kinesis";
import type {
  KinesisCallOptions,
  KinesisClient,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
  PutRecordsResultEntry,
} from "../../src/kinesis_client.ts";
import type { MetricName } from "../../src/metrics_sink.ts";
import type { RecordResult } from "../../src/record.ts";
import { listAllShards } from "./kinesis_sdk.ts";
import { deaggregate } from "./readback.ts";

/** A count and a sum, as every metric is checked. */
export interface Totals {
  count: number;
  sum: number;
}

/** Scripted faults; each hook sees the call's 0-based index among its stream's calls. */
export interface WireFaults {
  /** Fails the whole call with this error (thrown as the SDK would) instead of sending it. */
  request?(call: number, input: PutRecordsInput): Error | undefined;
  /** Answers the call with no entries at all (a response that does not match the request). */
  mismatch?(call: number, input: PutRecordsInput): boolean;
  /**
   * Answers one entry with this error code instead of sending it.
   *
   * @param partitionKeys The partition keys of the user records inside the entry.
   */
  entry?(call: number, stream: string, partitionKeys: string[]): string | undefined;
}

/** Counts per stream of what Kinesis stored. */
export interface StoredCounts {
  entries: number;
  bytes: number;
}

/** A Kinesis client that counts what it sends and answers, and scripts faults. */
export class WireCounter implements KinesisClient {
  readonly #inner: KinesisClient;
  readonly #faults: WireFaults;
  readonly #callsPerStream = new Map<string, number>();
  /** PutRecords calls made by the producer (each one answered, failed or mismatched). */
  calls = 0;
  /** Entries in those calls. */
  entriesSent = 0;
  /** User records inside those entries, retries included. */
  userRecordsSent = 0;
  /** Entries of calls that answered with one result per entry. */
  entriesAnswered = 0;
  /** Entries Kinesis stored, and their data bytes. */
  entriesStored = 0;
  bytesStored = 0;
  /** Entries answered with an error code. */
  failedEntries = 0;
  /** Calls that failed as a whole. */
  failedRequests = 0;
  /** Calls answered with the wrong number of entries. */
  mismatchedCalls = 0;
  /** Failed entries plus failed calls, per error code. */
  readonly errorsByCode = new Map<string, number>();
  /** What Kinesis stored, per stream. */
  readonly stored = new Map<string, StoredCounts>();

  constructor(inner: KinesisClient, faults: WireFaults = {}) {
    this.#inner = inner;
    this.#faults = faults;
  }

  async putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput> {
    this.calls++;
    const stream = input.StreamName ?? input.StreamARN ?? "";
    const call = this.#callsPerStream.get(stream) ?? 0;
    this.#callsPerStream.set(stream, call + 1);
    this.entriesSent += input.Records.length;
    const keys = input.Records.map((entry) => {
      const users = deaggregate("", {
        data: entry.Data,
        partitionKey: entry.PartitionKey,
        sequenceNumber: "0",
      });
      this.userRecordsSent += users.length;
      return users.map((user) => user.partitionKey);
    });
    const thrown = this.#faults.request?.(call, input);
    if (thrown !== undefined) {
      this.#requestFailed(thrown.name);
      throw thrown;
    }
    if (this.#faults.mismatch?.(call, input)) {
      this.mismatchedCalls++;
      return { FailedRecordCount: 0, Records: [] };
    }
    const scripted = input.Records.map((_, i) => this.#faults.entry?.(call, stream, keys[i]!));
    const forwarded = input.Records.filter((_, i) => scripted[i] === undefined);
    let answered: PutRecordsResultEntry[] = [];
    if (forwarded.length > 0) {
      try {
        const output = await this.#inner.putRecords(
          { ...input, Records: forwarded },
          options,
        );
        answered = output.Records ?? [];
      } catch (error) {
        this.#requestFailed((error as Error).name);
        throw error;
      }
      if (answered.length !== forwarded.length) {
        throw new Error(`the emulator answered ${answered.length} of ${forwarded.length} entries`);
      }
    }
    const records: PutRecordsResultEntry[] = [];
    let next = 0;
    let failed = 0;
    for (let i = 0; i < input.Records.length; i++) {
      const code = scripted[i];
      const result = code === undefined
        ? answered[next++]!
        : { ErrorCode: code, ErrorMessage: "scripted by the test" };
      records.push(result);
      this.entriesAnswered++;
      if (result.SequenceNumber) {
        this.entriesStored++;
        this.bytesStored += input.Records[i]!.Data.length;
        const stored = this.stored.get(stream) ?? { entries: 0, bytes: 0 };
        stored.entries++;
        stored.bytes += input.Records[i]!.Data.length;
        this.stored.set(stream, stored);
      } else {
        failed++;
        this.failedEntries++;
        this.#count(result.ErrorCode ?? "InternalFailure");
      }
    }
    return { FailedRecordCount: failed, Records: records };
  }

  listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput> {
    return this.#inner.listShards(input, options);
  }

  close(): void | Promise<void> {
    return this.#inner.close?.();
  }

  #requestFailed(code: string): void {
    this.failedRequests++;
    this.#count(code);
  }

  #count(code: string): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

const UTF8 = new TextEncoder();

function dataBytes(result: RecordResult): number {
  const data = result.record.data;
  return typeof data === "string" ? UTF8.encode(data).length : data.length;
}

/**
 * The expected count and sum of every metric with a truth outside the producer's metric
 * code. UserRecordsPending has none (it is a sampled level) and is left out.
 *
 * Sums are compared exactly even for BufferingTime: every delay is the difference of two
 * clock readings near 2^40 ms, so a multiple of 2^-12 ms, and sums of a few thousand of
 * them are exact in a double whatever order they are added in.
 *
 * @param results Every record's result.
 * @param wire What crossed the wire.
 * @returns Totals per metric name.
 */
export function expectedTotals(
  results: readonly RecordResult[],
  wire: WireCounter,
): Map<MetricName, Totals> {
  let successes = 0;
  let bytesPut = 0;
  let retries = 0;
  let attempts = 0;
  let bufferingMs = 0;
  let expired = 0;
  for (const result of results) {
    if (result.success) {
      successes++;
      bytesPut += dataBytes(result);
    }
    retries += result.attempts.length - 1;
    attempts += result.attempts.length;
    for (const attempt of result.attempts) bufferingMs += attempt.delayMs;
    if (result.errorCode === "Expired") expired++;
  }
  const n = results.length;
  const errors = wire.failedEntries + wire.failedRequests;
  return new Map<MetricName, Totals>([
    ["UserRecordsReceived", { count: n, sum: n }],
    ["UserRecordsPut", { count: n, sum: successes }],
    ["UserRecordsDataPut", { count: successes, sum: bytesPut }],
    ["KinesisRecordsPut", { count: wire.entriesAnswered, sum: wire.entriesStored }],
    ["KinesisRecordsDataPut", { count: wire.entriesStored, sum: wire.bytesStored }],
    ["ErrorsByCode", { count: errors, sum: errors }],
    ["AllErrors", { count: wire.entriesAnswered + wire.failedRequests, sum: errors }],
    ["RetriesPerRecord", { count: n, sum: retries }],
    ["UserRecordExpired", { count: expired, sum: expired }],
    ["BufferingTime", { count: attempts, sum: bufferingMs }],
    ["RequestTime", { count: wire.calls, sum: NaN }],
    ["UserRecordsPerKinesisRecord", { count: wire.entriesSent, sum: wire.userRecordsSent }],
    ["KinesisRecordsPerPutRecordsRequest", { count: wire.calls, sum: wire.entriesSent }],
    ["UserRecordsPerPutRecordsRequest", { count: wire.calls, sum: wire.userRecordsSent }],
  ]);
}

/**
 * Formats rows as a fixed-width table for the test output (and the closing note).
 *
 * @param title The table's title line.
 * @param header Column names.
 * @param rows The rows.
 * @returns The table, one line per row.
 */
export function formatTable(title: string, header: string[], rows: (string | number)[][]): string {
  const widths = header.map((name, i) =>
    Math.max(name.length, ...rows.map((row) => String(row[i]).length))
  );
  const line = (cells: (string | number)[]) =>
    "| " + cells.map((cell, i) => String(cell).padEnd(widths[i]!)).join(" | ") + " |";
  return [
    title,
    line(header),
    "|" + widths.map((width) => "-".repeat(width + 2)).join("|") + "|",
    ...rows.map(line),
  ].join("\n");
}

/**
 * Formats a count/sum pair for a table cell; a NaN sum (no truth) is left out.
 *
 * @param totals The pair.
 * @returns `count / sum`.
 */
export function cell(totals: Totals): string {
  return Number.isNaN(totals.sum) ? `${totals.count} / -` : `${totals.count} / ${totals.sum}`;
}

/**
 * Reads every shard of a stream from TRIM_HORIZON and counts its Kinesis records and
 * their data bytes (before deaggregation).
 *
 * @param client An SDK client.
 * @param stream The stream.
 * @returns The count and the bytes.
 */
export async function readKinesisRecords(
  client: SdkKinesisClient,
  stream: string,
): Promise<StoredCounts> {
  let entries = 0;
  let bytes = 0;
  for (const shard of await listAllShards(client, stream)) {
    const start = await client.send(
      new GetShardIteratorCommand({
        StreamName: stream,
        ShardId: shard.ShardId,
        ShardIteratorType: "TRIM_HORIZON",
      }),
    );
    let iterator = start.ShardIterator;
    // Two empty reads at the tip end an open shard; the bound keeps a bug from looping.
    for (let empty = 0, reads = 0; iterator !== undefined && empty < 2 && reads < 1000; reads++) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }));
      const batch = page.Records ?? [];
      for (const record of batch) {
        entries++;
        bytes += record.Data?.length ?? 0;
      }
      empty = batch.length === 0 ? empty + 1 : 0;
      iterator = page.NextShardIterator;
    }
  }
  return { entries, bytes };
}
