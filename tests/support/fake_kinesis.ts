/**
 * An in-process Kinesis for unit tests: shards with hash ranges, PutRecords that routes
 * each entry the way Kinesis does (explicit hash key, else MD5 of the partition key) and
 * remembers what it stored, ListShards with pages, and hooks to script failures or hold
 * calls in flight. End-to-end behaviour is tested against real emulators; this is for
 * driving the pipeline step by step under a fake clock.
 *
 * New tests use `InMemoryKinesis` (`testing.ts`), the model users test with, so it stays
 * faithful; this fake remains for tests that hold calls in flight or rewrite responses.
 */
import type {
  KinesisCallOptions,
  KinesisClient,
  ListedShard,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
  PutRecordsResultEntry,
} from "../../src/kinesis_client.ts";
import { hashKeyToDecimal, hashPartitionKey } from "../../src/hash_key.ts";

export const MAX_HASH = (1n << 128n) - 1n;

export interface FakeShard {
  id: string;
  start: bigint;
  end: bigint;
  open: boolean;
}

export interface StoredRecord {
  stream: string;
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  explicitHashKey: string | undefined;
  data: Uint8Array;
}

/** What a PutRecords hook may return: a response, an error to throw, or `undefined` for the default. */
export type PutRecordsHook = (
  input: PutRecordsInput,
  call: number,
) => PutRecordsOutput | Error | undefined | Promise<PutRecordsOutput | Error | undefined>;

export type ListShardsHook = (
  input: ListShardsInput,
  call: number,
) => ListShardsOutput | Error | undefined;

/** An error shaped like the AWS SDK's service exceptions (name = Kinesis error code). */
export function serviceError(name: string, message = name, status = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $metadata: { httpStatusCode: status },
    $fault: status >= 500 ? "server" : "client",
  });
}

/** Splits the hash space into `count` equal ranges, like CreateStream does. */
export function evenShards(count: number, firstId = 0): FakeShard[] {
  const shards: FakeShard[] = [];
  const width = (MAX_HASH + 1n) / BigInt(count);
  for (let i = 0; i < count; i++) {
    const start = width * BigInt(i);
    const end = i === count - 1 ? MAX_HASH : start + width - 1n;
    shards.push({ id: shardId(firstId + i), start, end, open: true });
  }
  return shards;
}

export function shardId(n: number): string {
  return `shardId-${String(n).padStart(12, "0")}`;
}

/** The hash key Kinesis routes an entry by. */
export function routingHash(partitionKey: string, explicitHashKey?: string): bigint {
  if (explicitHashKey !== undefined) return BigInt(explicitHashKey);
  const key = { h0: 0, h1: 0, h2: 0, h3: 0 };
  hashPartitionKey(partitionKey, key);
  return BigInt(hashKeyToDecimal(key));
}

export class FakeKinesis implements KinesisClient {
  readonly shards = new Map<string, FakeShard[]>();
  readonly stored: StoredRecord[] = [];
  readonly putCalls: PutRecordsInput[] = [];
  readonly listCalls: ListShardsInput[] = [];
  putHook: PutRecordsHook | undefined;
  listHook: ListShardsHook | undefined;
  /** When set, calls wait for `release()` before answering. */
  holding = false;
  pageSize = Infinity;
  closed = false;
  #sequence = 0;
  #held: (() => void)[] = [];

  constructor(streams: Record<string, number | FakeShard[]> = {}) {
    for (const [name, shards] of Object.entries(streams)) {
      this.shards.set(name, typeof shards === "number" ? evenShards(shards) : shards);
    }
  }

  /** Calls held by `holding`. */
  get heldCalls(): number {
    return this.#held.length;
  }

