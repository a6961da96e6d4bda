/**
 * The peers webkpl is measured against, written as a user who wants speed would write
 * them: `@aws-sdk/client-kinesis` PutRecords, fire-and-forget (no per-record results, no
 * retries; failures are only counted), at most `maxInFlight` calls at once (webkpl's
 * default), records buffered for at most `bufferedTimeMs` (webkpl's
 * `recordMaxBufferedTime`).
 *
 * - {@linkcode AggSdkSender}: `aws-kinesis-agg` aggregates, one `RecordAggregator` per
 *   shard. Each record's shard is found from the MD5 of its partition key (node:crypto)
 *   and the stream's real shard ranges (ListShards), so every user record in a blob
 *   belongs to the shard the blob is routed to (by its first record's key, as
 *   aws-kinesis-agg sets it). Blobs are closed at webkpl's `aggregationMaxSize` (51,200
 *   bytes), calls at 500 entries or 5 MiB.
 * - {@linkcode PlainSdkSender}: one entry per record, 500 per call.
 * - {@linkcode FairLoop}: the fair peer of the headline ratios, the same work with nothing a
 *   fire-and-forget user would not write (no deadline, no per-call tags or counts). The
 *   two above stay for the latency rows, which need a flush deadline and per-call
 *   settlement.
 *
 * @module
 */
import {
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  type PutRecordsRequestEntry,
} from "@aws-sdk/client-kinesis";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import awsKinesisAgg from "aws-kinesis-agg";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

/** Where and how the peers send. */
export interface PeerOptions {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  stream: string;
  maxInFlight: number;
  bufferedTimeMs: number;
}

/** A user record as the peers take it. */
export interface PeerRecord {
  partitionKey: string;
  data: Uint8Array;
}

/** What the worker drives. */
export interface PeerSender {
  /** Records in failed entries or failed calls. */
  failed: number;
  /** Called with each tag ≥ 0 once the call carrying its record has answered. */
  onSettled: ((tag: number) => void) | undefined;
  /**
   * Buffers a record; may start a call. Returns a promise when calls are queued behind
   * `maxInFlight`, which a caller honouring backpressure awaits.
   */
  add(record: PeerRecord, tag: number): Promise<void> | undefined;
  /** Sends everything buffered and resolves when no call is left. */
  drain(): Promise<void>;
  close(): void;
}

/** 5 MiB, PutRecords' request limit (Σ data + partition key). */
const MAX_REQUEST_BYTES = 5 * 1024 * 1024;
const MAX_REQUEST_ENTRIES = 500;
/** webkpl's `aggregationMaxSize`. */
const AGGREGATE_BYTES = 51_200;
/** aws-kinesis-agg counts the protobuf body only; the blob adds 4 magic + 16 MD5 bytes. */
const AGGREGATE_BODY_BYTES = AGGREGATE_BYTES - 20;

interface Batch {
  entries: PutRecordsRequestEntry[];
  bytes: number;
  /** User records in the call. */
  userRecords: number;
  /** Tags of the user records whose settlement is timed. */
  tags: number[];
}

function newBatch(): Batch {
  return { entries: [], bytes: 0, userRecords: 0, tags: [] };
}

