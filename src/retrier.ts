/**
 * Reads a finished PutRecords call and decides, for every user record in it, whether it
 * succeeded, failed for good, or goes around again.
 *
 * @module
 */

import type { PendingRecord } from "./_pending_record.ts";
import { classifyErrorCode, ErrorCodes } from "./error_codes.ts";
import { compareHashKeys } from "./hash_key.ts";
import type { PutRecordsResultEntry } from "./kinesis_client.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import type { Attempt } from "./record.ts";
import type { PutRecordsCall } from "./sender.ts";
import type { Shard } from "./shard_map.ts";

const TRANSIENT_BACKOFF_BASE_MS = 100;
const TRANSIENT_BACKOFF_MAX_MS = 10_000;

/** What the retrier needs from the producer. */
export interface RetrierHost {
  /** Settles a record as stored. */
  succeed(
    record: PendingRecord,
    shardId: string,
    sequenceNumber: string,
    subSequence: number,
  ): void;
  /** Settles a record as failed for good. */
  fail(record: PendingRecord, code: string, message: string): void;
  /** Sends a record around again after `delayMs` (0: with the next batch of its shard). */
  retry(record: PendingRecord, delayMs: number): void;
  /** Kinesis throttled records predicted to `shard` of `stream`, in a call sent at `sentAt`. */
  throttled(stream: string, shard: Shard, sentAt: number): void;
  /** Kinesis stored a record predicted to `shard` of `stream`. */
  stored(stream: string, shard: Shard): void;
  /** A prediction was wrong; the stream's shard map may need a refresh. */
  mispredicted(stream: string, seenAt: number, predicted: Shard | null): void;
  /** A shard of `stream`, open or recently closed. */
  shard(stream: string, id: string): Shard | undefined;
  /**
   * Holds a stored record until `stream`'s shard map, refreshing now, knows the shard it
   * landed on; the producer then calls {@linkcode Retrier.settleLanding}.
   * @returns `false` when no refresh is running, so the landing must be settled now.
   */
  awaitShard(landing: Landing): boolean;
  /** Metrics: a whole request failed. */
  requestFailed(call: PutRecordsCall, code: string): void;
  /** Metrics: one request entry succeeded or failed. */
  entryDone(call: PutRecordsCall, record: KinesisRecord, entry: PutRecordsResultEntry): void;
}

/** A user record that Kinesis stored, waiting for the verdict on where it landed. */
export interface Landing {
  readonly stream: string;
  readonly record: PendingRecord;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly subSequence: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** Options for {@linkcode Retrier}. */
export interface RetrierOptions {
  /** Fail throttled records at once instead of retrying them. */
  failIfThrottled: boolean;
  /** Jitter source in [0, 1). */
  random: () => number;
  /** Where the outcomes go. */
  host: RetrierHost;
}

/**
 * The retry policy of SPEC §3: per-shard backoff on throttles, exponential backoff with
 * jitter on transient errors, an immediate failure on permanent ones, a failure of every
 * record when the response does not match the request, and `Wrong Shard` retries only for
 * the members of an aggregated record that Kinesis stored on a shard whose range does not
 * hold their hash key.
 */
export class Retrier {
  readonly #options: RetrierOptions;
  readonly #host: RetrierHost;
  readonly #throttledShards = new Set<Shard>();

  /**
   * Creates a retrier.
   *
   * @param options The policy switches and the host.
   */
  constructor(options: RetrierOptions) {
    this.#options = options;
    this.#host = options.host;
  }

  /**
   * Decides the fate of every user record in a finished call.
   *
   * @param call The call, with `error` or `entries` set.
   */
  handle(call: PutRecordsCall): void {
    if (call.error !== undefined) {
      const { code, message } = call.error;
      this.#host.requestFailed(call, code);
      for (const record of call.records) this.#failed(call, record, code, message);
    } else {
      const entries = call.entries ?? [];
      if (entries.length !== call.records.length) {
        this.#countMismatch(call, entries.length);
        return;
      }
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        const record = call.records[i]!;
        this.#host.entryDone(call, record, entry);
        if (entry.SequenceNumber && entry.ShardId) {
          this.#stored(call, record, entry.ShardId, entry.SequenceNumber);
        } else {
          const code = entry.ErrorCode || "InternalFailure";
          this.#failed(call, record, code, entry.ErrorMessage ?? "");
        }
      }
    }
    for (const shard of this.#throttledShards) {
      this.#host.throttled(call.stream, shard, call.startedAt);
    }
    this.#throttledShards.clear();
  }

