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
  readonly #partitionKeys = new KeyTable(KEY_PARTITION_KEY_TABLE);
  readonly #hashKeys = new KeyTable(KEY_EXPLICIT_HASH_KEY_TABLE);
  // Storage outlives clear(): only the first #count entries are live, so refilling never
  // regrows an array.
  readonly #data: Uint8Array[] = [];
  /**
   * Three numbers per record: partition key index, explicit hash key index (-1 for none),
   * and the encoded length of its `Record` message.
   */
  #fields: Int32Array = new Int32Array(3 * 64);
  #count = 0;
  /** Length of the protobuf `AggregatedRecord`. */
  #bodyLength = 0;

  // What #measure() found for the record it last measured, for #commit(): each key's
  // KeyTable.lookup() code, and the record's length and growth.
  #partitionKeyCode = 0;
  #hashKeyCode = NO_KEY;
  #recordLength = 0;
  #growth = 0;

  /** How many user records the aggregate holds. */
  get count(): number {
    return this.#count;
  }

  /** How many distinct partition keys the aggregate holds. */
  get partitionKeyCount(): number {
    return this.#partitionKeys.count;
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
    const out = new Uint8Array(FRAMING + this.#bodyLength);
    this.encodeInto(out, 0);
    return out;
  }

  /**
   * Serializes the aggregate into `out` from `offset`, the same {@linkcode size} bytes as
   * {@linkcode encode} without allocating them: a caller that recycles its buffers once
   * their request has settled saves the allocation and zeroing of a new one per aggregate,
   * which costs more than the rest of the encoding outside MD5 (`docs/performance.md`).
   *
   * @param out The destination, with at least {@linkcode size} bytes from `offset`.
   * @param offset Index in `out` of the aggregate's first byte.
   * @returns The index in `out` one past the aggregate's last byte.
   * @throws {TypeError} If `out` is not a `Uint8Array`.
   * @throws {RangeError} If the aggregate does not fit in `out` at `offset`, or a record's
   * `data` changed length after it was added.
   *
   * @example Encoding into a reused buffer
   * ```ts
   * import { AggregateBuilder, decodeAggregated } from "@webkpl/kpl";
   *
   * const builder = new AggregateBuilder();
   * builder.add({ partitionKey: "a", data: new Uint8Array([1, 2, 3]) });
   * const buffer = new Uint8Array(51_200);
   * const end = builder.encodeInto(buffer, 0);
   * console.log(end === builder.size); // true
   * console.log(decodeAggregated(buffer.subarray(0, end)).length); // 1
   * ```
   */
  encodeInto(out: Uint8Array, offset: number): number {
    const size = FRAMING + this.#bodyLength;
    assertBytes(out, "encode aggregated record as 'out'");
    if (!Number.isInteger(offset) || offset < 0 || offset + size > out.length) {
      throw new RangeError(
        `Cannot encode aggregated record as its ${size} bytes must fit in 'out' at 'offset': current value is ${offset} of ${out.length} bytes`,
      );
    }
    out[offset] = MAGIC_0;
    out[offset + 1] = MAGIC_1;
    out[offset + 2] = MAGIC_2;
    out[offset + 3] = MAGIC_3;
    let p = this.#partitionKeys.write(out, offset + 4);
    p = this.#hashKeys.write(out, p);
    const data = this.#data;
    const fields = this.#fields;
    const count = this.#count;
    for (let i = 0, f = 0; i < count; i++, f += 3) {
      const bytes = data[i]!;
      const length = bytes.length;
      const recordLength = fields[f + 2]!;
      out[p] = KEY_RECORDS;
      p = writeVarint(out, p + 1, recordLength);
      const recordEnd = p + recordLength;
      out[p] = KEY_PARTITION_KEY_INDEX;
      p = writeVarint(out, p + 1, fields[f]!);
      const hashKey = fields[f + 1]!;
      if (hashKey >= 0) {
        out[p] = KEY_EXPLICIT_HASH_KEY_INDEX;
        p = writeVarint(out, p + 1, hashKey);
      }
      out[p] = KEY_DATA;
      p = writeVarint(out, p + 1, length);
      // A buffer detached or resized since add() would otherwise yield a wrong aggregate.
      if (p + length !== recordEnd) {
        throw new RangeError(
          `Cannot encode aggregated record as the data of record ${i} changed length after it was added: current length is ${length}`,
        );
      }
      if (length > SMALL_COPY) {
        out.set(bytes, p);
        p = recordEnd;
      } else {
        for (let j = 0; j < length; j++) out[p++] = bytes[j]!;
      }
    }
    md5Into(out, offset + 4, p, out, p);
    return p + DIGEST_LENGTH;
  }

  /**
   * Empties the builder for the next aggregate. It keeps no reference to record data, but
   * remembers recent keys (strings only, a few aggregates' worth) so that recurring keys cost
   * less in the next aggregate.
   */
  clear(): void {
    this.#partitionKeys.clear();
    this.#hashKeys.clear();
    // Overwrite rather than truncate, so the array keeps its capacity yet holds no
    // reference to user data.
    const data = this.#data;
    for (let i = 0; i < this.#count; i++) data[i] = EMPTY;
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
    assertBytes(data, "aggregate a record as 'data'");
    const partitionKeys = this.#partitionKeys;
    let growth = partitionKeys.lookup(partitionKey);
    this.#partitionKeyCode = partitionKeys.code;
    let recordLength = 1 + varintSize(partitionKeys.index);
    this.#hashKeyCode = NO_KEY;
    if (explicitHashKey !== undefined) {
      if (typeof explicitHashKey !== "string") {
        throw new TypeError(
          `Cannot aggregate a record as 'explicitHashKey' must be a string or undefined: current type is ${
            typeName(explicitHashKey)
          }`,
        );
      }
      const hashKeys = this.#hashKeys;
      growth += hashKeys.lookup(explicitHashKey);
      this.#hashKeyCode = hashKeys.code;
      recordLength += 1 + varintSize(hashKeys.index);
    }
    const dataLength = data.length;
    recordLength += 1 + varintSize(dataLength) + dataLength;
    growth += 1 + varintSize(recordLength) + recordLength;
    this.#recordLength = recordLength;
    this.#growth = growth;
    return growth;
  }

  #commit(record: AggregationInput): void {
    const partitionKeys = this.#partitionKeys;
    let partitionKeyIndex = this.#partitionKeyCode;
    if (partitionKeyIndex < 0) {
      partitionKeyIndex = partitionKeys.append(record.partitionKey, partitionKeyIndex);
    }
    let hashKeyIndex = this.#hashKeyCode;
    if (hashKeyIndex < 0 && hashKeyIndex !== NO_KEY) {
      hashKeyIndex = this.#hashKeys.append(record.explicitHashKey!, hashKeyIndex);
    }
    const n = this.#count;
    this.#data[n] = record.data;
    const f = 3 * n;
    if (f + 3 > this.#fields.length) this.#fields = grow(this.#fields);
    const fields = this.#fields;
    fields[f] = partitionKeyIndex;
    fields[f + 1] = hashKeyIndex === NO_KEY ? -1 : hashKeyIndex;
    fields[f + 2] = this.#recordLength;
    this.#count = n + 1;
    this.#bodyLength += this.#growth;
  }
}

const EMPTY = new Uint8Array(0);

function grow(array: Int32Array): Int32Array {
  const larger = new Int32Array(array.length * 2);
  larger.set(array);
  return larger;
}

/** A record without an explicit hash key, where a {@linkcode KeyTable.lookup} code goes. */
const NO_KEY = -0x80000000;
/** {@linkcode KeyTable.lookup}'s code for a key the table has never seen. */
const UNSEEN = -1;
/** Keys a table remembers beyond twice those of its last aggregate (see `clear()`). */
const SPARE_KEYS = 128;

/**
 * One key table of an aggregate (partition keys or explicit hash keys), in order of first
 * use. Keys get a stable id that outlives {@linkcode clear}, with their table entry (field
 * key, length, UTF-8) encoded once into an arena: a shard's aggregates see the same keys
 * again and again, and a key seen before costs one `Map` lookup and a copy of a few bytes
 * instead of an insertion into a map regrown from empty, a UTF-8 measure and an encoding.
 * An aggregate is an epoch: clearing bumps it instead of emptying the map.
 */
class KeyTable {
  /** Keys in the current table. */
  count = 0;
  readonly #field: number;
  readonly #ids = new Map<string, number>();
  #idCount = 0;
  // By id: the epoch in which it was last in the table, its index there, and where its
  // entry starts in #arena (it ends where the next id's starts).
  #epochs: Int32Array = new Int32Array(16);
  #indexes: Int32Array = new Int32Array(16);
  #starts: Int32Array = new Int32Array(17);
  #arena: Uint8Array = new Uint8Array(256);
  /** By table index: id. */
  #order: Int32Array = new Int32Array(16);
  #epoch = 1;

  /** @param field The field key every entry starts with. */
  constructor(field: number) {
    this.#field = field;
  }

  /**
   * What the last {@linkcode lookup} found: the key's index in the current table if it is
   * there; else {@linkcode UNSEEN}, or `-2 - id` for a key seen in an earlier aggregate.
   */
  code = UNSEEN;
  /** The index the last looked-up key has, or would have once appended. */
  index = 0;

  /**
   * Looks `key` up, leaving {@linkcode code} and {@linkcode index}; returns the bytes it
   * would add to the table (field key, length and UTF-8), 0 if it is there. Changes nothing
   * else.
   */
  lookup(key: string): number {
    const id = this.#ids.get(key);
    if (id !== undefined && this.#epochs[id] === this.#epoch) {
      this.code = this.index = this.#indexes[id]!;
      return 0;
    }
    this.index = this.count;
    if (id !== undefined) {
      this.code = -2 - id;
      return this.#starts[id + 1]! - this.#starts[id]!;
    }
    this.code = UNSEEN;
    const length = utf8Length(key);
    return 1 + varintSize(length) + length;
  }

  /** Appends a key absent from the table, given its {@linkcode lookup} code; returns its index. */
  append(key: string, code: number): number {
    let id = -2 - code;
    if (code === UNSEEN) id = this.#remember(key);
    const index = this.count;
    if (index === this.#order.length) this.#order = grow(this.#order);
    this.#order[index] = id;
    this.#epochs[id] = this.#epoch;
    this.#indexes[id] = index;
    this.count = index + 1;
    return index;
  }

  /** Writes the table's entries from `p`; returns the index one past them. */
  write(out: Uint8Array, p: number): number {
    const arena = this.#arena;
    const starts = this.#starts;
    const order = this.#order;
    for (let i = 0; i < this.count; i++) {
      const id = order[i]!;
      const end = starts[id + 1]!;
      for (let j = starts[id]!; j < end; j++) out[p++] = arena[j]!;
    }
    return p;
  }

  /**
   * Starts the next aggregate's table. The remembered keys are bounded: past twice the
   * keys of the aggregate just ended plus {@linkcode SPARE_KEYS}, as with keys that never
   * recur, they are forgotten, so a table keeps no more strings than a few aggregates use.
   */
  clear(): void {
    if (this.#idCount > 2 * this.count + SPARE_KEYS || this.#epoch === 0x7fffffff) {
      this.#ids.clear();
      this.#idCount = 0;
      this.#epoch = 0;
    }
    this.#epoch++;
    this.count = 0;
  }

  #remember(key: string): number {
    const id = this.#idCount++;
    this.#ids.set(key, id);
    if (id + 1 === this.#epochs.length) {
      this.#epochs = grow(this.#epochs);
      this.#indexes = grow(this.#indexes);
      this.#starts = grow(this.#starts);
    }
    const start = this.#starts[id]!;
    // Room for the field key, a length varint and 3 bytes per UTF-16 unit at most.
    const room = start + 6 + 3 * key.length;
    if (room > this.#arena.length) {
      const larger = new Uint8Array(Math.max(2 * this.#arena.length, room));
      larger.set(this.#arena.subarray(0, start));
      this.#arena = larger;
    }
    const arena = this.#arena;
    arena[start] = this.#field;
    const length = utf8Length(key);
    const end = writeUtf8(key, arena, writeVarint(arena, start + 1, length));
    this.#starts[id + 1] = end;
    return id;
  }
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
  assertBytes(bytes, "decode aggregated record as 'bytes'");
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
  assertBytes(data, "deaggregate a record as 'data'");
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
    throw indexOutOfRange(bytes, {
      field: "partition_key_index",
      at: partitionKeyAt,
      entries: partitionKeys.length,
    });
  }
  const partitionKey = partitionKeys[partitionKeyIndex]!;
  // A view built from the buffer is cheaper than subarray(), and a plain Uint8Array even
  // when `bytes` is a subclass such as Buffer.
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart, dataEnd - dataStart);
  let record: DecodedRecord;
  if (hashKeyAt >= 0) {
    if (hashKeyIndex >= hashKeys.length) {
      throw indexOutOfRange(bytes, {
        field: "explicit_hash_key_index",
        at: hashKeyAt,
        entries: hashKeys.length,
      });
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

/** Throws the TypeError that says `subject` must be a Uint8Array, for every entry point here. */
function assertBytes(value: unknown, subject: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${subject} must be a Uint8Array: current type is ${typeName(value)}`,
    );
  }
}

/** The error for a key index past the end of its table; `at` is where the index starts. */
function indexOutOfRange(
  bytes: Uint8Array,
  index: { field: string; at: number; entries: number },
): DecodeError {
  return new DecodeError(
    `Cannot decode aggregated record as ${index.field} ${
      varintText(bytes, index.at)
    } is out of range: the table has ${index.entries} entries`,
    index.at,
  );
}
