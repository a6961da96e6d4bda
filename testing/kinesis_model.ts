/**
 * A Kinesis that runs in process: streams of shards with hash ranges, and a PutRecords that
 * routes every entry the way Kinesis does (explicit hash key, else the MD5 of the partition
 * key), stores it with a per-shard sequence number, or answers it with
 * `ProvisionedThroughputExceededException` when the shard's token buckets cannot pay for it.
 * The buckets hold Kinesis' per-shard write limits (1000 records/s and 1 MiB/s of data plus
 * partition key) and by default one second of capacity, which is how a shard absorbs short
 * bursts; `limits: false` turns them off.
 *
 * It reshards (split and merge, parents closed and children opened as Kinesis does), lists
 * shards with `ShardFilter` and `NextToken`, accepts a `StreamARN` in place of a `StreamName`,
 * and fails calls on a script: throttles, 5xx, lost responses and permanent errors, by count,
 * by seeded probability or by predicate. What it stored can be read back deaggregated with the
 * producer's own codec, per shard in sequence order or per partition key.
 *
 * Time comes from a {@linkcode Clock} (the system clock unless one is injected), so many
 * producers and shards can be simulated without real time passing; the model counts, per
 * second, what each shard and each producer got accepted and throttled. Web APIs only.
 *
 * @example Two producers' clients share one model
 * ```ts
 * import { InMemoryKinesis } from "./kinesis_model.ts";
 *
 * const kinesis = new InMemoryKinesis({ streams: { events: 2 } });
 * const client = kinesis.client("producer-1");
 * const signal = new AbortController().signal;
 * const out = await client.putRecords({
 *   StreamName: "events",
 *   Records: [{ PartitionKey: "k", Data: new Uint8Array(10) }],
 * }, { signal });
 * console.log(out.FailedRecordCount); // 0
 * console.log(kinesis.records("events").length); // 1
 * ```
 *
 * @module
 */

import { deaggregate, isAggregated } from "../src/codec.ts";
import { type Clock, systemClock } from "../src/clock.ts";
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
  ListedShard,
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
// AWS: "PutRecords", Amazon Kinesis Data Streams API Reference: 500 entries, keys of 1 to
// 256 characters, records up to 10 MiB (a stream takes 1 MiB unless its MaxRecordSizeInKiB
// is raised).
const MAX_ENTRIES = 500;
const MAX_PARTITION_KEY_LENGTH = 256;
const MAX_RECORD_BYTES = 10 * 1024 * 1024;
// AWS: "ListShards", same reference: at most 1000 shards a page, whatever MaxResults asks.
const MAX_PAGE = 1000;
const ARN = /^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream\/([A-Za-z0-9_.-]{1,128})$/;

/** Per-shard write limits; either may be `Infinity`. */
export interface ShardLimits {
  /** Records per second. @default {1000} */
  recordsPerSecond?: number;
  /** Bytes of data plus partition key per second. @default {1048576} */
  bytesPerSecond?: number;
}

/** A stream to create: its shard count, and optionally its largest record. */
export interface StreamSpec {
  /** Open shards, with equal hash ranges as CreateStream makes them. */
  shards: number;
  /**
   * The stream's `MaxRecordSizeInKiB`, 1024 to 10240: a larger entry fails alone with
   * `InvalidArgumentException`. @default {1024}
   */
  maxRecordSizeKiB?: number;
}

/** Options for {@linkcode InMemoryKinesis}. */
export interface InMemoryKinesisOptions {
  /** Time and timers. @default {the system clock} */
  clock?: Clock;
  /** Stream names and their shard counts (equal hash ranges), or specs. @default {{}} */
  streams?: Record<string, number | StreamSpec>;
  /** The region stream ARNs name. @default {"us-east-1"} */
  region?: string;
  /** The account stream ARNs name. @default {"123456789012"} */
  accountId?: string;
  /** Per-shard write limits, or `false` for none. @default {Kinesis' limits} */
  limits?: ShardLimits | false;
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
  /** Keep accepted entries so {@linkcode InMemoryKinesis.records} can return them. @default {true} */
  keepRecords?: boolean;
  /** Page size of ListShards when smaller than the request's `MaxResults`. @default {1000} */
  listShardsPageSize?: number;
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
  /** Per producer id (the name given to {@linkcode InMemoryKinesis.client}). */
  producers: Record<string, ModelCounts>;
}

/** A user record the model stored, deaggregated. */
export interface ModelRecord {
  /** The stream's name. */
  stream: string;
  /** The shard that stored it. */
  shardId: string;
  /** The Kinesis record's sequence number (shared by the members of an aggregate). */
  sequenceNumber: string;
  /** The position inside its aggregate; 0 for a record sent alone. */
  subSequenceNumber: number;
  /** The user record's partition key. */
  partitionKey: string;
  /** The user record's explicit hash key, when it had one. */
  explicitHashKey?: string;
  /** The user record's bytes. */
  data: Uint8Array;
  /** Whether it travelled inside an aggregate. */
  aggregated: boolean;
  /** Who sent it: the name given to {@linkcode InMemoryKinesis.client}. */
  producer: string;
}

