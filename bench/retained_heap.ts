/**
 * The heap each outstanding record keeps, exact after a forced collection: 100,000 records
 * held in flight (PutRecords answers only when released), for each way a record comes in:
 * `put()` (the caller keeps the result promise), `enqueue()` (the caller drops the receipt)
 * and `pipeTo(producer.writable)`. The caller's record object (`{ partitionKey, data }` with
 * shared key strings and one shared payload) is counted; the caller's array of promises is
 * not.
 *
 * ```sh
 * deno run --allow-all --v8-flags=--expose-gc bench/retained_heap.ts [on|off]
 * bun run bench/retained_heap.ts [on|off]
 * ```
 *
 * Prints one JSON line: bytes per record for `put`, `enqueue` and `writable`, and the
 * `ArrayBuffer` bytes per record (off the JavaScript heap, counted separately).
 *
 * @module
 */
import process from "node:process";
import { Producer } from "../mod.ts";
import type { RecordResult, UserRecord } from "../mod.ts";
import { silentLogger } from "../src/logger.ts";
import { forceGc, probeRecord } from "./_probe_records.ts";
import { HeldKinesis } from "./_instant_kinesis.ts";

const SHARDS = 64;
const OUTSTANDING = 100_000;

interface Heap {
  readonly heap: number;
  readonly buffers: number;
}

function heap(): Heap {
  forceGc();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, buffers: usage.arrayBuffers };
}

/** How the records come in; resolves once all of them are outstanding. */
type Intake = (producer: Producer) => Promise<() => Promise<unknown>>;

const intakes: Record<string, Intake> = {
  put(producer) {
    const results: Promise<RecordResult>[] = new Array(OUTSTANDING);
    for (let i = 0; i < OUTSTANDING; i++) results[i] = producer.put(probeRecord());
    return Promise.resolve(() => Promise.all(results));
  },
  async enqueue(producer) {
    for (let i = 0; i < OUTSTANDING; i++) await producer.enqueue(probeRecord());
    return () => producer.flush();
  },
  async writable(producer) {
    let written = 0;
    const source = new ReadableStream<UserRecord>({
      pull(controller) {
        if (written++ < OUTSTANDING) controller.enqueue(probeRecord());
        else controller.close();
      },
    }, { highWaterMark: 0 });
    const piped = source.pipeTo(producer.writable);
    // Every pull is admitted before the next (highWaterMark 0); bounded by the record count.
    for (let turns = 0; producer.outstandingRecords < OUTSTANDING && turns < 100 * OUTSTANDING;) {
      turns++;
      await Promise.resolve();
    }
    return () => piped;
  },
};

async function retained(aggregation: boolean, intake: Intake): Promise<Heap> {
  const kinesis = new HeldKinesis(SHARDS);
  const producer = new Producer({
    stream: "bench",
    kinesisClient: kinesis,
    logger: silentLogger,
    aggregationEnabled: aggregation,
    rateLimit: 1_000_000,
  });
  await producer.put(probeRecord()).then(() => producer.flush());
  await producer.flush();
  const before = heap();
  kinesis.hold();
  const finish = await intake(producer);
  if (producer.outstandingRecords !== OUTSTANDING) {
    throw new Error(`${producer.outstandingRecords} records outstanding, not ${OUTSTANDING}`);
  }
  const after = heap();
  kinesis.release();
  await producer.flush();
  await finish();
  await producer.close();
  return {
    heap: (after.heap - before.heap) / OUTSTANDING,
    buffers: (after.buffers - before.buffers) / OUTSTANDING,
  };
}

const aggregation = process.argv[2] !== "off";
const result: Record<string, unknown> = { aggregation };
for (const [name, intake] of Object.entries(intakes)) {
  const bytes = await retained(aggregation, intake);
  // The put() caller's array of promises holds 8 bytes per record (JSC: 8 as well).
  result[name] = Math.round(bytes.heap - (name === "put" ? 8 : 0));
  result[`${name}Buffers`] = Math.round(bytes.buffers);
}
console.log(JSON.stringify(result));
