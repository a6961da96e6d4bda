/**
 * A Kinesis capacity model that runs in process: streams of shards with hash ranges, and a
 * PutRecords that routes every entry the way Kinesis does (explicit hash key, else the MD5
 * of the partition key), stores it with a per-shard sequence number, or answers it with
 * `ProvisionedThroughputExceededException` when the shard's token buckets cannot pay for
 * it. The buckets hold Kinesis' per-shard write limits (1000 records/s and 1 MiB/s of data
 * plus partition key) and by default one second of capacity, which is how a shard absorbs
 * short bursts.
 *
 * Time comes from an injected {@linkcode Clock}, so many producers and shards can be
 * simulated without real time passing; the model counts, per second, what each shard and
 * each producer got accepted and throttled. Web APIs only.
 *
 * @example Two producers' clients share one model
 * ```ts
 * import { KinesisModel } from "./kinesis_model.ts";
 * import { systemClock } from "../src/clock.ts";
 *
 * const model = new KinesisModel({ clock: systemClock, streams: { events: 2 } });
 * const client = model.client("producer-1");
 * const signal = new AbortController().signal;
 * const out = await client.putRecords({
 *   StreamName: "events",
 *   Records: [{ PartitionKey: "k", Data: new Uint8Array(10) }],
 * }, { signal });
 * console.log(out.FailedRecordCount); // 0
 * console.log(model.records("events").length); // 1
 * ```
 *
 * @module
 */

import { streamNameOf } from "../src/_stream_ref.ts";
import { deaggregate, isAggregated } from "../src/codec.ts";
import type { Clock } from "../src/clock.ts";
import {
  compareHashKeys,
  createHashKey,
  type HashKey,
  hashKeyFromDecimal,
  hashPartitionKey,
  parseExplicitHashKey,
} from "../src/hash_key.ts";
import type {
  KinesisCallOptions,
  KinesisClient,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
  PutRecordsResultEntry,
} from "../src/kinesis_client.ts";

/** Kinesis' write limit per shard, in records per second. */
export const MODEL_RECORDS_PER_SECOND = 1000;
/** Kinesis' write limit per shard, in bytes (data plus partition key) per second. */
export const MODEL_BYTES_PER_SECOND = 1024 * 1024;
/** The error code of a throttled entry. */
export const THROTTLED = "ProvisionedThroughputExceededException";

const MAX_HASH = (1n << 128n) - 1n;
const UTF8 = new TextEncoder();

/** Options for {@linkcode KinesisModel}. */
export interface KinesisModelOptions {
  /** Time and timers. */
  clock: Clock;
  /** Stream names and their shard counts (equal hash ranges, as CreateStream makes them). */
  streams: Record<string, number>;
  /** Seconds of capacity each shard's buckets hold. @default {1} */
  bucketSeconds?: number;
  /** How long a call takes, on the clock. @default {0} */
  latencyMs?: number;
  /**
   * Spreads each call's latency uniformly over ±`latencyJitter` of `latencyMs`, so calls of
   * several producers do not reach the shards in a fixed order. @default {0}
   */
  latencyJitter?: number;
  /** Random source in [0, 1) for the latency jitter. @default {Math.random} */
  random?: () => number;
  /** Clock time where second 0 of the counters starts. @default {the time of creation} */
  origin?: number;
  /** Keep accepted entries so {@linkcode KinesisModel.records} can return them. @default {true} */
  keepRecords?: boolean;
}

/** What one shard or one producer got in one second. */
export interface ModelCounts {
  /** Accepted entries (Kinesis records). */
  entries: number;
  /** User records in the accepted entries (aggregates counted by their members). */
  userRecords: number;
  /** Accepted bytes, data plus partition key. */
  bytes: number;
  /** Entries answered `ProvisionedThroughputExceededException`. */
  throttled: number;
}

/** One second of the model's counters. */
export interface ModelSecond {
  /** Whole seconds since the model was created. */
  second: number;
  /** Per shard id. */
  shards: Record<string, ModelCounts>;
  /** Per producer id (the name given to {@linkcode KinesisModel.client}). */
  producers: Record<string, ModelCounts>;
}

/** A user record the model stored, deaggregated. */
export interface ModelRecord {
  stream: string;
  shardId: string;
  sequenceNumber: string;
  subSequenceNumber: number;
  partitionKey: string;
  explicitHashKey?: string;
  data: Uint8Array;
  producer: string;
}

interface ModelShard {
  id: string;
  start: HashKey;
  end: HashKey;
  startDecimal: string;
  endDecimal: string;
  records: number;
  bytes: number;
  refilledAt: number;
  sequence: number;
}

interface StoredEntry {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  explicitHashKey: string | undefined;
  data: Uint8Array;
  producer: string;
}