/** One shard, as {@linkcode InMemoryKinesis.shards} describes it. */
export interface ModelShard {
  /** `shardId-000000000000`. */
  id: string;
  /** First hash key, decimal. */
  startingHashKey: string;
  /** Last hash key, decimal. */
  endingHashKey: string;
  /** The shard it was split from, or the first shard of the merge that made it. */
  parentShardId?: string;
  /** The second shard of the merge that made it. */
  adjacentParentShardId?: string;
  /** Whether it still takes records. */
  open: boolean;
}

/** A request that names a stream by name or by ARN. */
export interface StreamRef {
  /** The stream's name. */
  StreamName?: string;
  /** The stream's ARN. */
  StreamARN?: string;
}

/** A DescribeStreamSummary response, the fields the model fills. */
export interface StreamSummaryOutput {
  /** The stream. */
  StreamDescriptionSummary: {
    /** Its name. */
    StreamName: string;
    /** Its ARN. */
    StreamARN: string;
    /** Always `ACTIVE`: resharding is immediate. */
    StreamStatus: "ACTIVE";
    /** Open shards. */
    OpenShardCount: number;
    /** The largest record it takes, in KiB. */
    MaxRecordSizeInKiB: number;
  };
}

/** What a scripted failure does. */
export type FaultOutcome =
  | "throttle"
  | "internalFailure"
  | "serviceUnavailable"
  | "resourceNotFound"
  | "accessDenied"
  | "lostResponse"
  | "noResponse"
  | { code: string; message?: string; status?: number };

/** The calls the model answers. */
export type Operation = "putRecords" | "listShards" | "describeStreamSummary";

/** The call (and for entry faults, the entry) a fault may fail. */
export interface FaultCall {
  /** The operation. */
  operation: Operation;
  /** The stream's name (a later ListShards page: the stream of its token). */
  stream: string;
  /** Calls of this operation before this one, from 0. */
  call: number;
  /** The request. */
  input: PutRecordsInput | ListShardsInput | StreamRef;
  /** For entry faults: the entry's index in the request. */
  index?: number;
  /** For entry faults: the shard the entry routes to. */
  shardId?: string;
  /** For entry faults: the entry. */
  entry?: PutRecordsInput["Records"][number];
}

/** A failure to script with {@linkcode InMemoryKinesis.fail}. */
export interface FaultOptions {
  /**
   * What happens: an error code for the whole call (`throttle`, `internalFailure` (500),
   * `serviceUnavailable` (503), `resourceNotFound`, `accessDenied`, or any code), or for
   * single entries with `entries: true`; `lostResponse` stores the request and then fails the
   * call as a broken connection; `noResponse` stores it and never answers until the call is
   * aborted (the producer's request timeout).
   */
  outcome: FaultOutcome;
  /** Fail single PutRecords entries instead of the call (`throttle`, `internalFailure` or a code). @default {false} */
  entries?: boolean;
  /** The operation. @default {"putRecords"} */
  operation?: Operation;
  /** Only calls (or entries) for this stream, by name or ARN. @default {every stream} */
  stream?: string;
  /** Let this many matching calls (or entries) through first. @default {0} */
  skip?: number;
  /** Fail at most this many, then the fault is spent. @default {Infinity} */
  times?: number;
  /** Fail each match with this probability. @default {1} */
  probability?: number;
  /** Seed of the random draws for `probability`, so a run repeats. @default {1} */
  seed?: number;
  /** Fail only matches this returns `true` for. */
  when?: (call: FaultCall) => boolean;
}

/** A scripted failure: how often it fired; `remove()` ends it. */
export interface Fault {
  /** How many calls or entries it failed. */
  readonly hits: number;
  /** Ends the fault. */
  remove(): void;
}

interface Shard extends ModelShard {
  index: number;
  start: HashKey;
  end: HashKey;
  records: number;
  bytes: number;
  refilledAt: number;
  sequence: bigint;
  endingSequenceNumber?: string;
}

interface Stream {
  name: string;
  shards: Shard[];
  open: Shard[];
  maxRecordBytes: number;
  stored: StoredEntry[];
}

interface StoredEntry {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  explicitHashKey: string | undefined;
  data: Uint8Array;
  producer: string;
}

interface FaultRule {
  options: FaultOptions;
  matches: number;
  hits: number;
  random: () => number;
}

/** An error shaped like the AWS SDK's service exceptions: its name is the Kinesis code. */
function serviceError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
  });
}

const OUTCOMES = {
  throttle: [THROTTLED, "Rate exceeded for the stream", 400],
  internalFailure: ["InternalFailure", "Internal service failure.", 500],
  serviceUnavailable: ["ServiceUnavailable", "Service Unavailable", 503],
  resourceNotFound: ["ResourceNotFoundException", "Stream not found", 400],
  accessDenied: ["AccessDeniedException", "User is not authorized to perform this action", 400],
} as const;

