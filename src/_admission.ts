// Admission: whether a put may enter now under `maxOutstandingRecords` and
// `maxOutstandingBytes`, and the puts waiting for room, oldest first, each with its abort
// signal. A waiter is admitted only once every waiter ahead of it has been, so a large
// record is not starved by smaller ones behind it.

import type { PendingRecord } from "./_pending_record.ts";
import type { OutstandingLedger } from "./_ledger.ts";
import { Queue } from "./_queue.ts";

/** A put waiting for room. */
class Waiter {
  readonly record: PendingRecord;
  readonly resolve: (record: PendingRecord) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined = undefined;
  /** Set when the signal aborted; the queue skips it. */
  cancelled = false;

  constructor(
    record: PendingRecord,
    resolve: (record: PendingRecord) => void,
    reject: (reason: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    this.record = record;
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
  }

  detach(): void {
    if (this.onAbort !== undefined) {
      this.signal?.removeEventListener("abort", this.onAbort);
      this.onAbort = undefined;
    }
  }
}

/** What {@linkcode Admission} needs. */
export interface AdmissionOptions {
  readonly ledger: OutstandingLedger;
  readonly maxRecords: number;
  readonly maxBytes: number;
  /** Admits a record that waited (the same path as an immediate admission). */
  admit(record: PendingRecord): void;
}

export class Admission {
  readonly #ledger: OutstandingLedger;
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  readonly #admit: (record: PendingRecord) => void;
  readonly #waiters = new Queue<Waiter>();
  #scheduled = false;
  readonly #admitLater = (): void => {
    this.#scheduled = false;
    this.#admitWaiting();
  };

  constructor(options: AdmissionOptions) {
    this.#ledger = options.ledger;
    this.#maxRecords = options.maxRecords;
    this.#maxBytes = options.maxBytes;
    this.#admit = options.admit;
  }

  /** Whether a record of `size` bytes may enter now: room, and nobody waiting ahead. */
  mayEnter(size: number): boolean {
    return this.#waiters.size === 0 && this.#hasRoom(size);
  }

  /**
   * Queues a record for room.
   *
   * @returns The record once admitted; rejects with the signal's reason on abort.
   */
  wait(record: PendingRecord, signal: AbortSignal | undefined): Promise<PendingRecord> {
    return new Promise<PendingRecord>((resolve, reject) => {
      const waiter = new Waiter(record, resolve, reject, signal);
      if (signal !== undefined) {
        waiter.onAbort = () => {
          waiter.cancelled = true;
          reject(signal.reason);
          // The head may have been the one blocking smaller records behind it.
          this.#admitWaiting();
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  /**
   * A record settled: admits waiters after the current stage has finished, never inside
   * it, since admitting feeds the same stages that are settling the record.
   */
  roomFreed(): void {
    if (this.#waiters.size > 0 && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#admitLater);
    }
  }

  /** Rejects every waiter with `error()`: the producer is closing. */
  close(error: () => Error): void {
    for (const waiter of this.#waiters.drain()) {
      if (waiter.cancelled) continue;
      waiter.detach();
      waiter.reject(error());
    }
  }

  #hasRoom(size: number): boolean {
    return this.#ledger.records < this.#maxRecords &&
      this.#ledger.bytes + size <= this.#maxBytes;
  }

  #admitWaiting(): void {
    const waiters = this.#waiters;
    for (let waiter = waiters.peek(); waiter !== undefined; waiter = waiters.peek()) {
      if (!waiter.cancelled) {
        if (!this.#hasRoom(waiter.record.size)) break;
        waiter.detach();
        this.#admit(waiter.record);
        waiter.resolve(waiter.record);
      }
      waiters.shift();
    }
  }
}
