// The producer's per-record state. One object per admitted record carries everything
// every stage needs (hash key words, deadlines, attempts, list links), so no stage
// allocates a wrapper of its own; it is also the receipt handed back to the caller.
// Stages read its fields; they change it only through its methods, which keep the
// attempt history, the last error and the settlement consistent. docs/architecture.md
// follows one record through its life.
//
// It is kept small because up to `maxOutstandingRecords` of them live at once and each
// survives several young collections (docs/performance.md, "Retained heap per outstanding
// record"). Numbers V8 would box (16 bytes each) are avoided: the hash key words are
// stored as signed 32-bit integers, expiry and deadline as whole-millisecond distances
// from arrival. What only a failure needs (the last error, the backoff count, the
// misroute guard) lives in a `RetryState` made on the first failure; the start of the
// next attempt's delay is read from the attempts.

import type { Attempt, RecordReceipt, RecordResult, UserRecord } from "./record.ts";
import type { HashKey } from "./hash_key.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import type { Shard } from "./shard_map.ts";

/** Gets the result of records it owns (a writable stream, a transform). */
export interface RecordOwner {
  onResult(result: RecordResult): void;
  /** Sees each attempt as it ends, before the result (live retry counts). */
  onAttempt?: ((attempt: Attempt) => void) | undefined;
  /**
   * Whether nothing reads a successful result of its records but the fact that it came
   * (a writable without handlers, no metrics): their successes are then settled with
   * {@linkcode QUIET_SUCCESS} instead of an attempt, an array and a result per record.
   */
  readonly ignoresSuccess?: boolean;
}

/**
 * The outcome of every success whose owner ignores it (`RecordOwner.ignoresSuccess`). No
 * caller can see it: such records are owned by a writable, which hands out no receipts.
 */
export const QUIET_SUCCESS: RecordResult = Object.freeze({
  success: true,
  shardId: undefined,
  sequenceNumber: undefined,
  subSequenceNumber: undefined,
  attempts: Object.freeze([]),
  record: Object.freeze({ partitionKey: "", data: new Uint8Array(0) }),
});

type Resolver = (result: RecordResult) => void;

/** A record a stream owns whose result promise has been asked for as well. */
class OwnerAndResolver implements RecordOwner {
  readonly owner: RecordOwner;
  readonly resolve: Resolver;

  constructor(owner: RecordOwner, resolve: Resolver) {
    this.owner = owner;
    this.resolve = resolve;
  }

  get onAttempt(): ((attempt: Attempt) => void) | undefined {
    return this.owner.onAttempt;
  }

  onResult(result: RecordResult): void {
    this.resolve(result);
    this.owner.onResult(result);
  }
}

/** Who hears of a record: nobody, a `put()` caller's promise, an owner, or both. */
type Listener = RecordOwner | Resolver | null;

function listener(owner: RecordOwner | null, resolve: Resolver | undefined): Listener {
  if (resolve === undefined) return owner;
  return owner === null ? resolve : new OwnerAndResolver(owner, resolve);
}

function ownerOf(listener: Listener): RecordOwner | null {
  if (typeof listener === "function") return null;
  return listener instanceof OwnerAndResolver ? listener.owner : listener;
}

function resolverOf(listener: Listener): Resolver | undefined {
  if (typeof listener === "function") return listener;
  return listener instanceof OwnerAndResolver ? listener.resolve : undefined;
}

/** What a record keeps once an attempt has failed. */
class RetryState {
  /** The last real error, named by an `Expired` result. */
  lastErrorCode: string | undefined = undefined;
  lastErrorMessage: string | undefined = undefined;
  /** Consecutive transient failures, for the backoff. */
  transientFailures = 0;
  /** See `PendingRecord.predictAfterGeneration`. */
  predictAfterGeneration = -1;
}

