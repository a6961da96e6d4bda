/**
 * Paces Kinesis records per shard with a token bucket, so one producer does not run a
 * shard into throttling, and backs a shard off when Kinesis throttles it anyway.
 *
 * @module
 */

import { backoff, type BackoffPolicy } from "./_backoff.ts";
import { BurstClock } from "./_burst_clock.ts";
import { RateController, type SuccessContext } from "./_rate_controller.ts";
import { ErrorCodes } from "./error_codes.ts";
import { type KinesisRecord, membersOf } from "./kinesis_record.ts";
import { Deadline, type DeadlineTask, type Scheduler } from "./scheduler.ts";
import type { Shard } from "./shard_map.ts";

/** Kinesis' per-shard write limits, which `rateLimit` is a percentage of. */
export const SHARD_RECORDS_PER_SECOND = 1000;
/** Kinesis' per-shard write limit in bytes per second. */
export const SHARD_BYTES_PER_SECOND = 1024 * 1024;
/** The byte bucket's capacity, as in the C++ KPL (`kBytesPerRecordLimit`). */
export const SHARD_BYTE_BURST = 10 * 1024 * 1024;

/** A throttled shard pauses 100 ms, doubling per throttle in a row up to 5 s, with jitter. */
const THROTTLE_BACKOFF: BackoffPolicy = { firstMs: 100, maxMs: 5000, factor: 2 };
// The shortest window over which a shard's use of its rate is measured.
const USAGE_WINDOW_MS = 500;
// The fewest outcomes (Kinesis records stored or throttled) that tell a throttled share.
const MIN_OUTCOMES = 50;
// Each outcome moves the stream's throttle pressure this far towards 1 (throttle) or 0.
const PRESSURE_WEIGHT = 0.05;
// Waking at least this far apart keeps a starved bucket from spinning the scheduler.
const MIN_WAKE_MS = 1;
// Refill arithmetic in floating point can land a hair short of a whole token.
const EPSILON = 1e-6;
// Puts of one synchronous burst (an aggregator's flush, or a loop of put() calls with
// aggregation off, where every user record comes through here) share one clock reading:
// reading the clock costs more than the rest of a put (bench/pipeline_probe.ts).
const PUTS_PER_CLOCK_READ = 64;

/** Options for {@linkcode Limiter}. */
export interface LimiterOptions {
  /** Drives the drains. */
  scheduler: Scheduler;
  /** Percent of the shard limits a shard may be sent (the C++ `RateLimit`). */
  rateLimit: number;
  /** Jitter source in [0, 1). */
  random: () => number;
  /**
   * Adapt each shard's rate to Kinesis' answers (between 1% of the shard limits and
   * `rateLimit`); `false` keeps every shard at `rateLimit`. @default {true}
   */
  adaptive?: boolean;
  /** Receives each Kinesis record the bucket admits, in deadline order. */
  onAdmit(record: KinesisRecord): void;
  /** Receives each Kinesis record whose earliest member expired while it waited. */
  onExpired(record: KinesisRecord): void;
}

/** Two token streams (records and bytes) and the queue waiting on them, for one shard. */
class ShardLimiter implements DeadlineTask {
  readonly shard: Shard;
  readonly deadline: Deadline;
  readonly #onDue: (limiter: ShardLimiter, now: number) => void;
  records = 0;
  bytes = 0;
  refilledAt: number;
  /**
   * Kinesis records waiting for tokens, in deadline order, from `head`. Not the shared
   * `_queue.ts`: this one is kept sorted and has expired records taken from its middle,
   * and going through the shared class cost about a tenth of a record's time with
   * aggregation off (bench/pipeline_probe.ts), where every record passes through here.
   */
  queue: KinesisRecord[] = [];
  head = 0;
  /** A lower bound on the earliest `expiresAt` in the queue. */
  earliestExpiry = Infinity;
  /** The adaptive rate, or `null` when the rate is fixed at `rateLimit`. */
  readonly control: RateController | null;
  /** Refill rates in tokens per millisecond. */
  recordRate = 0;
  byteRate = 0;
  /** Calls in which Kinesis throttled records of this shard. */
  throttles = 0;
  /** What was admitted since `sentSince`, to tell the rate used from the rate allowed. */
  sentRecords = 0;
  sentBytes = 0;
  sentSince: number;
  /** Kinesis records stored since `sentSince`, for the rate the shard accepted. */
  acceptedRecords = 0;
  /**
   * Kinesis records stored, and Kinesis records throttled, since `shareSince`: the
   * throttled share of the shard's outcomes. A throttled record is counted when its
   * members come back to be sent again, about when the stored ones of the same answer are
   * counted, so a rate that changes does not skew the share (counting records sent
   * against records stored would: those are a round trip apart).
   */
  shareStored = 0;
  shareThrottled = 0;
  shareSince: number;
  /** Throttles in a row, for the pause; a success resets it. */
  throttlesInRow = 0;
  blockedUntil = 0;
  /** Set while a drain runs, so a drain re-entered from a callback only asks for another pass. */
  draining = false;
  drainAgain = false;

