/**
 * One measurement of the end-to-end benchmark, in a fresh process so that its CPU time and
 * peak RSS are its own: `bench/e2e.ts` starts it with a {@linkcode RunSpec} as JSON in
 * argv and reads one `RESULT {...}` line from its stdout.
 *
 * Two modes. `throughput`: after a warm-up, put `records` records as fast as the variant
 * takes them and time the first put to the last settlement (webkpl) or the last response
 * (the SDK variants). `latency`: offer `rate` records per second, paced by a timer loop
 * on the real clock, and time each record from its put to its settlement.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { Producer } from "../mod.ts";
import type { RecordResult, UserRecord } from "../mod.ts";
import {
  AggSdkSender,
  FairLoop,
  type PeerOptions,
  type PeerSender,
  PlainSdkSender,
} from "./_e2e_peers.ts";
import { type Floor, measureFloor } from "./_e2e_floor.ts";
import { type Md5Rate, measureMd5 } from "./md5_rate.ts";

/** The variants, in the order the harness runs them. */
export type Variant =
  | "webkpl-put"
  | "webkpl-put-sdk"
  | "webkpl-pipeto"
  | "fair"
  | "agg-sdk"
  | "sdk-plain"
  | "floor";

/** What one worker measures. */
export interface RunSpec {
  variant: Variant;
  mode: "throughput" | "latency";
  endpoint: string;
  stream: string;
  recordBytes: number;
  aggregation: boolean;
  keys: number;
  /** Records timed (throughput mode). */
  records: number;
  /** Records put and settled before timing starts. */
  warmup: number;
  /** Offered records per second (latency mode). */
  rate: number;
  /** How long the offered rate is held (latency mode). */
  seconds: number;
  /** In-flight PutRecords calls, for every variant (webkpl's default is 24). */
  maxInFlight: number;
  /** webkpl's `recordMaxBufferedTimeMs`; the SDK variants flush on the same deadline. */
  bufferedTimeMs: number;
  /** Extra producer options, e.g. a transport under evaluation. */
  producerOptions?: Record<string, unknown>;
}

/** What one worker reports. */
export interface RunResult {
  variant: Variant;
  mode: RunSpec["mode"];
  /** Set when the variant ran as a stand-in, e.g. while `producer.writable` does not exist. */
  note?: string;
  records: number;
  elapsedMs: number;
  recordsPerSec: number;
  /** Record data (without keys), 10^6 bytes per second. */
  mbPerSec: number;
  /** Process CPU (user + system) during the timed phase, per record. */
  cpuUsPerRecord: number;
  /** The process' peak RSS (VmHWM), MiB. */
  peakRssMiB: number;
  /** RSS when timing started (runtime, SDK, warm-up), MiB. */
  startRssMiB: number;
  /** Most webkpl records outstanding at once (webkpl only). */
  maxOutstanding?: number;
  /** Records that failed (webkpl: results; SDK: FailedRecordCount and failed calls). */
  failed: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  /** The floor's parts (variant `floor`, whose `cpuUsPerRecord` is their sum). */
  floor?: Floor;
  /** webkpl's MD5 against node:crypto's, measured in the `floor` worker. */
  md5?: Md5Rate[];
}

const CREDENTIALS = { accessKeyId: "AKIDBENCH", secretAccessKey: "bench-secret" };
const REGION = "us-east-1";
const POOL_BYTES = 1 << 16;

/**
 * Makes the workload: record `i` has partition key `i mod keys` and its own bytes. The
 * bytes are views into fresh 64 KiB chunks, each a copy of a fixed pseudo-random pool, as
 * records cut out of incoming network buffers would be: every record's payload is memory
 * of its own (so RSS is honest) without one ArrayBuffer allocation per record, which
 * would cost every variant the same and mostly measure the allocator.
 */
class Workload {
  readonly #keys: string[];
  readonly #pool: Uint8Array;
  readonly #bytes: number;
  #chunk: Uint8Array = new Uint8Array(0);
  #offset = 0;

  constructor(keys: number, bytes: number) {
    this.#keys = Array.from({ length: keys }, (_, i) => `user-${i.toString(36).padStart(4, "0")}`);
    const poolBytes = Math.max(POOL_BYTES, bytes);
    this.#pool = new Uint8Array(poolBytes);
    let x = 0x9e3779b9;
    for (let i = 0; i < poolBytes; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#pool[i] = x & 0xff;
    }
    this.#bytes = bytes;
  }

