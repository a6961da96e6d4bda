/**
 * Bookkeeping for the fault scenarios: every record a test puts, how many times the
 * producer delivered its result, and the checks every scenario shares: each record settled
 * exactly once, each success found in the stream at its reported position, each copy in
 * the stream accounted for, each failure honest about its cause.
 *
 * A result promise can only resolve once, so it cannot show a second settlement. The
 * ledger also registers itself as the record's owner (the hook the producer's own streams
 * use), which the producer calls on every delivery, and counts those calls.
 *
 * @module
 */
import type { RecordOwner } from "../../src/_pending_record.ts";
import type { Producer } from "../../src/producer.ts";
import type { Attempt, RecordReceipt, RecordResult, UserRecord } from "../../src/record.ts";
import type { UnconfirmedRecord } from "./chaos_proxy.ts";
import { type FoundRecord, type PutResult, reconcile } from "./readback.ts";

/** One record put through the ledger. */
export interface LedgerEntry {
  /** Position in the ledger. */
  readonly index: number;
  /** The record as put; `data` is a unique string so payloads identify records. */
  readonly record: UserRecord & { data: string };
  /** How many times the producer delivered a result (through the owner hook). */
  deliveries: number;
  /** The result the owner hook received first. */
  delivered: RecordResult | undefined;
  /** The result the receipt's promise resolved with. */
  result: RecordResult | undefined;
}

/** What {@linkcode Ledger.settlement} found. */
export interface Settlement {
  /** Records put. */
  records: number;
  /** Records whose result promise resolved exactly once with the delivered result. */
  settled: number;
  /** Records whose promise has not resolved or whose owner never heard. */
  neverSettled: number;
  /** Records delivered more than once. */
  settledTwice: number;
  /** Records whose promise and owner saw different results. */
  inconsistent: number;
  /** Successful results. */
  succeeded: number;
  /** Failed results by error code. */
  failedByCode: Record<string, number>;
}

/** What {@linkcode checkStream} found. */
export interface StreamCheck {
  /** User records found in the stream. */
  found: number;
  /** Successes found at their reported (shard, sequence, sub-sequence). */
  confirmed: number;
  /** Successes whose payload is nowhere in the stream. */
  missing: number;
  /** Successes whose payload is in the stream but not at the reported position. */
  mismatched: number;
  /** Copies beyond the first of any payload. */
  duplicates: number;
  /** Copies not at a reported position, whose position the proxy hid (explained). */
  hiddenCopies: number;
  /**
   * Copies at the position of one of the record's own `Wrong Shard` attempts: stored as a
   * sub-record on a shard whose range does not hold its hash, which KCL-style consumers
   * drop, and so sent again (explained).
   */
  wrongShardCopies: number;
  /**
   * Other copies of a record one of whose attempts ended without an answer
   * (`RequestTimeout`, `NetworkError`): the request may have been applied all the same
   * (explained). The proxy cannot see a client give up on a response that was merely slow.
   */
  ambiguousCopies: number;
  /** Copies not explained by any of the above. */
  unexplained: number;
  /** Copies in the stream of failed records (each must be a hidden copy). */
  failedButStored: number;
  /**
   * Failed records with at least one copy in the stream. Every copy not at a reported
   * position is a duplicate of a success or a copy of a failed record, so
   * `found - confirmed === duplicates + failedRecordsStored`.
   */
  failedRecordsStored: number;
  /** Up to 10 unexplained copies, for assertion messages. */
  examples: FoundRecord[];
}

/** One row of the scenario table. */
export interface ScenarioRow {
  scenario: string;
  records: number;
  settled: number;
  /** Successes found at their reported position. */
  confirmed: number;
  /** Reported successes missing from the stream, plus records that never settled. */
  lost: number;
  duplicates: number;
  failedByCode: Record<string, number>;
  timeMs: number;
}

/** Records put through a producer and the results it delivered. */
export class Ledger {
  /** Every record put, in order. */
  readonly entries: LedgerEntry[] = [];
  readonly #results: Promise<void>[] = [];

  /**
   * Puts a record: admitted now when there is room, else when `enqueue` admits it.
   *
   * @param producer The producer.
   * @param record The record; its `data` must be unique in the test.
   * @returns The entry.
   * @throws Whatever `enqueue` rejects with (validation, closed producer).
   */
  async put(producer: Producer, record: UserRecord & { data: string }): Promise<LedgerEntry> {
    const receipt = producer.tryPut(record) ?? await producer.enqueue(record);
    return this.#track(record, receipt);
  }

