// Validation of a put's record, up front and synchronous, so bad input fails at the call
// with a ValidationError naming the field. It also hashes the key: the hash is a by-product
// of checking it, and the record object is made only once everything is known good.

import { kindOf } from "./_describe.ts";
import { PendingRecord } from "./_pending_record.ts";
import { isValidStream, STREAM_RULE } from "./_stream_ref.ts";
import { utf8Length } from "./_utf8.ts";
import { ValidationError } from "./errors.ts";
import {
  assertPartitionKey,
  type HashKey,
  hashPartitionKey,
  parseExplicitHashKey,
} from "./hash_key.ts";
import type { UserRecord } from "./record.ts";

const UTF8 = new TextEncoder();

/** Where the hash key is computed before the record object exists. */
const scratch: HashKey = { h0: 0, h1: 0, h2: 0, h3: 0 };

/** What a record is checked against. */
export interface RecordRules {
  /** The stream of records that name none. */
  readonly defaultStream: string | undefined;
  /** Largest data plus partition key, in bytes. */
  readonly maxRecordSize: number;
  /** Streams already in use, whose names need no second check. */
  readonly knownStreams: ReadonlyMap<string, unknown>;
}

/**
 * Checks a record and makes its per-record state.
 *
 * @throws {ValidationError} Naming the field that is wrong.
 */
export function validateRecord(record: UserRecord, rules: RecordRules): PendingRecord {
  if (typeof record !== "object" || record === null) {
    throw new ValidationError(
      `A record must be an object: got ${kindOf(record)}`,
      { field: "record" },
    );
  }
  const stream: unknown = record.stream ?? rules.defaultStream;
  if (stream === undefined) {
    throw new ValidationError(
      "The record has no 'stream' and the producer has no default 'stream'",
      { field: "stream" },
    );
  }
  if (
    typeof stream !== "string" ||
    // The default stream was checked with the options.
    (stream !== rules.defaultStream && !rules.knownStreams.has(stream) && !isValidStream(stream))
  ) {
    const shown = typeof stream === "string" ? `'${stream.slice(0, 200)}'` : typeof stream;
    throw new ValidationError(
      `The record's 'stream' must be ${STREAM_RULE}: got ${shown}`,
      { field: "stream" },
    );
  }
  const partitionKey = record.partitionKey;
  assertPartitionKey(partitionKey);
  const explicitHashKey = record.explicitHashKey;
  let partitionKeyBytes: number;
  if (explicitHashKey === undefined || explicitHashKey === null) {
    partitionKeyBytes = hashPartitionKey(partitionKey, scratch);
  } else {
    parseExplicitHashKey(explicitHashKey, scratch);
    partitionKeyBytes = utf8Length(partitionKey);
  }
  const raw = record.data;
  let data: Uint8Array;
  if (raw instanceof Uint8Array) data = raw;
  else if (typeof raw === "string") data = UTF8.encode(raw);
  else {
    throw new ValidationError(
      `A record's 'data' must be a Uint8Array or a string: got ${kindOf(raw)}`,
      { field: "data" },
    );
  }
  const size = data.length + partitionKeyBytes;
  checkRecordSize(size, rules.maxRecordSize, "'maxRecordSize'");
  return PendingRecord.create(record, stream, data, partitionKeyBytes, scratch);
}

/**
 * Refuses a record larger than `limit`.
 *
 * @param size The record's data plus partition key bytes.
 * @param limit The largest size allowed.
 * @param source Where the limit comes from, for the message.
 * @throws {ValidationError} When `size` is over `limit`.
 */
export function checkRecordSize(size: number, limit: number, source: string): void {
  if (size <= limit) return;
  throw new ValidationError(
    `A record's data plus partition key must be at most ${limit} bytes (${source}): got ${size}`,
    { field: "data" },
  );
}
