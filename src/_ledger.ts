// The outstanding-record ledger: every admitted record not yet settled, oldest first, the
// counts the admission limits read, and the `flush()`/`close()` calls waiting for every
// record up to some admission to settle. The list is threaded through the records
// themselves (`prev`/`next`), so keeping it allocates nothing per record.

import type { PendingRecord } from "./_pending_record.ts";
import type { Scheduler } from "./scheduler.ts";

/** A `flush()` or `close()` waiting for every record up to `target` to settle. */
interface SettleWaiter {
  readonly target: number;
  resolve(): void;
}

export class OutstandingLedger {
  readonly #scheduler: Scheduler;
  /** Admitted records not settled yet; only the ledger writes it. */
  records = 0;
  /** Their bytes (data plus partition key); only the ledger writes it. */
  bytes = 0;
  #seq = 0;
  #oldest: PendingRecord | null = null;
  #newest: PendingRecord | null = null;
  /** Sorted by target, since targets only grow. */
  #waiters: SettleWaiter[] = [];

  /** @param scheduler Kept alive (persistent) while any record is outstanding. */
  constructor(scheduler: Scheduler) {
    this.#scheduler = scheduler;
  }

  /** The oldest outstanding record. */
  get oldest(): PendingRecord | null {
    return this.#oldest;
  }

  /** Enters an admitted record; returns its sequence number. */
  add(record: PendingRecord): number {
    if (this.#newest === null) {
      this.#oldest = record;
    } else {
      this.#newest.next = record;
      record.prev = this.#newest;
    }
    this.#newest = record;
    if (this.records++ === 0) this.#scheduler.persistent = true;
    this.bytes += record.size;
    return ++this.#seq;
  }

  /** Takes a settling record out; call {@linkcode wake} once its result is delivered. */
  remove(record: PendingRecord): void {
    const { prev, next } = record;
    if (prev === null) this.#oldest = next;
    else prev.next = next;
    if (next === null) this.#newest = prev;
    else next.prev = prev;
    record.prev = null;
    record.next = null;
    this.bytes -= record.size;
    if (--this.records === 0) this.#scheduler.persistent = false;
  }

  /** Resolves the waiters whose records have all settled. */
  wake(): void {
    if (this.#waiters.length === 0) return;
    const oldest = this.#oldest;
    let woken = 0;
    for (const waiter of this.#waiters) {
      if (oldest !== null && oldest.seq <= waiter.target) break;
      waiter.resolve();
      woken++;
    }
    if (woken > 0) this.#waiters = this.#waiters.slice(woken);
  }

  /**
   * Resolves once every record admitted so far has settled.
   *
   * @param signal Stops waiting (the records keep going); rejects with its reason.
   */
  settled(signal: AbortSignal | undefined): Promise<void> {
    const target = this.#seq;
    if (this.#oldest === null || this.#oldest.seq > target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((item) => item !== waiter);
        reject(signal!.reason);
      };
      const waiter: SettleWaiter = {
        target,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }
}
