/**
 * Hash keys: where a record lands in a stream's 128-bit key space. Kinesis routes a record
 * by the MD5 of its UTF-8 partition key, read as an unsigned big-endian integer, or by its
 * explicit hash key (a decimal string) when it has one; the producer does the same locally
 * to predict the shard.
 *
 * A {@linkcode HashKey} is four unsigned 32-bit words, most significant first. Plain numbers
 * compare and copy without allocating, where a `bigint` would allocate on every hash.
 *
 * @module
 */

import { ValidationError } from "./errors.ts";
import { md5Into } from "./md5.ts";
import { writeUtf8 } from "./_utf8.ts";
import { kindOf } from "./_describe.ts";

/**
 * A 128-bit hash key as four unsigned 32-bit words, `h0` the most significant. Each word
 * is an integer in `[0, 2^32)`.
 */
export interface HashKey {
  /** Bits 127..96. */
  h0: number;
  /** Bits 95..64. */
  h1: number;
  /** Bits 63..32. */
  h2: number;
  /** Bits 31..0. */
  h3: number;
}

/** The most UTF-16 code units a partition key may have (the C++ and Java KPL rule). */
export const MAX_PARTITION_KEY_LENGTH = 256;

const MAX_HASH_KEY_DECIMAL = "340282366920938463463374607431768211455";
const TWO_POW_32 = 0x100000000;
// Decimal digits are folded in six at a time: 2^32 × 10^6 < 2^53 keeps every step exact.
const CHUNK_DIGITS = 6;
const CHUNK_SCALE = [1, 10, 100, 1000, 10000, 100000, 1000000];

// Every partition key that passed assertPartitionKey fits: 256 code units × 3 bytes.
const keyBytes = new Uint8Array(MAX_PARTITION_KEY_LENGTH * 3);
const digest = new Uint8Array(16);
const hasIsWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed ===
  "function";

/**
 * Creates a hash key of value 0, for callers that keep one to fill again and again.
 *
 * @returns `{ h0: 0, h1: 0, h2: 0, h3: 0 }`.
 *
 * @example Reusing one key for many partition keys
 * ```ts
 * import { createHashKey, hashPartitionKey } from "@webkpl/kpl";
 *
 * const key = createHashKey();
 * hashPartitionKey("alpha", key);
 * console.log(key.h0); // 0x2c1743a3
 * ```
 */
export function createHashKey(): HashKey {
  return { h0: 0, h1: 0, h2: 0, h3: 0 };
}

/**
 * Compares two hash keys as unsigned 128-bit integers.
 *
 * @param a The first key.
 * @param b The second key.
 * @returns A negative number if `a < b`, 0 if equal, a positive number if `a > b`.
 *
 * @example Ordering hash keys
 * ```ts
 * import { compareHashKeys, hashKeyFromDecimal } from "@webkpl/kpl";
 *
 * const small = hashKeyFromDecimal("4294967296");
 * const large = hashKeyFromDecimal("340282366920938463463374607431768211455");
 * console.log(compareHashKeys(small, large) < 0); // true
 * console.log(compareHashKeys(large, large)); // 0
 * ```
 */
export function compareHashKeys(a: HashKey, b: HashKey): number {
  if (a.h0 !== b.h0) return a.h0 < b.h0 ? -1 : 1;
  if (a.h1 !== b.h1) return a.h1 < b.h1 ? -1 : 1;
  if (a.h2 !== b.h2) return a.h2 < b.h2 ? -1 : 1;
  if (a.h3 !== b.h3) return a.h3 < b.h3 ? -1 : 1;
  return 0;
}

/**
 * Hashes a partition key the way Kinesis does: MD5 of its UTF-8 bytes, read as an unsigned
 * big-endian 128-bit integer. Allocates nothing for keys of at most 256 code units.
 *
 * A lone surrogate is encoded as U+FFFD, as `TextEncoder` does; call
 * {@linkcode assertPartitionKey} first to reject such keys.
 *
 * @param partitionKey The partition key.
 * @param out Where the hash key goes.
 * @returns The key's length in UTF-8 bytes.
 *
 * @example Predicting where a partition key lands
 * ```ts
 * import { createHashKey, hashKeyToDecimal, hashPartitionKey } from "@webkpl/kpl";
 *
 * const key = createHashKey();
 * console.log(hashPartitionKey("user-123", key)); // 8
 * console.log(hashKeyToDecimal(key)); // "250018372642977770877286195909578633128"
 * ```
 */