  /**
   * Ends or recycles the members of a Kinesis record whose earliest member expired
   * before it could be sent.
   *
   * @param record The Kinesis record.
   * @param now Clock time.
   */
  expired(record: KinesisRecord, now: number): void {
    for (const member of record.records) {
      if (member.outcome !== undefined) continue;
      if (member.expiresAt <= now) {
        this.#host.fail(member, ErrorCodes.expired, expiredMessage(member));
      } else {
        // A sibling expired; this one still has time and goes around on its own.
        this.#host.retry(member, 0);
      }
    }
  }

  #stored(call: PutRecordsCall, record: KinesisRecord, shardId: string, sequence: string): void {
    const predicted = record.predictedShard;
    if (predicted !== null) this.#host.stored(call.stream, predicted);
    const members = record.records;
    if (predicted === null || predicted.id === shardId || members.length === 1) {
      // A lone record is routed by its own key, so wherever it landed is its shard; a
      // different shard only says the map is behind.
      if (predicted !== null && predicted.id !== shardId) {
        this.#host.mispredicted(call.stream, call.startedAt, predicted);
      }
      for (let i = 0; i < members.length; i++) {
        const member = members[i]!;
        if (member.outcome !== undefined) continue;
        member.addAttempt(attempt(call, member, shardId, sequence));
        this.#host.succeed(member, shardId, sequence, i);
      }
      return;
    }
    this.#host.mispredicted(call.stream, call.startedAt, predicted);
    const landed = this.#host.shard(call.stream, shardId);
    const first = members[0]!;
    for (let i = 0; i < members.length; i++) {
      const member = members[i]!;
      if (member.outcome !== undefined) continue;
      const landing: Landing = {
        stream: call.stream,
        record: member,
        shardId,
        sequenceNumber: sequence,
        subSequence: i,
        startedAt: call.startedAt,
        endedAt: call.endedAt,
      };
      // The entry was routed by the first member's hash, so members sharing that hash
      // are where they belong; for the others the landing shard's range decides, and
      // when the map does not know that shard yet the verdict waits for its refresh
      // rather than re-sending records that may well be in the right place.
      const routed = compareHashKeys(member, first) === 0;
      if (landed === undefined && !routed && this.#host.awaitShard(landing)) continue;
      this.settleLanding(landing, landed, routed);
    }
  }

  /**
   * Settles a stored record by where it landed: success when the landing shard's range
   * holds its hash key, otherwise a `Wrong Shard` retry (KCL-style consumers drop a
   * sub-record stored outside its shard's range).
   *
   * @param landing Where the record landed.
   * @param landed The landing shard, if the map knows it.
   * @param routed Whether the record is known to belong there regardless of the map.
   */
  settleLanding(landing: Landing, landed: Shard | undefined, routed = false): void {
    const member = landing.record;
    if (member.outcome !== undefined) return;
    const { shardId, sequenceNumber, subSequence } = landing;
    if (routed || (landed !== undefined && landed.holds(member))) {
      member.addAttempt(attempt(landing, member, shardId, sequenceNumber));
      this.#host.succeed(member, shardId, sequenceNumber, subSequence);
      return;
    }
    const message = `Stored on ${shardId}, whose hash range does not hold this record's hash ` +
      `key; consumers that deaggregate like the KCL drop it there, so it is sent again`;
    member.addAttempt(
      failedAttempt(landing, member, ErrorCodes.wrongShard, message, { shardId, sequenceNumber }),
    );
    member.lastErrorCode = ErrorCodes.wrongShard;
    member.lastErrorMessage = message;
    // Not predicted again from the snapshot that misrouted it: until the map has moved
    // on, it is sent unpredicted, routed by its own hash key, and cannot land wrong twice.
    member.predictAfterGeneration = member.predictedGeneration;
    this.#host.retry(member, 0);
  }