  constructor(
    onDue: (limiter: ShardLimiter, now: number) => void,
    shard: Shard,
    now: number,
    setup: {
      recordCapacity: number;
      byteCapacity: number;
      control: RateController | null;
      share: number;
    },
  ) {
    this.#onDue = onDue;
    this.shard = shard;
    this.deadline = new Deadline(this);
    // Full from the start, as in the C++ KPL: a new shard may burst.
    this.records = setup.recordCapacity;
    this.bytes = setup.byteCapacity;
    this.refilledAt = now;
    this.sentSince = now;
    this.shareSince = now;
    this.control = setup.control;
    this.setShare(setup.share);
  }

  /** Sets the refill rates to `share` of the shard limits. */
  setShare(share: number): void {
    this.recordRate = (SHARD_RECORDS_PER_SECOND * share) / 1000;
    this.byteRate = (SHARD_BYTES_PER_SECOND * share) / 1000;
  }

  get length(): number {
    return this.queue.length - this.head;
  }

  onDeadline(now: number): void {
    this.#onDue(this, now);
  }
}

/** A read-only view of one shard's limiter, from {@linkcode Producer.shardStates}. */
export interface ShardState {
  /** The shard, `shardId-000000000000`. */
  shardId: string;
  /**
   * The shard's current send rate in percent of Kinesis' per-shard limits (1000 records/s
   * and 1 MiB/s): `rateLimit` until Kinesis throttles the shard, then adapted.
   */
  ratePercent: number;
  /** PutRecords calls in which Kinesis throttled records of this shard. */
  throttles: number;
  /** User records waiting in this shard's queue for tokens. */
  queuedRecords: number;
  /** Clock time until which the shard is paused after a throttle; 0 when it is not. */
  pausedUntil: number;
}

/**
 * A per-shard token bucket with the C++ KPL's numbers: records (capacity 1000, refill
 * 1000 × rate per second) and bytes (capacity 10 MiB, refill 1 MiB × rate per second). A
 * Kinesis record costs one record token and its size in byte tokens. Queued records leave
 * in deadline order, expired ones first; a record too big for the byte bucket is admitted
 * once the bucket is full instead of blocking its shard forever.
 *
 * The rate starts at `rateLimit` percent and, unless `adaptive` is off, adapts per shard to
 * what Kinesis answers (see `src/_rate_controller.ts` and docs/fleet.md): a throttle of a
 * request sent after the previous cut lowers it, successes raise it again. Such a throttle
 * also empties the bucket and pauses the shard with exponential backoff and jitter, and a
 * success resets the backoff.
 */
export class Limiter {
  readonly #options: LimiterOptions;
  readonly #scheduler: Scheduler;
  readonly #shards = new Map<Shard, ShardLimiter>();
  /** What a shard's timer calls: one function for every shard. */
  readonly #drainDue = (limiter: ShardLimiter, now: number): void => this.#drain(limiter, now);
  /** The ceiling, as a share of the shard limits. */
  readonly #ceiling: number;
  readonly #adaptive: boolean;
  readonly #recordCapacity = SHARD_RECORDS_PER_SECOND;
  readonly #byteCapacity = SHARD_BYTE_BURST;
  #queued = 0;
  /** When Kinesis last throttled any shard of this limiter's stream. */
  #lastThrottleAt = -Infinity;
  /** Recent share of throttles among this stream's outcomes (a moving average). */
  #pressure = 0;
  /** Reused for every success, so the per-record path allocates nothing. */
  readonly #successContext: SuccessContext = { quietMs: 0, limited: false };
  readonly #putClock: BurstClock;