/** An error shaped like the AWS SDK's service exceptions: its name is the Kinesis code. */
function serviceError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** Kinesis shards and their write limits, on an injected clock. */
export class KinesisModel {
  readonly #clock: Clock;
  readonly #streams = new Map<string, ModelShard[]>();
  readonly #recordCapacity: number;
  readonly #byteCapacity: number;
  readonly #latencyMs: number;
  readonly #latencyJitter: number;
  readonly #random: () => number;
  readonly #keep: boolean;
  readonly #startedAt: number;
  readonly #stored = new Map<string, StoredEntry[]>();
  readonly #seconds: ModelSecond[] = [];
  readonly #hash = createHashKey();

  /**
   * Creates the streams, every shard's buckets full.
   *
   * @param options The clock, the streams and the limits.
   * @throws {RangeError} When a shard count or `bucketSeconds` is not positive.
   */
  constructor(options: KinesisModelOptions) {
    this.#clock = options.clock;
    const bucketSeconds = options.bucketSeconds ?? 1;
    if (!(bucketSeconds > 0)) {
      throw new RangeError(`'bucketSeconds' must be positive: current value is ${bucketSeconds}`);
    }
    this.#recordCapacity = MODEL_RECORDS_PER_SECOND * bucketSeconds;
    this.#byteCapacity = MODEL_BYTES_PER_SECOND * bucketSeconds;
    this.#latencyMs = options.latencyMs ?? 0;
    this.#latencyJitter = options.latencyJitter ?? 0;
    this.#random = options.random ?? Math.random;
    this.#keep = options.keepRecords ?? true;
    this.#startedAt = options.origin ?? this.#clock.now();
    for (const [name, count] of Object.entries(options.streams)) {
      if (!Number.isInteger(count) || count < 1) {
        throw new RangeError(`Stream '${name}' needs a positive whole shard count: got ${count}`);
      }
      this.#streams.set(name, this.#evenShards(count));
      this.#stored.set(name, []);
    }
  }

  /**
   * A client for one producer: what it gets accepted and throttled is counted under `id`.
   *
   * @param id The producer's name in {@linkcode KinesisModel.seconds}.
   * @returns A client to pass as the producer's `kinesisClient`.
   */
  client(id = "producer"): KinesisClient {
    return {
      putRecords: (input, options) => this.#answer(options, () => this.putRecords(input, id)),
      listShards: (input, options) => this.#answer(options, () => this.listShards(input)),
    };
  }

