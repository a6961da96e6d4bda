/**
 * A deterministic simulation of a fleet of producers sharing one stream: every producer is a
 * real {@linkcode Producer}, every call goes to one {@linkcode InMemoryKinesis}, and all of them
 * run on one simulated clock that moves a millisecond at a time, so a minute of a
 * twenty-producer fleet takes seconds and the same seed gives the same run. Web APIs only.
 *
 * @example A small fleet for half a second
 * ```ts
 * import { runFleetSimulation } from "./fleet_sim.ts";
 *
 * const result = await runFleetSimulation({
 *   producers: 2,
 *   shards: 2,
 *   seconds: 0.5,
 *   recordBytes: 1000,
 *   offered: 0.5,
 *   measureFromSecond: 0,
 * });
 * console.log(result.records.lost); // 0
 * ```
 *
 * @module
 */

import type { Clock, TimerHandle } from "../src/clock.ts";
import { silentLogger } from "../src/logger.ts";
import type { ProducerOptions } from "../src/options.ts";
import { Producer } from "../src/producer.ts";
import type { RecordResult } from "../src/record.ts";
import type { KinesisClient, PutRecordsResultEntry } from "../src/kinesis_client.ts";
import {
  InMemoryKinesis,
  MODEL_BYTES_PER_SECOND,
  type ModelSecond,
  THROTTLED,
} from "./kinesis_model.ts";

