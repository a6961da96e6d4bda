// One record through the whole pipeline (put → aggregator → limiter → collector → sender
// → retrier → settled) against an in-process Kinesis that answers at once, with each
// metrics setting. Level "none" must cost the same as no metrics option at all.
// Run with `deno bench --allow-all bench/producer_bench.ts`.
//
// Reading the "record" group: with metrics on, the upload deadline keeps the scheduler's
// heap non-empty, so its one timer stays armed between records; with metrics off the heap
// empties after every record and the next one pays a setTimeout/clearTimeout pair
// (about 1.5 µs each cycle here). That, not the metrics, is why summary and detailed look
// faster than "none" there. The "batch" group amortises it over 64 records and shows the
// metrics' own cost.

import { InMemorySink } from "../sinks/mod.ts";
import type {
  KinesisClient,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
} from "../src/kinesis_client.ts";
import { silentLogger } from "../src/logger.ts";
import type { ProducerOptions } from "../src/options.ts";
import type { RecordResult } from "../src/record.ts";
import { Producer } from "../src/producer.ts";

const SHARD_ID = "shardId-000000000000";

/** One open shard over the whole hash range; every entry is stored at once. */
class Responder implements KinesisClient {
  #sequence = 0;

  putRecords(input: PutRecordsInput): Promise<PutRecordsOutput> {
    const records = input.Records.map(() => ({
      SequenceNumber: String(++this.#sequence),
      ShardId: SHARD_ID,
    }));
    return Promise.resolve({ FailedRecordCount: 0, Records: records });
  }

  listShards(): Promise<ListShardsOutput> {
    return Promise.resolve({
      Shards: [{
        ShardId: SHARD_ID,
        HashKeyRange: { StartingHashKey: "0", EndingHashKey: String((1n << 128n) - 1n) },
      }],
    });
  }
}

const data = new Uint8Array(100);
/** Records per iteration of the batch group: one request, the per-record cost amortised. */
const BATCH = 64;
const keys = Array.from({ length: 64 }, (_, i) => `user-${i}`);

interface Setup {
  producer: Producer;
  sink: InMemorySink | undefined;
  next: number;
}

async function setUp(options: ProducerOptions): Promise<Setup> {
  const producer = new Producer({
    stream: "bench",
    kinesisClient: new Responder(),
    logger: silentLogger,
    // The shard limits would pace a tight loop; lift them so the pipeline is measured.
    rateLimit: 1e9,
    ...options,
  });
  // The first record loads the shard map, so every measured one is predicted.
  await producer.put({ partitionKey: "warm-up", data });
  const sink = options.metricsSink instanceof InMemorySink ? options.metricsSink : undefined;
  return { producer, sink, next: 0 };
}

async function oneRecord(setup: Setup): Promise<void> {
  const pending = setup.producer.put({ partitionKey: keys[setup.next++ & 63]!, data });
  await setup.producer.flush();
  const result = await pending;
  if (!result.success) throw new Error(`record failed: ${result.errorCode}`);
  // The sink keeps every event; forget them now and then so memory stays flat.
  if (setup.sink !== undefined && setup.sink.events.length > 100_000) setup.sink.clear();
}

const setups = {
  plain: await setUp({}),
  none: await setUp({ metricsLevel: "none" }),
  summary: await setUp({ metricsLevel: "summary", metricsSink: new InMemorySink() }),
  detailed: await setUp({ metricsLevel: "detailed", metricsSink: new InMemorySink() }),
};

// The pipeline's code is shared by all four, so whichever ran first would pay for the JIT
// warming up; run them all, interleaved, before anything is measured.
for (let i = 0; i < 50_000; i++) {
  for (const setup of Object.values(setups)) await oneRecord(setup);
}

async function batch(setup: Setup): Promise<void> {
  const pending: Promise<RecordResult>[] = new Array(BATCH);
  for (let i = 0; i < BATCH; i++) {
    pending[i] = setup.producer.put({ partitionKey: keys[setup.next++ & 63]!, data });
  }
  await setup.producer.flush();
  for (const result of await Promise.all(pending)) {
    if (!result.success) throw new Error(`record failed: ${result.errorCode}`);
  }
  if (setup.sink !== undefined && setup.sink.events.length > 100_000) setup.sink.clear();
}

// Deno awaits a benchmark only when it is an async function; one returning a promise would
// be timed as synchronous and flood the producer.
Deno.bench("put → settled, no metrics option", {
  group: "record",
  baseline: true,
  n: 200_000,
  warmup: 20_000,
}, async () => {
  await oneRecord(setups.plain);
});

Deno.bench(
  "put → settled, metricsLevel none",
  { group: "record", n: 200_000, warmup: 20_000 },
  async () => {
    await oneRecord(setups.none);
  },
);

Deno.bench(
  "put → settled, summary, InMemorySink",
  { group: "record", n: 200_000, warmup: 20_000 },
  async () => {
    await oneRecord(setups.summary);
  },
);

Deno.bench(
  "put → settled, detailed, InMemorySink",
  { group: "record", n: 200_000, warmup: 20_000 },
  async () => {
    await oneRecord(setups.detailed);
  },
);

for (
  const [label, setup, baseline] of [
    ["no metrics option", setups.plain, true],
    ["metricsLevel none", setups.none, false],
    ["summary, InMemorySink", setups.summary, false],
    ["detailed, InMemorySink", setups.detailed, false],
  ] as const
) {
  Deno.bench(
    `${BATCH} records put → settled, ${label}`,
    { group: "batch", baseline, n: 20_000, warmup: 2_000 },
    async () => {
      await batch(setup);
    },
  );
}

// Closing releases the timers; the bench runner waits for the module's top level only.
globalThis.addEventListener("unload", () => {
  for (const setup of Object.values(setups)) void setup.producer.close();
});
