/**
 * The local picture of a stream's open shards, so the producer can predict a record's
 * shard from its hash key before it asks Kinesis.
 *
 * @module
 */

import { backoffCeiling, type BackoffPolicy } from "./_backoff.ts";
import { compareHashKeys, type HashKey, hashKeyFromDecimal } from "./hash_key.ts";
import type { ListShardsInput, ListShardsOutput } from "./kinesis_client.ts";
import { type DescribedError, describeError } from "./kinesis_client.ts";
import { classifyErrorCode } from "./error_codes.ts";
import { streamTarget } from "./_stream_ref.ts";
import type { Logger } from "./logger.ts";
import { Deadline, type Scheduler } from "./scheduler.ts";

/** One shard and its inclusive hash key range. */
export class Shard {
  /** `shardId-000000000000`. */
  readonly id: string;
  /** First hash key of the range. */
  readonly start: HashKey;
  /** Last hash key of the range. */
  readonly end: HashKey;
  /** When the shard left the open set (clock ms), or `undefined` while open. */
  closedAt: number | undefined = undefined;

  /**
   * Creates a shard.
   *
   * @param id The shard id.
   * @param start First hash key of the range.
   * @param end Last hash key of the range.
   */
  constructor(id: string, start: HashKey, end: HashKey) {
    this.id = id;
    this.start = start;
    this.end = end;
  }

  /**
   * Whether `key` lies in this shard's range.
   *
   * @param key A hash key.
   * @returns `true` when `start ≤ key ≤ end`.
   */
  holds(key: HashKey): boolean {
    return compareHashKeys(this.start, key) <= 0 && compareHashKeys(key, this.end) <= 0;
  }
}

/** The life cycle of a shard map. */
export type ShardMapState = "invalid" | "updating" | "ready";

/** Lists one page of shards. */
export type ListShardsFunction = (
  input: ListShardsInput,
  options: { signal: AbortSignal },
) => Promise<ListShardsOutput>;

/** Options for {@linkcode ShardMap}. */
export interface ShardMapOptions {
  /** The stream whose shards are mapped. */
  stream: string;
  /** The ListShards call. */
  listShards: ListShardsFunction;
  /** Drives the retry backoff and the closed-shard cleanup. */
  scheduler: Scheduler;
  /** Where listing failures are reported. */
  logger: Logger;
  /** Called after every successful listing. */
  onUpdate?: () => void;
  /** Called after every failed listing. */
  onFailure?: () => void;
  /** First retry delay after a failed listing. @default {1000} */
  minBackoffMs?: number;
  /** Longest retry delay. @default {30000} */
  maxBackoffMs?: number;
  /** How long a closed shard's range stays known. @default {60000} */
  closedShardTtlMs?: number;
  /** ListShards page size. @default {1000} */
  pageSize?: number;
  /** How long one listing (all its pages) may take before it is aborted. @default {6000} */
  requestTimeoutMs?: number;
}

/** A listing that arrived but cannot be used. */
class InvalidListingError extends Error {
  override name = "InvalidListing";
}

const LISTING_TIMEOUT = Object.assign(new Error("ListShards did not answer in time"), {
  name: "RequestTimeout",
});
// A stream has at most tens of thousands of shards; this bound only stops a service that
// keeps returning NextToken forever.
const MAX_PAGES = 1000;

/**
 * Predicts shards for one stream from a ListShards snapshot.
 *
 * States go INVALID → UPDATING → READY. The map keeps answering from its previous
 * snapshot while it refreshes, retries failed listings with backoff (1 s ×1.5 up to
 * 30 s), and remembers closed shards' ranges for a minute so the retrier can tell a split
 * child from a misroute.
 */
export class ShardMap {
  readonly #options: ShardMapOptions;
  readonly #scheduler: Scheduler;
  readonly #retry: Deadline;
  readonly #cleanup: Deadline;
  readonly #timeout: Deadline;
  #state: ShardMapState = "invalid";
  /** Open shards sorted by ending hash key. */
  #open: Shard[] = [];
  #byId = new Map<string, Shard>();
  #updatedAt = -Infinity;
  #generation = 0;
  /** Listings started so far; the running one, if any, is the last. */
  #listingsStarted = 0;
  /** The number (1-based) of the listing the snapshot comes from, or 0. */
  #snapshotListing = 0;
  /** How listings keep failing: 1 s growing ×1.5 up to 30 s unless configured. */
  readonly #backoff: BackoffPolicy;
  /** Failed listings in a row. */
  #failures = 0;
  #lastError: DescribedError | undefined;
  #abort: AbortController | undefined;
  #closed = false;

