// One stream's stages, wired in the one direction records flow: the shard map predicts,
// the aggregator packs per shard, the limiter paces per shard, the collector batches the
// stream's Kinesis records into PutRecords calls and hands each call on. It also keeps
// the stored records whose landing shard the map does not know yet, until the refresh
// that will tell. docs/architecture.md describes each stage.

import type { BufferPool } from "./_buffer_pool.ts";
import type { PendingRecord } from "./_pending_record.ts";
import { ShardGate } from "./_shard_gate.ts";
import { Aggregator } from "./aggregator.ts";
import type { Clock } from "./clock.ts";
import { Collector } from "./collector.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import { Limiter, type ShardState } from "./limiter.ts";
import type { Logger } from "./logger.ts";
import type { ResolvedProducerOptions } from "./options.ts";
import type { Landing, Verdict } from "./retrier.ts";
import type { Scheduler } from "./scheduler.ts";
import { type ListShardsFunction, type Shard, ShardMap } from "./shard_map.ts";

/**
 * Records that arrive before a stream's first listing wait for it this long at most, so a
 * burst at start-up is aggregated by shard rather than sent key by key.
 */
const FIRST_LISTING_GRACE_MS = 1000;
/**
 * The collector's linger with aggregation on: the C++ KPL's min(50 ms, 0.2 ×
 * `recordMaxBufferedTimeMs`).
 */
const LINGER = { maxMs: 50, share: 0.2 } as const;
/** The record size every Kinesis stream takes: its default `MaxRecordSizeInKiB`, 1 MiB. */
const EVERY_STREAM_TAKES = 1024 * 1024;
/** Room an aggregated record keeps for its partition key and framing within `maxRecordSize`. */
const AGGREGATE_OVERHEAD_BYTES = 1024;

/** A stored record waiting for a listing that knows the shard it landed on. */
interface ParkedLanding {
  readonly landing: Landing;
  /**
   * The map's `listingsStarted` when it was parked: a listing started after that saw the
   * stream after the record was stored, so a shard it does not show cannot be learned.
   */
  readonly listingsBefore: number;
}

/** What a stream's pipeline needs from the producer. */
export interface StreamPipelineOptions {
  readonly stream: string;
  readonly options: ResolvedProducerOptions;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  /** Lists the stream's shards (through the producer's client). */
  readonly listShards: ListShardsFunction;
  /** Where aggregates are encoded, shared by the producer's streams. */
  readonly pool?: BufferPool | undefined;
  /** Receives each PutRecords call's Kinesis records. */
  send(stream: string, records: KinesisRecord[]): void;
  /** Receives Kinesis records whose earliest member expired while the limiter held them. */
  onExpired(record: KinesisRecord): void;
  /**
   * Receives parked landings once they can be decided: the map knows their shard, or a
   * listing started after they were parked did not show it, or their TTL has passed.
   */
  onLandings(pipeline: StreamPipeline, landings: Landing[]): void;
}

/** One stream's stages and the records on their way through them. */
export class StreamPipeline {
  readonly name: string;
  readonly shardMap: ShardMap;
  readonly #aggregator: Aggregator;
  readonly #limiter: Limiter;
  readonly #collector: Collector;
  /** With `preserveOrder`, what lets each shard's records in, one batch at a time. */
  readonly #gate: ShardGate | null;
  readonly #onLandings: StreamPipelineOptions["onLandings"];
  readonly #clock: Clock;
  /** Admitted records of this stream not yet settled. */
  pending = 0;
  /** Stored records waiting for the shard map to know the shard they landed on. */
  #landings: ParkedLanding[] = [];
  /** When the verdict being learnt from was read: one clock reading for all its records. */
  #learnedAt = 0;
  readonly #stored = (shard: Shard): void => this.#limiter.succeeded(shard, this.#learnedAt);

