/**
 * Reads a finished PutRecords call and decides, for every user record in it, whether it
 * succeeded, failed for good, or goes around again, and what the call says about the
 * stream's shards. It decides only: the producer applies the {@linkcode Verdict}
 * `docs/architecture.md`, "The retrier").
 *
 * @module
 */

import type { PendingRecord } from "./_pending_record.ts";
import { backoff, type BackoffPolicy } from "./_backoff.ts";
import { classifyErrorCode, ErrorCodes } from "./error_codes.ts";
import { compareHashKeys } from "./hash_key.ts";
import { type KinesisRecord, membersOf } from "./kinesis_record.ts";
import type { Attempt } from "./record.ts";
import type { PutRecordsCall } from "./sender.ts";
import type { Shard } from "./shard_map.ts";

/** Transient errors: 100 ms doubling up to 10 s, with equal jitter. */
const TRANSIENT_BACKOFF: BackoffPolicy = { firstMs: 100, maxMs: 10_000, factor: 2 };

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

/** The shards of one stream as its map knows them now. */
export interface ShardLookup {
  /** A shard, open or recently closed. */
  get(id: string): Shard | undefined;
}

/** Receives one success of a verdict. */
export type SuccessVisitor = (
  record: PendingRecord,
  shardId: string,
  sequenceNumber: string,
  subSequence: number,
) => void;

/**
 * What one finished call (or one expiry) decided: the fate of each user record, and what
 * the call said about the stream's shards. Lists that belong together are index-aligned
 * (`failed[i]` fails with `failCodes[i]`). The common case, a Kinesis record stored whole
 * where it belongs, is one flag per entry of the call rather than one item per user
 * record, so a verdict allocates next to nothing per record; read the successes with
 * {@linkcode Verdict.forEachSuccess}.
 */
export class Verdict {
  /** The call decided, when the verdict is about one. */
  call: PutRecordsCall | undefined = undefined;
  /**
   * Indices of the call's Kinesis records stored whole where they belong: each member of
   * record `i` not settled yet succeeds at entry `i`, its index being its sub-sequence.
   */
  readonly stored: number[] = [];
  /** Members of other Kinesis records whose landing shard turned out to hold them. */
  readonly landedWell: Landing[] = [];
  /** Failed for good: settle as failures with `failCodes[i]` and `failMessages[i]`. */
  readonly failed: PendingRecord[] = [];
  readonly failCodes: string[] = [];
  readonly failMessages: string[] = [];
  /** Go around again after `retryDelays[i]` ms (0: with the shard's next batch). */
  readonly retried: PendingRecord[] = [];
  readonly retryDelays: number[] = [];
  /**
   * Stored on a shard the map does not know: the stream's pipeline parks them and they
   * are settled with {@linkcode Retrier.land} once a listing knows the shard (or a
   * listing started after they landed does not show it, or their TTL has passed).
   */
  readonly landings: Landing[] = [];
  /**
   * The predicted shard of each Kinesis record stored elsewhere than predicted; with the
   * records flagged in `stored`, see {@linkcode Verdict.forEachStoredShard}.
   */
  readonly storedShards: Shard[] = [];
  /** Shards that throttled, each once (pacing backs off). */
  readonly throttledShards: Shard[] = [];
  /** Predictions the call proved wrong: the map may need a refresh. */
  readonly mispredicted: Shard[] = [];
  /** When the call that proved them wrong started. */
  seenAt = 0;

  /** Calls `visit` for every success, in the call's order, then the others. */
  forEachSuccess(visit: SuccessVisitor): void {
    const { call, stored } = this;
    if (call !== undefined) {
      const entries = call.entries!;
      for (const i of stored) {
        const entry = entries[i]!;
        const record = call.records[i]!;
        for (let sub = 0; sub < record.count; sub++) {
          const member = record.member(sub);
          if (member.outcome === undefined) {
            visit(member, entry.ShardId!, entry.SequenceNumber!, sub);
          }
        }
      }
    }
    for (const landing of this.landedWell) {
      visit(landing.record, landing.shardId, landing.sequenceNumber, landing.subSequence);
    }
  }

  /** Calls `visit` with the predicted shard of every Kinesis record Kinesis stored. */
  forEachStoredShard(visit: (shard: Shard) => void): void {
    const { call, stored } = this;
    if (call !== undefined) {
      for (const i of stored) {
        const shard = call.records[i]!.predictedShard;
        if (shard !== null) visit(shard);
      }
    }
    for (const shard of this.storedShards) visit(shard);
  }