export class PendingRecord implements RecordReceipt, HashKey, KinesisRecord {
  readonly record: UserRecord;
  readonly stream: string;
  readonly partitionKey: string;
  readonly explicitHashKey: string | undefined;
  readonly data: Uint8Array;
  /** Data bytes plus partition key bytes: what counts against the byte limits. */
  readonly size: number;
  // The hash key's words as signed integers (`word | 0`); the getters give them back
  // unsigned. Initialised to 0 first so V8 gives the fields a small-integer representation
  // from the start.
  readonly #h0: number = 0;
  readonly #h1: number = 0;
  readonly #h2: number = 0;
  readonly #h3: number = 0;

  /** Admission order; `flush()` waits for every record up to a sequence number. */
  seq = 0;
  arrivedAt = 0;
  // Expiry and deadline as distances from arrival: whole milliseconds (the TTL and the
  // buffering time as configured, a retry's deadline floored) are small integers V8 keeps
  // in the field, where an absolute epoch time would be a separate 16-byte number.
  #ttlMs = 0;
  #dueAfterMs = 0;
  /** The shard the map predicted for the current attempt. */
  predictedShard: Shard | null = null;
  /** The shard map generation the current prediction came from. */
  predictedGeneration = -1;
  attempts: Attempt[] | null = null;
  #retry: RetryState | null = null;

  // The owner and the result promise's resolver share one field: most records have one
  // or neither.
  #listener: Listener = null;
  outcome: RecordResult | undefined = undefined;
  #promise: Promise<RecordResult> | undefined;

  /** Links in the producer's list of outstanding records, oldest first. */
  prev: PendingRecord | null = null;
  next: PendingRecord | null = null;

  private constructor(
    record: UserRecord,
    stream: string,
    data: Uint8Array,
    partitionKeyBytes: number,
    key: HashKey,
  ) {
    this.record = record;
    this.stream = stream;
    this.partitionKey = record.partitionKey;
    this.explicitHashKey = record.explicitHashKey ?? undefined;
    this.data = data;
    this.size = data.length + partitionKeyBytes;
    this.#h0 = key.h0 | 0;
    this.#h1 = key.h1 | 0;
    this.#h2 = key.h2 | 0;
    this.#h3 = key.h3 | 0;
  }

  /** Bits 127..96 of the hash key. */
  get h0(): number {
    return this.#h0 >>> 0;
  }

  /** Bits 95..64 of the hash key. */
  get h1(): number {
    return this.#h1 >>> 0;
  }

  /** Bits 63..32 of the hash key. */
  get h2(): number {
    return this.#h2 >>> 0;
  }

  /** Bits 31..0 of the hash key. */
  get h3(): number {
    return this.#h3 >>> 0;
  }

  /** When the record fails with `Expired` if it has not settled. */
  get expiresAt(): number {
    return this.arrivedAt + this.#ttlMs;
  }

  /** When the record should leave the aggregator. */
  get deadline(): number {
    return this.arrivedAt + this.#dueAfterMs;
  }

  /** End of the previous attempt (or arrival): the start of the next attempt's delay. */
  get waitingSince(): number {
    const attempts = this.attempts;
    return attempts === null ? this.arrivedAt : attempts[attempts.length - 1]!.endedAt;
  }

  // Sent alone, a record is its own Kinesis record (kinesis_record.ts): its keys, data,
  // deadlines and predicted shard are the entry's. With aggregation off that is every
  // record, and a wrapper would be several more objects per outstanding record.

  /** What the record counts against a request's 5 MiB, sent alone: its `size`. */
  get requestSize(): number {
    return this.size;
  }

  /** As a Kinesis record: it carries itself alone. */
  get count(): number {
    return 1;
  }

  /** As a Kinesis record: its only member is itself. */
  member(): PendingRecord {
    return this;
  }

  /** As a Kinesis record: its data is the caller's, not pooled memory. */
  release(): void {}

  /** The last real error's code, named by an `Expired` result. */
  get lastErrorCode(): string | undefined {
    return this.#retry?.lastErrorCode;
  }

  /** The last real error's message. */
  get lastErrorMessage(): string | undefined {
    return this.#retry?.lastErrorMessage;
  }

  /**
   * After a `Wrong Shard` retry, the record is not predicted again until the shard map
   * has refreshed past this generation, so a stale map cannot misroute it twice (-1: no
   * such retry).
   */
  get predictAfterGeneration(): number {
    return this.#retry === null ? -1 : this.#retry.predictAfterGeneration;
  }

