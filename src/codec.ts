/**
 * The KPL aggregated record format, which packs many user records into one Kinesis record:
 *
 * ```text
 * F3 89 9A C2 ‖ protobuf AggregatedRecord ‖ MD5(protobuf)
 *
 * AggregatedRecord { repeated string partition_key_table = 1;
 *                    repeated string explicit_hash_key_table = 2;
 *                    repeated Record records = 3; }
 * Record           { required uint64 partition_key_index = 1;
 *                    optional uint64 explicit_hash_key_index = 2;
 *                    required bytes data = 3;
 *                    repeated Tag tags = 4; }
 * Tag              { required string key = 1; optional string value = 2; }
 * ```
 *
 * The encoder writes the same bytes as the C++ KPL and `aws-kinesis-agg` for the same records
 * in the same order: key tables deduplicated in order of first use, then the records. The KCL,
 * AWS Lambda's deaggregation helpers and `aws-kinesis-agg` read it. The decoder accepts any
 * valid protobuf encoding of the schema and rejects everything else with a
 * {@linkcode DecodeError}.
 *
 * @module
 */

import { DecodeError, isDecodeError } from "./errors.ts";
import { md5Into } from "./md5.ts";
import {
  KEY_DATA,
  KEY_EXPLICIT_HASH_KEY_INDEX,
  KEY_EXPLICIT_HASH_KEY_TABLE,
  KEY_PARTITION_KEY_INDEX,
  KEY_PARTITION_KEY_TABLE,
  KEY_RECORDS,
  varintSize,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
  writeVarint,
} from "./_protobuf.ts";
import { utf8Length, writeUtf8 } from "./_utf8.ts";
import { typeName } from "./_describe.ts";

/**
 * The four bytes every aggregated record starts with: `F3 89 9A C2`.
 *
 * A `Uint8Array` cannot be frozen, so this one is a copy for callers: the codec never reads
 * it, and writing to it changes nothing but this copy.
 *
 * @example Checking the prefix by hand
 * ```ts
 * import { AGGREGATED_MAGIC, encodeAggregated } from "@webkpl/kpl";
 *
 * const bytes = encodeAggregated([{ partitionKey: "a", data: new Uint8Array([1]) }]);
 * console.log(bytes.subarray(0, 4)); // AGGREGATED_MAGIC
 * ```
 */
export const AGGREGATED_MAGIC: Uint8Array = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2);

const MAGIC_0 = 0xf3;
const MAGIC_1 = 0x89;
const MAGIC_2 = 0x9a;
const MAGIC_3 = 0xc2;
const DIGEST_LENGTH = 16;
/** Magic plus MD5: the size of an aggregated record with no fields. */
const FRAMING = 4 + DIGEST_LENGTH;
/** `Record.tags` (4, length-delimited). */
const KEY_TAGS = 0x22;
/** `Tag.key` (1, length-delimited). */
const KEY_TAG_KEY = 0x0a;
/** `Tag.value` (2, length-delimited). */
const KEY_TAG_VALUE = 0x12;
// Up to about this many bytes a plain loop copies faster than a call to
// TypedArray.prototype.set (measured in V8 and JavaScriptCore).
const SMALL_COPY = 16;
// Up to this many bytes, an ASCII string is built by hand instead of by TextDecoder.
const SHORT_STRING = 32;

/** One user record to aggregate. */
export interface AggregationInput {
  /** The partition key, stored once per aggregate in the partition key table. */
  readonly partitionKey: string;
  /** The explicit hash key, stored once per aggregate in the explicit hash key table. */
  readonly explicitHashKey?: string | undefined;
  /** The payload. Must not change between `add()` and `encode()`. */
  readonly data: Uint8Array;
}

