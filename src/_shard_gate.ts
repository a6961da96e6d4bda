// The per-shard gate of `preserveOrder` (docs/ordering.md): it keeps each shard's unsettled
// records in admission order and lets one batch (what fits in one Kinesis record) of a
// shard down the pipeline at a time. The next batch leaves only when every member of the
// one before has an outcome or has come back for a retry; the members that came back lead
// it. Records wait here, before the aggregator, so nothing downstream can reorder them.

import type { PendingRecord } from "./_pending_record.ts";
import { AggregateBuilder } from "./codec.ts";
import { compareHashKeys } from "./hash_key.ts";
import { Deadline, type DeadlineTask, type Scheduler } from "./scheduler.ts";
import type { Shard } from "./shard_map.ts";

/** What a {@linkcode ShardGate} needs. */
export interface ShardGateOptions {
  /** Drives the batches' buffering deadlines and the expiry of held records. */
  readonly scheduler: Scheduler;
  /** Most user records in one batch: one Kinesis record's worth (1 without aggregation). */
  readonly maxCount: number;
  /** Most bytes of one batch's aggregated record, as the aggregator counts them. */
  readonly maxSize: number;
  /** The shard a newly admitted record belongs to, or `null` while the map cannot tell. */
  predict(record: PendingRecord): Shard | null;
  /** Receives each batch, in admission order; all of it must leave as one Kinesis record. */
  onRelease(records: PendingRecord[]): void;
  /** Receives a record whose TTL ran out before it could be released. */
  onExpired(record: PendingRecord): void;
}

/** One shard's records: those waiting, and the batch down the pipeline. */
class Lane implements DeadlineTask {
  readonly shard: Shard;
  /** Creation order: a lane opened earlier holds records admitted earlier. */
  readonly order: number;
  readonly deadline: Deadline;
  readonly #onDue: (lane: Lane) => void;
  waiting: PendingRecord[] = [];
  head = 0;
  /** Bytes of the waiting records' data and keys: a cheap lower bound of their aggregate. */
  waitingBytes = 0;
  batch: PendingRecord[] = [];
  /** Members of `batch` that neither settled nor came back yet. */
  out = 0;
  /** Members of `batch` that came back to be sent again. */
  back = new Set<PendingRecord>();

  constructor(onDue: (lane: Lane) => void, place: { shard: Shard; order: number }) {
    this.#onDue = onDue;
    this.shard = place.shard;
    this.order = place.order;
    this.deadline = new Deadline(this);
  }

  get idle(): boolean {
    return this.batch.length === 0 && this.head === this.waiting.length;
  }

  onDeadline(): void {
    this.#onDue(this);
  }
}

/** Expires the records held while the shard map cannot predict. */
class HeldExpiry implements DeadlineTask {
  readonly #onDue: () => void;
  constructor(onDue: () => void) {
    this.#onDue = onDue;
  }
  onDeadline(): void {
    this.#onDue();
  }
}

/**
 * At most one batch per shard down the pipeline, in admission order, with the records of a
 * batch that must be sent again ahead of everything later of their shard. Lanes are keyed
 * by the shard a record was predicted to when it was admitted and keep it for good: after a
 * reshard, a lane of a newer shard waits until every older lane whose hash range overlaps
 * its own is empty, so records of a parent go before those of its children.
 */
export class ShardGate {
  readonly #options: ShardGateOptions;
  readonly #scheduler: Scheduler;
  readonly #lanes = new Map<Shard, Lane>();
  /** The lane of every record released and not yet settled or back. */
  readonly #released = new Map<PendingRecord, Lane>();
  readonly #builder = new AggregateBuilder();
  readonly #onDue = (lane: Lane): void => this.#pump(lane);
  /** Records admitted while the map could not predict, in admission order. */
  #held: PendingRecord[] = [];
  readonly #heldExpiry = new Deadline(new HeldExpiry(() => this.#expireHeld()));
  #lanesOpened = 0;
  /** Records admitted up to this sequence number are due: a flush asked for them. */
  #flushSeq = -1;
  #lastSeq = -1;
  /** Lanes to pump once the pump running now returns (a release can settle records). */
  #again: Lane[] = [];
  #pumping = false;

