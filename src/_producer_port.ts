// What the producer's own streams need from it, beyond its public API: admission with an
// owner attached before the record enters the pipeline (so the owner cannot miss the
// result), and a flush that does not wait.

import type { RecordOwner } from "./_pending_record.ts";
import type { RecordReceipt, UserRecord } from "./record.ts";

export interface ProducerPort {
  /**
   * Admits `record` now if there is room, owned by `owner`.
   * @returns The receipt, or `undefined` when the producer is full.
   * @throws {ValidationError} When the record is malformed.
   * @throws {ProducerClosedError} When the producer is closed.
   */
  tryAdmit(record: UserRecord, owner: RecordOwner | null): RecordReceipt | undefined;
  /**
   * Admits `record` when there is room, owned by `owner`; rejects like `enqueue()`.
   */
  admit(
    record: UserRecord,
    owner: RecordOwner | null,
    signal: AbortSignal | undefined,
  ): Promise<RecordReceipt>;
  /** Sends everything buffered now, without waiting for results. */
  flushNow(): void;
  /** Whether the producer's metrics read successful results (their attempts). */
  measuresSuccesses(): boolean;
}