export function hashPartitionKey(partitionKey: string, out: HashKey): number {
  let length: number;
  if (partitionKey.length <= MAX_PARTITION_KEY_LENGTH) {
    length = writeUtf8(partitionKey, keyBytes, 0);
    md5Into(keyBytes, 0, length, digest, 0);
  } else {
    const bytes = new TextEncoder().encode(partitionKey);
    length = bytes.length;
    md5Into(bytes, 0, length, digest, 0);
  }
  out.h0 = ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0;
  out.h1 = ((digest[4]! << 24) | (digest[5]! << 16) | (digest[6]! << 8) | digest[7]!) >>> 0;
  out.h2 = ((digest[8]! << 24) | (digest[9]! << 16) | (digest[10]! << 8) | digest[11]!) >>> 0;
  out.h3 = ((digest[12]! << 24) | (digest[13]! << 16) | (digest[14]! << 8) | digest[15]!) >>> 0;
  return length;
}

/**
 * Checks that `value` is a partition key Kinesis and the KPL accept: a string of 1 to 256
 * UTF-16 code units that is well-formed UTF-16 (no lone surrogate, which has no UTF-8
 * encoding).
 *
 * @param value The candidate partition key.
 * @throws {ValidationError} With `field: "partitionKey"` when `value` is not a string, is
 * empty, is longer than 256 code units, or contains a lone surrogate. The message gives the
 * length, never the whole key.
 *
 * @example Rejecting a bad key
 * ```ts
 * import { assertPartitionKey, isValidationError } from "@webkpl/kpl";
 *
 * assertPartitionKey("user-1");
 * try {
 *   assertPartitionKey("");
 * } catch (error) {
 *   console.log(isValidationError(error)); // true
 * }
 * try {
 *   assertPartitionKey("x".repeat(257));
 * } catch (error) {
 *   console.log(/current length is 257/.test(String(error))); // true
 * }
 * ```
 */
export function assertPartitionKey(value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new ValidationError(
      `Partition key must be a string: current type is ${kindOf(value)}`,
      { field: "partitionKey" },
    );
  }
  const length = value.length;
  if (length === 0) {
    throw new ValidationError("Partition key must not be empty", { field: "partitionKey" });
  }
  if (length > MAX_PARTITION_KEY_LENGTH) {
    throw new ValidationError(
      `Partition key must be at most ${MAX_PARTITION_KEY_LENGTH} UTF-16 code units: current length is ${length}`,
      { field: "partitionKey" },
    );
  }
  const wellFormed = hasIsWellFormed
    ? (value as { isWellFormed(): boolean }).isWellFormed()
    : loneSurrogateAt(value) < 0;
  if (!wellFormed) {
    throw new ValidationError(
      `Partition key must be well-formed UTF-16: lone surrogate at index ${
        loneSurrogateAt(value)
      } of ${length}`,
      { field: "partitionKey" },
    );
  }
}

/**
 * Parses an explicit hash key: a canonical decimal integer (`0` or `[1-9][0-9]*`, no sign,
 * no spaces, no leading zeros, which Kinesis itself rejects) no larger than 2^128 − 1.
 *
 * @param value The candidate explicit hash key.
 * @param out Where the parsed value goes.
 * @throws {ValidationError} With `field: "explicitHashKey"` when `value` is not a string, not
 * canonical decimal, or out of range. Long values are shortened in the message.
 *
 * @example Parsing an explicit hash key
 * ```ts
 * import { createHashKey, parseExplicitHashKey } from "@webkpl/kpl";
 *
 * const key = createHashKey();
 * parseExplicitHashKey("4294967297", key);
 * console.log(key); // { h0: 0, h1: 0, h2: 1, h3: 1 }
 * try {
 *   parseExplicitHashKey("042", key);
 * } catch (error) {
 *   console.log(/canonical decimal/.test(String(error))); // true
 * }
 * ```
 */
export function parseExplicitHashKey(value: unknown, out: HashKey): void {
  if (typeof value !== "string") {
    throw new ValidationError(
      `Explicit hash key must be a string: current type is ${kindOf(value)}`,
      { field: "explicitHashKey" },
    );
  }
  const problem = parseDecimal(value, out);
  if (problem !== PARSED) {
    throw new ValidationError(`Explicit hash key ${describeProblem(problem, value)}`, {
      field: "explicitHashKey",
    });
  }
}

