/**
 * webkpl: the Kinesis Producer Library for Deno and Bun.
 *
 * The C++ KPL's pipeline in one Web-standards module: records are hashed and predicted to
 * their shard locally, aggregated per shard in the KPL's format, paced by a per-shard token
 * bucket, batched into PutRecords calls, retried by error class, and each one settles
 * exactly once with a {@linkcode RecordResult} that carries its whole attempt history.
 * Admission waits when `maxOutstandingRecords` or `maxOutstandingBytes` is reached, so a
 * producer never buffers without bound.
 *
 * @example Put records, then close
 * ```ts ignore
 * import { Producer } from "@webkpl/kpl";
 *
 * await using producer = new Producer({ region: "us-east-1", stream: "events" });
 * const result = await producer.put({ partitionKey: "user-1", data: "hello" });
 * console.log(result.success, result.shardId, result.sequenceNumber);
 * ```
 *
 * @module
 */
export { type CloseOptions, Producer, type SignalOptions } from "./src/producer.ts";
export type { ProducerOptions } from "./src/options.ts";
export type { ShardState } from "./src/limiter.ts";
export type { RecordTransformOptions, RecordWritableOptions } from "./src/streams.ts";
export type { Attempt, RecordReceipt, RecordResult, UserRecord } from "./src/record.ts";
export * from "./src/errors.ts";
export { classifyErrorCode, type ErrorClass, ErrorCodes } from "./src/error_codes.ts";
export type {
  DefaultKinesisClientOptions,
  DescribeStreamSummaryInput,
  DescribeStreamSummaryOutput,
  KinesisCallOptions,
  KinesisClient,
  KinesisCredentials,
  KinesisTransport,
  ListedShard,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
  PutRecordsRequestEntry,
  PutRecordsResultEntry,
} from "./src/kinesis_client.ts";
export * from "./src/codec.ts";
export {
  assertPartitionKey,
  compareHashKeys,
  createHashKey,
  type HashKey,
  hashKeyFromDecimal,
  hashKeyToDecimal,
  hashPartitionKey,
  MAX_PARTITION_KEY_LENGTH,
  parseExplicitHashKey,
} from "./src/hash_key.ts";
export * from "./src/metrics.ts";
export * from "./src/metrics_sink.ts";
export { type Clock, systemClock, type TimerHandle } from "./src/clock.ts";
export { consoleLogger, type Logger, silentLogger } from "./src/logger.ts";