/** Calls, the in-flight limit, the buffering deadline; subclasses decide what an entry is. */
abstract class SdkSender implements PeerSender {
  failed = 0;
  onSettled: ((tag: number) => void) | undefined = undefined;
  protected readonly client: KinesisClient;
  protected readonly options: PeerOptions;
  #batch = newBatch();
  readonly #queue: Batch[] = [];
  #inFlight = 0;
  #buffered = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  protected constructor(client: KinesisClient, options: PeerOptions) {
    this.client = client;
    this.options = options;
  }

  abstract add(record: PeerRecord, tag: number): Promise<void> | undefined;

  /** Closes what the subclass buffers into entries via {@linkcode addEntry}. */
  protected abstract flushBuffers(): void;

  /** Counts a buffered record and arms the deadline for the first one. */
  protected buffered(): Promise<void> | undefined {
    if (this.#buffered++ === 0) {
      this.#timer = setTimeout(() => this.#flushAll(), this.options.bufferedTimeMs);
    }
    if (this.#queue.length === 0) return undefined;
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  protected addEntry(entry: PutRecordsRequestEntry, userRecords: number, tags: number[]): void {
    const bytes = entry.Data!.length + entry.PartitionKey!.length;
    let batch = this.#batch;
    if (
      batch.entries.length === MAX_REQUEST_ENTRIES ||
      (batch.entries.length > 0 && batch.bytes + bytes > MAX_REQUEST_BYTES)
    ) {
      this.#send(batch);
      batch = this.#batch = newBatch();
    }
    batch.entries.push(entry);
    batch.bytes += bytes;
    batch.userRecords += userRecords;
    for (const tag of tags) batch.tags.push(tag);
  }

  drain(): Promise<void> {
    this.#flushAll();
    if (this.#inFlight === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.client.destroy();
  }

  #flushAll(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#buffered = 0;
    this.flushBuffers();
    if (this.#batch.entries.length > 0) {
      this.#send(this.#batch);
      this.#batch = newBatch();
    }
  }

  #send(batch: Batch): void {
    if (this.#inFlight < this.options.maxInFlight) this.#start(batch);
    else this.#queue.push(batch);
  }

  #start(batch: Batch): void {
    this.#inFlight++;
    this.client.send(
      new PutRecordsCommand({ StreamName: this.options.stream, Records: batch.entries }),
    ).then(
      (output) => {
        // FailedRecordCount counts entries; for aggregated entries the records inside fail too.
        if ((output.FailedRecordCount ?? 0) > 0) {
          for (let i = 0; i < batch.entries.length; i++) {
            if (output.Records?.[i]?.ErrorCode) this.failed += this.entryRecords(batch, i);
          }
        }
      },
      () => {
        this.failed += batch.userRecords;
      },
    ).then(() => {
      const onSettled = this.onSettled;
      if (onSettled !== undefined) { for (const tag of batch.tags) onSettled(tag); }
      this.#inFlight--;
      const next = this.#queue.shift();
      if (next !== undefined) this.#start(next);
      if (this.#queue.length === 0 && this.#roomWaiters.length > 0) {
        const waiters = this.#roomWaiters;
        this.#roomWaiters = [];
        for (const resolve of waiters) resolve();
      }
      if (this.#inFlight === 0 && this.#queue.length === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    });
  }

  /** User records in entry `index` of `batch`, for failure counts. */
  protected abstract entryRecords(batch: Batch, index: number): number;
}

function createClient(options: PeerOptions): KinesisClient {
  return new KinesisClient({
    endpoint: options.endpoint,
    region: options.region,
    credentials: options.credentials,
    maxAttempts: 1,
    requestHandler: new FetchHttpHandler(),
  });
}

/** One entry per user record. */
export class PlainSdkSender extends SdkSender {
  static create(options: PeerOptions): Promise<PlainSdkSender> {
    return Promise.resolve(new PlainSdkSender(createClient(options), options));
  }

  add(record: PeerRecord, tag: number): Promise<void> | undefined {
    this.addEntry(
      { Data: record.data, PartitionKey: record.partitionKey },
      1,
      tag < 0 ? NO_TAGS : [tag],
    );
    return this.buffered();
  }

  protected flushBuffers(): void {}

  protected entryRecords(): number {
    return 1;
  }
}

const NO_TAGS: number[] = [];

interface AggRecordAggregator {
  totalBytes: number;
  length(): number;
  calculateUserRecordSize(record: PeerRecord): number;
  addUserRecord(record: PeerRecord): void;
  build(): { partitionKey: string; data: Uint8Array; ExplicitHashKey?: string } | undefined;
}

const agg = awsKinesisAgg as unknown as { RecordAggregator: new () => AggRecordAggregator };

/** Finds a partition key's shard from the stream's real shard ranges. */
class ShardRouter {
  /** Each open shard's starting hash key, 16 bytes big-endian, ascending. */
  readonly #starts: Buffer[];

  constructor(starts: bigint[]) {
    this.#starts = starts.map((start) => Buffer.from(start.toString(16).padStart(32, "0"), "hex"));
  }

  get shards(): number {
    return this.#starts.length;
  }

  shardOf(partitionKey: string): number {
    const hash = createHash("md5").update(partitionKey, "utf8").digest();
    const starts = this.#starts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (Buffer.compare(starts[mid]!, hash) <= 0) low = mid;
      else high = mid - 1;
    }
    return low;
  }
}

async function openShardStarts(client: KinesisClient, stream: string): Promise<bigint[]> {
  const output = await client.send(new ListShardsCommand({ StreamName: stream }));
  const starts: bigint[] = [];
  for (const shard of output.Shards ?? []) {
    if (shard.SequenceNumberRange?.EndingSequenceNumber !== undefined) continue;
    starts.push(BigInt(shard.HashKeyRange!.StartingHashKey!));
  }
  if (output.NextToken !== undefined) throw new Error("The benchmark stream has too many shards");
  return starts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** aws-kinesis-agg per shard, blobs of at most 51,200 bytes. */
export class AggSdkSender extends SdkSender {
  readonly #router: ShardRouter;
  readonly #aggregators: AggRecordAggregator[];
  readonly #tags: number[][];
  /** User records per entry of the batch being filled, in entry order, for failures. */
  readonly #entryCounts = new WeakMap<PutRecordsRequestEntry, number>();

  private constructor(client: KinesisClient, options: PeerOptions, router: ShardRouter) {
    super(client, options);
    this.#router = router;
    this.#aggregators = Array.from({ length: router.shards }, () => new agg.RecordAggregator());
    this.#tags = Array.from({ length: router.shards }, () => []);
  }

  static async create(options: PeerOptions): Promise<AggSdkSender> {
    const client = createClient(options);
    const router = new ShardRouter(await openShardStarts(client, options.stream));
    return new AggSdkSender(client, options, router);
  }

  add(record: PeerRecord, tag: number): Promise<void> | undefined {
    const shard = this.#router.shardOf(record.partitionKey);
    const aggregator = this.#aggregators[shard]!;
    if (
      aggregator.length() > 0 &&
      aggregator.totalBytes + aggregator.calculateUserRecordSize(record) > AGGREGATE_BODY_BYTES
    ) {
      this.#emit(shard);
    }
    aggregator.addUserRecord(record);
    if (tag >= 0) this.#tags[shard]!.push(tag);
    return this.buffered();
  }

  protected flushBuffers(): void {
    for (let shard = 0; shard < this.#aggregators.length; shard++) {
      if (this.#aggregators[shard]!.length() > 0) this.#emit(shard);
    }
  }

  protected entryRecords(batch: Batch, index: number): number {
    return this.#entryCounts.get(batch.entries[index]!) ?? 1;
  }

  #emit(shard: number): void {
    const aggregator = this.#aggregators[shard]!;
    const records = aggregator.length();
    const blob = aggregator.build()!;
    const entry: PutRecordsRequestEntry = blob.ExplicitHashKey === undefined
      ? { Data: blob.data, PartitionKey: blob.partitionKey }
      : { Data: blob.data, PartitionKey: blob.partitionKey, ExplicitHashKey: blob.ExplicitHashKey };
    this.#entryCounts.set(entry, records);
    const tags = this.#tags[shard]!;
    this.addEntry(entry, records, tags);
    if (tags.length > 0) this.#tags[shard] = [];
  }
}

// ---------------------------------------------------------------------------------------
// The fair peers: the tightest loop a competent user writes instead of using a library.

/**
 * The hand-written loop the headline ratios use, with nothing a fire-and-forget user would
 * not write: per record, node:crypto's MD5 of the key and a binary search of the shards'
 * starting hash keys; one `aws-kinesis-agg` `RecordAggregator` per shard closed at 51,200
 * bytes; `PutRecords` of at most 500 entries or 5 MiB; at most `maxInFlight` calls, the
 * loop waiting for one to finish when that many are out. No per-record state, no timers,
 * no retries; only failed entries (aggregated or not) are counted. `aggregation: false`
 * makes it the plain SDK loop: one entry per record, 500 per call.
 *
 * Unlike {@linkcode AggSdkSender} it has no buffering deadline and settles nothing per
 * record, so it runs in throughput mode only.
 */
export class FairLoop {
  /** Entries (aggregated or not) reported failed, plus the entries of failed calls. */
  failed = 0;
  readonly #client: KinesisClient;
  readonly #stream: string;
  readonly #maxInFlight: number;
  readonly #router: ShardRouter | undefined;
  readonly #aggregators: AggRecordAggregator[];
  #entries: PutRecordsRequestEntry[] = [];
  #bytes = 0;
  #inFlight = 0;
  #wake: (() => void) | undefined;

  private constructor(client: KinesisClient, options: PeerOptions, router?: ShardRouter) {
    this.#client = client;
    this.#stream = options.stream;
    this.#maxInFlight = options.maxInFlight;
    this.#router = router;
    this.#aggregators = Array.from(
      { length: router?.shards ?? 0 },
      () => new agg.RecordAggregator(),
    );
  }

  /** Lists the stream's shards when aggregating, for the routing every record needs. */
  static async create(options: PeerOptions, aggregation: boolean): Promise<FairLoop> {
    const client = createClient(options);
    if (!aggregation) return new FairLoop(client, options);
    return new FairLoop(
      client,
      options,
      new ShardRouter(await openShardStarts(client, options.stream)),
    );
  }

  /** Takes a record; returns a promise, to await, when a call had to wait for room. */
  add(record: PeerRecord): Promise<void> | undefined {
    const router = this.#router;
    if (router === undefined) {
      return this.#push({ Data: record.data, PartitionKey: record.partitionKey });
    }
    const shard = router.shardOf(record.partitionKey);
    const aggregator = this.#aggregators[shard]!;
    let wait: Promise<void> | undefined;
    if (
      aggregator.length() > 0 &&
      aggregator.totalBytes + aggregator.calculateUserRecordSize(record) > AGGREGATE_BODY_BYTES
    ) {
      wait = this.#emit(aggregator);
    }
    aggregator.addUserRecord(record);
    return wait;
  }

  /** Sends what is buffered and resolves when no call is left. */
  async drain(): Promise<void> {
    for (const aggregator of this.#aggregators) {
      if (aggregator.length() > 0) await this.#emit(aggregator);
    }
    if (this.#entries.length > 0) await this.#send();
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#wake = resolve);
  }

  close(): void {
    this.#client.destroy();
  }

  #emit(aggregator: AggRecordAggregator): Promise<void> | undefined {
    const blob = aggregator.build()!;
    return this.#push({ Data: blob.data, PartitionKey: blob.partitionKey });
  }

  #push(entry: PutRecordsRequestEntry): Promise<void> | undefined {
    const bytes = entry.Data!.length + entry.PartitionKey!.length;
    let wait: Promise<void> | undefined;
    if (this.#entries.length > 0 && this.#bytes + bytes > MAX_REQUEST_BYTES) wait = this.#send();
    this.#entries.push(entry);
    this.#bytes += bytes;
    if (this.#entries.length === MAX_REQUEST_ENTRIES) wait = this.#send();
    return wait;
  }

  async #send(): Promise<void> {
    const records = this.#entries;
    this.#entries = [];
    this.#bytes = 0;
    while (this.#inFlight >= this.#maxInFlight) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    this.#inFlight++;
    this.#client.send(new PutRecordsCommand({ StreamName: this.#stream, Records: records })).then(
      (output) => this.failed += output.FailedRecordCount ?? 0,
      () => this.failed += records.length,
    ).finally(() => {
      this.#inFlight--;
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
  }
}
