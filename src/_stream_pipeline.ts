// One stream's stages, wired in the one direction records flow: the shard map predicts,
// the aggregator packs per shard, the limiter paces per shard, the collector batches the
// stream's Kinesis records into PutRecords calls and hands each call on. It also keeps
// the stored records whose landing shard the map does not know yet, until the refresh
// that will tell. docs/architecture.md describes each stage.

import type { PendingRecord } from "./_pending_record.ts";
import { ShardGate } from "./_shard_gate.ts";
import { Aggregator } from "./aggregator.ts";
import { Collector } from "./collector.ts";
import { KinesisRecord } from "./kinesis_record.ts";
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
/** Room an aggregated record keeps for its partition key and framing within `maxRecordSize`. */
const AGGREGATE_OVERHEAD_BYTES = 1024;

/** What a stream's pipeline needs from the producer. */
export interface StreamPipelineOptions {
  readonly stream: string;
  readonly options: ResolvedProducerOptions;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  /** Lists the stream's shards (through the producer's client). */
  readonly listShards: ListShardsFunction;
  /** Receives each PutRecords call's Kinesis records. */
  send(stream: string, records: KinesisRecord[]): void;
  /** Receives Kinesis records whose earliest member expired while the limiter held them. */
  onExpired(record: KinesisRecord): void;
  /** Receives the parked landings once the map's refresh has ended, well or not. */
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
  /** Admitted records of this stream not yet settled. */
  pending = 0;
  /** Stored records waiting for the shard map to know the shard they landed on. */
  #landings: Landing[] = [];
  readonly #stored = (shard: Shard): void => this.#limiter.succeeded(shard);

  constructor(init: StreamPipelineOptions) {
    const { stream, options, scheduler } = init;
    this.name = stream;
    this.#onLandings = init.onLandings;
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
    // An aggregated record's data plus its partition key must fit in one Kinesis record.
    const maxSize = Math.min(
      options.aggregationMaxSize,
      options.maxRecordSize - AGGREGATE_OVERHEAD_BYTES,
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
        onExpired: (record) => init.onExpired(KinesisRecord.single(record)),
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
    verdict.forEachStoredShard(this.#stored);
    for (const shard of verdict.throttledShards) this.#limiter.throttled(shard, verdict.seenAt);
    for (const shard of verdict.mispredicted) this.shardMap.invalidate(verdict.seenAt, shard);
  }

  /**
   * Parks a landing until the refreshing map knows its shard.
   * @returns `false` when no refresh is running, so the landing must be decided now.
   */
  park(landing: Landing): boolean {
    if (this.shardMap.state !== "updating") return false;
    this.#landings.push(landing);
    return true;
  }

  #route(record: KinesisRecord): void {
    // A record aggregated without a prediction still shares one hash key, so once the map
    // has a snapshot it is paced by that key's shard like everything else.
    if (record.predictedShard === null) {
      record.predictedShard = this.shardMap.predict(record.records[0]!);
    }
    if (record.predictedShard === null) this.#collector.put(record);
    else this.#limiter.put(record);
  }

  #releaseLandings(): void {
    if (this.#landings.length === 0) return;
    const landings = this.#landings;
    this.#landings = [];
    this.#onLandings(this, landings);
  }

  #releaseUnpredicted(): void {
    if (this.#aggregator.releaseUnpredicted()) this.#collector.flush();
  }
}
