/**
 * Testing code that uses the producer, without an emulator: {@linkcode InMemoryKinesis} is a
 * Kinesis in process that implements the producer's `KinesisClient`. It keeps streams of
 * shards with hash ranges, numbers records per shard as Kinesis does, enforces the per-shard
 * write limits (1000 records/s and 1 MiB/s, or others, or none), reshards, accepts stream ARNs,
 * fails calls or single entries on a script (throttles, 5xx, lost responses, permanent
 * errors), and gives back what it stored, deaggregated, per shard or per partition key.
 * Web APIs only: the same test runs under `deno test`, `bun test` and `node --test`.
 *
 * The producer's own tests and its fleet simulation run on this same model.
 *
 * @example A producer writing to a Kinesis in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { Producer } from "@webkpl/kpl";
 * import { InMemoryKinesis } from "@webkpl/kpl/testing";
 *
 * const kinesis = new InMemoryKinesis({ streams: { events: 2 } });
 * kinesis.fail({ outcome: "throttle", entries: true, times: 1 });
 * {
 *   await using producer = new Producer({ stream: "events", kinesisClient: kinesis.client() });
 *   const result = await producer.put({ partitionKey: "user-1", data: "hello" });
 *   assert.equal(result.success, true);
 *   assert.equal(result.attempts.length, 2); // throttled once, then stored
 * }
 * const [stored] = kinesis.records("events");
 * assert.equal(new TextDecoder().decode(stored!.data), "hello");
 * ```
 *
 * @module
 */
export {
  type Fault,
  type FaultCall,
  type FaultOptions,
  type FaultOutcome,
  InMemoryKinesis,
  type InMemoryKinesisOptions,
  MODEL_BYTES_PER_SECOND,
  MODEL_RECORDS_PER_SECOND,
  type ModelCounts,
  type ModelRecord,
  type ModelSecond,
  type ModelShard,
  type Operation,
  type ShardLimits,
  shardStartHashKey,
  type StreamRef,
  type StreamSpec,
  type StreamSummaryOutput,
  THROTTLED,
} from "./testing/kinesis_model.ts";
export type { Clock, TimerHandle } from "./src/clock.ts";
export type {
  KinesisCallOptions,
  KinesisClient,
  ListedShard,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
  PutRecordsRequestEntry,
  PutRecordsResultEntry,
} from "./src/kinesis_client.ts";