  /** Lets held calls answer. */
  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const go of held) go();
  }

  async putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput> {
    const call = this.putCalls.push(structuredCloneInput(input)) - 1;
    await this.#gate(options.signal);
    const hooked = await this.putHook?.(input, call);
    if (hooked instanceof Error) throw hooked;
    if (hooked !== undefined) return hooked;
    return this.store(input);
  }

  /** The default PutRecords behaviour: store every entry on the shard that holds its hash. */
  store(input: PutRecordsInput, only?: (index: number) => boolean): PutRecordsOutput {
    const stream = input.StreamName ?? input.StreamARN ?? "";
    const shards = this.shards.get(stream);
    if (shards === undefined) {
      throw serviceError("ResourceNotFoundException", `Stream ${stream} not found`);
    }
    const results: PutRecordsResultEntry[] = [];
    let failed = 0;
    input.Records.forEach((entry, index) => {
      if (only !== undefined && !only(index)) {
        failed++;
        results.push({ ErrorCode: "InternalFailure", ErrorMessage: "scripted" });
        return;
      }
      const hash = routingHash(entry.PartitionKey, entry.ExplicitHashKey);
      const shard = shards.find((s) => s.open && s.start <= hash && hash <= s.end)!;
      const sequenceNumber = String(++this.#sequence).padStart(20, "0");
      this.stored.push({
        stream,
        shardId: shard.id,
        sequenceNumber,
        partitionKey: entry.PartitionKey,
        explicitHashKey: entry.ExplicitHashKey,
        data: entry.Data.slice(),
      });
      results.push({ SequenceNumber: sequenceNumber, ShardId: shard.id });
    });
    return { FailedRecordCount: failed, Records: results };
  }

  async listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput> {
    const call = this.listCalls.push({ ...input }) - 1;
    await Promise.resolve();
    options.signal.throwIfAborted();
    const hooked = this.listHook?.(input, call);
    if (hooked instanceof Error) throw hooked;
    if (hooked !== undefined) return hooked;
    let name = input.StreamName;
    let offset = 0;
    if (input.NextToken !== undefined) [name, offset] = decodeToken(input.NextToken);
    const shards = this.shards.get(name ?? "");
    if (shards === undefined) {
      throw serviceError("ResourceNotFoundException", `Stream ${name} not found`);
    }
    const visible = shards.filter((shard) => shard.open);
    const page = visible.slice(offset, offset + Math.min(this.pageSize, input.MaxResults ?? 1000));
    const next = offset + page.length;
    const listed: ListedShard[] = page.map((shard) => ({
      ShardId: shard.id,
      HashKeyRange: {
        StartingHashKey: shard.start.toString(),
        EndingHashKey: shard.end.toString(),
      },
    }));
    return next < visible.length
      ? { Shards: listed, NextToken: encodeToken(name!, next) }
      : { Shards: listed };
  }

  close(): void {
    this.closed = true;
  }

  /** Splits `id` at the middle of its range into two new shards. */
  split(stream: string, id: string): [FakeShard, FakeShard] {
    const shards = this.shards.get(stream)!;
    const parent = shards.find((shard) => shard.id === id)!;
    parent.open = false;
    const middle = (parent.start + parent.end) / 2n;
    const next = shards.length;
    const left = { id: shardId(next), start: parent.start, end: middle, open: true };
    const right = { id: shardId(next + 1), start: middle + 1n, end: parent.end, open: true };
    shards.push(left, right);
    return [left, right];
  }

  #gate(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (!this.holding) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#held = this.#held.filter((item) => item !== go);
        reject(signal.reason ?? new DOMException("aborted", "AbortError"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#held.push(go);
    });
  }
}

function encodeToken(stream: string, offset: number): string {
  return `${stream}|${offset}`;
}

function decodeToken(token: string): [string, number] {
  const [stream, offset] = token.split("|");
  return [stream!, Number(offset)];
}

// A copy down to the bytes: the producer reuses an aggregate's memory once its call settles.
function structuredCloneInput(input: PutRecordsInput): PutRecordsInput {
  return {
    ...input,
    Records: input.Records.map((entry) => ({ ...entry, Data: entry.Data.slice() })),
  };
}