  /**
   * Empties the verdict for another call when it holds nothing but whole stored entries
   * (the common case), so the next call needs no new lists.
   *
   * @returns Whether it was emptied; a verdict with anything else is left to be dropped.
   */
  recycle(): boolean {
    const rare = this.landedWell.length + this.failed.length + this.retried.length +
      this.landings.length + this.storedShards.length + this.throttledShards.length +
      this.mispredicted.length;
    if (rare > 0) return false;
    this.call = undefined;
    this.seenAt = 0;
    this.stored.length = 0;
    return true;
  }

  fail(record: PendingRecord, code: string, message: string): void {
    this.failed.push(record);
    this.failCodes.push(code);
    this.failMessages.push(message);
  }

  retry(record: PendingRecord, delayMs: number): void {
    this.retried.push(record);
    this.retryDelays.push(delayMs);
  }
}

/** Options for {@linkcode Retrier}. */
export interface RetrierOptions {
  /** Fail throttled records at once instead of retrying them. */
  failIfThrottled: boolean;
  /** Jitter source in [0, 1). */
  random: () => number;
}

/**
 * The retry policy (the table in `docs/architecture.md`): per-shard backoff on throttles,
 * exponential backoff with jitter on transient errors, an immediate failure on permanent
 * ones, a failure of every record when the response does not match the request, and
 * `Wrong Shard` retries only for the members of an aggregated record that Kinesis stored
 * on a shard whose range does not hold their hash key. It records each attempt in the
 * record's history and returns a {@linkcode Verdict}; it calls nothing back.
 */
export class Retrier {
  readonly #options: RetrierOptions;

  /**
   * Creates a retrier.
   *
   * @param options The policy switches.
   */
  constructor(options: RetrierOptions) {
    this.#options = options;
  }