  /**
   * Applies one PutRecords request now.
   *
   * @param input The request.
   * @param producer Who sent it, for the per-producer counts.
   * @returns The response, one entry per request entry.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream.
   */
  putRecords(input: PutRecordsInput, producer = "producer"): PutRecordsOutput {
    const stream = input.StreamName ?? streamNameOf(input.StreamARN ?? "");
    const shards = this.#shardsOf(stream);
    const now = this.#clock.now();
    const second = this.#second(now);
    const producerCounts = second.producers[producer] ??= emptyCounts();
    const results: PutRecordsResultEntry[] = [];
    let failed = 0;
    for (const entry of input.Records) {
      const shard = this.#route(shards, entry.PartitionKey, entry.ExplicitHashKey);
      const shardCounts = second.shards[shard.id] ??= emptyCounts();
      const cost = entry.Data.length + UTF8.encode(entry.PartitionKey).length;
      this.#refill(shard, now);
      // An entry bigger than the byte bucket still goes once the bucket is full.
      if (shard.records < 1 || shard.bytes < Math.min(cost, this.#byteCapacity)) {
        failed++;
        shardCounts.throttled++;
        producerCounts.throttled++;
        results.push({
          ErrorCode: THROTTLED,
          ErrorMessage: `Rate exceeded for shard ${shard.id} in stream ${input.StreamName}.`,
        });
        continue;
      }
      shard.records -= 1;
      shard.bytes -= cost;
      const sequenceNumber = `49${shard.id.slice(-6)}${String(++shard.sequence).padStart(24, "0")}`;
      const userRecords = isAggregated(entry.Data) ? deaggregate(asInput(entry)).length : 1;
      for (const counts of [shardCounts, producerCounts]) {
        counts.entries++;
        counts.userRecords += userRecords;
        counts.bytes += cost;
      }
      if (this.#keep) {
        this.#stored.get(stream)!.push({
          shardId: shard.id,
          sequenceNumber,
          partitionKey: entry.PartitionKey,
          explicitHashKey: entry.ExplicitHashKey,
          data: entry.Data,
          producer,
        });
      }
      results.push({ SequenceNumber: sequenceNumber, ShardId: shard.id });
    }
    return { FailedRecordCount: failed, Records: results };
  }

  /**
   * Lists every shard of a stream in one page.
   *
   * @param input The request; `StreamName` or `StreamARN` is required.
   * @returns The shards with their hash ranges.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream.
   */
  listShards(input: ListShardsInput): ListShardsOutput {
    const shards = this.#shardsOf(input.StreamName ?? streamNameOf(input.StreamARN ?? ""));
    return {
      Shards: shards.map((shard) => ({
        ShardId: shard.id,
        HashKeyRange: { StartingHashKey: shard.startDecimal, EndingHashKey: shard.endDecimal },
      })),
    };
  }

  /**
   * The user records stored in `stream`, deaggregated with the producer's own codec, in
   * the order they were stored.
   *
   * @param stream A stream of the model.
   * @returns The records; empty when `keepRecords` is off.
   */
  records(stream: string): ModelRecord[] {
    const out: ModelRecord[] = [];
    for (const entry of this.#stored.get(stream) ?? []) {
      for (const user of deaggregate(asStored(entry))) {
        const record: ModelRecord = {
          stream,
          shardId: entry.shardId,
          sequenceNumber: entry.sequenceNumber,
          subSequenceNumber: user.subSequenceNumber,
          partitionKey: user.partitionKey,
          data: user.data,
          producer: entry.producer,
        };
        if (user.explicitHashKey !== undefined) record.explicitHashKey = user.explicitHashKey;
        out.push(record);
      }
    }
    return out;
  }

  /**
   * The per-second counters so far, one element per second since the model was created
   * (seconds without traffic have empty maps).
   *
   * @returns The counters; live objects, read them, do not change them.
   */
  seconds(): ModelSecond[] {
    this.#second(this.#clock.now());
    return this.#seconds;
  }

  #answer<T>(options: KinesisCallOptions, apply: () => T): Promise<T> {
    const signal = options.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#latencyMs <= 0) {
      return new Promise<T>((resolve) => resolve(apply()));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#clock.clearTimer(timer);
        reject(signal.reason);
      };
      const timer = this.#clock.setTimer(() => {
        signal.removeEventListener("abort", onAbort);
        try {
          resolve(apply());
        } catch (error) {
          reject(error);
        }
      }, this.#latencyMs * (1 + this.#latencyJitter * (2 * this.#random() - 1)));
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  #second(now: number): ModelSecond {
    const index = Math.max(0, Math.floor((now - this.#startedAt) / 1000));
    while (this.#seconds.length <= index) {
      this.#seconds.push({ second: this.#seconds.length, shards: {}, producers: {} });
    }
    return this.#seconds[index]!;
  }

  #shardsOf(stream: string): ModelShard[] {
    const shards = this.#streams.get(stream);
    if (shards === undefined) {
      throw serviceError("ResourceNotFoundException", `Stream ${stream} not found`);
    }
    return shards;
  }

  #route(shards: ModelShard[], partitionKey: string, explicitHashKey?: string): ModelShard {
    if (explicitHashKey === undefined) hashPartitionKey(partitionKey, this.#hash);
    else parseExplicitHashKey(explicitHashKey, this.#hash);
    let low = 0;
    let high = shards.length - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareHashKeys(shards[mid]!.end, this.#hash) < 0) low = mid + 1;
      else high = mid;
    }
    return shards[low]!;
  }

  #refill(shard: ModelShard, now: number): void {
    const elapsed = now - shard.refilledAt;
    if (elapsed <= 0) return;
    shard.records = Math.min(
      this.#recordCapacity,
      shard.records + (elapsed * MODEL_RECORDS_PER_SECOND) / 1000,
    );
    shard.bytes = Math.min(
      this.#byteCapacity,
      shard.bytes + (elapsed * MODEL_BYTES_PER_SECOND) / 1000,
    );
    shard.refilledAt = now;
  }

  #evenShards(count: number): ModelShard[] {
    const width = (MAX_HASH + 1n) / BigInt(count);
    const now = this.#clock.now();
    return Array.from({ length: count }, (_, i) => {
      const start = width * BigInt(i);
      const end = i === count - 1 ? MAX_HASH : start + width - 1n;
      return {
        id: `shardId-${String(i).padStart(12, "0")}`,
        start: hashKeyFromDecimal(start.toString()),
        end: hashKeyFromDecimal(end.toString()),
        startDecimal: start.toString(),
        endDecimal: end.toString(),
        records: this.#recordCapacity,
        bytes: this.#byteCapacity,
        refilledAt: now,
        sequence: 0,
      };
    });
  }
}

function emptyCounts(): ModelCounts {
  return { entries: 0, userRecords: 0, bytes: 0, throttled: 0 };
}

function asInput(entry: { Data: Uint8Array; PartitionKey: string }) {
  return { data: entry.Data, partitionKey: entry.PartitionKey };
}

function asStored(entry: StoredEntry) {
  return {
    data: entry.data,
    partitionKey: entry.partitionKey,
    explicitHashKey: entry.explicitHashKey,
    sequenceNumber: entry.sequenceNumber,
  };
}

/** The decimal form of the first hash key of shard `index` of `count` equal shards. */
export function shardStartHashKey(index: number, count: number): string {
  return ((MAX_HASH + 1n) / BigInt(count) * BigInt(index)).toString();
}
