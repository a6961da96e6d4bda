/**
 * An in-process Kinesis for benchmarks: answers at once, stores nothing, and routes each
 * entry to the shard its hash falls in, so the producer sees no misprediction.
 *
 * @module
 */
import type {
  KinesisClient,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
  PutRecordsResultEntry,
} from "../mod.ts";
import {
  compareHashKeys,
  createHashKey,
  type HashKey,
  hashKeyFromDecimal,
  hashPartitionKey,
  parseExplicitHashKey,
} from "../src/hash_key.ts";

/** A Kinesis that stores nothing and answers each entry with the shard its hash falls in. */
export class InstantKinesis implements KinesisClient {
  readonly #starts: HashKey[] = [];
  readonly #listing: ListShardsOutput;
  readonly #key = createHashKey();
  #sequence = 0;

  constructor(shards: number) {
    const width = (1n << 128n) / BigInt(shards);
    const listed = [];
    for (let i = 0; i < shards; i++) {
      const start = width * BigInt(i);
      const end = i === shards - 1 ? (1n << 128n) - 1n : start + width - 1n;
      this.#starts.push(hashKeyFromDecimal(start.toString()));
      listed.push({
        ShardId: `shardId-${String(i).padStart(12, "0")}`,
        HashKeyRange: { StartingHashKey: start.toString(), EndingHashKey: end.toString() },
      });
    }
    this.#listing = { Shards: listed };
  }

  listShards(): Promise<ListShardsOutput> {
    return Promise.resolve(this.#listing);
  }

  putRecords(input: PutRecordsInput): Promise<PutRecordsOutput> {
    const records: PutRecordsResultEntry[] = new Array(input.Records.length);
    for (let i = 0; i < input.Records.length; i++) {
      const entry = input.Records[i]!;
      if (entry.ExplicitHashKey === undefined) hashPartitionKey(entry.PartitionKey, this.#key);
      else parseExplicitHashKey(entry.ExplicitHashKey, this.#key);
      let low = 0;
      let high = this.#starts.length - 1;
      while (low < high) {
        const mid = (low + high + 1) >>> 1;
        if (compareHashKeys(this.#starts[mid]!, this.#key) <= 0) low = mid;
        else high = mid - 1;
      }
      records[i] = {
        ShardId: `shardId-${String(low).padStart(12, "0")}`,
        SequenceNumber: String(++this.#sequence),
      };
    }
    return Promise.resolve({ FailedRecordCount: 0, Records: records });
  }
}

/** An {@linkcode InstantKinesis} whose PutRecords answers only when released, to hold records outstanding. */
export class HeldKinesis implements KinesisClient {
  readonly #inner: InstantKinesis;
  #gate: Promise<void> = Promise.resolve();
  #release: () => void = () => {};

  /** @param shards How many shards the stream has. */
  constructor(shards: number) {
    this.#inner = new InstantKinesis(shards);
  }

  /** From now on, PutRecords waits for {@linkcode HeldKinesis.release}. */
  hold(): void {
    this.#gate = new Promise((resolve) => this.#release = resolve);
  }

  /** Lets the held PutRecords calls answer. */
  release(): void {
    this.#release();
  }

  /** @returns The stream's shards. */
  listShards(): Promise<ListShardsOutput> {
    return this.#inner.listShards();
  }

  /**
   * @param input The request.
   * @returns Every entry stored, once released.
   */
  async putRecords(input: PutRecordsInput): Promise<PutRecordsOutput> {
    await this.#gate;
    return await this.#inner.putRecords(input);
  }
}