  /** Consecutive transient failures, for the backoff. */
  get transientFailures(): number {
    return this.#retry === null ? 0 : this.#retry.transientFailures;
  }

  /**
   * The one way to create a record (`validateRecord` in `_validate.ts` calls it): validated
   * fields and its hash key, none of which change afterwards.
   */
  static create(
    record: UserRecord,
    stream: string,
    data: Uint8Array,
    partitionKeyBytes: number,
    key: HashKey,
  ): PendingRecord {
    return new PendingRecord(record, stream, data, partitionKeyBytes, key);
  }

  /** Gets the record's attempts and result: the writable or transform it came through. */
  get owner(): RecordOwner | null {
    return ownerOf(this.#listener);
  }

  set owner(owner: RecordOwner | null) {
    this.#listener = listener(owner, resolverOf(this.#listener));
  }

  /** Whether its owner reads nothing of a success (see `RecordOwner.ignoresSuccess`). */
  get ignoresSuccess(): boolean {
    const listener = this.#listener;
    return typeof listener === "object" && listener !== null && listener.ignoresSuccess === true;
  }

  get settled(): boolean {
    return this.outcome !== undefined;
  }

  get result(): Promise<RecordResult> {
    if (this.#promise === undefined) {
      if (this.outcome !== undefined) {
        this.#promise = Promise.resolve(this.outcome);
      } else {
        this.#promise = new Promise((resolve) => {
          this.#listener = listener(ownerOf(this.#listener), resolve);
        });
      }
    }
    return this.#promise;
  }

  /** Admission: dates the record and sets the deadlines it keeps for life. */
  admit(seq: number, now: number, ttlMs: number, maxBufferedMs: number): void {
    this.seq = seq;
    this.arrivedAt = now;
    this.#ttlMs = ttlMs;
    this.#dueAfterMs = maxBufferedMs;
  }

  /** The shard the aggregator routes the current attempt to (`null`: by hash key alone). */
  routeTo(shard: Shard | null): void {
    this.predictedShard = shard;
  }

  /**
   * Goes around again, due to leave the aggregator at `deadline`, or at most a millisecond
   * before it (see `#dueAfterMs`).
   */
  requeue(deadline: number): void {
    this.#dueAfterMs = Math.floor(deadline - this.arrivedAt);
  }

  /** Records an attempt; the next attempt's delay counts from its end. */
  addAttempt(attempt: Attempt): void {
    if (this.attempts === null) this.attempts = [attempt];
    else this.attempts.push(attempt);
    const listener = this.#listener;
    if (typeof listener !== "function") listener?.onAttempt?.(attempt);
  }

  /** Records a failed attempt whose error an `Expired` result will name. */
  failed(attempt: Attempt): void {
    this.addAttempt(attempt);
    this.blame(attempt.errorCode, attempt.errorMessage);
  }

  /** Names the error an `Expired` result will report, without an attempt of its own. */
  blame(errorCode: string | undefined, errorMessage: string | undefined): void {
    const retry = this.#retry ??= new RetryState();
    retry.lastErrorCode = errorCode;
    retry.lastErrorMessage = errorMessage;
  }

  /** Counts one more transient failure in a row and returns the count. */
  failedTransiently(): number {
    return ++(this.#retry ??= new RetryState()).transientFailures;
  }

  /**
   * Records a copy stored on a shard whose range does not hold the record's hash key: it
   * is not predicted again from the snapshot that misrouted it, so it cannot land wrong
   * twice.
   */
  misrouted(attempt: Attempt): void {
    this.failed(attempt);
    (this.#retry ??= new RetryState()).predictAfterGeneration = this.predictedGeneration;
  }

  /** Delivers the result; the producer guarantees it is called once. */
  deliver(result: RecordResult): void {
    this.outcome = result;
    const listener = this.#listener;
    // The resolver is not needed again; the owner stays, as the receipt's.
    this.#listener = ownerOf(listener);
    if (typeof listener === "function") listener(result);
    else listener?.onResult(result);
  }
}