  /**
   * Puts a record that must be admitted without waiting.
   *
   * @param producer The producer.
   * @param record The record; its `data` must be unique in the test.
   * @returns The entry, or `undefined` when the producer was full.
   */
  tryPut(producer: Producer, record: UserRecord & { data: string }): LedgerEntry | undefined {
    const receipt = producer.tryPut(record);
    return receipt === undefined ? undefined : this.#track(record, receipt);
  }

  /**
   * Resolves once every result promise has resolved (callers bound the wait themselves,
   * e.g. by closing the producer first).
   */
  async allSettled(): Promise<void> {
    await Promise.all(this.#results);
  }

  /**
   * Counts settlements.
   *
   * @returns The counts.
   */
  settlement(): Settlement {
    const out: Settlement = {
      records: this.entries.length,
      settled: 0,
      neverSettled: 0,
      settledTwice: 0,
      inconsistent: 0,
      succeeded: 0,
      failedByCode: {},
    };
    for (const entry of this.entries) {
      if (entry.result === undefined || entry.delivered === undefined) {
        out.neverSettled++;
        continue;
      }
      if (entry.deliveries > 1) out.settledTwice++;
      if (entry.result !== entry.delivered) out.inconsistent++;
      if (entry.deliveries === 1 && entry.result === entry.delivered) out.settled++;
      if (entry.result.success) out.succeeded++;
      else {
        const code = entry.result.errorCode ?? "(none)";
        out.failedByCode[code] = (out.failedByCode[code] ?? 0) + 1;
      }
    }
    return out;
  }

  /** Successful results as the readback verifier takes them. */
  successes(): PutResult[] {
    const out: PutResult[] = [];
    for (const entry of this.entries) {
      const result = entry.result;
      if (result === undefined || !result.success) continue;
      out.push({
        shardId: result.shardId!,
        sequenceNumber: result.sequenceNumber!,
        subSequenceNumber: result.subSequenceNumber!,
        data: entry.record.data,
        partitionKey: entry.record.partitionKey,
      });
    }
    return out;
  }

  /** Entries whose result is a failure. */
  failures(): LedgerEntry[] {
    return this.entries.filter((entry) => entry.result !== undefined && !entry.result.success);
  }

  #track(record: UserRecord & { data: string }, receipt: RecordReceipt): LedgerEntry {
    const entry: LedgerEntry = {
      index: this.entries.length,
      record,
      deliveries: 0,
      delivered: undefined,
      result: undefined,
    };
    this.entries.push(entry);
    const owner: RecordOwner = {
      onResult(result) {
        entry.deliveries++;
        entry.delivered ??= result;
      },
    };
    // The receipt is the producer's per-record state; `owner` is the hook its own
    // streams use. Admission never settles a record synchronously, so none is missed.
    if (receipt.settled) throw new Error(`record ${entry.index} settled before it was tracked`);
    (receipt as unknown as { owner: RecordOwner | null }).owner = owner;
    this.#results.push(receipt.result.then((result) => {
      entry.result = result;
    }));
    return entry;
  }
}

/**
 * Checks the stream against the ledger: every success at its reported position, and every
 * other copy of a record explained: at a position the proxy says it hid (a response lost
 * after the emulator stored the records), at the position of one of the record's own
 * `Wrong Shard` attempts, or of a record one of whose attempts got no answer at all.
 *
 * @param found Every user record read back from the stream.
 * @param ledger The ledger.
 * @param hidden The proxy's `unconfirmed()` list (empty when no proxy was used).
 * @returns The counts.
 */
