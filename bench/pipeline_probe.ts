/**
 * The producer's own cost without a transport, in three figures that are steadier than a
 * `Deno.bench` run on a busy machine: CPU per record in 10,000-record bursts, CPU per record
 * with 100,000 records outstanding (the shape of the end-to-end benchmark, where most of the
 * garbage collector's work is), and the heap each outstanding record retains (exact, after
 * a forced GC). Kinesis is {@linkcode InstantKinesis}: in process, answers at once.
 *
 * ```sh
 * deno run --allow-all --v8-flags=--expose-gc bench/pipeline_probe.ts [on|off] [rounds]
 * bun run bench/pipeline_probe.ts [on|off] [rounds]
 * ```
 *
 * Prints one JSON line: `{"burstUsPerRecord", "windowUsPerRecord", "retainedBytesPerRecord"}`
 * (medians over the rounds).
 *
 * @module
 */
import process from "node:process";
import { Producer } from "../mod.ts";
import type { KinesisClient, RecordResult } from "../mod.ts";
import { silentLogger } from "../src/logger.ts";
import { forceGc, probeRecord } from "./_probe_records.ts";
import { HeldKinesis, InstantKinesis } from "./_instant_kinesis.ts";

const SHARDS = 64;
const BURST = 10_000;
const WINDOW_RECORDS = 300_000;
const OUTSTANDING = 100_000;

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

async function startedProducer(client: KinesisClient, aggregation: boolean): Promise<Producer> {
  const producer = new Producer({
    stream: "bench",
    kinesisClient: client,
    logger: silentLogger,
    aggregationEnabled: aggregation,
    // Without aggregation the per-shard pacing, not the CPU, would bound a burst.
    rateLimit: 1_000_000,
  });
  const first = producer.put(probeRecord());
  await producer.flush();
  await first;
  return producer;
}

/** CPU per record of bursts: put 10,000, flush, await every result. */
async function burst(aggregation: boolean, rounds: number): Promise<number> {
  const producer = await startedProducer(new InstantKinesis(SHARDS), aggregation);
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const cpu = cpuMicros();
    for (let batch = 0; batch < 10; batch++) {
      const results: Promise<RecordResult>[] = new Array(BURST);
      for (let i = 0; i < BURST; i++) results[i] = producer.put(probeRecord());
      await producer.flush();
      await Promise.all(results);
    }
    samples.push((cpuMicros() - cpu) / (10 * BURST));
  }
  await producer.close();
  return median(samples);
}

/** CPU per record with at most 100,000 outstanding, as the end-to-end benchmark puts. */
async function window(aggregation: boolean, rounds: number): Promise<number> {
  const producer = await startedProducer(new InstantKinesis(SHARDS), aggregation);
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let settled = 0;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => finish = resolve);
    const onResult = () => {
      if (++settled === WINDOW_RECORDS) finish();
    };
    const cpu = cpuMicros();
    for (let i = 0; i < WINDOW_RECORDS; i++) {
      if (producer.outstandingRecords < OUTSTANDING) producer.put(probeRecord()).then(onResult);
      else (await producer.enqueue(probeRecord())).result.then(onResult);
    }
    await done;
    samples.push((cpuMicros() - cpu) / WINDOW_RECORDS);
  }
  await producer.close();
  return median(samples);
}

/** Heap retained per outstanding record: 100,000 puts held in flight, after a forced GC. */
async function retained(aggregation: boolean): Promise<number> {
  const kinesis = new HeldKinesis(SHARDS);
  const producer = await startedProducer(kinesis, aggregation);
  forceGc();
  const before = process.memoryUsage().heapUsed;
  kinesis.hold();
  const results: Promise<RecordResult>[] = new Array(OUTSTANDING);
  for (let i = 0; i < OUTSTANDING; i++) results[i] = producer.put(probeRecord());
  const flushed = producer.flush();
  forceGc();
  const after = process.memoryUsage().heapUsed;
  kinesis.release();
  await flushed;
  await Promise.all(results);
  await producer.close();
  // The results array's slot is the caller's, not the producer's.
  return (after - before) / OUTSTANDING - 8;
}

const aggregation = process.argv[2] !== "off";
const rounds = Number(process.argv[3] ?? 5);
const result = {
  aggregation,
  burstUsPerRecord: Number((await burst(aggregation, rounds)).toFixed(3)),
  windowUsPerRecord: Number((await window(aggregation, Math.max(3, rounds >> 1))).toFixed(3)),
  retainedBytesPerRecord: Math.round(await retained(aggregation)),
};
console.log(JSON.stringify(result));