  record(i: number): { partitionKey: string; data: Uint8Array } {
    if (this.#offset + this.#bytes > this.#chunk.length) {
      this.#chunk = this.#pool.slice();
      this.#offset = 0;
    }
    const data = this.#chunk.subarray(this.#offset, this.#offset + this.#bytes);
    this.#offset += this.#bytes;
    return { partitionKey: this.#keys[i % this.#keys.length]!, data };
  }
}

function rssMiB(field: "VmHWM" | "VmRSS"): number {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (match !== null) return Number(match[1]) / 1024;
  } catch {
    // Not Linux: fall back to the current RSS, which is all the runtime reports.
  }
  return process.memoryUsage().rss / (1024 * 1024);
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.round(p * (sorted.length - 1))]!;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs one measurement. */
export async function run(spec: RunSpec): Promise<RunResult> {
  const workload = new Workload(spec.keys, spec.recordBytes);
  if (spec.variant.startsWith("webkpl-")) {
    return await runWebkpl(spec, workload);
  }
  if (spec.variant === "floor") return await runFloor(spec, workload);
  if (spec.variant === "fair") return await runFair(spec, workload);
  return await runPeer(spec, workload);
}

// ---------------------------------------------------------------------------------------
// webkpl

function createProducer(spec: RunSpec): Producer {
  return new Producer({
    stream: spec.stream,
    endpoint: spec.endpoint,
    region: REGION,
    credentials: CREDENTIALS,
    aggregationEnabled: spec.aggregation,
    maxInFlightRequests: spec.maxInFlight,
    recordMaxBufferedTimeMs: spec.bufferedTimeMs,
    ...(spec.variant === "webkpl-put-sdk" ? { transport: "sdk" as const } : {}),
    ...(spec.producerOptions ?? {}),
  });
}

/**
 * Puts `count` records starting at `first`, each result awaited, then flushes; resolves
 * when all settled.
 */
async function putConfirmed(
  producer: Producer,
  workload: Workload,
  first: number,
  count: number,
  stats: { failed: number; maxOutstanding: number },
): Promise<void> {
  let settled = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => finish = resolve);
  const onResult = (result: RecordResult) => {
    if (!result.success) stats.failed++;
    if (++settled === count) finish();
  };
  const end = first + count;
  for (let i = first; i < end; i++) {
    const record = workload.record(i);
    if (producer.outstandingRecords < MAX_OUTSTANDING) {
      producer.put(record).then(onResult);
    } else {
      if (producer.outstandingRecords > stats.maxOutstanding) {
        stats.maxOutstanding = producer.outstandingRecords;
      }
      // Full: wait for admission, as a caller honouring backpressure does.
      const receipt = await producer.enqueue(record);
      receipt.result.then(onResult);
    }
  }
  if (producer.outstandingRecords > stats.maxOutstanding) {
    stats.maxOutstanding = producer.outstandingRecords;
  }
  // The last records go out now rather than at their deadline, as the SDK variants drain.
  void producer.flush();
  if (count > 0) await done;
}

/** webkpl's default `maxOutstandingRecords`; the harness does not change it. */
const MAX_OUTSTANDING = 100_000;

function recordSource(workload: Workload, first: number, count: number) {
  let i = first;
  const end = first + count;
  return new ReadableStream<UserRecord>({
    pull(controller) {
      if (i < end) controller.enqueue(workload.record(i++));
      else controller.close();
    },
  });
}

/**
 * `pipeTo(producer.writable)`: each write resolves on admission, and closing the stream
 * (the end of the pipe) resolves once every record written through it has settled. The
 * warm-up goes through a writable of its own, so the timed pipe gets a fresh one.
 */
async function pipeRecords(
  producer: Producer,
  workload: Workload,
  first: number,
  count: number,
  warmup: boolean,
): Promise<void> {
  await recordSource(workload, first, count).pipeTo(
    warmup ? producer.createWritable() : producer.writable,
  );
}

