// Settlement: what the producer does with a verdict. A record either settles (exactly once:
// out of the ledger, its metrics put, its result delivered, waiting puts and flushes woken)
// or goes around again through its stream's pipeline, at once or after its backoff on the
// scheduler; past its TTL it fails with `Expired`. docs/architecture.md, "A record's life".

import type { Admission } from "./_admission.ts";
import type { OutstandingLedger } from "./_ledger.ts";
import { type PendingRecord, QUIET_SUCCESS } from "./_pending_record.ts";
import type { ProducerMetrics } from "./_producer_metrics.ts";
import type { StreamPipeline } from "./_stream_pipeline.ts";
import { ErrorCodes } from "./error_codes.ts";
import type { Logger } from "./logger.ts";
import type { Attempt, RecordResult } from "./record.ts";
import { expiredMessage, failedAttempt, type SuccessVisitor, type Verdict } from "./retrier.ts";
import { Deadline, type DeadlineTask, type Scheduler } from "./scheduler.ts";

/** Sends a record around again once its backoff has passed. */
class RetryTimer implements DeadlineTask {
  readonly record: PendingRecord;
  readonly #due: (record: PendingRecord, now: number) => void;

  constructor(record: PendingRecord, due: (record: PendingRecord, now: number) => void) {
    this.record = record;
    this.#due = due;
  }

  onDeadline(now: number): void {
    this.#due(this.record, now);
  }
}

/** What {@linkcode Settlement} needs. */
export interface SettlementOptions {
  readonly ledger: OutstandingLedger;
  readonly admission: Admission;
  readonly streams: ReadonlyMap<string, StreamPipeline>;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  /** Set when metrics are on. */
  readonly metrics: ProducerMetrics | undefined;
  /** A retried record leaves the aggregator within half of this. */
  readonly recordMaxBufferedTimeMs: number;
}

export class Settlement {
  readonly #ledger: OutstandingLedger;
  readonly #admission: Admission;
  readonly #streams: ReadonlyMap<string, StreamPipeline>;
  readonly #scheduler: Scheduler;
  readonly #logger: Logger;
  readonly #metrics: ProducerMetrics | undefined;
  readonly #retryBufferMs: number;

  constructor(options: SettlementOptions) {
    this.#ledger = options.ledger;
    this.#admission = options.admission;
    this.#streams = options.streams;
    this.#scheduler = options.scheduler;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#retryBufferMs = options.recordMaxBufferedTimeMs / 2;
  }

  /** Settles or re-sends every record a verdict names. */
  apply(verdict: Verdict): void {
    const { failed, retried } = verdict;
    verdict.forEachSuccess(this.#succeed);
    for (let i = 0; i < failed.length; i++) {
      const record = failed[i]!;
      const code = verdict.failCodes[i]!;
      const message = verdict.failMessages[i]!;
      // A verdict the producer reached without a request (an expiry) gets an attempt of
      // its own, so the history shows why the record ended.
      if (record.attempts === null || record.attempts.at(-1)?.errorCode !== code) {
        record.addAttempt(syntheticAttempt(record, this.#scheduler.clock.now(), code, message));
      }
      this.#fail(record, code, message);
    }
    for (let i = 0; i < retried.length; i++) this.#retry(retried[i]!, verdict.retryDelays[i]!);
  }

  /** Fails every outstanding record with `ProducerClosed`: what close() could not finish. */
  closeOutstanding(message: string): void {
    const ledger = this.#ledger;
    const now = this.#scheduler.clock.now();
    for (let record = ledger.oldest; record !== null; record = ledger.oldest) {
      record.addAttempt(syntheticAttempt(record, now, ErrorCodes.producerClosed, message));
      this.#fail(record, ErrorCodes.producerClosed, message);
    }
  }

  readonly #succeed: SuccessVisitor = (record, shardId, sequenceNumber, subSequence) => {
    if (record.ignoresSuccess) {
      this.#settle(record, QUIET_SUCCESS, shardId);
      return;
    }
    this.#settle(record, {
      success: true,
      shardId,
      sequenceNumber,
      subSequenceNumber: subSequence,
      attempts: record.attempts ?? [],
      record: record.record,
    }, shardId);
  };

  #retry(record: PendingRecord, delayMs: number): void {
    if (record.outcome !== undefined) return;
    const now = this.#scheduler.clock.now();
    if (now >= record.expiresAt) {
      this.#expire(record, now);
      return;
    }
    if (delayMs <= 0) {
      record.requeue(Math.min(now + this.#retryBufferMs, record.expiresAt));
      this.#streams.get(record.stream)!.put(record);
    } else {
      this.#scheduler.schedule(
        new Deadline(new RetryTimer(record, this.#retryDue)),
        Math.min(now + delayMs, record.expiresAt),
      );
    }
  }

  readonly #retryDue = (record: PendingRecord, now: number): void => {
    if (record.outcome !== undefined) return;
    if (now >= record.expiresAt) {
      this.#expire(record, now);
      return;
    }
    record.requeue(now);
    this.#streams.get(record.stream)!.put(record);
  };

  #expire(record: PendingRecord, now: number): void {
    const message = expiredMessage(record);
    record.addAttempt(syntheticAttempt(record, now, ErrorCodes.expired, message));
    this.#fail(record, ErrorCodes.expired, message);
  }

  #fail(record: PendingRecord, code: string, message: string): void {
    this.#settle(record, {
      success: false,
      shardId: undefined,
      sequenceNumber: undefined,
      subSequenceNumber: undefined,
      attempts: record.attempts ?? [],
      record: record.record,
      errorCode: code,
      errorMessage: message,
    }, record.predictedShard?.id);
  }

  #settle(record: PendingRecord, result: RecordResult, shardId: string | undefined): void {
    if (record.outcome !== undefined) return;
    // Out of the ledger first, so anything the result triggers sees the counts updated.
    this.#ledger.remove(record);
    this.#streams.get(record.stream)!.settled(record);
    this.#metrics?.settled(record, result, shardId);
    try {
      record.deliver(result);
    } catch (error) {
      this.#logger.error("A result handler threw", error);
    }
    this.#admission.roomFreed();
    this.#ledger.wake();
  }
}

/** An attempt that ended without a request: an expiry, or what close() could not finish. */
function syntheticAttempt(
  record: PendingRecord,
  now: number,
  errorCode: string,
  errorMessage: string,
): Attempt {
  return failedAttempt({ startedAt: now, endedAt: now }, record, errorCode, errorMessage);
}