/**
 * Builds one aggregated record incrementally and knows its exact encoded size at every step,
 * so an aggregator can stop adding right at a size limit. Reusable: {@linkcode clear} keeps
 * the tables for the next aggregate.
 *
 * Strings are written as UTF-8 the way `TextEncoder` writes them (a lone surrogate becomes
 * U+FFFD); validate partition keys first with `assertPartitionKey`.
 *
 * @example Filling an aggregate up to a size limit
 * ```ts
 * import { AggregateBuilder, decodeAggregated } from "@webkpl/kpl";
 *
 * const builder = new AggregateBuilder();
 * const data = new Uint8Array(100);
 * for (let i = 0; i < 1000; i++) {
 *   if (!builder.tryAdd({ partitionKey: `key-${i % 7}`, data }, 4096)) break;
 * }
 * const bytes = builder.encode();
 * console.log(bytes.length); // builder.size
 * console.log(bytes.length <= 4096); // true
 * console.log(decodeAggregated(bytes).length); // builder.count
 * ```
 */
export class AggregateBuilder {
  // Storage outlives clear(): only the first #partitionKeyCount, #hashKeyCount and #count
  // entries are live, so refilling never regrows an array.
  readonly #partitionKeyIndex = new Map<string, number>();
  readonly #partitionKeys: string[] = [];
  #partitionKeyLengths: Int32Array = new Int32Array(16);
  #partitionKeyCount = 0;
  readonly #hashKeyIndex = new Map<string, number>();
  readonly #hashKeys: string[] = [];
  #hashKeyLengths: Int32Array = new Int32Array(16);
  #hashKeyCount = 0;
  readonly #data: Uint8Array[] = [];
  /**
   * Three numbers per record: partition key index, explicit hash key index (-1 for none),
   * and the encoded length of its `Record` message.
   */
  #fields: Int32Array = new Int32Array(3 * 64);
  #count = 0;
  /** Length of the protobuf `AggregatedRecord`. */
  #bodyLength = 0;

  // What #measure() found for the record it last measured, for #commit().
  #newPartitionKeyLength = -1;
  #measuredPartitionKey = 0;
  #newHashKeyLength = -1;
  #measuredHashKey = -1;
  #measuredRecordLength = 0;
  #measuredGrowth = 0;

  /** How many user records the aggregate holds. */
  get count(): number {
    return this.#count;
  }

  /** How many distinct partition keys the aggregate holds. */
  get partitionKeyCount(): number {
    return this.#partitionKeyCount;
  }

  /**
   * The exact length of what {@linkcode encode} would return now: 4 magic bytes, the
   * protobuf message and the 16-byte MD5. 20 for an empty builder.
   */
  get size(): number {
    return FRAMING + this.#bodyLength;
  }

  /**
   * The exact size the aggregate would have with `record` added, counting key-table
   * deduplication and the width of every varint. Changes nothing.
   *
   * @param record The candidate user record.
   * @returns What {@linkcode size} would be after `add(record)`.
   * @throws {TypeError} If the record's fields have the wrong types.
   */
  sizeWith(record: AggregationInput): number {
    return FRAMING + this.#bodyLength + this.#measure(record);
  }

  /**
   * Adds a user record at the end of the aggregate.
   *
   * @param record The user record. Its `data` is kept by reference until {@linkcode clear}.
   * @throws {TypeError} If the record's fields have the wrong types.
   */
  add(record: AggregationInput): void {
    this.#measure(record);
    this.#commit(record);
  }