  /**
   * Creates a limiter.
   *
   * @param options The scheduler, the rate and the downstream callbacks.
   */
  constructor(options: LimiterOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
    this.#ceiling = options.rateLimit / 100;
    this.#adaptive = options.adaptive ?? true;
    this.#putClock = new BurstClock(options.scheduler.clock, PUTS_PER_CLOCK_READ);
  }

  /** How many Kinesis records are waiting for tokens. */
  get queuedRecords(): number {
    return this.#queued;
  }

  /**
   * Queues a Kinesis record for its predicted shard and drains that shard.
   *
   * @param record A Kinesis record with `predictedShard` set.
   */
  put(record: KinesisRecord): void {
    const now = this.#putClock.now();
    const limiter = this.#limiterOf(record.predictedShard!, now);
    if (limiter.control !== null) limiter.shareThrottled += throttledPart(record);
    enqueueByDeadline(limiter, record);
    this.#queued++;
    if (record.expiresAt < limiter.earliestExpiry) limiter.earliestExpiry = record.expiresAt;
    this.#drain(limiter, now);
  }

  /**
   * Slows `shard` after Kinesis throttled it: lowers its adaptive rate, empties its bucket
   * and pauses it (the pause doubles on every such throttle, with jitter, up to 5 s). A
   * throttle of a request sent before the previous one was reported is the same
   * congestion and only counted.
   *
   * @param shard The shard Kinesis throttled.
   * @param sentAt When the throttled request was sent; now when omitted.
   */
  throttled(shard: Shard, sentAt?: number): void {
    const now = this.#scheduler.clock.now();
    const limiter = this.#limiterOf(shard, now);
    limiter.throttles++;
    const pressure = this.#pressure + PRESSURE_WEIGHT * (1 - this.#pressure);
    const control = limiter.control;
    const verdict = control?.throttled(now, {
      sentAt: sentAt ?? now,
      pressure,
      inRow: limiter.throttlesInRow + 1,
      ...measureUse(limiter, now),
    });
    // A throttle the rate does not cause (src/_rate_controller.ts) says nothing about the
    // stream's congestion: it neither ends the quiet that lets rates grow nor adds pressure.
    if (verdict !== "tolerated") {
      this.#lastThrottleAt = now;
      this.#pressure = pressure;
    }
    if (verdict === "stale") return;
    // A tolerated throttle pauses the shard as a fixed rate would, and may have restored
    // the rate.
    if (control) limiter.setShare(control.rate);
    const pause = backoff(THROTTLE_BACKOFF, ++limiter.throttlesInRow, this.#options.random);
    limiter.blockedUntil = Math.max(limiter.blockedUntil, now + pause);
    // Drop what is left in the bucket: the shard told us it is full.
    limiter.records = 0;
    limiter.bytes = 0;
    limiter.refilledAt = now;
  }

  /**
   * Ends a shard's throttle backoff after a success, and lets its adaptive rate grow.
   *
   * @param shard The shard a record was stored on.
   * @param now Clock time: the caller reads it once for all the records of a call.
   */
  succeeded(shard: Shard, now: number): void {
    const limiter = this.#shards.get(shard);
    if (limiter === undefined) return;
    limiter.throttlesInRow = 0;
    limiter.shareStored++;
    limiter.acceptedRecords++;
    this.#pressure -= PRESSURE_WEIGHT * this.#pressure;
    const control = limiter.control;
    if (control === null) return;
    const context = this.#successContext;
    context.quietMs = now - this.#lastThrottleAt;
    // Only a shard that has records waiting for tokens is limited by its rate; growing the
    // rate of one that is not would only bank a burst.
    context.limited = limiter.length > 0;
    const before = control.rate;
    control.succeeded(now, context);
    // This runs once per stored Kinesis record, and the rate rarely moves: the bucket is
    // only brought up to date (tokens so far earned at the old rate) when it does.
    if (control.rate !== before) {
      this.#refill(limiter, now);
      limiter.setShare(control.rate);
    }
  }

  /**
   * Whether `shard` is paused by throttle backoff right now.
   *
   * @param shard A shard.
   * @returns `true` while the shard is backing off.
   */
  isBackingOff(shard: Shard): boolean {
    const limiter = this.#shards.get(shard);
    return limiter !== undefined && limiter.blockedUntil > this.#scheduler.clock.now();
  }

  /**
   * What each shard this limiter has seen looks like now.
   *
   * @returns One plain object per shard, in the order the shards were first seen.
   */
  states(): ShardState[] {
    const now = this.#scheduler.clock.now();
    const states: ShardState[] = [];
    for (const limiter of this.#shards.values()) {
      let queuedRecords = 0;
      for (let i = limiter.head; i < limiter.queue.length; i++) {
        queuedRecords += limiter.queue[i]!.count;
      }
      states.push({
        shardId: limiter.shard.id,
        ratePercent: 100 * (limiter.control?.rate ?? this.#ceiling),
        throttles: limiter.throttles,
        queuedRecords,
        pausedUntil: limiter.blockedUntil > now ? limiter.blockedUntil : 0,
      });
    }
    return states;
  }

  #limiterOf(shard: Shard, now: number): ShardLimiter {
    let limiter = this.#shards.get(shard);
    if (limiter === undefined) {
      const control = this.#adaptive
        ? new RateController(this.#ceiling, this.#options.random)
        : null;
      limiter = new ShardLimiter(this.#drainDue, shard, now, {
        recordCapacity: this.#recordCapacity,
        byteCapacity: this.#byteCapacity,
        control,
        share: this.#ceiling,
      });
      this.#shards.set(shard, limiter);
    }
    return limiter;
  }

  /** Admits what the bucket can pay for; runs on put and on the shard's timer. */
  #drain(limiter: ShardLimiter, now: number): void {
    // Admitting hands records downstream, and settling them can put new records into this
    // very shard; those only ask for another pass instead of draining inside the loop.
    if (limiter.draining) {
      limiter.drainAgain = true;
      return;
    }
    limiter.draining = true;
    try {
      do {
        limiter.drainAgain = false;
        this.#drainOnce(limiter, now);
      } while (limiter.drainAgain);
    } finally {
      limiter.draining = false;
    }
  }