  #failed(call: PutRecordsCall, record: KinesisRecord, code: string, message: string): void {
    const errorClass = code === ErrorCodes.producerClosed ? "permanent" : classifyErrorCode(code);
    const throttled = errorClass === "throttle";
    // The shard's backoff paces retries; with failIfThrottled there are none, and pausing
    // the shard would only hold its next records until they expire instead of failing fast.
    if (throttled && record.predictedShard !== null && !this.#options.failIfThrottled) {
      this.#throttledShards.add(record.predictedShard);
    }
    for (const member of record.records) {
      if (member.outcome !== undefined) continue;
      member.addAttempt(failedAttempt(call, member, code, message));
      member.lastErrorCode = code;
      member.lastErrorMessage = message;
      if (errorClass === "permanent" || (throttled && this.#options.failIfThrottled)) {
        this.#host.fail(member, code, message);
      } else if (throttled) {
        // The shard's limiter backs off; the record itself may go straight back.
        this.#host.retry(member, 0);
      } else {
        member.transientFailures++;
        this.#host.retry(member, this.#backoff(member.transientFailures));
      }
    }
  }

  #countMismatch(call: PutRecordsCall, received: number): void {
    const message =
      `PutRecords returned ${received} results for ${call.records.length} records; which records were stored cannot be known`;
    this.#host.requestFailed(call, ErrorCodes.recordCountMismatch);
    for (const record of call.records) {
      for (const member of record.records) {
        if (member.outcome !== undefined) continue;
        member.addAttempt(
          failedAttempt(call, member, ErrorCodes.recordCountMismatch, message),
        );
        this.#host.fail(member, ErrorCodes.recordCountMismatch, message);
      }
    }
  }

  /** Exponential backoff with "equal jitter": half fixed, half random. */
  #backoff(failures: number): number {
    const ceiling = Math.min(
      TRANSIENT_BACKOFF_MAX_MS,
      TRANSIENT_BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 20),
    );
    return ceiling / 2 + (ceiling / 2) * this.#options.random();
  }
}

/**
 * The message of an `Expired` result: it names the last real error, so the cause is not
 * hidden behind the expiry.
 *
 * @param record The expired record.
 * @returns The message.
 */
export function expiredMessage(record: PendingRecord): string {
  const ttl = Math.round(record.expiresAt - record.arrivedAt);
  return record.lastErrorCode === undefined
    ? `Record TTL of ${ttl} ms reached before any attempt completed`
    : `Record TTL of ${ttl} ms reached; last error: ${record.lastErrorCode}: ${record.lastErrorMessage}`;
}

/** The times of the call an attempt rode in. */
export interface CallTimes {
  readonly startedAt: number;
  readonly endedAt: number;
}

function attempt(
  call: CallTimes,
  record: PendingRecord,
  shardId: string,
  sequenceNumber: string,
): Attempt {
  return {
    startedAt: call.startedAt,
    endedAt: call.endedAt,
    delayMs: Math.max(0, call.startedAt - record.waitingSince),
    durationMs: call.endedAt - call.startedAt,
    success: true,
    shardId,
    sequenceNumber,
  };
}

/**
 * A failed attempt of `record` in a call with these times; `landed` records where a
 * `Wrong Shard` copy was stored.
 */
export function failedAttempt(
  call: CallTimes,
  record: PendingRecord,
  errorCode: string,
  errorMessage: string,
  landed?: { shardId: string; sequenceNumber: string },
): Attempt {
  const base = {
    startedAt: call.startedAt,
    endedAt: call.endedAt,
    delayMs: Math.max(0, call.startedAt - record.waitingSince),
    durationMs: call.endedAt - call.startedAt,
    success: false,
    errorCode,
    errorMessage,
  };
  return landed === undefined ? base : { ...base, ...landed };
}
