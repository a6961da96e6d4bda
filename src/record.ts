/**
 * What goes into the producer and what comes back for every record.
 *
 * @module
 */

/** A record to put into a Kinesis stream. */
export interface UserRecord {
  /** The stream; falls back to the producer's `stream` option. */
  readonly stream?: string | undefined;
  /**
   * Decides the shard (through its MD5) unless `explicitHashKey` is given: 1 to 256
   * UTF-16 code units, no lone surrogates.
   */
  readonly partitionKey: string;
  /**
   * The payload. A string is sent as its UTF-8 bytes. The producer keeps a reference
   * rather than a copy, so do not modify the bytes until the record has settled.
   */
  readonly data: Uint8Array | string;
  /**
   * Routes the record to the shard whose range holds this 128-bit value, written in
   * canonical decimal (`0` or no leading zeros, at most 2^128 − 1).
   */
  readonly explicitHashKey?: string | undefined;
}

/** One try at delivering a record: a PutRecords call it rode in, or a synthetic end. */
export interface Attempt {
  /** When the attempt started, epoch milliseconds. */
  readonly startedAt: number;
  /** When the attempt ended, epoch milliseconds. */
  readonly endedAt: number;
  /**
   * Milliseconds the record waited before this attempt: since it was admitted for the
   * first attempt, since the previous attempt ended for later ones.
   */
  readonly delayMs: number;
  /** `endedAt − startedAt`. */
  readonly durationMs: number;
  /** Whether Kinesis stored the record in this attempt. */
  readonly success: boolean;
  /** The shard Kinesis reported, on success. */
  readonly shardId?: string;
  /** The sequence number Kinesis assigned, on success. */
  readonly sequenceNumber?: string;
  /**
   * Why the attempt failed: a Kinesis error code, or one of the producer's own codes
   * (`Expired`, `Wrong Shard`, `Record Count Mismatch`, `ProducerClosed`, `RequestTimeout`,
   * `NetworkError`).
   */
  readonly errorCode?: string;
  /** The error message that came with `errorCode`. */
  readonly errorMessage?: string;
}

/**
 * The terminal outcome of one record. Every admitted record gets exactly one. Failures
 * are data, not exceptions: look at `success`, `errorCode` and `attempts`.
 */
export interface RecordResult {
  /** Whether the record is in the stream. */
  readonly success: boolean;
  /** The shard that holds the record (success only). */
  readonly shardId: string | undefined;
  /** The Kinesis record's sequence number (success only). */
  readonly sequenceNumber: string | undefined;
  /**
   * The record's index inside its aggregated Kinesis record (0 when it was sent alone);
   * with `sequenceNumber` it identifies the record, as the KCL's sub-sequence number does.
   */
  readonly subSequenceNumber: number | undefined;
  /** Every attempt, oldest first; the last one decided the outcome. */
  readonly attempts: readonly Attempt[];
  /** The record as it was given to the producer, so a failure can be rescued. */
  readonly record: UserRecord;
  /** The last attempt's error code (failure only). */
  readonly errorCode?: string;
  /** The last attempt's error message (failure only). */
  readonly errorMessage?: string;
}

/**
 * A record the producer has admitted. It is handed back by the calls that resolve on
 * admission, so a high-volume caller can hold one object per record and ask for the
 * result promise only when it wants one.
 */
export interface RecordReceipt {
  /** The record as it was given. */
  readonly record: UserRecord;
  /** Whether the result is known. */
  readonly settled: boolean;
  /** The terminal result; created on first access. Never rejects. */
  readonly result: Promise<RecordResult>;
}