  /**
   * Decides the fate of every user record in a finished call.
   *
   * @param call The call, with `error` or `entries` set.
   * @param shards The stream's shards as the map knows them now.
   * @param verdict An empty verdict to fill (the producer reuses one).
   * @returns The verdict.
   */
  decide(call: PutRecordsCall, shards: ShardLookup, verdict: Verdict = new Verdict()): Verdict {
    verdict.seenAt = call.startedAt;
    if (call.error !== undefined) {
      const { code, message } = call.error;
      for (const record of call.records) this.#failed(verdict, call, record, code, message);
      return verdict;
    }
    const entries = call.entries ?? [];
    if (entries.length !== call.records.length) {
      countMismatch(verdict, call, entries.length);
      return verdict;
    }
    verdict.call = call;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const record = call.records[i]!;
      if (entry.SequenceNumber && entry.ShardId) {
        this.#stored(verdict, call, i, shards, entry.ShardId, entry.SequenceNumber);
      } else {
        const code = entry.ErrorCode || "InternalFailure";
        this.#failed(verdict, call, record, code, entry.ErrorMessage ?? "");
      }
    }
    return verdict;
  }

  /**
   * Decides the members of a Kinesis record whose earliest member expired before it could
   * be sent: the expired ones fail, the others go around on their own.
   *
   * @param record The Kinesis record.
   * @param now Clock time.
   * @returns The verdict.
   */
  expired(record: KinesisRecord, now: number): Verdict {
    const verdict = new Verdict();
    for (const member of membersOf(record)) {
      if (member.outcome !== undefined) continue;
      if (member.expiresAt <= now) {
        verdict.fail(member, ErrorCodes.expired, expiredMessage(member));
      } else {
        verdict.retry(member, 0);
      }
    }
    return verdict;
  }

  /**
   * Decides a stored record by where it landed: success when the landing shard's range
   * holds its hash key, otherwise a `Wrong Shard` retry (KCL-style consumers drop a
   * sub-record stored outside its shard's range). A shard the map does not know, even
   * after a listing that started once the record was stored, has a range that cannot be
   * learned: the record is sent again, since a copy too many is better than one dropped.
   *
   * @param verdict Where the decision goes.
   * @param landing Where the record landed.
   * @param landed The landing shard, if the map knows it; only `undefined` after a
   * listing that started after the landing, or past the record's TTL.
   * @param routed Whether the record is known to belong there regardless of the map.
   */
  land(verdict: Verdict, landing: Landing, landed: Shard | undefined, routed = false): void {
    const member = landing.record;
    if (member.outcome !== undefined) return;
    const { shardId, sequenceNumber } = landing;
    if (routed || (landed !== undefined && landed.holds(member))) {
      member.addAttempt(attempt(landing, member, shardId, sequenceNumber));
      verdict.landedWell.push(landing);
      return;
    }
    const message = landed === undefined
      ? `Stored on ${shardId}, a shard no listing showed open, so whether its hash range ` +
        `holds this record's hash key cannot be known; it is sent again`
      : `Stored on ${shardId}, whose hash range does not hold this record's hash key; ` +
        `consumers that deaggregate like the KCL drop it there, so it is sent again`;
    member.misrouted(
      failedAttempt(landing, member, ErrorCodes.wrongShard, message, { shardId, sequenceNumber }),
    );
    verdict.retry(member, 0);
  }

  #stored(
    verdict: Verdict,
    call: PutRecordsCall,
    index: number,
    shards: ShardLookup,
    shardId: string,
    sequence: string,
  ): void {
    const record = call.records[index]!;
    const predicted = record.predictedShard;
    const count = record.count;
    if (predicted === null || predicted.id === shardId || count === 1) {
      // A lone record is routed by its own key, so wherever it landed is its shard; a
      // different shard only says the map is behind.
      if (predicted !== null && predicted.id !== shardId) verdict.mispredicted.push(predicted);
      for (let i = 0; i < count; i++) {
        const member = record.member(i);
        if (member.outcome === undefined && !member.ignoresSuccess) {
          member.addAttempt(attempt(call, member, shardId, sequence));
        }
      }
      verdict.stored.push(index);
      return;
    }
    verdict.storedShards.push(predicted);
    verdict.mispredicted.push(predicted);
    const landed = shards.get(shardId);
    const first = record.member(0);
    for (let i = 0; i < count; i++) {
      const member = record.member(i);
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
      if (landed === undefined && !routed) verdict.landings.push(landing);
      else this.land(verdict, landing, landed, routed);
    }
  }

  #failed(
    verdict: Verdict,
    call: PutRecordsCall,
    record: KinesisRecord,
    code: string,
    message: string,
  ): void {
    const errorClass = code === ErrorCodes.producerClosed ? "permanent" : classifyErrorCode(code);
    const throttled = errorClass === "throttle";
    const failIfThrottled = this.#options.failIfThrottled;
    // The shard's backoff paces retries; with failIfThrottled there are none, and pausing
    // the shard would only hold its next records until they expire instead of failing fast.
    const shard = record.predictedShard;
    if (throttled && shard !== null && !failIfThrottled) {
      if (!verdict.throttledShards.includes(shard)) verdict.throttledShards.push(shard);
    }
    for (const member of membersOf(record)) {
      if (member.outcome !== undefined) continue;
      member.failed(failedAttempt(call, member, code, message));
      if (errorClass === "permanent" || (throttled && failIfThrottled)) {
        verdict.fail(member, code, message);
      } else if (throttled) {
        // The shard's limiter backs off; the record itself may go straight back.
        verdict.retry(member, 0);
      } else {
        const failures = member.failedTransiently();
        verdict.retry(member, backoff(TRANSIENT_BACKOFF, failures, this.#options.random));
      }
    }
  }
}

function countMismatch(verdict: Verdict, call: PutRecordsCall, received: number): void {
  const code = ErrorCodes.recordCountMismatch;
  const message =
    `PutRecords returned ${received} results for ${call.records.length} records; which records were stored cannot be known`;
  for (const record of call.records) {
    for (const member of membersOf(record)) {
      if (member.outcome !== undefined) continue;
      member.addAttempt(failedAttempt(call, member, code, message));
      verdict.fail(member, code, message);
    }
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
  return { ...timing(call, record), success: false, errorCode, errorMessage, ...landed };
}

/** When an attempt ran and how long the record had waited for it. */
function timing(call: CallTimes, record: PendingRecord) {
  return {
    startedAt: call.startedAt,
    endedAt: call.endedAt,
    delayMs: Math.max(0, call.startedAt - record.waitingSince),
    durationMs: call.endedAt - call.startedAt,
  };
}
