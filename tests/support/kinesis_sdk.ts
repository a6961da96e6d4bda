/**
 * The AWS SDK Kinesis client as tests use it: pointed at a loopback emulator, talking through
 * Web `fetch` (`@smithy/fetch-http-handler`), dummy credentials, region us-east-1. Plus the
 * stream chores every end-to-end test needs: create and wait for ACTIVE, delete, list every
 * shard, split and merge, and the hash-key arithmetic to check where records landed.
 *
 * @module
 */
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ListShardsCommand,
  type ListShardsCommandInput,
  MergeShardsCommand,
  type Shard,
  type ShardFilter,
  SplitShardCommand,
} from "@aws-sdk/client-kinesis";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import { holdingFetch } from "../../src/_holding_fetch.ts";
import { createHash } from "node:crypto";

/** Options for {@linkcode createTestClient}. */
export interface TestClientOptions {
  /**
   * SDK attempts per call (1 = SDK retries off, as the producer runs it).
   * @default {3}
   */
  maxAttempts?: number;
  /**
   * The fetch handler's own request timeout, in milliseconds; 0 means none. It only rejects
   * the SDK call and leaves the fetch running (a leak under Deno's sanitizers); to really
   * cancel a request pass an `abortSignal` to `send()`, e.g. from {@linkcode withTimeout}.
   * @default {0}
   */
  requestTimeoutMs?: number;
  /** @default {"us-east-1"} */
  region?: string;
  /** @default {{ accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" }} */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Options for waiting on stream state. */
export interface WaitOptions {
  /**
   * Upper bound on the wait, in milliseconds.
   * @default {30000}
   */
  timeoutMs?: number;
}

/** Options for {@linkcode createStream}. */
export interface CreateStreamOptions extends WaitOptions {
  /** @default {1} */
  shardCount?: number;
}

/** Options for {@linkcode listAllShards}. */
export interface ListAllShardsOptions {
  /** Passed as ListShards' ShardFilter; none means every shard, closed ones included. */
  filter?: ShardFilter;
  /** ListShards MaxResults per page; none leaves it to the service. */
  pageSize?: number;
  /** @default {1000} */
  maxPages?: number;
}

/** Options for {@linkcode splitShard}. */
export interface SplitShardOptions extends WaitOptions {
  /** The shard to split. */
  shardId: string;
  /** First hash key of the upper child; defaults to the middle of the parent's range. */
  newStartingHashKey?: bigint;
}

/** Options for {@linkcode mergeShards}. */
export interface MergeShardsOptions extends WaitOptions {
  /** The lower of the two adjacent shards. */
  shardId: string;
  /** The shard whose range starts right after `shardId`'s. */
  adjacentShardId: string;
}

/** The parts of a ListShards `Shard` the hash helpers read. */
export type ShardLike = Partial<Pick<Shard, "ShardId" | "HashKeyRange" | "SequenceNumberRange">>;

const POLL_INTERVAL_MS = 20;
let streamCounter = 0;

/**
 * Creates a Kinesis client for a loopback emulator.
 *
 * @param endpoint `http://127.0.0.1:PORT` of an emulator or proxy.
 * @param options Retries, timeout, region, credentials.
 * @returns A client the caller must `destroy()` when done.
 *
 * @example A client with SDK retries off
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const client = createTestClient("http://127.0.0.1:4567", { maxAttempts: 1 });
 * assert.equal(await client.config.maxAttempts(), 1);
 * client.destroy();
 * ```
 */
export function createTestClient(endpoint: string, options: TestClientOptions = {}): KinesisClient {
  const {
    maxAttempts = 3,
    requestTimeoutMs = 0,
    region = "us-east-1",
    credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
  } = options;
  return new KinesisClient({
    endpoint,
    region,
    credentials,
    maxAttempts,
    // An abort must close the connection under Node too, so the chaos proxy sees the client
    // give up (src/_holding_fetch.ts).
    requestHandler: new FetchHttpHandler({
      requestTimeout: requestTimeoutMs,
      customFetch: holdingFetch(),
    }),
  });
}

/**
 * A stream name no other test in this process uses.
 *
 * @param prefix Readable part of the name.
 * @returns `prefix-<time>-<counter>`.
 *
 * @example Two calls, two names
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.notEqual(uniqueStreamName("orders"), uniqueStreamName("orders"));
 * ```
 */
export function uniqueStreamName(prefix = "test"): string {
  streamCounter += 1;
  return `${prefix}-${Date.now().toString(36)}-${streamCounter}`;
}

/**
 * Creates a stream and waits until it is ACTIVE.
 *
 * @param client A client from {@linkcode createTestClient}.
 * @param stream Stream name.
 * @param options Shard count and wait bound.
 * @throws {Error} When the stream is not ACTIVE within `timeoutMs`.
 *
 * @example A four-shard stream on kinesalite
 * ```ts
 * import assert from "node:assert/strict";
 * import { startKinesalite } from "./emulators.ts";
 *
 * await using kinesalite = await startKinesalite();
 * const client = createTestClient(kinesalite.endpoint);
 * await createStream(client, "events", { shardCount: 4 });
 * assert.equal((await listAllShards(client, "events")).length, 4);
 * await deleteStream(client, "events");
 * client.destroy();
 * ```
 */
export async function createStream(
  client: KinesisClient,
  stream: string,
  options: CreateStreamOptions = {},
): Promise<void> {
  const { shardCount = 1 } = options;
  await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shardCount }));
  await waitForActive(client, stream, options);
}