/**
 * Parses a canonical decimal hash key, as found in `ListShards` hash key ranges.
 *
 * @param text `0` or `[1-9][0-9]*`, at most 2^128 − 1.
 * @returns The hash key.
 * @throws {TypeError} If `text` is not a string.
 * @throws {RangeError} If `text` is not canonical decimal or is out of range.
 *
 * @example Reading a shard's ending hash key
 * ```ts
 * import { hashKeyFromDecimal } from "@webkpl/kpl";
 *
 * const end = hashKeyFromDecimal("340282366920938463463374607431768211455");
 * console.log(end); // { h0: 0xffffffff, h1: 0xffffffff, h2: 0xffffffff, h3: 0xffffffff }
 * ```
 */
export function hashKeyFromDecimal(text: string): HashKey {
  if (typeof text !== "string") {
    throw new TypeError(`Hash key must be a string: current type is ${kindOf(text)}`);
  }
  const key = createHashKey();
  const problem = parseDecimal(text, key);
  if (problem !== PARSED) throw new RangeError(`Hash key ${describeProblem(problem, text)}`);
  return key;
}

/**
 * Formats a hash key as a canonical decimal string, the form Kinesis uses for
 * `ExplicitHashKey` and hash key ranges.
 *
 * @param key The hash key.
 * @returns The decimal digits, without leading zeros.
 *
 * @example Formatting the largest hash key
 * ```ts
 * import { hashKeyToDecimal } from "@webkpl/kpl";
 *
 * const max = { h0: 0xffffffff, h1: 0xffffffff, h2: 0xffffffff, h3: 0xffffffff };
 * console.log(hashKeyToDecimal(max)); // "340282366920938463463374607431768211455"
 * ```
 */
export function hashKeyToDecimal(key: HashKey): string {
  let w0 = key.h0;
  let w1 = key.h1;
  let w2 = key.h2;
  let w3 = key.h3;
  const scale = CHUNK_SCALE[CHUNK_DIGITS]!;
  let text = "";
  for (;;) {
    // Long division by 10^6, word by word; every partial dividend stays below 2^53, and `%`
    // on doubles is exact, so the quotients are too.
    let t = w0;
    let r = t % scale;
    w0 = (t - r) / scale;
    t = r * TWO_POW_32 + w1;
    r = t % scale;
    w1 = (t - r) / scale;
    t = r * TWO_POW_32 + w2;
    r = t % scale;
    w2 = (t - r) / scale;
    t = r * TWO_POW_32 + w3;
    r = t % scale;
    w3 = (t - r) / scale;
    const chunk = String(r);
    if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0) return chunk + text;
    text = chunk.padStart(CHUNK_DIGITS, "0") + text;
  }
}

const PARSED = 0;
const NOT_CANONICAL = 1;
const OUT_OF_RANGE = 2;

// Fills `out` and returns PARSED, or returns why `text` is not a hash key (leaving `out` as
// it was). Messages are built by the caller, so the success path allocates nothing.
function parseDecimal(text: string, out: HashKey): number {
  const n = text.length;
  if (n === 0 || (n > 1 && text.charCodeAt(0) === 0x30)) return NOT_CANONICAL;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return NOT_CANONICAL;
  }
  if (n > MAX_HASH_KEY_DECIMAL.length) return OUT_OF_RANGE;
  let w0 = 0;
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  let i = 0;
  let take = n % CHUNK_DIGITS || CHUNK_DIGITS;
  while (i < n) {
    let chunk = 0;
    for (const stop = i + take; i < stop; i++) chunk = chunk * 10 + (text.charCodeAt(i) - 0x30);
    const scale = CHUNK_SCALE[take]!;
    // Multiply-add from the least significant word, carrying the high part upwards.
    let t = w3 * scale + chunk;
    w3 = t >>> 0;
    t = w2 * scale + (t - w3) / TWO_POW_32;
    w2 = t >>> 0;
    t = w1 * scale + (t - w2) / TWO_POW_32;
    w1 = t >>> 0;
    t = w0 * scale + (t - w1) / TWO_POW_32;
    w0 = t >>> 0;
    if (t !== w0) return OUT_OF_RANGE;
    take = CHUNK_DIGITS;
  }
  out.h0 = w0;
  out.h1 = w1;
  out.h2 = w2;
  out.h3 = w3;
  return PARSED;
}

function describeProblem(problem: number, text: string): string {
  return problem === NOT_CANONICAL
    ? `must be a canonical decimal integer (0|[1-9][0-9]*): current value is ${quote(text)}`
    : `must be at most 2^128 - 1 (${MAX_HASH_KEY_DECIMAL}): current value is ${quote(text)}`;
}

function loneSurrogateAt(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < n) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    return i;
  }
  return -1;
}

function quote(text: string): string {
  return text.length <= 48
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, 40))}... (${text.length} characters)`;
}