/**
 * Kinesis streams, shards and their write limits in process, on an injected clock.
 *
 * @example A scripted throttle
 * ```ts
 * import assert from "node:assert/strict";
 * import { InMemoryKinesis } from "./kinesis_model.ts";
 *
 * const kinesis = new InMemoryKinesis({ streams: { s: 1 } });
 * kinesis.fail({ outcome: "throttle", entries: true, times: 1 });
 * const out = kinesis.putRecords({
 *   StreamName: "s",
 *   Records: [{ PartitionKey: "a", Data: new Uint8Array(1) }, { PartitionKey: "b", Data: new Uint8Array(1) }],
 * });
 * assert.equal(out.FailedRecordCount, 1);
 * assert.equal(out.Records![0]!.ErrorCode, "ProvisionedThroughputExceededException");
 * ```
 */
export class InMemoryKinesis {
  readonly #clock: Clock;
  readonly #streams = new Map<string, Stream>();
  readonly #recordsPerSecond: number;
  readonly #bytesPerSecond: number;
  readonly #recordCapacity: number;
  readonly #byteCapacity: number;
  readonly #latencyMs: number;
  readonly #latencyJitter: number;
  readonly #random: () => number;
  readonly #keep: boolean;
  readonly #startedAt: number;
  readonly #region: string;
  readonly #accountId: string;
  readonly #pageSize: number;
  readonly #seconds: ModelSecond[] = [];
  readonly #hash = createHashKey();
  readonly #faults: FaultRule[] = [];
  readonly #calls = { putRecords: 0, listShards: 0, describeStreamSummary: 0 };

  /**
   * Creates the streams, every shard's buckets full.
   *
   * @param options The clock, the streams and the limits.
   * @throws {RangeError} When a shard count, a limit or `bucketSeconds` is not positive.
   */
  constructor(options: InMemoryKinesisOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const bucketSeconds = options.bucketSeconds ?? 1;
    if (!(bucketSeconds > 0)) {
      throw new RangeError(
        `Cannot create InMemoryKinesis as 'bucketSeconds' must be positive: current value is ${bucketSeconds}`,
      );
    }
    const limits = options.limits === false
      ? { recordsPerSecond: Infinity, bytesPerSecond: Infinity }
      : options.limits ?? {};
    this.#recordsPerSecond = positive("limits.recordsPerSecond", limits.recordsPerSecond) ??
      MODEL_RECORDS_PER_SECOND;
    this.#bytesPerSecond = positive("limits.bytesPerSecond", limits.bytesPerSecond) ??
      MODEL_BYTES_PER_SECOND;
    this.#recordCapacity = this.#recordsPerSecond * bucketSeconds;
    this.#byteCapacity = this.#bytesPerSecond * bucketSeconds;
    this.#latencyMs = options.latencyMs ?? 0;
    this.#latencyJitter = options.latencyJitter ?? 0;
    this.#random = options.random ?? Math.random;
    this.#keep = options.keepRecords ?? true;
    this.#startedAt = options.origin ?? this.#clock.now();
    this.#region = options.region ?? "us-east-1";
    this.#accountId = options.accountId ?? "123456789012";
    this.#pageSize = positive("listShardsPageSize", options.listShardsPageSize) ?? MAX_PAGE;
    for (const [name, spec] of Object.entries(options.streams ?? {})) {
      this.createStream(name, typeof spec === "number" ? { shards: spec } : spec);
    }
  }