  #drainOnce(limiter: ShardLimiter, now: number): void {
    this.#refill(limiter, now);
    if (now >= limiter.earliestExpiry) this.#expire(limiter, now);
    if (now < limiter.blockedUntil) {
      if (limiter.length > 0) {
        this.#scheduler.schedule(
          limiter.deadline,
          Math.min(limiter.blockedUntil, limiter.earliestExpiry),
        );
      }
      return;
    }
    const queue = limiter.queue;
    while (limiter.head < queue.length) {
      const record = queue[limiter.head]!;
      const cost = record.data.length;
      if (limiter.records < 1 - EPSILON) break;
      if (limiter.bytes < cost - EPSILON) {
        // Admitting a record bigger than the whole bucket only once the bucket is full
        // paces it like everything else without blocking the shard for good.
        if (!(cost > this.#byteCapacity && limiter.bytes >= this.#byteCapacity - EPSILON)) break;
      }
      limiter.records -= 1;
      limiter.bytes -= cost;
      limiter.sentRecords++;
      limiter.sentBytes += cost;
      queue[limiter.head++] = undefined as unknown as KinesisRecord;
      this.#queued--;
      this.#options.onAdmit(record);
    }
    this.#compact(limiter);
    if (limiter.length === 0) {
      limiter.earliestExpiry = Infinity;
      this.#scheduler.cancel(limiter.deadline);
      if (limiter.shard.closedAt !== undefined && now >= limiter.blockedUntil) {
        this.#shards.delete(limiter.shard);
      }
      return;
    }
    const head = limiter.queue[limiter.head]!;
    const recordWait = limiter.records >= 1 ? 0 : (1 - limiter.records) / limiter.recordRate;
    const byteNeed = Math.min(head.data.length, this.#byteCapacity);
    const byteWait = limiter.bytes >= byteNeed ? 0 : (byteNeed - limiter.bytes) / limiter.byteRate;
    const wake = now + Math.max(MIN_WAKE_MS, recordWait, byteWait);
    this.#scheduler.schedule(limiter.deadline, Math.min(wake, limiter.earliestExpiry));
  }

  #refill(limiter: ShardLimiter, now: number): void {
    const elapsed = now - limiter.refilledAt;
    if (elapsed <= 0) return;
    limiter.records = Math.min(
      this.#recordCapacity,
      limiter.records + elapsed * limiter.recordRate,
    );
    limiter.bytes = Math.min(this.#byteCapacity, limiter.bytes + elapsed * limiter.byteRate);
    limiter.refilledAt = now;
  }

  #expire(limiter: ShardLimiter, now: number): void {
    const queue = limiter.queue;
    let kept = limiter.head;
    let earliest = Infinity;
    const expired: KinesisRecord[] = [];
    for (let i = limiter.head; i < queue.length; i++) {
      const record = queue[i]!;
      if (record.expiresAt <= now) {
        expired.push(record);
      } else {
        queue[kept++] = record;
        if (record.expiresAt < earliest) earliest = record.expiresAt;
      }
    }
    queue.length = kept;
    limiter.earliestExpiry = earliest;
    this.#queued -= expired.length;
    if (limiter.throttles > 0) {
      for (const record of expired) {
        blameThrottles(record, limiter.shard);
      }
    }
    for (const record of expired) this.#options.onExpired(record);
  }

  #compact(limiter: ShardLimiter): void {
    if (limiter.head === 0) return;
    if (limiter.head === limiter.queue.length) {
      limiter.queue = [];
      limiter.head = 0;
    } else if (limiter.head > 64 && limiter.head * 2 > limiter.queue.length) {
      limiter.queue = limiter.queue.slice(limiter.head);
      limiter.head = 0;
    }
  }
}

