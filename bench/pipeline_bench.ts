/**
 * Records through the whole pipeline (validate, hash, predict, aggregate, limit, collect,
 * send, retry decision, settle) against an in-process Kinesis that answers at once, so the
 * figures are the producer's own cost without any transport: no JSON, no HTTP.
 *
 * Run: deno bench --allow-all bench/pipeline_bench.ts
 *
 * "one record" puts a record, flushes and awaits its result: the fixed cost of a record
 * that travels alone. "10,000 records" puts a burst, flushes once and awaits every result:
 * divide by 10,000 for the per-record cost at throughput (200 B records, 10,000 keys,
 * 64 shards).
 */
import { Producer } from "../mod.ts";
import type { RecordResult } from "../mod.ts";
import { silentLogger } from "../src/logger.ts";
import { InstantKinesis } from "./_instant_kinesis.ts";

const SHARDS = 64;
const KEYS = 10_000;
const BURST = 10_000;

const keys = Array.from({ length: KEYS }, (_, i) => `user-${i.toString(36).padStart(4, "0")}`);
const payload = new Uint8Array(200).fill(7);
let next = 0;

function record(): { partitionKey: string; data: Uint8Array } {
  return { partitionKey: keys[next++ % KEYS]!, data: payload };
}

async function startedProducer(aggregationEnabled: boolean): Promise<Producer> {
  const producer = new Producer({
    stream: "bench",
    kinesisClient: new InstantKinesis(SHARDS),
    logger: silentLogger,
    aggregationEnabled,
    // Kinesis' per-shard pacing would otherwise be what a burst without aggregation measures.
    rateLimit: 1_000_000,
  });
  // The first put starts the shard listing; wait for it so every bench sees a ready map.
  const first = producer.put(record());
  await producer.flush();
  await first;
  return producer;
}

const producers = {
  on: await startedProducer(true),
  off: await startedProducer(false),
};

let failures = 0;
function count(result: RecordResult): void {
  if (!result.success) failures++;
}

for (const mode of ["on", "off"] as const) {
  const producer = producers[mode];
  const group = `aggregation ${mode}`;
  Deno.bench({
    name: `one record: put, flush, await result (aggregation ${mode})`,
    group: `${group}, one`,
    fn: async () => {
      const result = producer.put(record());
      await producer.flush();
      count(await result);
    },
  });
  Deno.bench({
    name: `${
      BURST.toLocaleString("en-US")
    } records: put each, flush, await all (aggregation ${mode})`,
    group: `${group}, burst`,
    fn: async () => {
      const results: Promise<RecordResult>[] = new Array(BURST);
      for (let i = 0; i < BURST; i++) results[i] = producer.put(record());
      await producer.flush();
      for (const result of await Promise.all(results)) count(result);
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (failures > 0) throw new Error(`${failures} records failed in the pipeline benchmark`);
});
