/**
 * webkpl: the Kinesis Producer Library for Deno and Bun.
 *
 * @module
 */
export * from "./src/errors.ts";
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