  constructor(options: ShardGateOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
  }

  /** Records waiting in the gate or down the pipeline. */
  get size(): number {
    let size = this.#held.length;
    for (const lane of this.#lanes.values()) {
      size += lane.waiting.length - lane.head + lane.out;
    }
    return size;
  }

  /** Takes a record: a new one on admission, or a released one that came back to be retried. */
  put(record: PendingRecord): void {
    const lane = this.#released.get(record);
    if (lane !== undefined) {
      this.#released.delete(record);
      lane.back.add(record);
      if (--lane.out === 0) this.#complete(lane);
      return;
    }
    if (record.seq > this.#lastSeq) this.#lastSeq = record.seq;
    const shard = this.#held.length === 0 ? this.#options.predict(record) : null;
    if (shard === null) {
      this.#held.push(record);
      if (this.#held.length === 1) this.#scheduler.schedule(this.#heldExpiry, record.expiresAt);
      return;
    }
    this.#enqueue(record, shard);
    this.#pump(this.#lanes.get(shard)!);
  }

  /** Learns that a record settled, wherever it is. */
  settled(record: PendingRecord): void {
    const lane = this.#released.get(record);
    if (lane === undefined) return; // a waiting record: skipped when its turn comes
    this.#released.delete(record);
    if (--lane.out === 0) this.#complete(lane);
  }

  /** Makes every record admitted so far due, so each shard's next batch leaves at once. */
  flush(): void {
    this.#flushSeq = this.#lastSeq;
    for (const lane of [...this.#lanes.values()]) this.#pump(lane);
  }

  /** Moves the held records to their shards' lanes once the map can predict them. */
  reroute(): void {
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    this.#scheduler.cancel(this.#heldExpiry);
    const touched = new Set<Lane>();
    for (let i = 0; i < held.length; i++) {
      const record = held[i]!;
      if (record.outcome !== undefined) continue;
      const shard = this.#held.length === 0 ? this.#options.predict(record) : null;
      if (shard === null) {
        this.#held.push(record);
        continue;
      }
      touched.add(this.#enqueue(record, shard));
    }
    if (this.#held.length > 0) this.#scheduler.schedule(this.#heldExpiry, this.#held[0]!.expiresAt);
    for (const lane of touched) this.#pump(lane);
  }

  #enqueue(record: PendingRecord, shard: Shard): Lane {
    let lane = this.#lanes.get(shard);
    if (lane === undefined) {
      lane = new Lane(this.#onDue, { shard, order: this.#lanesOpened++ });
      this.#lanes.set(shard, lane);
    }
    lane.waiting.push(record);
    lane.waitingBytes += record.size;
    return lane;
  }

  #complete(lane: Lane): void {
    // A record settling is counted out before its outcome is set, so the records to send
    // again are the ones that came back, not the ones without an outcome.
    const back = lane.back.size === 0 ? [] : lane.batch.filter((record) => lane.back.has(record));
    lane.back.clear();
    lane.batch = [];
    if (back.length > 0) {
      for (const record of back) lane.waitingBytes += record.size;
      lane.waiting = back.concat(lane.waiting.slice(lane.head));
      lane.head = 0;
    }
    this.#pump(lane);
  }

  /** Releases the lane's next batch when nothing of it is out and the batch is due. */
  #pump(lane: Lane): void {
    if (this.#pumping) {
      this.#again.push(lane);
      return;
    }
    this.#pumping = true;
    try {
      this.#pumpOnce(lane);
      for (let i = 0; i < this.#again.length; i++) this.#pumpOnce(this.#again[i]!);
    } finally {
      this.#again = [];
      this.#pumping = false;
    }
  }

  #pumpOnce(lane: Lane): void {
    if (lane.batch.length > 0 || this.#lanes.get(lane.shard) !== lane) return;
    const now = this.#scheduler.clock.now();
    this.#dropSettledAndExpired(lane, now);
    if (lane.idle) {
      this.#close(lane);
      return;
    }
    if (this.#waitsForOlder(lane)) return;
    const { maxCount, maxSize } = this.#options;
    const first = lane.waiting[lane.head]!;
    const due = first.deadline <= now || first.seq <= this.#flushSeq ||
      lane.waiting.length - lane.head >= maxCount || lane.waitingBytes >= maxSize;
    if (!due) {
      this.#scheduler.schedule(lane.deadline, Math.min(first.deadline, first.expiresAt));
      return;
    }
    this.#scheduler.cancel(lane.deadline);
    // The batch is what the aggregator will pack into one Kinesis record: the same builder
    // and limits, so it never splits a batch into two entries for one shard.
    const builder = this.#builder;
    builder.clear();
    const batch: PendingRecord[] = [];
    while (lane.head < lane.waiting.length && batch.length < maxCount) {
      const record = lane.waiting[lane.head]!;
      if (record.outcome !== undefined) {
        lane.head++;
        continue;
      }
      if (batch.length === 0) builder.add(record);
      else if (builder.size >= maxSize || !builder.tryAdd(record, maxSize)) break;
      batch.push(record);
      lane.head++;
      lane.waitingBytes -= record.size;
    }
    this.#compact(lane);
    lane.batch = batch;
    lane.out = batch.length;
    for (const record of batch) this.#released.set(record, lane);
    this.#options.onRelease(batch);
  }

  /** Settled records are skipped; records past their TTL end here instead of being sent. */
  #dropSettledAndExpired(lane: Lane, now: number): void {
    while (lane.head < lane.waiting.length) {
      const record = lane.waiting[lane.head]!;
      if (record.outcome === undefined && record.expiresAt > now) break;
      lane.head++;
      lane.waitingBytes -= record.size;
      if (record.outcome === undefined) this.#options.onExpired(record);
    }
    this.#compact(lane);
  }

  /** Whether an older lane for an overlapping hash range (a parent's) still has records. */
  #waitsForOlder(lane: Lane): boolean {
    for (const other of this.#lanes.values()) {
      if (other.order >= lane.order) break; // a Map iterates in insertion (creation) order
      if (other.shard.closedAt !== undefined && overlaps(other.shard, lane.shard)) return true;
    }
    return false;
  }

  /** Forgets an empty lane and wakes the younger lanes it may have held back. */
  #close(lane: Lane): void {
    this.#scheduler.cancel(lane.deadline);
    this.#lanes.delete(lane.shard);
    lane.waiting = [];
    lane.head = 0;
    lane.waitingBytes = 0;
    if (lane.shard.closedAt === undefined) return;
    for (const other of [...this.#lanes.values()]) {
      if (other.order > lane.order && overlaps(other.shard, lane.shard)) this.#pump(other);
    }
  }

  #compact(lane: Lane): void {
    if (lane.head > 64 && lane.head * 2 > lane.waiting.length) {
      lane.waiting = lane.waiting.slice(lane.head);
      lane.head = 0;
    }
  }

  #expireHeld(): void {
    const now = this.#scheduler.clock.now();
    const held = this.#held;
    let kept = 0;
    while (kept < held.length && held[kept]!.expiresAt <= now) kept++;
    const expired = held.splice(0, kept);
    if (held.length > 0) this.#scheduler.schedule(this.#heldExpiry, held[0]!.expiresAt);
    for (const record of expired) {
      if (record.outcome === undefined) this.#options.onExpired(record);
    }
  }
}

function overlaps(a: Shard, b: Shard): boolean {
  return compareHashKeys(a.start, b.end) <= 0 && compareHashKeys(b.start, a.end) <= 0;
}