export function checkStream(
  found: readonly FoundRecord[],
  ledger: Ledger,
  hidden: readonly UnconfirmedRecord[],
): StreamCheck {
  const successes = ledger.successes();
  const report = reconcile(found, successes);
  const reported = new Set<string>();
  for (const success of successes) {
    reported.add(position(success.shardId, success.sequenceNumber, success.subSequenceNumber!));
  }
  const hiddenKinesisRecords = new Set<string>();
  for (const record of hidden) {
    hiddenKinesisRecords.add(`${record.shardId}/${record.sequenceNumber}`);
  }
  const failedPayloads = new Set<string>();
  for (const entry of ledger.failures()) failedPayloads.add(entry.record.data);
  const wrongShard = new Set<string>();
  const ambiguous = new Set<string>();
  for (const entry of ledger.entries) {
    for (const attempt of entry.result?.attempts ?? []) {
      if (attempt.errorCode === "Wrong Shard") {
        wrongShard.add(`${attempt.shardId}/${attempt.sequenceNumber}/${entry.record.data}`);
      } else if (attempt.errorCode === "RequestTimeout" || attempt.errorCode === "NetworkError") {
        ambiguous.add(entry.record.data);
      }
    }
  }
  const check: StreamCheck = {
    found: found.length,
    confirmed: successes.length - report.missing - report.mismatched,
    missing: report.missing,
    mismatched: report.mismatched,
    duplicates: report.duplicates,
    hiddenCopies: 0,
    wrongShardCopies: 0,
    ambiguousCopies: 0,
    unexplained: 0,
    failedButStored: 0,
    failedRecordsStored: 0,
    examples: [],
  };
  const failedFound = new Set<string>();
  const decoder = new TextDecoder();
  for (const record of found) {
    if (reported.has(position(record.shardId, record.sequenceNumber, record.subSequenceNumber))) {
      continue;
    }
    const payload = decoder.decode(record.data);
    if (failedPayloads.has(payload)) {
      check.failedButStored++;
      failedFound.add(payload);
    }
    if (hiddenKinesisRecords.has(`${record.shardId}/${record.sequenceNumber}`)) {
      check.hiddenCopies++;
    } else if (wrongShard.has(`${record.shardId}/${record.sequenceNumber}/${payload}`)) {
      check.wrongShardCopies++;
    } else if (ambiguous.has(payload)) {
      check.ambiguousCopies++;
    } else {
      check.unexplained++;
      if (check.examples.length < 10) check.examples.push(record);
    }
  }
  check.failedRecordsStored = failedFound.size;
  return check;
}

/**
 * Checks that a failed result is honest: its code is its last attempt's code, an `Expired`
 * one really outlived its TTL and names the last real error.
 *
 * @param result A failed result.
 * @param ttlMs The producer's `recordTtlMs`.
 * @returns A description of what is wrong, or `undefined` when nothing is.
 */
export function dishonestFailure(result: RecordResult, ttlMs: number): string | undefined {
  const attempts = result.attempts;
  const last: Attempt | undefined = attempts.at(-1);
  if (last === undefined) return "no attempts";
  if (result.errorCode === undefined || result.errorMessage === undefined) return "no code";
  if (last.errorCode !== result.errorCode) {
    return `code ${result.errorCode} but last attempt says ${last.errorCode}`;
  }
  if (result.errorCode !== "Expired") return undefined;
  const first = attempts[0]!;
  const arrivedAt = first.startedAt - first.delayMs;
  if (last.endedAt < arrivedAt + ttlMs - 1) {
    return `Expired after ${last.endedAt - arrivedAt} ms of a ${ttlMs} ms TTL`;
  }
  const real = attempts.slice(0, -1).at(-1);
  if (real?.errorCode !== undefined && !result.errorMessage.includes(real.errorCode)) {
    return `Expired without naming the last error ${real.errorCode}: ${result.errorMessage}`;
  }
  return undefined;
}

/**
 * Builds a scenario row from what the ledger and the stream check found. A record is lost
 * when its success is missing or misplaced in the stream, or when it never settled.
 *
 * @param row The scenario's name, record count and time, with its settlement and check.
 * @returns The row.
 */
export function scenarioRow(row: {
  scenario: string;
  records: number;
  settlement: Settlement;
  check: StreamCheck;
  timeMs: number;
  /** Failures counted outside the ledger, e.g. records rejected at the call. */
  alsoFailed?: Record<string, number>;
}): ScenarioRow {
  const { settlement, check } = row;
  return {
    scenario: row.scenario,
    records: row.records,
    settled: settlement.settled,
    confirmed: check.confirmed,
    lost: check.missing + check.mismatched + settlement.neverSettled,
    duplicates: check.duplicates,
    failedByCode: { ...settlement.failedByCode, ...row.alsoFailed },
    timeMs: row.timeMs,
  };
}

/**
 * Formats a scenario row as a Markdown table row.
 *
 * @param row The row.
 * @returns `| scenario | records | ... |`.
 */
export function formatRow(row: ScenarioRow): string {
  const failed = Object.entries(row.failedByCode)
    .map(([code, count]) => `${code} ${count}`)
    .join(", ") || "0";
  return `| ${row.scenario} | ${row.records} | ${row.settled} | ${row.confirmed} | ${row.lost} | ` +
    `${row.duplicates} | ${failed} | ${(row.timeMs / 1000).toFixed(1)} s |`;
}

/** The header of the scenario table. */
export const TABLE_HEADER = "| scenario | records | settled | confirmed in stream | lost | " +
  "duplicates | failed (by code) | time |\n|---|---|---|---|---|---|---|---|";

function position(shardId: string, sequenceNumber: string, subSequenceNumber: number): string {
  return `${shardId}/${sequenceNumber}/${subSequenceNumber}`;
}
