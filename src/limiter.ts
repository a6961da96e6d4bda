/**
 * Paces Kinesis records per shard with a token bucket, so one producer does not run a
 * shard into throttling, and backs a shard off when Kinesis throttles it anyway.
 *
 * @module
 */

import { backoff, type BackoffPolicy } from "./_backoff.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
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
// Waking at least this far apart keeps a starved bucket from spinning the scheduler.
const MIN_WAKE_MS = 1;
// Refill arithmetic in floating point can land a hair short of a whole token.
const EPSILON = 1e-6;

/** Options for {@linkcode Limiter}. */
export interface LimiterOptions {
  /** Drives the drains. */
  scheduler: Scheduler;
  /** Percent of the shard limits a shard may be sent (the C++ `RateLimit`). */
  rateLimit: number;
  /** Jitter source in [0, 1). */
  random: () => number;
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
  /** Throttles in a row, for the backoff; a success resets it. */
  throttles = 0;
  blockedUntil = 0;
  /** Set while a drain runs, so a drain re-entered from a callback only asks for another pass. */
  draining = false;
  drainAgain = false;

  constructor(
    onDue: (limiter: ShardLimiter, now: number) => void,
    shard: Shard,
    now: number,
    recordCapacity: number,
    byteCapacity: number,
  ) {
    this.#onDue = onDue;
    this.shard = shard;
    this.deadline = new Deadline(this);
    // Full from the start, as in the C++ KPL: a new shard may burst.
    this.records = recordCapacity;
    this.bytes = byteCapacity;
    this.refilledAt = now;
  }

  get length(): number {
    return this.queue.length - this.head;
  }

  onDeadline(now: number): void {
    this.#onDue(this, now);
  }
}

/**
 * A per-shard token bucket with the C++ KPL's numbers: records (capacity 1000, refill
 * 1000 × rateLimit/100 per second) and bytes (capacity 10 MiB, refill 1 MiB ×
 * rateLimit/100 per second). A Kinesis record costs one record token and its size in byte
 * tokens. Queued records leave in deadline order, expired ones first; a record too big
 * for the byte bucket is admitted once the bucket is full instead of blocking its shard
 * forever. A throttle reported for a shard pauses it with exponential backoff and jitter,
 * and a success resets the backoff.
 */
export class Limiter {
  readonly #options: LimiterOptions;
  readonly #scheduler: Scheduler;
  readonly #shards = new Map<Shard, ShardLimiter>();
  /** What a shard's timer calls: one function for every shard. */
  readonly #drainDue = (limiter: ShardLimiter, now: number): void => this.#drain(limiter, now);
  readonly #recordRate: number;
  readonly #byteRate: number;
  readonly #recordCapacity = SHARD_RECORDS_PER_SECOND;
  readonly #byteCapacity = SHARD_BYTE_BURST;
  #queued = 0;

  /**
   * Creates a limiter.
   *
   * @param options The scheduler, the rate and the downstream callbacks.
   */
  constructor(options: LimiterOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
    this.#recordRate = (SHARD_RECORDS_PER_SECOND * options.rateLimit) / 100 / 1000;
    this.#byteRate = (SHARD_BYTES_PER_SECOND * options.rateLimit) / 100 / 1000;
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
    const shard = record.predictedShard!;
    const now = this.#scheduler.clock.now();
    const limiter = this.#shardLimiter(shard, now);
    enqueueByDeadline(limiter, record);
    this.#queued++;
    if (record.expiresAt < limiter.earliestExpiry) limiter.earliestExpiry = record.expiresAt;
    this.#drain(limiter, now);
  }

  /**
   * Pauses `shard` after Kinesis throttled it: the pause doubles on every throttle (with
   * jitter) up to 5 s.
   *
   * @param shard The shard Kinesis throttled.
   */
  throttled(shard: Shard): void {
    const now = this.#scheduler.clock.now();
    const limiter = this.#shardLimiter(shard, now);
    const pause = backoff(THROTTLE_BACKOFF, ++limiter.throttles, this.#options.random);
    limiter.blockedUntil = Math.max(limiter.blockedUntil, now + pause);
    // Drop what is left in the bucket: the shard told us it is full.
    limiter.records = 0;
    limiter.bytes = 0;
    limiter.refilledAt = now;
  }

  /**
   * Ends a shard's throttle backoff after a success.
   *
   * @param shard The shard a record was stored on.
   */
  succeeded(shard: Shard): void {
    const limiter = this.#shards.get(shard);
    if (limiter !== undefined) limiter.throttles = 0;
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

  #shardLimiter(shard: Shard, now: number): ShardLimiter {
    let limiter = this.#shards.get(shard);
    if (limiter === undefined) {
      limiter = new ShardLimiter(
        this.#drainDue,
        shard,
        now,
        this.#recordCapacity,
        this.#byteCapacity,
      );
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
    const recordWait = limiter.records >= 1 ? 0 : (1 - limiter.records) / this.#recordRate;
    const byteNeed = Math.min(head.data.length, this.#byteCapacity);
    const byteWait = limiter.bytes >= byteNeed ? 0 : (byteNeed - limiter.bytes) / this.#byteRate;
    const wake = now + Math.max(MIN_WAKE_MS, recordWait, byteWait);
    this.#scheduler.schedule(limiter.deadline, Math.min(wake, limiter.earliestExpiry));
  }

  #refill(limiter: ShardLimiter, now: number): void {
    const elapsed = now - limiter.refilledAt;
    if (elapsed <= 0) return;
    limiter.records = Math.min(this.#recordCapacity, limiter.records + elapsed * this.#recordRate);
    limiter.bytes = Math.min(this.#byteCapacity, limiter.bytes + elapsed * this.#byteRate);
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