/**
 * The share of the shard limits `limiter` has used since the last reading (records or
 * bytes, whichever is higher), or `Infinity` when too little time has passed to tell; the
 * share it got stored (0 when unknown); and the throttled share of the shard's outcomes
 * since the last such reading, or `NaN` until there are enough outcomes to tell.
 */
function measureUse(
  limiter: ShardLimiter,
  now: number,
): { used: number; accepted: number; throttledShare: number } {
  const elapsed = now - limiter.sentSince;
  if (elapsed < USAGE_WINDOW_MS) return { used: Infinity, accepted: 0, throttledShare: NaN };
  const sent = limiter.sentRecords;
  const used = Math.max(
    (sent * 1000) / elapsed / SHARD_RECORDS_PER_SECOND,
    (limiter.sentBytes * 1000) / elapsed / SHARD_BYTES_PER_SECOND,
  );
  // Records stored in the window were sent a round trip earlier, which evens out over a
  // window of many round trips; too few records tell nothing.
  const accepted = sent >= MIN_OUTCOMES ? used * Math.min(1, limiter.acceptedRecords / sent) : 0;
  limiter.acceptedRecords = 0;
  limiter.sentRecords = 0;
  limiter.sentBytes = 0;
  limiter.sentSince = now;
  const outcomes = limiter.shareStored + limiter.shareThrottled;
  if (outcomes < MIN_OUTCOMES || now - limiter.shareSince < USAGE_WINDOW_MS) {
    return { used, accepted, throttledShare: NaN };
  }
  const throttledShare = limiter.shareThrottled / outcomes;
  limiter.shareStored = 0;
  limiter.shareThrottled = 0;
  limiter.shareSince = now;
  return { used, accepted, throttledShare };
}

/**
 * How much of a Kinesis record coming back is a throttled one sent again: the share of its
 * members whose last attempt Kinesis throttled (members of several throttled records may
 * be aggregated anew).
 */
function throttledPart(record: KinesisRecord): number {
  const count = record.count;
  let throttled = 0;
  for (let i = 0; i < count; i++) {
    if (record.member(i).lastErrorCode === ErrorCodes.throughputExceeded) throttled++;
  }
  return throttled / count;
}

/**
 * Gives the members of a record that expired waiting for a throttled shard's tokens, and
 * that have no error of their own, the throttle as their last error: it is why they were
 * not sent, and their `Expired` result names it.
 */
function blameThrottles(record: KinesisRecord, shard: Shard): void {
  for (const member of membersOf(record)) {
    if (member.lastErrorCode !== undefined) continue;
    member.blame(
      ErrorCodes.throughputExceeded,
      `Not sent: Kinesis throttled ${shard.id}, and its send rate was lowered and paused`,
    );
  }
}

/** Inserts by deadline; records almost always arrive in order, so this is usually a push. */
function enqueueByDeadline(limiter: ShardLimiter, record: KinesisRecord): void {
  const queue = limiter.queue;
  const last = queue.length > limiter.head ? queue[queue.length - 1]! : undefined;
  if (last === undefined || last.deadline <= record.deadline) {
    queue.push(record);
    return;
  }
  let low = limiter.head;
  let high = queue.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (queue[mid]!.deadline <= record.deadline) low = mid + 1;
    else high = mid;
  }
  queue.splice(low, 0, record);
}