async function runWebkpl(spec: RunSpec, workload: Workload): Promise<RunResult> {
  const producer = createProducer(spec);
  const stats = { failed: 0, maxOutstanding: 0 };
  try {
    if (spec.mode === "latency") {
      return await latencyWebkpl(spec, workload, producer);
    }
    const confirmed = spec.variant !== "webkpl-pipeto";
    if (confirmed) {
      await putConfirmed(producer, workload, 0, spec.warmup, stats);
    } else {
      await pipeRecords(producer, workload, 0, spec.warmup, true);
    }
    stats.failed = 0;
    stats.maxOutstanding = 0;
    const result = await timed(spec, async () => {
      if (confirmed) {
        await putConfirmed(producer, workload, spec.warmup, spec.records, stats);
      } else {
        await pipeRecords(producer, workload, spec.warmup, spec.records, false);
      }
    });
    return {
      ...result,
      ...(confirmed ? { maxOutstanding: stats.maxOutstanding } : {}),
      failed: stats.failed,
    };
  } finally {
    await producer.close();
  }
}

async function latencyWebkpl(
  spec: RunSpec,
  workload: Workload,
  producer: Producer,
): Promise<RunResult> {
  await putConfirmed(producer, workload, 0, spec.warmup, { failed: 0, maxOutstanding: 0 });
  let failed = 0;
  const timing = new Timing(Math.round(spec.rate * spec.seconds));
  await offerAtRate(spec, timing, (i) => {
    timing.start(i);
    producer.put(workload.record(spec.warmup + i)).then((result) => {
      if (!result.success) failed++;
      timing.settle(i);
    });
  });
  return latencyResult(spec, timing, failed);
}

// ---------------------------------------------------------------------------------------
// Offered-rate loop, shared by every variant

/** Put and settlement times of the records offered at a fixed rate. */
class Timing {
  readonly total: number;
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  readonly done: Promise<void>;
  elapsedMs = 0;
  cpu = 0;
  startRss = 0;
  #settled = 0;
  #finish!: () => void;

  constructor(total: number) {
    this.total = total;
    this.starts = new Float64Array(total);
    this.ends = new Float64Array(total);
    this.done = new Promise((resolve) => this.#finish = resolve);
  }

  start(i: number): void {
    this.starts[i] = performance.now();
  }

  settle(i: number): void {
    this.ends[i] = performance.now();
    if (++this.#settled === this.total) this.#finish();
  }

  sortedLatencies(): Float64Array {
    const latencies = new Float64Array(this.total);
    for (let i = 0; i < this.total; i++) latencies[i] = this.ends[i]! - this.starts[i]!;
    return latencies.sort();
  }
}

/**
 * Offers `timing.total` records at `spec.rate` per second, paced by a 1 ms timer loop on
 * the real clock: each tick puts the records due by now. Resolves once all have settled.
 */
async function offerAtRate(
  spec: RunSpec,
  timing: Timing,
  offer: (i: number) => void,
): Promise<void> {
  const total = timing.total;
  timing.startRss = rssMiB("VmRSS");
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  let sent = 0;
  // Bounded: the loop ends `seconds` after it started, plus one tick per record at worst.
  for (let tick = 0; sent < total && tick < total + 1_000_000; tick++) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * spec.rate) / 1000));
    while (sent < due) offer(sent++);
    if (sent < total) await sleep(1);
  }
  await timing.done;
  timing.elapsedMs = performance.now() - t0;
  timing.cpu = cpuMicros() - cpu0;
}

function latencyResult(spec: RunSpec, timing: Timing, failed: number): RunResult {
  const latencies = timing.sortedLatencies();
  const records = timing.total;
  return {
    variant: spec.variant,
    mode: "latency",
    records,
    elapsedMs: timing.elapsedMs,
    recordsPerSec: records / (timing.elapsedMs / 1000),
    mbPerSec: (records * spec.recordBytes) / (timing.elapsedMs / 1000) / 1e6,
    cpuUsPerRecord: timing.cpu / records,
    peakRssMiB: rssMiB("VmHWM"),
    startRssMiB: timing.startRss,
    failed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies[records - 1]!,
  };
}

// ---------------------------------------------------------------------------------------
// aws-kinesis-agg + SDK, and plain SDK