/** A clock for simulations: time moves only in {@linkcode SimulatedClock.run}. */
export class SimulatedClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  /** @param start The first reading, epoch milliseconds. */
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  /** The simulated time. */
  now(): number {
    return this.#now;
  }

  /** Arms a timer on simulated time. */
  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, delayMs), callback });
    return id;
  }

  /** Disarms a timer. */
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Nothing to do: simulated timers never hold a process. */
  setPersistent(): void {}

  /**
   * Moves time forward one millisecond at a time for `ms` milliseconds; at every step it
   * calls `onTick`, fires the timers that came due (in due order) and lets promise
   * callbacks run.
   *
   * @param ms How long to run.
   * @param onTick Called at every step before the timers, with the time.
   */
  async run(ms: number, onTick?: (now: number) => void): Promise<void> {
    const end = this.#now + ms;
    while (this.#now < end) {
      this.#now++;
      onTick?.(this.#now);
      await settle();
      // Timers armed for "now" by the callbacks run in the same step, a bounded number
      // of rounds.
      for (let round = 0; round < 16; round++) {
        const due = [...this.#timers].filter(([, timer]) => timer.at <= this.#now)
          .sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
        if (due.length === 0) break;
        for (const [id, timer] of due) {
          if (!this.#timers.delete(id)) continue;
          timer.callback();
        }
        await settle();
      }
    }
  }
}

async function settle(turns = 12): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** A seeded random source (mulberry32), so a simulation replays exactly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options for {@linkcode runFleetSimulation}. */
export interface FleetSimulationOptions {
  /** How many producers. */
  producers: number;
  /** How many shards the one stream has. */
  shards: number;
  /** Simulated seconds of offered load; the run then drains. */
  seconds: number;
  /** Bytes of data per user record (the partition key adds about 10). */
  recordBytes: number;
  /** Offered load of the whole fleet, in multiples of the stream's byte capacity. */
  offered: number;
  /** The first whole second the summary counts. @default {3} */
  measureFromSecond?: number;
  /** Round-trip time of a call to the model. @default {20} */
  latencyMs?: number;
  /** Seed of every random source. @default {1} */
  seed?: number;
  /** Producers `1 .. count-1`... stop offering and close at `atSecond`. */
  stop?: { producers: number; atSecond: number };
  /**
   * Share of entries answered `ProvisionedThroughputExceededException` at random, whatever
   * the load, before the model sees them: a fault injector's throttles, which no rate
   * causes. @default {0}
   */
  randomThrottle?: number;
  /** Options every producer gets (for example `adaptiveRate: false`). */
  producerOptions?: Partial<ProducerOptions>;
}

/** What a simulated (or real) fleet run measured. */
export interface FleetSummary {
  /** Accepted bytes over the measured seconds, as a share of the stream's byte capacity. */
  goodput: number;
  /** Throttled entries over all entries sent in the measured seconds. */
  throttledShare: number;
  /** Each producer's share of the accepted bytes in the measured seconds. */
  producerShares: number[];
  /** Put-to-settled latency of the records admitted in the measured seconds, ms. */
  latencyP50Ms: number;
  /** The same, 99th percentile. */
  latencyP99Ms: number;
}

/** The result of {@linkcode runFleetSimulation}. */
export interface FleetSimulationResult extends FleetSummary {
  /** The model's per-second counters, for charts. */
  seconds: ModelSecond[];
  /** What happened to the records. */
  records: {
    admitted: number;
    succeeded: number;
    failed: number;
    /** Admitted records that never settled: must be 0. */
    lost: number;
    /** Results delivered twice: must be 0. */
    settledTwice: number;
    /** User records the model stored (from its per-second counters). */
    stored: number;
    /** Failure codes and their counts. */
    failures: Record<string, number>;
  };
}

/**
 * Runs a fleet of producers against one model on simulated time and summarises it.
 *
 * @param options The fleet, the load and the switches.
 * @returns The summary, per-second counters and the record accounting.
 */
export async function runFleetSimulation(
  options: FleetSimulationOptions,
): Promise<FleetSimulationResult> {
  const clock = new SimulatedClock(0);
  const stream = "fleet";
  const model = new InMemoryKinesis({
    clock,
    streams: { [stream]: options.shards },
    latencyMs: options.latencyMs ?? 20,
    latencyJitter: 0.5,
    random: seededRandom(options.seed ?? 1),
    keepRecords: false,
  });
  const seed = options.seed ?? 1;
  const measureFrom = (options.measureFromSecond ?? 3) * 1000;
  const producers = Array.from({ length: options.producers }, (_, i) =>
    new Producer({
      stream,
      kinesisClient: randomlyThrottled(
        model.client(`p${i}`),
        options.randomThrottle ?? 0,
        seededRandom(seed * 7919 + i),
      ),
      clock,
      random: seededRandom(seed * 1000 + i),
      logger: silentLogger,
      recordTtlMs: 120_000,
      ...options.producerOptions,
    }));
  const data = new Uint8Array(options.recordBytes);
  const perProducerPerMs = (options.offered * options.shards * MODEL_BYTES_PER_SECOND) /
    (options.recordBytes + 10) / options.producers / 1000;
  const owed = new Array<number>(options.producers).fill(0);
  const sent = new Array<number>(options.producers).fill(0);
  const stopped = new Array<boolean>(options.producers).fill(false);
  const latencies: number[] = [];
  const counts = { admitted: 0, succeeded: 0, failed: 0, settledTwice: 0 };
  const failures: Record<string, number> = {};
  const closing: Promise<void>[] = [];
  const onTick = (now: number) => {
    for (let i = 0; i < producers.length; i++) {
      if (stopped[i]) continue;
      owed[i]! += perProducerPerMs;
      while (owed[i]! >= 1) {
        owed[i]!--;
        const key = `p${i}-${sent[i]!++}`;
        const receipt = producers[i]!.tryPut({ partitionKey: key, data });
        if (receipt === undefined) break;
        counts.admitted++;
        const admittedAt = now;
        let settled = false;
        receipt.result.then((result: RecordResult) => {
          if (settled) counts.settledTwice++;
          settled = true;
          if (result.success) counts.succeeded++;
          else {
            counts.failed++;
            failures[result.errorCode ?? "?"] = (failures[result.errorCode ?? "?"] ?? 0) + 1;
          }
          if (admittedAt >= measureFrom) latencies.push(clock.now() - admittedAt);
        });
      }
    }
  };
  const stop = options.stop;
  if (stop !== undefined) {
    await clock.run(stop.atSecond * 1000, onTick);
    for (let i = 1; i <= stop.producers; i++) {
      stopped[i] = true;
      closing.push(producers[i]!.close({ timeoutMs: 500 }));
    }
    await clock.run(options.seconds * 1000 - stop.atSecond * 1000, onTick);
  } else {
    await clock.run(options.seconds * 1000, onTick);
  }
  const end = options.seconds;
  for (let i = 0; i < producers.length; i++) {
    if (!stopped[i]) closing.push(producers[i]!.close({ timeoutMs: 60_000 }));
  }
  const done = Promise.all(closing);
  let finished = false;
  done.then(() => finished = true);
  for (let step = 0; step < 120 && !finished; step++) await clock.run(1000);
  await done;
  const seconds = model.seconds();
  const summary = summarize(seconds, {
    fromSecond: options.measureFromSecond ?? 3,
    toSecond: end,
    shards: options.shards,
    producers: producers.map((_, i) => `p${i}`),
    latencies,
  });
  let stored = 0;
  for (const second of seconds) {
    for (const shard of Object.values(second.shards)) stored += shard.userRecords;
  }
  return {
    ...summary,
    seconds,
    records: {
      ...counts,
      lost: counts.admitted - counts.succeeded - counts.failed,
      stored,
      failures,
    },
  };
}

/** `client`, with `share` of the entries of each PutRecords throttled at random. */
function randomlyThrottled(
  client: KinesisClient,
  share: number,
  random: () => number,
): KinesisClient {
  if (share <= 0) return client;
  return {
    listShards: client.listShards,
    async putRecords(input, options) {
      const passed: number[] = [];
      for (let i = 0; i < input.Records.length; i++) if (random() >= share) passed.push(i);
      // Kinesis refuses a request of no records, so one throttled whole is not sent.
      const output = passed.length === 0
        ? { FailedRecordCount: 0, Records: [] }
        : await client.putRecords(
          { ...input, Records: passed.map((i) => input.Records[i]!) },
          options,
        );
      const records: PutRecordsResultEntry[] = input.Records.map(() => ({
        ErrorCode: THROTTLED,
        ErrorMessage: "Rate exceeded (thrown at random by the simulation).",
      }));
      passed.forEach((i, j) => records[i] = output.Records![j]!);
      const failed = records.filter((record) => record.ErrorCode !== undefined).length;
      return { ...output, Records: records, FailedRecordCount: failed };
    },
  };
}

/** What {@linkcode summarize} needs besides the counters. */
export interface SummaryWindow {
  /** First whole second counted. */
  fromSecond: number;
  /** First whole second not counted. */
  toSecond: number;
  /** Shards of the stream (capacity). */
  shards: number;
  /** Producer ids, in the order of `producerShares`. */
  producers: string[];
  /** Put-to-settled latencies, ms. */
  latencies: number[];
}

/**
 * Reduces per-second counters to goodput, throttled share, producer shares and latency.
 *
 * @param seconds The model's counters.
 * @param window Which seconds count, the capacity and the latencies.
 * @returns The summary.
 */
export function summarize(seconds: ModelSecond[], window: SummaryWindow): FleetSummary {
  let accepted = 0;
  let entries = 0;
  let throttled = 0;
  const byProducer = new Map<string, number>();
  const counted = seconds.slice(window.fromSecond, window.toSecond);
  for (const second of counted) {
    for (const [id, counts] of Object.entries(second.producers)) {
      accepted += counts.bytes;
      entries += counts.entries + counts.throttled;
      throttled += counts.throttled;
      byProducer.set(id, (byProducer.get(id) ?? 0) + counts.bytes);
    }
  }
  const capacity = window.shards * MODEL_BYTES_PER_SECOND * Math.max(1, counted.length);
  const sorted = [...window.latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    goodput: accepted / capacity,
    throttledShare: entries === 0 ? 0 : throttled / entries,
    producerShares: window.producers.map((id) => (byProducer.get(id) ?? 0) / Math.max(1, accepted)),
    latencyP50Ms: at(0.5),
    latencyP99Ms: at(0.99),
  };
}
