// One metric series (a name plus the dimensions kept for it) and its two accumulators:
//
// - a ring of 60 one-second buckets for the in-process rolling window (`snapshot()`),
//   which exports never touch;
// - the samples not yet handed to a sink: `current` for the second being filled and
//   `pending` for completed seconds. An export takes `pending` (plus `current` when it
//   covers the partial second) and resets them, so a sample is exported exactly once
//   whatever the upload interval, with memory that does not grow with it.

import type { MetricDefinition } from "./_metric_catalog.ts";
import type { MetricDimensions } from "./metrics_sink.ts";

/** How many one-second buckets the rolling window holds. */
export const WINDOW_SECONDS = 60;

// Ring layout: five numbers per bucket, in one typed array so a series is two objects
// rather than sixty, and a put touches no heap object but the series itself.
const SECOND = 0;
const COUNT = 1;
const SUM = 2;
const MIN = 3;
const MAX = 4;
const STRIDE = 5;

/** Count, sum, min and max of a set of samples. */
export interface Stats {
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** A series: what a registry key points to. */
export class MetricSeries {
  readonly definition: MetricDefinition;
  readonly stream: string | undefined;
  readonly shard: string | undefined;
  readonly errorCode: string | undefined;
  /** Frozen, shared by every snapshot and event of the series. */
  readonly dimensions: MetricDimensions;
  /** The `snapshot()` key, built once. */
  readonly key: string;

  readonly #ring = new Float64Array(WINDOW_SECONDS * STRIDE).fill(-1);

  /** The second the latest sample fell in (epoch seconds). */
  currentSecond = -1;
  #currentCount = 0;
  #currentSum = 0;
  #currentMin = Infinity;
  #currentMax = -Infinity;

  #pendingCount = 0;
  #pendingSum = 0;
  #pendingMin = Infinity;
  #pendingMax = -Infinity;

  constructor(
    definition: MetricDefinition,
    stream: string | undefined,
    shard: string | undefined,
    errorCode: string | undefined,
  ) {
    this.definition = definition;
    this.stream = stream;
    this.shard = shard;
    this.errorCode = errorCode;
    const dimensions: { stream?: string; shard?: string; error_code?: string } = {};
    const parts: string[] = [];
    if (stream !== undefined) {
      dimensions.stream = stream;
      parts.push(`stream=${stream}`);
    }
    if (shard !== undefined) {
      dimensions.shard = shard;
      parts.push(`shard=${shard}`);
    }
    if (errorCode !== undefined) {
      dimensions.error_code = errorCode;
      parts.push(`error_code=${errorCode}`);
    }
    this.dimensions = Object.freeze(dimensions);
    this.key = parts.length === 0 ? definition.name : `${definition.name}{${parts.join(",")}}`;
  }

  /** Adds one sample taken during epoch second `second`. */
  add(second: number, value: number): void {
    const ring = this.#ring;
    const at = (second % WINDOW_SECONDS) * STRIDE;
    if (ring[at + SECOND] !== second) {
      // The slot held a second at least a minute old: outside the rolling window, and
      // exports never read the ring, so overwriting it loses nothing.
      ring[at + SECOND] = second;
      ring[at + COUNT] = 1;
      ring[at + SUM] = value;
      ring[at + MIN] = value;
      ring[at + MAX] = value;
    } else {
      ring[at + COUNT]!++;
      ring[at + SUM]! += value;
      if (value < ring[at + MIN]!) ring[at + MIN] = value;
      if (value > ring[at + MAX]!) ring[at + MAX] = value;
    }

    if (second !== this.currentSecond) {
      this.#completeCurrent();
      this.currentSecond = second;
    }
    this.#currentCount++;
    this.#currentSum += value;
    if (value < this.#currentMin) this.#currentMin = value;
    if (value > this.#currentMax) this.#currentMax = value;
  }

  /**
   * Adds the rolling window ending with epoch second `nowSecond` (inclusive, so the
   * partial current second counts) to `into`.
   */
  addWindow(nowSecond: number, into: Stats): void {
    const ring = this.#ring;
    const oldest = nowSecond - WINDOW_SECONDS;
    for (let at = 0; at < ring.length; at += STRIDE) {
      const second = ring[at + SECOND]!;
      if (second <= oldest || second > nowSecond) continue;
      into.count += ring[at + COUNT]!;
      into.sum += ring[at + SUM]!;
      if (ring[at + MIN]! < into.min) into.min = ring[at + MIN]!;
      if (ring[at + MAX]! > into.max) into.max = ring[at + MAX]!;
    }
  }

  /**
   * Moves every unexported sample taken before epoch second `endSecond` into `into` and
   * forgets it, so no later export sees it again. `Infinity` takes the partial current
   * second too.
   *
   * @returns Whether any sample was taken.
   */
  takeUnexported(endSecond: number, into: Stats): boolean {
    if (this.currentSecond < endSecond) this.#completeCurrent();
    if (this.#pendingCount === 0) return false;
    into.count = this.#pendingCount;
    into.sum = this.#pendingSum;
    into.min = this.#pendingMin;
    into.max = this.#pendingMax;
    this.#pendingCount = 0;
    this.#pendingSum = 0;
    this.#pendingMin = Infinity;
    this.#pendingMax = -Infinity;
    return true;
  }

  /** Whether the series holds no unexported sample and nothing in the window. */
  isIdle(nowSecond: number): boolean {
    return this.#pendingCount === 0 && this.#currentCount === 0 &&
      this.currentSecond <= nowSecond - WINDOW_SECONDS;
  }

  #completeCurrent(): void {
    if (this.#currentCount === 0) return;
    this.#pendingCount += this.#currentCount;
    this.#pendingSum += this.#currentSum;
    if (this.#currentMin < this.#pendingMin) this.#pendingMin = this.#currentMin;
    if (this.#currentMax > this.#pendingMax) this.#pendingMax = this.#currentMax;
    this.#currentCount = 0;
    this.#currentSum = 0;
    this.#currentMin = Infinity;
    this.#currentMax = -Infinity;
  }
}