  constructor(init: StreamPipelineOptions) {
    const { stream, options, scheduler } = init;
    this.name = stream;
    this.#onLandings = init.onLandings;
    this.#clock = scheduler.clock;
    const shardMap = new ShardMap({
      stream,
      scheduler,
      requestTimeoutMs: options.requestTimeoutMs,
      logger: init.logger,
      listShards: init.listShards,
      onUpdate: () => {
        this.#releaseLandings();
        this.#aggregator.reroute();
        this.#releaseUnpredicted();
        this.#gate?.reroute();
      },
      onFailure: () => {
        this.#releaseLandings();
        this.#releaseUnpredicted();
      },
    });
    this.shardMap = shardMap;
    // An aggregated record's data plus its partition key must fit in one Kinesis record;
    // with each stream's own limit, in the 1 MiB every stream takes, so an aggregate is
    // never refused for a size none of its members has.
    const maxSize = Math.min(
      options.aggregationMaxSize,
      (options.recordSizeFromStream ? EVERY_STREAM_TAKES : options.maxRecordSize) -
        AGGREGATE_OVERHEAD_BYTES,
    );
    this.#aggregator = new Aggregator({
      scheduler,
      enabled: options.aggregationEnabled,
      maxCount: options.aggregationMaxCount,
      maxSize,
      predict: (record) => {
        const generation = shardMap.generation;
        if (record.predictAfterGeneration >= generation) return null;
        record.predictedGeneration = generation;
        return shardMap.predict(record);
      },
      onKinesisRecord: (record) => this.#route(record),
      pool: init.pool,
    });
    this.#limiter = new Limiter({
      scheduler,
      rateLimit: options.rateLimit,
      adaptive: options.adaptiveRate,
      random: options.random,
      onAdmit: (record) => this.#collector.put(record),
      onExpired: init.onExpired,
    });
    this.#collector = new Collector({
      scheduler,
      maxCount: options.collectionMaxCount,
      maxSize: options.collectionMaxSize,
      lingerMs: options.aggregationEnabled
        ? Math.min(LINGER.maxMs, LINGER.share * options.recordMaxBufferedTimeMs)
        : 0,
      onRequest: (records) => init.send(stream, records),
    });
    // The gate holds records until the map can predict them (docs/ordering.md), and the
    // aggregator gets each batch as one Kinesis record's worth, to close at once.
    this.#gate = options.preserveOrder
      ? new ShardGate({
        scheduler,
        maxCount: options.aggregationEnabled ? options.aggregationMaxCount : 1,
        maxSize,
        predict: (record) => shardMap.predict(record),
        onRelease: (records) => {
          for (const record of records) this.#aggregator.put(record);
          this.#aggregator.flush();
        },
        onExpired: init.onExpired,
      })
      : null;
    this.#aggregator.holdUnpredicted(scheduler.clock.now() + FIRST_LISTING_GRACE_MS);
    shardMap.start();
  }

  /** Takes a record in: on admission, and again on each retry. */
  put(record: PendingRecord): void {
    if (this.#gate === null) this.#aggregator.put(record);
    else this.#gate.put(record);
  }

  /** Counts a record of this stream out when it settles. */
  settled(record: PendingRecord): void {
    this.pending--;
    this.#gate?.settled(record);
  }

  /** Sends everything buffered now. */
  flush(): void {
    this.#gate?.flush();
    this.#aggregator.flush();
    this.#collector.flush();
  }

  /** What each shard's limiter looks like now. */
  shardStates(): ShardState[] {
    return this.#limiter.states();
  }

  /** Stops listing shards. */
  close(): void {
    this.shardMap.close();
  }

  /**
   * Applies what a call taught about the stream's shards: pacing per shard, and a map
   * refresh where a prediction was wrong.
   */
  learn(verdict: Verdict): void {
    this.#learnedAt = this.#clock.now();
    verdict.forEachStoredShard(this.#stored);
    for (const shard of verdict.throttledShards) this.#limiter.throttled(shard, verdict.seenAt);
    for (const shard of verdict.mispredicted) this.shardMap.invalidate(verdict.seenAt, shard);
  }

  /**
   * Parks a landing until a listing tells its shard's range, and asks for one. Whatever
   * the map's state, its snapshot may predate the landing shard (a listing that ended
   * after the call started, a running one that started before the split, or a failed
   * one), and judging the landing by it would send again records stored where they belong.
   */
  park(landing: Landing): void {
    this.#landings.push({ landing, listingsBefore: this.shardMap.listingsStarted });
    this.shardMap.refresh();
  }

  #route(record: KinesisRecord): void {
    // A record aggregated without a prediction still shares one hash key, so once the map
    // has a snapshot it is paced by that key's shard like everything else.
    if (record.predictedShard === null) {
      record.predictedShard = this.shardMap.predict(record.member(0));
    }
    if (record.predictedShard === null) this.#collector.put(record);
    else this.#limiter.put(record);
  }

  /** After each listing, well or not: hands on the landings that can now be decided. */
  #releaseLandings(): void {
    if (this.#landings.length === 0) return;
    const map = this.shardMap;
    const now = this.#clock.now();
    const decided: Landing[] = [];
    const waiting: ParkedLanding[] = [];
    for (const parked of this.#landings) {
      const { landing } = parked;
      // Past its TTL a record is decided on what the map knows: it fails rather than
      // waiting on listings that keep failing.
      const decidable = map.get(landing.shardId) !== undefined ||
        map.listedSince(parked.listingsBefore) || landing.record.expiresAt <= now;
      if (decidable) decided.push(landing);
      else waiting.push(parked);
    }
    this.#landings = waiting;
    // Listed before the landing: list again (a failed listing retries on its backoff).
    if (waiting.length > 0) map.refresh();
    if (decided.length > 0) this.#onLandings(this, decided);
  }

  #releaseUnpredicted(): void {
    if (this.#aggregator.releaseUnpredicted()) this.#collector.flush();
  }
}