async function runPeer(spec: RunSpec, workload: Workload): Promise<RunResult> {
  const options: PeerOptions = {
    endpoint: spec.endpoint,
    region: REGION,
    credentials: CREDENTIALS,
    stream: spec.stream,
    maxInFlight: spec.maxInFlight,
    bufferedTimeMs: spec.bufferedTimeMs,
  };
  const sender: PeerSender = spec.variant === "agg-sdk"
    ? await AggSdkSender.create(options)
    : await PlainSdkSender.create(options);
  try {
    if (spec.mode === "latency") {
      for (let i = 0; i < spec.warmup; i++) await sender.add(workload.record(i), -1);
      await sender.drain();
      sender.failed = 0;
      const timing = new Timing(Math.round(spec.rate * spec.seconds));
      sender.onSettled = (i) => timing.settle(i);
      await offerAtRate(spec, timing, (i) => {
        timing.start(i);
        sender.add(workload.record(spec.warmup + i), i);
      });
      return latencyResult(spec, timing, sender.failed);
    }
    return await timeThroughput(spec, workload, sender);
  } finally {
    sender.close();
  }
}

// ---------------------------------------------------------------------------------------
// The fair peer and the floor

async function runFair(spec: RunSpec, workload: Workload): Promise<RunResult> {
  const loop = await FairLoop.create({
    endpoint: spec.endpoint,
    region: REGION,
    credentials: CREDENTIALS,
    stream: spec.stream,
    maxInFlight: spec.maxInFlight,
    bufferedTimeMs: spec.bufferedTimeMs,
  }, spec.aggregation);
  try {
    return await timeThroughput(spec, workload, loop);
  } finally {
    loop.close();
  }
}

/** What a fire-and-forget peer offers the throughput run: the fair loop and the SDK senders. */
type ThroughputPeer = Pick<PeerSender, "add" | "drain" | "failed">;

/** Warms `peer` up, then times `spec.records` records through it, waiting when it says so. */
async function timeThroughput(
  spec: RunSpec,
  workload: Workload,
  peer: ThroughputPeer,
): Promise<RunResult> {
  for (let i = 0; i < spec.warmup; i++) {
    const wait = peer.add(workload.record(i), -1);
    if (wait !== undefined) await wait;
  }
  await peer.drain();
  peer.failed = 0;
  const result = await timed(spec, async () => {
    const end = spec.warmup + spec.records;
    for (let i = spec.warmup; i < end; i++) {
      const wait = peer.add(workload.record(i), -1);
      if (wait !== undefined) await wait;
    }
    await peer.drain();
  });
  return { ...result, failed: peer.failed };
}

/** Times `run` (the timed phase of `spec`'s throughput run): wall time, CPU, RSS. */
async function timed(
  spec: RunSpec,
  run: () => Promise<void>,
): Promise<Omit<RunResult, "failed">> {
  const startRss = rssMiB("VmRSS");
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  await run();
  const elapsedMs = performance.now() - t0;
  const cpu = cpuMicros() - cpu0;
  return {
    variant: spec.variant,
    mode: spec.mode,
    records: spec.records,
    elapsedMs,
    recordsPerSec: spec.records / (elapsedMs / 1000),
    mbPerSec: (spec.records * spec.recordBytes) / (elapsedMs / 1000) / 1e6,
    cpuUsPerRecord: cpu / spec.records,
    peakRssMiB: rssMiB("VmHWM"),
    startRssMiB: startRss,
  };
}

/** The floor on the same records as the timed phase of the other variants. */
async function runFloor(spec: RunSpec, workload: Workload): Promise<RunResult> {
  const records = Array.from({ length: spec.records }, (_, i) => workload.record(i));
  const startRss = rssMiB("VmRSS");
  const floor = await measureFloor(records, spec.aggregation);
  const md5 = measureMd5();
  return {
    variant: spec.variant,
    mode: spec.mode,
    records: spec.records,
    elapsedMs: NaN,
    recordsPerSec: NaN,
    mbPerSec: NaN,
    cpuUsPerRecord: floor.totalUs,
    peakRssMiB: rssMiB("VmHWM"),
    startRssMiB: startRss,
    failed: 0,
    floor,
    md5,
  };
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[process.argv.length - 1]!) as RunSpec;
  const result = await run(spec);
  console.log(`RESULT ${JSON.stringify(result)}`);
  // The SDK's keep-alive sockets may hold the event loop open after the producer closed.
  process.exit(0);
}