/**
 * Polls DescribeStreamSummary until the stream is ACTIVE.
 *
 * @param client A client.
 * @param stream Stream name.
 * @param options Wait bound.
 * @throws {Error} When the stream is not ACTIVE within `timeoutMs`.
 */
export async function waitForActive(
  client: KinesisClient,
  stream: string,
  options: WaitOptions = {},
): Promise<void> {
  const { timeoutMs = 30_000 } = options;
  const attempts = Math.ceil(timeoutMs / POLL_INTERVAL_MS);
  let status: string | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    status = summary.StreamDescriptionSummary?.StreamStatus;
    if (status === "ACTIVE") return;
    await delay(POLL_INTERVAL_MS);
  }
  throw new Error(`Stream ${stream} is not ACTIVE after ${timeoutMs} ms: status ${status}`);
}

/**
 * Deletes a stream; a stream that no longer exists is fine.
 *
 * @param client A client.
 * @param stream Stream name.
 */
export async function deleteStream(client: KinesisClient, stream: string): Promise<void> {
  try {
    await client.send(
      new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true }),
    );
  } catch (error) {
    if ((error as Error).name !== "ResourceNotFoundException") throw error;
  }
}

/**
 * Lists a stream's shards with ListShards, following NextToken.
 *
 * @param client A client.
 * @param stream Stream name.
 * @param options Filter and page size.
 * @returns Shards in the order the service lists them.
 * @throws {Error} When more than `maxPages` pages come back.
 */
export async function listAllShards(
  client: KinesisClient,
  stream: string,
  options: ListAllShardsOptions = {},
): Promise<Shard[]> {
  const { filter, pageSize, maxPages = 1000 } = options;
  const shards: Shard[] = [];
  let input: ListShardsCommandInput = { StreamName: stream };
  if (filter !== undefined) input.ShardFilter = filter;
  if (pageSize !== undefined) input.MaxResults = pageSize;
  for (let page = 0; page < maxPages; page++) {
    const output = await client.send(new ListShardsCommand(input));
    shards.push(...(output.Shards ?? []));
    if (output.NextToken === undefined) return shards;
    input = { NextToken: output.NextToken };
    if (pageSize !== undefined) input.MaxResults = pageSize;
  }
  throw new Error(`ListShards of ${stream} returned more than ${maxPages} pages`);
}

/**
 * Splits a shard (at the middle of its range unless told) and waits for ACTIVE.
 *
 * @param client A client.
 * @param stream Stream name.
 * @param options The shard and, optionally, the split point.
 * @returns The split point used.
 * @throws {Error} When the shard is unknown or the stream is not ACTIVE again in time.
 *
 * @example Split, then merge the children back
 * ```ts
 * import assert from "node:assert/strict";
 * import { startKinesalite } from "./emulators.ts";
 *
 * await using kinesalite = await startKinesalite();
 * const client = createTestClient(kinesalite.endpoint);
 * await createStream(client, "events");
 * await splitShard(client, "events", { shardId: "shardId-000000000000" });
 * await mergeShards(client, "events", {
 *   shardId: "shardId-000000000001",
 *   adjacentShardId: "shardId-000000000002",
 * });
 * const shards = await listAllShards(client, "events");
 * assert.deepEqual(shards.map(isOpen), [false, false, false, true]);
 * client.destroy();
 * ```
 */
export async function splitShard(
  client: KinesisClient,
  stream: string,
  options: SplitShardOptions,
): Promise<bigint> {
  let { newStartingHashKey } = options;
  if (newStartingHashKey === undefined) {
    const shard = (await listAllShards(client, stream)).find((s) => s.ShardId === options.shardId);
    if (shard === undefined) throw new Error(`No shard ${options.shardId} in ${stream}`);
    const [start, end] = hashRange(shard);
    newStartingHashKey = (start + end + 1n) / 2n;
  }
  await client.send(
    new SplitShardCommand({
      StreamName: stream,
      ShardToSplit: options.shardId,
      NewStartingHashKey: newStartingHashKey.toString(),
    }),
  );
  await waitForActive(client, stream, options);
  return newStartingHashKey;
}