  /**
   * Creates a stream with equal hash ranges, as CreateStream does.
   *
   * @param name The stream's name.
   * @param spec Its shard count and largest record.
   * @returns The stream's ARN.
   * @throws {RangeError} When the shard count is not a positive whole number or the record
   * size is outside 1024 to 10240 KiB.
   * @throws {Error} Named `ResourceInUseException` when the stream exists.
   */
  createStream(name: string, spec: StreamSpec): string {
    const count = spec.shards;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(
        `Cannot create stream '${name}' as 'shards' must be a positive whole number: current value is ${count}`,
      );
    }
    const kib = spec.maxRecordSizeKiB ?? 1024;
    if (!Number.isInteger(kib) || kib < 1024 || kib > 10240) {
      throw new RangeError(
        `Cannot create stream '${name}' as 'maxRecordSizeKiB' must be between 1024 and 10240: current value is ${kib}`,
      );
    }
    if (this.#streams.has(name)) {
      throw serviceError("ResourceInUseException", `Stream ${name} already exists`);
    }
    const stream: Stream = { name, shards: [], open: [], maxRecordBytes: kib * 1024, stored: [] };
    const width = (MAX_HASH + 1n) / BigInt(count);
    for (let i = 0; i < count; i++) {
      const start = width * BigInt(i);
      this.#addShard(stream, start, i === count - 1 ? MAX_HASH : start + width - 1n, {});
    }
    this.#streams.set(name, stream);
    return this.streamArn(name);
  }

  /**
   * The ARN of a stream of this model.
   *
   * @param stream The stream's name.
   * @returns `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
   */
  streamArn(stream: string): string {
    return `arn:aws:kinesis:${this.#region}:${this.#accountId}:stream/${stream}`;
  }

  /**
   * A client for one producer: what it gets accepted and throttled is counted under `id`.
   * Calls answer after `latencyMs`, and honour their abort signal.
   *
   * @param id The producer's name in {@linkcode InMemoryKinesis.seconds} and in stored records.
   * @returns A client to pass as the producer's `kinesisClient`.
   */
  client(id = "producer"): KinesisClient {
    const client = {
      putRecords: (input: PutRecordsInput, options: KinesisCallOptions) =>
        this.#answer(options, "putRecords", input, () => this.#put(input, id)),
      listShards: (input: ListShardsInput, options: KinesisCallOptions) =>
        this.#answer(options, "listShards", input, () => this.#list(input)),
      // Not yet part of the producer's interface; the shape of the SDK's call, for a producer
      // that reads the stream's record size limit.
      describeStreamSummary: (input: StreamRef, options: KinesisCallOptions) =>
        this.#answer(
          options,
          "describeStreamSummary",
          input,
          () => this.describeStreamSummary(input),
        ),
    };
    return client;
  }

  /**
   * Answers DescribeStreamSummary: the stream's name, ARN, status, open shard count and
   * `MaxRecordSizeInKiB`.
   *
   * @param input `StreamName` or `StreamARN`.
   * @returns The summary, as the SDK returns it.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream, or a scripted
   * fault's code.
   */
  describeStreamSummary(input: StreamRef): StreamSummaryOutput {
    return this.#settle(
      this.#pickFault("describeStreamSummary", input),
      () => this.#describe(input),
    );
  }

  #describe(input: StreamRef): StreamSummaryOutput {
    const stream = this.#resolve(input);
    return {
      StreamDescriptionSummary: {
        StreamName: stream.name,
        StreamARN: this.streamArn(stream.name),
        StreamStatus: "ACTIVE",
        OpenShardCount: stream.open.length,
        MaxRecordSizeInKiB: stream.maxRecordBytes / 1024,
      },
    };
  }

  /**
   * Applies one PutRecords request now (scripted faults included, except that a lost
   * response throws after storing).
   *
   * @param input The request; `StreamName` or `StreamARN`.
   * @param producer Who sent it, for the per-producer counts.
   * @returns The response, one entry per request entry.
   * @throws {Error} Named after the Kinesis code: `ResourceNotFoundException` for an unknown
   * stream, `ValidationException` for a malformed request, or a scripted fault's code.
   */
  putRecords(input: PutRecordsInput, producer = "producer"): PutRecordsOutput {
    return this.#settle(this.#pickFault("putRecords", input), () => this.#put(input, producer));
  }

  /**
   * Answers one ListShards request now: the first page names the stream (`StreamName` or
   * `StreamARN`, with an optional `ShardFilter`), later pages only the `NextToken`. Without a
   * filter, or with `AT_TRIM_HORIZON`, it lists closed shards too; `AT_LATEST` lists the
   * open ones.
   *
   * @param input The request.
   * @returns One page of shards, with `NextToken` when more follow.
   * @throws {Error} Named `ResourceNotFoundException`, `InvalidArgumentException` or a
   * scripted fault's code.
   */
  listShards(input: ListShardsInput): ListShardsOutput {
    return this.#settle(this.#pickFault("listShards", input), () => this.#list(input));
  }

  /**
   * Splits an open shard in two, as SplitShard does: the parent closes, the children open
   * with the parent's id as `ParentShardId`.
   *
   * @param stream The stream's name or ARN.
   * @param shardId The shard to split.
   * @param newStartingHashKey The first hash key of the second child, decimal. @default {the middle of the range}
   * @returns The two children's ids.
   * @throws {Error} Named `ResourceNotFoundException` or `InvalidArgumentException`.
   */
  splitShard(stream: string, shardId: string, newStartingHashKey?: string): [string, string] {
    const target = this.#stream(stream);
    const parent = this.#openShard(target, shardId);
    const low = BigInt(parent.startingHashKey);
    const high = BigInt(parent.endingHashKey);
    const split = newStartingHashKey === undefined
      ? (low + high + 1n) / 2n
      : BigInt(newStartingHashKey);
    if (split <= low || split > high) {
      throw serviceError(
        "InvalidArgumentException",
        `NewStartingHashKey ${split} is not inside shard ${shardId}'s range`,
      );
    }
    this.#close(target, parent);
    const left = this.#addShard(target, low, split - 1n, { parentShardId: parent.id });
    const right = this.#addShard(target, split, high, { parentShardId: parent.id });
    return [left.id, right.id];
  }

  /**
   * Merges two open shards with adjacent ranges, as MergeShards does: both close, the child
   * opens with `ParentShardId` and `AdjacentParentShardId`.
   *
   * @param stream The stream's name or ARN.
   * @param shardId The first parent.
   * @param adjacentShardId The second parent; its range must touch the first's.
   * @returns The child's id.
   * @throws {Error} Named `ResourceNotFoundException` or `InvalidArgumentException`.
   */
  mergeShards(stream: string, shardId: string, adjacentShardId: string): string {
    const target = this.#stream(stream);
    const first = this.#openShard(target, shardId);
    const second = this.#openShard(target, adjacentShardId);
    const [low, high] = BigInt(first.startingHashKey) < BigInt(second.startingHashKey)
      ? [first, second]
      : [second, first];
    if (BigInt(low.endingHashKey) + 1n !== BigInt(high.startingHashKey)) {
      throw serviceError(
        "InvalidArgumentException",
        `Shards ${shardId} and ${adjacentShardId} are not adjacent`,
      );
    }
    this.#close(target, first);
    this.#close(target, second);
    return this.#addShard(target, BigInt(low.startingHashKey), BigInt(high.endingHashKey), {
      parentShardId: first.id,
      adjacentParentShardId: second.id,
    }).id;
  }

  /**
   * The shards of a stream, closed ones included, in the order they were created.
   *
   * @param stream The stream's name or ARN.
   * @returns Copies of the shards' descriptions.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream.
   */
  shards(stream: string): ModelShard[] {
    return this.#stream(stream).shards.map((shard) => {
      const out: ModelShard = {
        id: shard.id,
        startingHashKey: shard.startingHashKey,
        endingHashKey: shard.endingHashKey,
        open: shard.open,
      };
      if (shard.parentShardId !== undefined) out.parentShardId = shard.parentShardId;
      if (shard.adjacentParentShardId !== undefined) {
        out.adjacentParentShardId = shard.adjacentParentShardId;
      }
      return out;
    });
  }

  /**
   * Scripts a failure; faults are tried in the order they were added, and the first that
   * fires decides.
   *
   * @param options What fails, which calls, how often.
   * @returns A handle with the hit count and `remove()`.
   * @throws {TypeError} When the outcome is unknown or cannot fail a single entry.
   * @throws {RangeError} When `probability` is outside 0 to 1, or `times`/`skip` negative.
   */
  fail(options: FaultOptions): Fault {
    const outcome = options.outcome;
    if (typeof outcome === "string" && !(outcome in OUTCOMES) && !isLoss(outcome)) {
      throw new TypeError(
        `Cannot script a fault as 'outcome' is unknown: current value is ${outcome}`,
      );
    }
    if (options.entries === true && (isLoss(outcome) || options.operation === "listShards")) {
      throw new TypeError(
        `Cannot script a fault as 'entries' applies to PutRecords error codes, not '${
          typeof outcome === "string" ? outcome : outcome.code
        }' of ${options.operation ?? "putRecords"}`,
      );
    }
    const probability = options.probability ?? 1;
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError(
        `Cannot script a fault as 'probability' must be between 0 and 1: current value is ${probability}`,
      );
    }
    for (const key of ["times", "skip"] as const) {
      const value = options[key];
      if (value !== undefined && !(value >= 0)) {
        throw new RangeError(
          `Cannot script a fault as '${key}' must not be negative: current value is ${value}`,
        );
      }
    }
    const rule: FaultRule = { options, matches: 0, hits: 0, random: seeded(options.seed ?? 1) };
    this.#faults.push(rule);
    return {
      get hits() {
        return rule.hits;
      },
      remove: () => {
        const index = this.#faults.indexOf(rule);
        if (index >= 0) this.#faults.splice(index, 1);
      },
    };
  }

  /**
   * The user records stored in `stream`, deaggregated with the producer's own codec, in
   * the order they were stored.
   *
   * @param stream A stream of the model, by name or ARN.
   * @returns The records; empty when `keepRecords` is off.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream.
   */
  records(stream: string): ModelRecord[] {
    const target = this.#stream(stream);
    const out: ModelRecord[] = [];
    for (const entry of target.stored) {
      for (const user of deaggregate(asStored(entry))) {
        const record: ModelRecord = {
          stream: target.name,
          shardId: entry.shardId,
          sequenceNumber: entry.sequenceNumber,
          subSequenceNumber: user.subSequenceNumber,
          partitionKey: user.partitionKey,
          data: user.data,
          aggregated: user.aggregated,
          producer: entry.producer,
        };
        if (user.explicitHashKey !== undefined) record.explicitHashKey = user.explicitHashKey;
        out.push(record);
      }
    }
    return out;
  }

  /**
   * The stored user records of each shard, in sequence order (sequence number, then
   * sub-sequence number), as a consumer reading the shard would get them.
   *
   * @param stream A stream of the model, by name or ARN.
   * @returns Shard id to records; shards without records are left out.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream.
   */
  recordsByShard(stream: string): Map<string, ModelRecord[]> {
    return groupBy(this.records(stream).sort(bySequence), (record) => record.shardId);
  }

  /**
   * The stored user records of each partition key, in sequence order within their shard.
   *
   * @param stream A stream of the model, by name or ARN.
   * @returns Partition key to records.
   * @throws {Error} Named `ResourceNotFoundException` for an unknown stream.
   */
  recordsByPartitionKey(stream: string): Map<string, ModelRecord[]> {
    return groupBy(this.records(stream).sort(bySequence), (record) => record.partitionKey);
  }

  /**
   * How many calls each operation received (failed ones included).
   *
   * @returns The counts.
   */
  callCounts(): Record<Operation, number> {
    return { ...this.#calls };
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

  #put(input: PutRecordsInput, producer: string): PutRecordsOutput {
    const stream = this.#resolve(input);
    validateEntries(input);
    const call = this.#calls.putRecords - 1;
    const now = this.#clock.now();
    const second = this.#second(now);
    const producerCounts = second.producers[producer] ??= emptyCounts();
    const results: PutRecordsResultEntry[] = [];
    let failed = 0;
    for (let index = 0; index < input.Records.length; index++) {
      const entry = input.Records[index]!;
      const shard = this.#route(stream.open, entry.PartitionKey, entry.ExplicitHashKey);
      const shardCounts = second.shards[shard.id] ??= emptyCounts();
      const fault = this.#faults.length === 0 ? undefined : this.#pick({
        operation: "putRecords",
        stream: stream.name,
        call,
        input,
        index,
        shardId: shard.id,
        entry,
      }, true);
      const cost = entry.Data.length + UTF8.encode(entry.PartitionKey).length;
      this.#refill(shard, now);
      // An entry bigger than the byte bucket still goes once the bucket is full.
      const throttled = shard.records < 1 || shard.bytes < Math.min(cost, this.#byteCapacity);
      if (entry.Data.length > stream.maxRecordBytes) {
        // As kinesis-local answers since streams have MaxRecordSizeInKiB: the entry fails,
        // the request and its other entries do not.
        failed++;
        results.push({
          ErrorCode: "InvalidArgumentException",
          ErrorMessage:
            `Record data size ${entry.Data.length} exceeds the stream's max record size of ${stream.maxRecordBytes} bytes`,
        });
        continue;
      }
      if (fault !== undefined || throttled) {
        failed++;
        const [code, message] = fault === undefined ? [THROTTLED] : outcomeOf(fault);
        if (code === THROTTLED) {
          shardCounts.throttled++;
          producerCounts.throttled++;
        }
        results.push({
          ErrorCode: code,
          ErrorMessage: code === THROTTLED
            ? `Rate exceeded for shard ${shard.id} in stream ${stream.name} under account ${this.#accountId}.`
            : message,
        });
        continue;
      }
      shard.records -= 1;
      shard.bytes -= cost;
      const sequenceNumber = sequence(shard.index, ++shard.sequence);
      const userRecords = isAggregated(entry.Data) ? deaggregate(asInput(entry)).length : 1;
      for (const counts of [shardCounts, producerCounts]) {
        counts.entries++;
        counts.userRecords += userRecords;
        counts.bytes += cost;
      }
      if (this.#keep) {
        stream.stored.push({
          shardId: shard.id,
          sequenceNumber,
          partitionKey: entry.PartitionKey,
          explicitHashKey: entry.ExplicitHashKey,
          data: entry.Data.slice(),
          producer,
        });
      }
      results.push({ SequenceNumber: sequenceNumber, ShardId: shard.id });
    }
    return { FailedRecordCount: failed, Records: results };
  }

  #list(input: ListShardsInput): ListShardsOutput {
    const wide = input as ListShardsInput & { StreamARN?: string };
    let stream: Stream;
    let offset = 0;
    let filter: Token["filter"] = wide.ShardFilter;
    if (input.NextToken !== undefined) {
      if (input.StreamName !== undefined || wide.StreamARN !== undefined) {
        throw serviceError(
          "InvalidArgumentException",
          "NextToken and StreamName or StreamARN cannot be provided together.",
        );
      }
      const token = decodeToken(input.NextToken);
      stream = this.#stream(token.stream);
      offset = token.offset;
      filter = token.filter;
    } else {
      stream = this.#resolve(wide);
    }
    const visible = stream.shards.filter((shard) => {
      if (filter?.Type === "AT_LATEST") return shard.open;
      if (filter?.Type === "AFTER_SHARD_ID") return shard.id > (filter.ShardId ?? "");
      return true;
    });
    const size = Math.min(this.#pageSize, MAX_PAGE, input.MaxResults ?? MAX_PAGE);
    const page = visible.slice(offset, offset + size);
    const out: ListShardsOutput = { Shards: page.map(listed) };
    if (offset + page.length < visible.length) {
      out.NextToken = encodeToken({ stream: stream.name, offset: offset + size, filter });
    }
    return out;
  }

  #answer<T>(
    options: KinesisCallOptions,
    operation: Operation,
    input: PutRecordsInput | ListShardsInput | StreamRef,
    apply: () => T,
  ): Promise<T> {
    const signal = options.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    const run = (resolve: (value: T) => void, reject: (error: unknown) => void) => {
      try {
        const fault = this.#pickFault(operation, input);
        if (fault?.options.outcome !== "noResponse") {
          resolve(this.#settle(fault, apply));
          return;
        }
        apply();
        // Stored, but the answer never comes: only the caller's abort ends the call.
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      } catch (error) {
        reject(error);
      }
    };
    if (this.#latencyMs <= 0) return new Promise<T>(run);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#clock.clearTimer(timer);
        reject(signal.reason);
      };
      const timer = this.#clock.setTimer(() => {
        signal.removeEventListener("abort", onAbort);
        run(resolve, reject);
      }, this.#latencyMs * (1 + this.#latencyJitter * (2 * this.#random() - 1)));
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Counts the call and picks the request-level fault that fires for it, if any. */
  #pickFault(
    operation: Operation,
    input: PutRecordsInput | ListShardsInput | StreamRef,
  ): FaultRule | undefined {
    const call = this.#calls[operation]++;
    if (this.#faults.length === 0) return undefined;
    const named = input as { StreamName?: string; StreamARN?: string; NextToken?: string };
    let stream = named.StreamName ?? parseArn(named.StreamARN)?.name;
    if (stream === undefined && named.NextToken !== undefined) {
      // A later ListShards page belongs to the stream of its token; a bad token is answered
      // as such when the call is applied.
      try {
        stream = decodeToken(named.NextToken).stream;
      } catch {
        stream = "";
      }
    }
    return this.#pick({ operation, stream: stream ?? "", call, input }, false);
  }

  #pick(call: FaultCall, entries: boolean): FaultRule | undefined {
    for (const rule of this.#faults) {
      const options = rule.options;
      if ((options.entries === true) !== entries) continue;
      if ((options.operation ?? "putRecords") !== call.operation) continue;
      if (options.stream !== undefined && this.#nameOf(options.stream) !== call.stream) continue;
      if (options.when !== undefined && !options.when(call)) continue;
      if (rule.hits >= (options.times ?? Infinity)) continue;
      if (rule.matches++ < (options.skip ?? 0)) continue;
      if (options.probability !== undefined && !(rule.random() < options.probability)) continue;
      rule.hits++;
      return rule;
    }
    return undefined;
  }

  /** Runs `apply` under a request-level fault: throws its error, or applies then loses the answer. */
  #settle<T>(fault: FaultRule | undefined, apply: () => T): T {
    if (fault === undefined) return apply();
    const outcome = fault.options.outcome;
    if (!isLoss(outcome)) {
      const [code, message, status] = outcomeOf(fault);
      throw serviceError(code, message, status);
    }
    apply();
    // What fetch throws when the connection breaks before the response: no Kinesis code.
    throw new TypeError("fetch failed: the connection closed before the response (scripted)");
  }

  #nameOf(stream: string): string {
    return stream.startsWith("arn:") ? parseArn(stream)?.name ?? stream : stream;
  }

  #resolve(input: { StreamName?: string; StreamARN?: string }): Stream {
    const { StreamName: name, StreamARN: arn } = input;
    if (arn === undefined) {
      if (name === undefined) {
        throw serviceError("InvalidArgumentException", "StreamName or StreamARN is required.");
      }
      return this.#stream(name);
    }
    const parsed = parseArn(arn);
    if (parsed === undefined) {
      throw serviceError(
        "ValidationException",
        `1 validation error detected: Value '${arn}' at 'streamARN' failed to satisfy constraint`,
      );
    }
    if (name !== undefined && name !== parsed.name) {
      throw serviceError(
        "InvalidArgumentException",
        `StreamName ${name} does not match the stream of StreamARN ${arn}`,
      );
    }
    if (parsed.region !== this.#region || parsed.accountId !== this.#accountId) {
      throw serviceError("ResourceNotFoundException", `Stream ${arn} not found`);
    }
    return this.#stream(parsed.name);
  }

  #stream(nameOrArn: string): Stream {
    const stream = this.#streams.get(this.#nameOf(nameOrArn));
    if (stream === undefined) {
      throw serviceError(
        "ResourceNotFoundException",
        `Stream ${nameOrArn} under account ${this.#accountId} not found.`,
      );
    }
    return stream;
  }

  #openShard(stream: Stream, id: string): Shard {
    const shard = stream.shards.find((candidate) => candidate.id === id);
    if (shard === undefined) {
      throw serviceError("ResourceNotFoundException", `Shard ${id} in ${stream.name} not found`);
    }
    if (!shard.open) {
      throw serviceError("InvalidArgumentException", `Shard ${id} in ${stream.name} is closed`);
    }
    return shard;
  }

  #addShard(
    stream: Stream,
    start: bigint,
    end: bigint,
    parents: { parentShardId?: string; adjacentParentShardId?: string },
  ): Shard {
    const index = stream.shards.length;
    const shard: Shard = {
      id: `shardId-${String(index).padStart(12, "0")}`,
      index,
      start: hashKeyFromDecimal(start.toString()),
      end: hashKeyFromDecimal(end.toString()),
      startingHashKey: start.toString(),
      endingHashKey: end.toString(),
      open: true,
      records: this.#recordCapacity,
      bytes: this.#byteCapacity,
      refilledAt: this.#clock.now(),
      sequence: 0n,
      ...parents,
    };
    stream.shards.push(shard);
    stream.open.push(shard);
    stream.open.sort((a, b) => compareHashKeys(a.start, b.start));
    return shard;
  }

  #close(stream: Stream, shard: Shard): void {
    shard.open = false;
    shard.endingSequenceNumber = sequence(shard.index, shard.sequence);
    stream.open.splice(stream.open.indexOf(shard), 1);
  }

  #second(now: number): ModelSecond {
    const index = Math.max(0, Math.floor((now - this.#startedAt) / 1000));
    while (this.#seconds.length <= index) {
      this.#seconds.push({ second: this.#seconds.length, shards: {}, producers: {} });
    }
    return this.#seconds[index]!;
  }

  #route(shards: Shard[], partitionKey: string, explicitHashKey?: string): Shard {
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

  #refill(shard: Shard, now: number): void {
    const elapsed = now - shard.refilledAt;
    if (elapsed <= 0) return;
    shard.records = Math.min(
      this.#recordCapacity,
      shard.records + (elapsed * this.#recordsPerSecond) / 1000,
    );
    shard.bytes = Math.min(
      this.#byteCapacity,
      shard.bytes + (elapsed * this.#bytesPerSecond) / 1000,
    );
    shard.refilledAt = now;
  }
}

function positive(name: string, value: number | undefined): number | undefined {
  if (value !== undefined && !(value > 0)) {
    throw new RangeError(
      `Cannot create InMemoryKinesis as '${name}' must be positive: current value is ${value}`,
    );
  }
  return value;
}

function isLoss(outcome: FaultOutcome): outcome is "lostResponse" | "noResponse" {
  return outcome === "lostResponse" || outcome === "noResponse";
}

function outcomeOf(rule: FaultRule): [string, string, number] {
  const outcome = rule.options.outcome;
  if (typeof outcome === "string") {
    const [code, message, status] = OUTCOMES[outcome as keyof typeof OUTCOMES];
    return [code, `${message} (scripted)`, status];
  }
  return [outcome.code, outcome.message ?? `${outcome.code} (scripted)`, outcome.status ?? 400];
}

function validateEntries(input: PutRecordsInput): void {
  const entries = input.Records;
  const count = Array.isArray(entries) ? entries.length : 0;
  if (count < 1 || count > MAX_ENTRIES) {
    throw serviceError(
      "ValidationException",
      `1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and ${MAX_ENTRIES}: got ${count}`,
    );
  }
  for (let i = 0; i < count; i++) {
    const { PartitionKey: key, Data: data } = entries[i]!;
    if (typeof key !== "string" || key.length < 1 || key.length > MAX_PARTITION_KEY_LENGTH) {
      throw serviceError(
        "ValidationException",
        `1 validation error detected: Value at 'records.${
          i + 1
        }.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and ${MAX_PARTITION_KEY_LENGTH}`,
      );
    }
    if (!(data instanceof Uint8Array) || data.length > MAX_RECORD_BYTES) {
      throw serviceError(
        "ValidationException",
        `1 validation error detected: Value at 'records.${
          i + 1
        }.member.data' failed to satisfy constraint: Member must have length less than or equal to ${MAX_RECORD_BYTES}`,
      );
    }
  }
}

// 56 digits like Kinesis' own: a fixed lead, the shard's index, then its counter, so numbers
// grow within a shard and a child's numbers follow its parents'.
function sequence(shardIndex: number, counter: bigint): string {
  return `49${String(shardIndex).padStart(14, "0")}${counter.toString().padStart(40, "0")}`;
}

function listed(shard: Shard): ListedShard {
  const out: ListedShard & { ParentShardId?: string; AdjacentParentShardId?: string } = {
    ShardId: shard.id,
    HashKeyRange: { StartingHashKey: shard.startingHashKey, EndingHashKey: shard.endingHashKey },
  };
  if (shard.parentShardId !== undefined) out.ParentShardId = shard.parentShardId;
  if (shard.adjacentParentShardId !== undefined) {
    out.AdjacentParentShardId = shard.adjacentParentShardId;
  }
  const range: { StartingSequenceNumber: string; EndingSequenceNumber?: string } = {
    StartingSequenceNumber: sequence(shard.index, 0n),
  };
  if (shard.endingSequenceNumber !== undefined) {
    range.EndingSequenceNumber = shard.endingSequenceNumber;
  }
  out.SequenceNumberRange = range;
  return out;
}

interface Token {
  stream: string;
  offset: number;
  filter: { Type: string; ShardId?: string } | undefined;
}

function encodeToken(token: Token): string {
  return btoa(JSON.stringify(token));
}

function decodeToken(text: string): Token {
  try {
    const token = JSON.parse(atob(text)) as Token;
    if (typeof token.stream === "string" && Number.isInteger(token.offset)) return token;
  } catch {
    // Reported below, as Kinesis reports a token it did not issue.
  }
  throw serviceError("InvalidArgumentException", `NextToken ${text} is not valid`);
}

function parseArn(arn: string | undefined) {
  const match = arn === undefined ? null : ARN.exec(arn);
  return match === null ? undefined : { region: match[1]!, accountId: match[2]!, name: match[3]! };
}

/** A small seeded generator (mulberry32): the same seed draws the same faults. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bySequence(a: ModelRecord, b: ModelRecord): number {
  if (a.sequenceNumber !== b.sequenceNumber) return a.sequenceNumber < b.sequenceNumber ? -1 : 1;
  return a.subSequenceNumber - b.subSequenceNumber;
}

function groupBy(records: ModelRecord[], key: (record: ModelRecord) => string) {
  const out = new Map<string, ModelRecord[]>();
  for (const record of records) {
    const group = out.get(key(record));
    if (group === undefined) out.set(key(record), [record]);
    else group.push(record);
  }
  return out;
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