  /**
   * Creates a map; call {@linkcode ShardMap.start} to list shards.
   *
   * @param options The stream, the ListShards call and the scheduler.
   */
  constructor(options: ShardMapOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
    this.#backoff = {
      firstMs: options.minBackoffMs ?? 1000,
      maxMs: options.maxBackoffMs ?? 30_000,
      factor: 1.5,
    };
    this.#retry = new Deadline({ onDeadline: () => this.#refresh() });
    this.#cleanup = new Deadline({ onDeadline: (now) => this.#dropClosed(now) });
    this.#timeout = new Deadline({ onDeadline: () => this.#abort?.abort(LISTING_TIMEOUT) });
  }

  /** The map's state. */
  get state(): ShardMapState {
    return this.#state;
  }

  /** Clock time of the last successful listing, or `-Infinity`. */
  get updatedAt(): number {
    return this.#updatedAt;
  }

  /** Counts successful listings; a record predicted under generation g is stale after. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Listings started so far. A snapshot from a listing numbered above a value read at
   * some moment saw the stream as it was after that moment (see
   * {@linkcode ShardMap.listedSince}).
   */
  get listingsStarted(): number {
    return this.#listingsStarted;
  }

  /**
   * Whether the snapshot comes from a listing started after `listingsStarted` read `mark`,
   * so it shows every shard that was open by then.
   *
   * @param mark A value of {@linkcode ShardMap.listingsStarted}.
   * @returns `true` when the snapshot is that recent.
   */
  listedSince(mark: number): boolean {
    return this.#snapshotListing > mark;
  }

  /** The error of the last failed listing, if the last listing failed. */
  get lastError(): DescribedError | undefined {
    return this.#lastError;
  }

  /** The open shards, sorted by hash range. */
  get openShards(): readonly Shard[] {
    return this.#open;
  }

  /** Starts the first listing. */
  start(): void {
    if (this.#state === "invalid" && this.#abort === undefined) this.#refresh();
  }

  /**
   * The open shard whose range holds `key`, from the latest snapshot.
   *
   * @param key A hash key.
   * @returns The shard, or `null` when there is no snapshot or no range holds the key.
   */
  predict(key: HashKey): Shard | null {
    const open = this.#open;
    let low = 0;
    let high = open.length - 1;
    if (high < 0) return null;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareHashKeys(open[mid]!.end, key) < 0) low = mid + 1;
      else high = mid;
    }
    const shard = open[low]!;
    return compareHashKeys(key, shard.end) <= 0 ? shard : null;
  }

  /**
   * Looks up a shard by id, open or recently closed.
   *
   * @param id The shard id.
   * @returns The shard, or `undefined` when the map does not know it.
   */
  get(id: string): Shard | undefined {
    return this.#byId.get(id);
  }

  /**
   * Asks for a refresh after a misprediction. It happens only when the map is READY,
   * `seenAt` (the start of the request that showed the misprediction) is after the last
   * listing, and the predicted shard is still open, so requests already in flight from
   * before a refresh do not trigger another.
   *
   * @param seenAt Start time of the request that showed the misprediction.
   * @param predicted The shard the record was predicted to, if any.
   * @returns Whether a listing is running after the call.
   */
  invalidate(seenAt: number, predicted: Shard | null): boolean {
    if (
      !this.#closed && this.#state === "ready" && seenAt > this.#updatedAt &&
      (predicted === null ||
        (predicted.closedAt === undefined && this.#byId.get(predicted.id) === predicted))
    ) {
      this.#refresh();
    }
    return this.#abort !== undefined;
  }

  /**
   * Lists the shards again now, whatever the last listing showed, unless a listing is
   * running or a failed one waits for its backoff: a record stored on a shard the map
   * does not know needs a listing that started after it was stored.
   */
  refresh(): void {
    if (this.#state === "ready") this.#refresh();
  }

  /** Stops listing and cancels timers. */
  close(): void {
    this.#closed = true;
    this.#abort?.abort();
    this.#scheduler.cancel(this.#retry);
    this.#scheduler.cancel(this.#cleanup);
    this.#scheduler.cancel(this.#timeout);
  }

  #refresh(): void {
    if (this.#closed || this.#abort !== undefined) return;
    this.#scheduler.cancel(this.#retry);
    this.#state = "updating";
    const abort = new AbortController();
    this.#abort = abort;
    const listing = ++this.#listingsStarted;
    this.#scheduler.schedule(
      this.#timeout,
      this.#scheduler.clock.now() + (this.#options.requestTimeoutMs ?? 6000),
    );
    this.#list(abort.signal).then(
      (shards) => {
        this.#abort = undefined;
        this.#scheduler.cancel(this.#timeout);
        if (!this.#closed) this.#install(shards, listing);
      },
      (error: unknown) => {
        this.#abort = undefined;
        this.#scheduler.cancel(this.#timeout);
        if (this.#closed) return;
        this.#fail(abort.signal.reason === LISTING_TIMEOUT ? LISTING_TIMEOUT : error);
      },
    );
  }

  async #list(signal: AbortSignal): Promise<Shard[]> {
    const { stream, listShards } = this.#options;
    const pageSize = this.#options.pageSize ?? 1000;
    const shards: Shard[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      // Later pages carry only the token: the service rejects a stream name with it.
      const input: ListShardsInput = token === undefined
        ? { ...streamTarget(stream), MaxResults: pageSize, ShardFilter: { Type: "AT_LATEST" } }
        : { NextToken: token };
      const output = await listShards(input, { signal });
      for (const listed of output.Shards ?? []) {
        // AT_LATEST already leaves closed shards out; an emulator that ignores the
        // filter marks them with an ending sequence number.
        if (listed.SequenceNumberRange?.EndingSequenceNumber !== undefined) continue;
        const id = listed.ShardId;
        const range = listed.HashKeyRange;
        if (id === undefined || range?.StartingHashKey === undefined) {
          throw new InvalidListingError(`ListShards returned a shard without an id or hash range`);
        }
        if (range.EndingHashKey === undefined) {
          throw new InvalidListingError(
            `ListShards returned shard '${id}' without an ending hash key`,
          );
        }
        const start = parseRangeKey(id, range.StartingHashKey);
        const end = parseRangeKey(id, range.EndingHashKey);
        if (compareHashKeys(start, end) > 0) {
          throw new InvalidListingError(
            `ListShards returned shard '${id}' with an inverted hash range`,
          );
        }
        shards.push(new Shard(id, start, end));
      }
      token = output.NextToken ?? undefined;
      if (token === undefined || token === "") return shards;
    }
    throw new InvalidListingError(`ListShards returned more than ${MAX_PAGES} pages`);
  }

  #install(listed: Shard[], listing: number): void {
    if (listed.length === 0) {
      this.#fail(
        new InvalidListingError(`ListShards returned no open shards for '${this.#options.stream}'`),
      );
      return;
    }
    const now = this.#scheduler.clock.now();
    const byId = new Map<string, Shard>();
    for (const shard of listed) {
      // Keep the previous object for an unchanged shard: limiters and metrics key on it.
      const previous = this.#byId.get(shard.id);
      const kept = previous !== undefined && previous.closedAt === undefined &&
          compareHashKeys(previous.start, shard.start) === 0 &&
          compareHashKeys(previous.end, shard.end) === 0
        ? previous
        : shard;
      byId.set(kept.id, kept);
    }
    const ttl = this.#options.closedShardTtlMs ?? 60_000;
    let nextCleanup = Infinity;
    for (const [id, shard] of this.#byId) {
      if (byId.has(id)) continue;
      shard.closedAt ??= now;
      if (shard.closedAt + ttl > now) {
        byId.set(id, shard);
        nextCleanup = Math.min(nextCleanup, shard.closedAt + ttl);
      }
    }
    const open = [...byId.values()].filter((shard) => shard.closedAt === undefined);
    open.sort((a, b) => compareHashKeys(a.end, b.end));
    this.#open = open;
    this.#byId = byId;
    this.#updatedAt = now;
    this.#generation++;
    this.#snapshotListing = listing;
    this.#state = "ready";
    this.#lastError = undefined;
    this.#failures = 0;
    if (nextCleanup < Infinity) this.#scheduler.schedule(this.#cleanup, nextCleanup);
    this.#options.onUpdate?.();
  }

  #fail(error: unknown): void {
    const described = error instanceof InvalidListingError
      ? { code: error.name, message: error.message }
      : describeError(error, false);
    const repeated = this.#lastError?.code === described.code;
    this.#lastError = described;
    this.#state = "invalid";
    // Without jitter, as the listing backoff has always been (tests/shard_map_test.ts).
    const delay = backoffCeiling(this.#backoff, ++this.#failures);
    if (classifyErrorCode(described.code) !== "permanent") {
      this.#options.logger.warn(
        `Listing the shards of '${this.#options.stream}' failed (${described.code}: ${described.message}); retrying in ${delay} ms`,
      );
    } else if (!repeated) {
      // Retrying cannot fix it and the stream's records fail at once with the same code;
      // the map still lists again now and then, quietly, in case the stream appears.
      this.#options.logger.warn(
        `Listing the shards of '${this.#options.stream}' failed (${described.code}: ${described.message}); its records fail with ${described.code}`,
      );
    }
    this.#scheduler.schedule(this.#retry, this.#scheduler.clock.now() + delay);
    this.#options.onFailure?.();
  }

  #dropClosed(now: number): void {
    const ttl = this.#options.closedShardTtlMs ?? 60_000;
    let nextCleanup = Infinity;
    for (const [id, shard] of this.#byId) {
      if (shard.closedAt === undefined) continue;
      if (shard.closedAt + ttl <= now) this.#byId.delete(id);
      else nextCleanup = Math.min(nextCleanup, shard.closedAt + ttl);
    }
    if (nextCleanup < Infinity) this.#scheduler.schedule(this.#cleanup, nextCleanup);
  }
}

function parseRangeKey(id: string, text: string): HashKey {
  try {
    return hashKeyFromDecimal(text);
  } catch {
    throw new InvalidListingError(`ListShards returned shard '${id}' with a malformed hash key`);
  }
}