/**
 * Merges two adjacent shards and waits for ACTIVE.
 *
 * @param client A client.
 * @param stream Stream name.
 * @param options The two shards.
 * @throws {Error} When the stream is not ACTIVE again in time.
 */
export async function mergeShards(
  client: KinesisClient,
  stream: string,
  options: MergeShardsOptions,
): Promise<void> {
  await client.send(
    new MergeShardsCommand({
      StreamName: stream,
      ShardToMerge: options.shardId,
      AdjacentShardToMerge: options.adjacentShardId,
    }),
  );
  await waitForActive(client, stream, options);
}

/**
 * Whether a shard is open (its sequence range has no end).
 *
 * @param shard A shard from ListShards.
 * @returns `true` when new records can land on it.
 *
 * @example A closed parent
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(isOpen({ SequenceNumberRange: { StartingSequenceNumber: "1", EndingSequenceNumber: "9" } }), false);
 * ```
 */
export function isOpen(shard: ShardLike): boolean {
  return shard.SequenceNumberRange?.EndingSequenceNumber === undefined;
}

/**
 * A shard's hash key range as integers.
 *
 * @param shard A shard from ListShards.
 * @returns `[startingHashKey, endingHashKey]`, both inclusive.
 * @throws {Error} When the shard has no hash key range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const range = hashRange({ HashKeyRange: { StartingHashKey: "0", EndingHashKey: "99" } });
 * assert.deepEqual(range, [0n, 99n]);
 * ```
 */
export function hashRange(shard: ShardLike): [bigint, bigint] {
  const range = shard.HashKeyRange;
  if (range?.StartingHashKey === undefined || range.EndingHashKey === undefined) {
    throw new Error(`Shard ${shard.ShardId} has no hash key range`);
  }
  return [BigInt(range.StartingHashKey), BigInt(range.EndingHashKey)];
}

/**
 * The hash key Kinesis uses for a partition key: MD5 of its UTF-8 bytes as an unsigned
 * big-endian 128-bit integer (computed with `node:crypto`, independently of our `src/md5.ts`).
 *
 * @param partitionKey The partition key.
 * @returns The 128-bit hash key.
 *
 * @example MD5("a") is 0cc175b9c0f1b6a831c399e269772661
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(partitionKeyHash("a"), 0x0cc175b9c0f1b6a831c399e269772661n);
 * ```
 */
export function partitionKeyHash(partitionKey: string): bigint {
  return BigInt(`0x${createHash("md5").update(partitionKey, "utf8").digest("hex")}`);
}

/**
 * The hash key that routes a record: its explicit hash key, or MD5 of its partition key.
 *
 * @param record A record's partition key and optional explicit hash key.
 * @returns The 128-bit hash key.
 *
 * @example The explicit hash key wins
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(recordHashKey({ partitionKey: "a", explicitHashKey: "7" }), 7n);
 * ```
 */
export function recordHashKey(record: { partitionKey: string; explicitHashKey?: string }): bigint {
  return record.explicitHashKey === undefined
    ? partitionKeyHash(record.partitionKey)
    : BigInt(record.explicitHashKey);
}

/**
 * The open shard whose range holds a hash key.
 *
 * @param shards Shards from ListShards (closed ones are skipped).
 * @param hashKey A 128-bit hash key.
 * @returns The shard, or `undefined` when no open shard holds the key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const shards = [
 *   { ShardId: "low", HashKeyRange: { StartingHashKey: "0", EndingHashKey: "9" } },
 *   { ShardId: "high", HashKeyRange: { StartingHashKey: "10", EndingHashKey: "19" } },
 * ];
 * assert.equal(openShardFor(shards, 12n)?.ShardId, "high");
 * ```
 */
export function openShardFor<T extends ShardLike>(
  shards: readonly T[],
  hashKey: bigint,
): T | undefined {
  return shards.find((shard) => {
    if (!isOpen(shard)) return false;
    const [start, end] = hashRange(shard);
    return start <= hashKey && hashKey <= end;
  });
}

/**
 * Runs `call` with an AbortSignal that fires after `timeoutMs`, and clears the timer however
 * the call ends (unlike `AbortSignal.timeout`, which leaves a timer behind).
 *
 * @param timeoutMs When to abort.
 * @param call Receives the signal; pass it as `client.send(command, { abortSignal })`.
 * @returns What `call` returns.
 * @throws {Error} Whatever `call` throws, e.g. an `AbortError` after the timeout.
 *
 * @example A call that gives up
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const never = (signal: AbortSignal) =>
 *   new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
 * await assert.rejects(withTimeout(10, never), { name: "AbortError" });
 * ```
 */
export async function withTimeout<T>(
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await call(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