  /**
   * Adds `record` only if the aggregate's size stays within `maxSize`; one pass instead of
   * {@linkcode sizeWith} then {@linkcode add}.
   *
   * @param record The user record.
   * @param maxSize The largest acceptable {@linkcode size}, in bytes.
   * @returns `true` if the record was added, `false` if it would not fit (nothing changes).
   * @throws {TypeError} If the record's fields have the wrong types.
   */
  tryAdd(record: AggregationInput, maxSize: number): boolean {
    if (FRAMING + this.#bodyLength + this.#measure(record) > maxSize) return false;
    this.#commit(record);
    return true;
  }

  /**
   * Serializes the aggregate: exactly {@linkcode size} bytes in one allocation, byte for byte
   * what the C++ KPL writes for the same records in the same order. The builder keeps its
   * records; call {@linkcode clear} to start the next aggregate.
   *
   * @returns The aggregated record (magic, protobuf, MD5), even for 0 or 1 records.
   * @throws {RangeError} If a record's `data` changed length after it was added.
   */
  encode(): Uint8Array {
    const size = FRAMING + this.#bodyLength;
    const out = new Uint8Array(size);
    out[0] = MAGIC_0;
    out[1] = MAGIC_1;
    out[2] = MAGIC_2;
    out[3] = MAGIC_3;
    let p = 4;
    const partitionKeys = this.#partitionKeys;
    const partitionKeyLengths = this.#partitionKeyLengths;
    for (let i = 0; i < this.#partitionKeyCount; i++) {
      out[p++] = KEY_PARTITION_KEY_TABLE;
      p = writeVarint(out, p, partitionKeyLengths[i]!);
      p = writeUtf8(partitionKeys[i]!, out, p);
    }
    const hashKeys = this.#hashKeys;
    const hashKeyLengths = this.#hashKeyLengths;
    for (let i = 0; i < this.#hashKeyCount; i++) {
      out[p++] = KEY_EXPLICIT_HASH_KEY_TABLE;
      p = writeVarint(out, p, hashKeyLengths[i]!);
      p = writeUtf8(hashKeys[i]!, out, p);
    }
    const data = this.#data;
    const fields = this.#fields;
    for (let i = 0; i < this.#count; i++) {
      const bytes = data[i]!;
      const length = bytes.length;
      const recordLength = fields[3 * i + 2]!;
      out[p++] = KEY_RECORDS;
      p = writeVarint(out, p, recordLength);
      const recordEnd = p + recordLength;
      out[p++] = KEY_PARTITION_KEY_INDEX;
      p = writeVarint(out, p, fields[3 * i]!);
      const hashKey = fields[3 * i + 1]!;
      if (hashKey >= 0) {
        out[p++] = KEY_EXPLICIT_HASH_KEY_INDEX;
        p = writeVarint(out, p, hashKey);
      }
      out[p++] = KEY_DATA;
      p = writeVarint(out, p, length);
      // A buffer detached or resized since add() would otherwise yield a wrong aggregate.
      if (p + length !== recordEnd) {
        throw new RangeError(
          `Cannot encode aggregated record as the data of record ${i} changed length after it was added: current length is ${length}`,
        );
      }
      if (length > SMALL_COPY) {
        out.set(bytes, p);
        p += length;
      } else {
        for (let j = 0; j < length; j++) out[p++] = bytes[j]!;
      }
    }
    md5Into(out, 4, p, out, p);
    return out;
  }

  /** Empties the builder for the next aggregate, keeping its tables to avoid reallocating. */
  clear(): void {
    // Overwrite rather than truncate, so the arrays keep their capacity yet hold no
    // reference to user data.
    this.#partitionKeyIndex.clear();
    for (let i = 0; i < this.#partitionKeyCount; i++) this.#partitionKeys[i] = "";
    this.#partitionKeyCount = 0;
    this.#hashKeyIndex.clear();
    for (let i = 0; i < this.#hashKeyCount; i++) this.#hashKeys[i] = "";
    this.#hashKeyCount = 0;
    for (let i = 0; i < this.#count; i++) this.#data[i] = EMPTY;
    this.#count = 0;
    this.#bodyLength = 0;
  }

  // Returns how much the body would grow by adding `record`, and leaves what #commit needs.
  #measure(record: AggregationInput): number {
    const partitionKey = record.partitionKey;
    const explicitHashKey = record.explicitHashKey;
    const data = record.data;
    if (typeof partitionKey !== "string") {
      throw new TypeError(
        `Cannot aggregate a record as 'partitionKey' must be a string: current type is ${
          typeName(partitionKey)
        }`,
      );
    }
    if (explicitHashKey !== undefined && typeof explicitHashKey !== "string") {
      throw new TypeError(
        `Cannot aggregate a record as 'explicitHashKey' must be a string or undefined: current type is ${
          typeName(explicitHashKey)
        }`,
      );
    }
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot aggregate a record as 'data' must be a Uint8Array: current type is ${
          typeName(data)
        }`,
      );
    }
    let growth = 0;
    let partitionKeyIndex = this.#partitionKeyIndex.get(partitionKey);
    let newPartitionKeyLength = -1;
    if (partitionKeyIndex === undefined) {
      partitionKeyIndex = this.#partitionKeyCount;
      newPartitionKeyLength = utf8Length(partitionKey);
      growth += 1 + varintSize(newPartitionKeyLength) + newPartitionKeyLength;
    }
    let recordLength = 1 + varintSize(partitionKeyIndex);
    let hashKeyIndex = -1;
    let newHashKeyLength = -1;
    if (explicitHashKey !== undefined) {
      const known = this.#hashKeyIndex.get(explicitHashKey);
      if (known === undefined) {
        hashKeyIndex = this.#hashKeyCount;
        newHashKeyLength = utf8Length(explicitHashKey);
        growth += 1 + varintSize(newHashKeyLength) + newHashKeyLength;
      } else {
        hashKeyIndex = known;
      }
      recordLength += 1 + varintSize(hashKeyIndex);
    }
    const dataLength = data.length;
    recordLength += 1 + varintSize(dataLength) + dataLength;
    growth += 1 + varintSize(recordLength) + recordLength;
    this.#newPartitionKeyLength = newPartitionKeyLength;
    this.#measuredPartitionKey = partitionKeyIndex;
    this.#newHashKeyLength = newHashKeyLength;
    this.#measuredHashKey = hashKeyIndex;
    this.#measuredRecordLength = recordLength;
    this.#measuredGrowth = growth;
    return growth;
  }

  #commit(record: AggregationInput): void {
    if (this.#newPartitionKeyLength >= 0) {
      const n = this.#partitionKeyCount;
      this.#partitionKeyIndex.set(record.partitionKey, n);
      this.#partitionKeys[n] = record.partitionKey;
      if (n === this.#partitionKeyLengths.length) {
        this.#partitionKeyLengths = grow(this.#partitionKeyLengths);
      }
      this.#partitionKeyLengths[n] = this.#newPartitionKeyLength;
      this.#partitionKeyCount = n + 1;
    }
    if (this.#newHashKeyLength >= 0) {
      const n = this.#hashKeyCount;
      const explicitHashKey = record.explicitHashKey!;
      this.#hashKeyIndex.set(explicitHashKey, n);
      this.#hashKeys[n] = explicitHashKey;
      if (n === this.#hashKeyLengths.length) this.#hashKeyLengths = grow(this.#hashKeyLengths);
      this.#hashKeyLengths[n] = this.#newHashKeyLength;
      this.#hashKeyCount = n + 1;
    }
    const n = this.#count;
    this.#data[n] = record.data;
    if (3 * n + 3 > this.#fields.length) this.#fields = grow(this.#fields);
    this.#fields[3 * n] = this.#measuredPartitionKey;
    this.#fields[3 * n + 1] = this.#measuredHashKey;
    this.#fields[3 * n + 2] = this.#measuredRecordLength;
    this.#count = n + 1;
    this.#bodyLength += this.#measuredGrowth;
  }
}

const EMPTY = new Uint8Array(0);

function grow(array: Int32Array): Int32Array {
  const larger = new Int32Array(array.length * 2);
  larger.set(array);
  return larger;
}

// encodeAggregated() borrows this builder and always empties it, so it holds no user data
// between calls; nothing it calls can re-enter.
const sharedBuilder = new AggregateBuilder();

/**
 * Encodes user records as one aggregated record, in the given order.
 *
 * Always the aggregated format, even for 0 or 1 records (the producer sends a lone record
 * raw instead; that choice belongs to the caller).
 *
 * @param records The user records.
 * @returns Magic, protobuf and MD5, byte for byte as the C++ KPL writes them.
 * @throws {TypeError} If a record's fields have the wrong types.
 *
 * @example Encoding two records
 * ```ts
 * import { encodeAggregated } from "@webkpl/kpl";
 *
 * const te = new TextEncoder();
 * const bytes = encodeAggregated([
 *   { partitionKey: "a", data: te.encode("x") },
 *   { partitionKey: "b", data: te.encode("y") },
 * ]);
 * console.log(bytes.length); // 4 + 20 + 16
 * ```
 */
export function encodeAggregated(records: readonly AggregationInput[]): Uint8Array {
  try {
    for (let i = 0; i < records.length; i++) sharedBuilder.add(records[i]!);
    return sharedBuilder.encode();
  } finally {
    sharedBuilder.clear();
  }
}

/** A tag of a decoded user record. The C++ KPL never writes tags; other writers may. */
export interface DecodedTag {
  /** The tag's key. */
  key: string;
  /** The tag's value, absent when the writer gave none. */
  value?: string;
}

/** A user record read from an aggregated record. */
export interface DecodedRecord {
  /** The record's partition key, from the partition key table. */
  partitionKey: string;
  /** The record's explicit hash key, from the explicit hash key table; absent when none. */
  explicitHashKey?: string;
  /** The payload: a view into the decoded bytes, not a copy. */
  data: Uint8Array;
  /** The record's tags, in order; absent when the record has none. */
  tags?: readonly DecodedTag[];
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const checksum = new Uint8Array(DIGEST_LENGTH);
// The decoder's read position; module-level so reading a varint allocates nothing.
let at = 0;

/**
 * Decodes an aggregated record into its user records, in order.
 *
 * Checks the magic and the MD5 first, then parses the whole protobuf message; fields may come
 * in any order, unknown fields of wire type 0, 1, 2 and 5 are skipped, and a repeated scalar
 * field keeps its last value, as protobuf parsers do.
 *
 * @param bytes The Kinesis record's data.
 * @returns The user records; `data` of each is a view into `bytes`.
 * @throws {DecodeError} For every malformed input, with the byte offset of the problem:
 * shorter than 20 bytes, wrong magic, MD5 mismatch, truncated varint or field, varint over
 * 64 bits, field number 0, groups or invalid wire types, missing `partition_key_index`,
 * `data` or tag `key`, a key index outside its table, invalid UTF-8, nested lengths that
 * overrun their message.
 * @throws {TypeError} If `bytes` is not a `Uint8Array`.
 *
 * @example Decoding what was encoded
 * ```ts
 * import { decodeAggregated, encodeAggregated } from "@webkpl/kpl";
 *
 * const data = new Uint8Array([1, 2, 3]);
 * const bytes = encodeAggregated([{ partitionKey: "k", explicitHashKey: "42", data }]);
 * const [record] = decodeAggregated(bytes);
 * console.log(record?.partitionKey); // "k"
 * console.log(record?.explicitHashKey); // "42"
 * console.log(record?.data); // data
 * ```
 */
export function decodeAggregated(bytes: Uint8Array): DecodedRecord[] {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot decode aggregated record as 'bytes' must be a Uint8Array: current type is ${
        typeName(bytes)
      }`,
    );
  }
  const length = bytes.length;
  if (length < FRAMING) {
    throw new DecodeError(
      `Cannot decode aggregated record as it is shorter than ${FRAMING} bytes: current length is ${length}`,
      0,
    );
  }
  const magicMismatch = bytes[0] !== MAGIC_0
    ? 0
    : bytes[1] !== MAGIC_1
    ? 1
    : bytes[2] !== MAGIC_2
    ? 2
    : bytes[3] !== MAGIC_3
    ? 3
    : -1;
  if (magicMismatch >= 0) {
    throw new DecodeError(
      "Cannot decode aggregated record as it does not start with the magic bytes F3 89 9A C2",
      magicMismatch,
    );
  }
  if (!checksumMatches(bytes, length)) {
    throw new DecodeError(
      "Cannot decode aggregated record as its MD5 checksum does not match its contents",
      length - DIGEST_LENGTH,
    );
  }
  return decodeBody(bytes, 4, length - DIGEST_LENGTH);
}

/**
 * Whether `bytes` is an aggregated record: at least 20 bytes, the magic prefix, and a
 * matching MD5. A raw payload that merely starts with the magic is not.
 *
 * @param bytes A Kinesis record's data.
 * @returns `true` when the framing and checksum are right (the protobuf is not parsed).
 *
 * @example Telling aggregated data from raw data
 * ```ts
 * import { encodeAggregated, isAggregated } from "@webkpl/kpl";
 *
 * const data = new Uint8Array([0xf3, 0x89, 0x9a, 0xc2, ...new Uint8Array(20)]);
 * console.log(isAggregated(data)); // false
 * console.log(isAggregated(encodeAggregated([{ partitionKey: "k", data }]))); // true
 * ```
 */
export function isAggregated(bytes: Uint8Array): boolean {
  return bytes instanceof Uint8Array && bytes.length >= FRAMING && hasMagic(bytes) &&
    checksumMatches(bytes, bytes.length);
}

/** A Kinesis record as a consumer received it, the input of {@linkcode deaggregate}. */
export interface DeaggregationInput {
  /** The record's data. */
  readonly data: Uint8Array;
  /** The record's partition key (`"a"` for aggregates written by the C++ KPL). */
  readonly partitionKey: string;
  /** The record's explicit hash key, if the caller knows it. */
  readonly explicitHashKey?: string | undefined;
  /** The record's sequence number, copied to every user record. */
  readonly sequenceNumber?: string | undefined;
}

/**
 * A user record out of {@linkcode deaggregate}: the fields of a {@linkcode DecodedRecord}
 * plus where it sat in its Kinesis record, as the KCL's `KinesisClientRecord` reports it.
 */
export interface DeaggregatedRecord extends DecodedRecord {
  /** The Kinesis record's sequence number, shared by all its user records. */
  sequenceNumber?: string;
  /** Position within the aggregate, from 0; 0 for a record that was not aggregated. */
  subSequenceNumber: number;
  /** Whether the record came out of an aggregate. */
  aggregated: boolean;
}

/**
 * Splits a Kinesis record into its user records, the way the KCL does: an aggregate with a
 * valid MD5 yields its user records with sub-sequence numbers 0, 1, ...; anything else
 * (no magic, 20 bytes or fewer, an MD5 mismatch, or a protobuf that does not parse) is
 * returned whole as one record with `aggregated: false`, so nothing is ever lost.
 *
 * @param record The Kinesis record.
 * @returns The user records, at least one unless the aggregate is valid and empty.
 * @throws {TypeError} If `record.data` is not a `Uint8Array`.
 *
 * @example Reading records that may or may not be aggregated
 * ```ts
 * import { deaggregate, encodeAggregated } from "@webkpl/kpl";
 *
 * const data = encodeAggregated([
 *   { partitionKey: "k1", data: new Uint8Array([1]) },
 *   { partitionKey: "k2", data: new Uint8Array([2]) },
 * ]);
 * const records = deaggregate({ data, partitionKey: "a", sequenceNumber: "49590338271490256608559692538361571095921575989136588898" });
 * console.log(records.map((r) => [r.partitionKey, r.subSequenceNumber])); // [["k1", 0], ["k2", 1]]
 *
 * const raw = deaggregate({ data: new Uint8Array([7]), partitionKey: "p" });
 * console.log(raw[0]?.aggregated); // false
 * ```
 */
export function deaggregate(record: DeaggregationInput): DeaggregatedRecord[] {
  const data = record.data;
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot deaggregate a record as 'data' must be a Uint8Array: current type is ${
        typeName(data)
      }`,
    );
  }
  const length = data.length;
  const sequenceNumber = record.sequenceNumber;
  // The KCL requires more than the framing: an aggregate of exactly 20 bytes passes through.
  if (length > FRAMING && hasMagic(data) && checksumMatches(data, length)) {
    let decoded: DecodedRecord[] | undefined;
    try {
      decoded = decodeBody(data, 4, length - DIGEST_LENGTH);
    } catch (error) {
      if (!isDecodeError(error)) throw error;
    }
    if (decoded !== undefined) {
      const records = decoded as DeaggregatedRecord[];
      for (let i = 0; i < records.length; i++) {
        const user = records[i]!;
        if (sequenceNumber !== undefined) user.sequenceNumber = sequenceNumber;
        user.subSequenceNumber = i;
        user.aggregated = true;
      }
      return records;
    }
  }
  const whole: DeaggregatedRecord = {
    partitionKey: record.partitionKey,
    data,
    subSequenceNumber: 0,
    aggregated: false,
  };
  if (record.explicitHashKey !== undefined) whole.explicitHashKey = record.explicitHashKey;
  if (sequenceNumber !== undefined) whole.sequenceNumber = sequenceNumber;
  return [whole];
}

function hasMagic(bytes: Uint8Array): boolean {
  return bytes[0] === MAGIC_0 && bytes[1] === MAGIC_1 && bytes[2] === MAGIC_2 &&
    bytes[3] === MAGIC_3;
}

function checksumMatches(bytes: Uint8Array, length: number): boolean {
  const end = length - DIGEST_LENGTH;
  md5Into(bytes, 4, end, checksum, 0);
  for (let i = 0; i < DIGEST_LENGTH; i++) {
    if (checksum[i] !== bytes[end + i]) return false;
  }
  return true;
}

// Parses AggregatedRecord in bytes[start, end). The tables are collected first, since a
// writer may put them after the records.
function decodeBody(bytes: Uint8Array, start: number, end: number): DecodedRecord[] {
  const partitionKeys: string[] = [];
  const hashKeys: string[] = [];
  const spans: number[] = [];
  at = start;
  while (at < end) {
    const keyAt = at;
    const key = readKey(bytes, end);
    if (key === KEY_PARTITION_KEY_TABLE) {
      partitionKeys.push(readString(bytes, end, "a partition_key_table entry"));
    } else if (key === KEY_EXPLICIT_HASH_KEY_TABLE) {
      hashKeys.push(readString(bytes, end, "an explicit_hash_key_table entry"));
    } else if (key === KEY_RECORDS) {
      const length = readLength(bytes, end, "a records entry");
      spans.push(at, at + length);
      at += length;
    } else {
      skipField(bytes, end, key, keyAt);
    }
  }
  const records: DecodedRecord[] = [];
  for (let i = 0; i < spans.length; i += 2) {
    records.push(decodeRecord(bytes, spans[i]!, spans[i + 1]!, partitionKeys, hashKeys));
  }
  return records;
}

function decodeRecord(
  bytes: Uint8Array,
  start: number,
  end: number,
  partitionKeys: readonly string[],
  hashKeys: readonly string[],
): DecodedRecord {
  let partitionKeyAt = -1;
  let partitionKeyIndex = 0;
  let hashKeyAt = -1;
  let hashKeyIndex = 0;
  let dataStart = -1;
  let dataEnd = -1;
  let tags: DecodedTag[] | undefined;
  at = start;
  while (at < end) {
    const keyAt = at;
    const key = readKey(bytes, end);
    if (key === KEY_PARTITION_KEY_INDEX) {
      partitionKeyAt = at;
      partitionKeyIndex = readVarint(bytes, end);
    } else if (key === KEY_EXPLICIT_HASH_KEY_INDEX) {
      hashKeyAt = at;
      hashKeyIndex = readVarint(bytes, end);
    } else if (key === KEY_DATA) {
      const length = readLength(bytes, end, "Record.data");
      dataStart = at;
      dataEnd = at + length;
      at = dataEnd;
    } else if (key === KEY_TAGS) {
      const length = readLength(bytes, end, "a Record.tags entry");
      const tagEnd = at + length;
      (tags ??= []).push(decodeTag(bytes, at, tagEnd));
      at = tagEnd;
    } else {
      skipField(bytes, end, key, keyAt);
    }
  }
  if (partitionKeyAt < 0) {
    throw new DecodeError(
      "Cannot decode aggregated record as a record lacks the required partition_key_index",
      start,
    );
  }
  if (dataStart < 0) {
    throw new DecodeError(
      "Cannot decode aggregated record as a record lacks the required data",
      start,
    );
  }
  if (partitionKeyIndex >= partitionKeys.length) {
    throw new DecodeError(
      `Cannot decode aggregated record as partition_key_index ${
        varintText(bytes, partitionKeyAt)
      } is out of range: the table has ${partitionKeys.length} entries`,
      partitionKeyAt,
    );
  }
  const partitionKey = partitionKeys[partitionKeyIndex]!;
  // A view built from the buffer is cheaper than subarray(), and a plain Uint8Array even
  // when `bytes` is a subclass such as Buffer.
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart, dataEnd - dataStart);
  let record: DecodedRecord;
  if (hashKeyAt >= 0) {
    if (hashKeyIndex >= hashKeys.length) {
      throw new DecodeError(
        `Cannot decode aggregated record as explicit_hash_key_index ${
          varintText(bytes, hashKeyAt)
        } is out of range: the table has ${hashKeys.length} entries`,
        hashKeyAt,
      );
    }
    record = { partitionKey, explicitHashKey: hashKeys[hashKeyIndex]!, data };
  } else {
    record = { partitionKey, data };
  }
  if (tags !== undefined) record.tags = tags;
  return record;
}

function decodeTag(bytes: Uint8Array, start: number, end: number): DecodedTag {
  let key: string | undefined;
  let value: string | undefined;
  at = start;
  while (at < end) {
    const keyAt = at;
    const fieldKey = readKey(bytes, end);
    if (fieldKey === KEY_TAG_KEY) key = readString(bytes, end, "Tag.key");
    else if (fieldKey === KEY_TAG_VALUE) value = readString(bytes, end, "Tag.value");
    else skipField(bytes, end, fieldKey, keyAt);
  }
  if (key === undefined) {
    throw new DecodeError("Cannot decode aggregated record as a tag lacks the required key", start);
  }
  return value === undefined ? { key } : { key, value };
}

// Reads a varint at `at` that must end before `end`, as a number (exact up to 2^53, which
// covers every valid length and index; larger values only ever fail a range check).
function readVarint(bytes: Uint8Array, end: number): number {
  const start = at;
  if (start < end) {
    const first = bytes[start]!;
    if (first < 0x80) {
      at = start + 1;
      return first;
    }
  }
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= end) {
      throw new DecodeError("Cannot decode aggregated record as a varint is truncated", start);
    }
    const byte = bytes[at++]!;
    // The tenth byte holds bit 63 only.
    if (i === 9 && byte > 1) break;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 0x80;
  }
  throw new DecodeError("Cannot decode aggregated record as a varint exceeds 64 bits", start);
}

function readKey(bytes: Uint8Array, end: number): number {
  const start = at;
  const key = readVarint(bytes, end);
  if (key > 0xffffffff) {
    throw new DecodeError("Cannot decode aggregated record as a field key exceeds 32 bits", start);
  }
  if (key < 8) {
    throw new DecodeError("Cannot decode aggregated record as a field has number 0", start);
  }
  return key;
}

function readLength(bytes: Uint8Array, end: number, what: string): number {
  const start = at;
  const length = readVarint(bytes, end);
  if (length > end - at) {
    throw new DecodeError(
      `Cannot decode aggregated record as ${what} is truncated: it declares ${
        varintText(bytes, start)
      } bytes and ${end - at} remain`,
      start,
    );
  }
  return length;
}

function readString(bytes: Uint8Array, end: number, what: string): string {
  const length = readLength(bytes, end, what);
  const start = at;
  at += length;
  // Short ASCII strings are the common case, and building them by hand is several times
  // cheaper than a TextDecoder call in V8.
  if (length <= SHORT_STRING) {
    let text = "";
    let i = start;
    for (; i < at; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) break;
      text += String.fromCharCode(c);
    }
    if (i === at) return text;
  }
  try {
    return utf8Decoder.decode(bytes.subarray(start, at));
  } catch {
    throw new DecodeError(`Cannot decode aggregated record as ${what} is not valid UTF-8`, start);
  }
}

function skipField(bytes: Uint8Array, end: number, key: number, keyAt: number): void {
  const wireType = key & 7;
  const field = (key - wireType) / 8;
  if (wireType === WIRE_VARINT) {
    readVarint(bytes, end);
  } else if (wireType === WIRE_LENGTH_DELIMITED) {
    const length = readLength(bytes, end, `unknown field ${field}`);
    at += length;
  } else if (wireType === WIRE_FIXED64 || wireType === WIRE_FIXED32) {
    const width = wireType === WIRE_FIXED64 ? 8 : 4;
    if (width > end - at) {
      throw new DecodeError(
        `Cannot decode aggregated record as unknown field ${field} is truncated: it needs ${width} bytes and ${
          end - at
        } remain`,
        keyAt,
      );
    }
    at += width;
  } else {
    throw new DecodeError(
      `Cannot decode aggregated record as field ${field} has unsupported wire type ${wireType}`,
      keyAt,
    );
  }
}

// The exact decimal value of the varint at `start`, for error messages about values that
// may exceed 2^53. Only called after the varint was read successfully.
function varintText(bytes: Uint8Array, start: number): string {
  let value = 0n;
  let shift = 0n;
  for (let i = start;; i++) {
    const byte = bytes[i]!;
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return value.toString();
    shift += 7n;
  }
}
