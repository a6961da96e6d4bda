// End to end: the producer with its default SDK client against real emulators, every
// record read back and deaggregated by aws-kinesis-agg, an implementation we did not write.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createDefaultKinesisClient, type KinesisClient } from "../../src/kinesis_client.ts";
import { Producer } from "../../src/producer.ts";
import { silentLogger } from "../../src/logger.ts";
import type { RecordResult } from "../../src/record.ts";
import {
  producerOn,
  startKinesalite,
  startKinesisLocal,
  useEmulator,
} from "../support/emulators.ts";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { type FoundRecord, readStream, reconcile } from "../support/readback.ts";
import { SeededRandom } from "../support/seeded_random.ts";

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };

interface Workload {
  records: { partitionKey: string; data: string; explicitHashKey?: string }[];
}

/** N records over `keys` random partition keys, 10% with a random explicit hash key. */
function workload(count: number, keys: number, seed: number): Workload {
  const random = new SeededRandom(seed);
  const keyPool = Array.from({ length: keys }, (_, i) => `user-${i}-${random.int(0, 1e9)}`);
  const records = Array.from({ length: count }, (_, i) => {
    const record: Workload["records"][number] = {
      partitionKey: random.pick(keyPool),
      data: `record-${seed}-${i}-${"x".repeat(random.int(0, 200))}`,
    };
    if (random.next() < 0.1) {
      const high = BigInt(random.int(0, 2 ** 31)) << 97n;
      record.explicitHashKey = (high + BigInt(random.int(0, 2 ** 31))).toString();
    }
    return record;
  });
  return { records };
}

async function putAll(producer: Producer, stream: string, work: Workload): Promise<RecordResult[]> {
  return await Promise.all(work.records.map((record) => producer.put({ stream, ...record })));
}

/** The default SDK client, wrapped to tell when a ListShards call has first answered. */
async function listingAware(endpoint: string) {
  const sdk = await createDefaultKinesisClient({ endpoint, region: "us-east-1", credentials });
  let listed = () => {};
  const firstListing = new Promise<void>((resolve) => listed = resolve);
  const client: KinesisClient = {
    putRecords: (input, options) => sdk.putRecords(input, options),
    listShards: async (input, options) => {
      const output = await sdk.listShards(input, options);
      listed();
      return output;
    },
    close: () => sdk.close?.(),
  };
  return { client, firstListing };
}

/**
 * Puts the workload once the stream's shard map is known, so how well it is aggregated
 * does not depend on how fast the first listing answers: records put before it are packed
 * only by key once the first-listing grace has passed (src/_stream_pipeline.ts). The first
 * record starts the listing; the second is put after the listing answered, and its round
 * trip lets the map install the listing before the rest is put.
 */
async function putAfterFirstListing(
  producer: Producer,
  stream: string,
  work: Workload,
  firstListing: Promise<void>,
): Promise<RecordResult[]> {
  const [first, second, ...rest] = work.records;
  const head = producer.put({ stream, ...first! });
  await firstListing;
  const next = await producer.put({ stream, ...second! });
  return [await head, next, ...await putAll(producer, stream, { records: rest })];
}

function expectations(results: RecordResult[]) {
  return results.map((result) => ({
    shardId: result.shardId!,
    sequenceNumber: result.sequenceNumber!,
    subSequenceNumber: result.subSequenceNumber!,
    data: result.record.data,
    partitionKey: result.record.partitionKey,
  }));
}

/**
 * Copies beyond the first of each record. A request that timed out (or lost its connection)
 * may have been applied all the same, and its records are sent again: on a loaded machine
 * kinesalite can take longer than `requestTimeoutMs`, so those records may be stored twice
 * (at least once, as Kinesis promises). Any other copy is a bug.
 */
function extraCopies(
  found: readonly FoundRecord[],
  results: readonly RecordResult[],
): { ambiguous: number; unexplained: number } {
  const ambiguous = new Set<string>();
  for (const result of results) {
    if (result.attempts.some((attempt) => AMBIGUOUS.has(attempt.errorCode ?? ""))) {
      ambiguous.add(result.record.data as string);
    }
  }
  const seen = new Set<string>();
  const decoder = new TextDecoder();
  const out = { ambiguous: 0, unexplained: 0 };
  for (const record of found) {
    const data = decoder.decode(record.data);
    if (!seen.has(data)) seen.add(data);
    else if (ambiguous.has(data)) out.ambiguous++;
    else out.unexplained++;
  }
  return out;
}

const AMBIGUOUS: ReadonlySet<string> = new Set(["RequestTimeout", "NetworkError"]);

describe("Producer against kinesalite", () => {
  const env = useEmulator(startKinesalite);

  for (const aggregationEnabled of [true, false]) {
    test(`Producer delivers 20,000 records exactly once with aggregation ${aggregationEnabled ? "on" : "off"}`, async () => {
      const stream = uniqueStreamName(aggregationEnabled ? "agg" : "raw");
      await createStream(env.client, stream, { shardCount: 4 });
      const { client: kinesisClient, firstListing } = await listingAware(env.emulator.endpoint);
      const producer = new Producer({ kinesisClient, aggregationEnabled, logger: silentLogger });
      const work = workload(20_000, 1_000, aggregationEnabled ? 1 : 2);
      const results = await putAfterFirstListing(producer, stream, work, firstListing);
      await producer.close();
      const failed = results.filter((result) => !result.success);
      assert.deepEqual(failed.slice(0, 3).map((result) => result.errorMessage), []);
      const contents = await readStream(env.client, stream);
      const summary = reconcile(contents.records, expectations(results));
      const copies = extraCopies(contents.records, results);
      console.log(
        `readback aggregation=${aggregationEnabled}: put ${summary.put}, found ${summary.found}, ` +
          `duplicates ${summary.duplicates} (of records whose request got no answer ${copies.ambiguous}), ` +
          `mismatches ${summary.mismatched}, missing ${summary.missing}, ` +
          `kinesis records ${contents.kinesisRecords}`,
      );
      assert.deepEqual(
        [summary.put, summary.found, copies.unexplained, summary.mismatched, summary.missing],
        [20_000, 20_000 + copies.ambiguous, 0, 0, 0],
        JSON.stringify(summary.examples).slice(0, 2000),
      );
      if (aggregationEnabled) assert.ok(contents.kinesisRecords < 2_000, "records were aggregated");
      else assert.equal(contents.kinesisRecords, 20_000 + copies.ambiguous);
    });
  }

  test("Producer fails records for a stream that does not exist with ResourceNotFoundException, fast", async () => {
    const producer = producerOn(env.emulator);
    const started = Date.now();
    const result = await producer.put({
      stream: uniqueStreamName("missing"),
      partitionKey: "k",
      data: "x",
    });
    await producer.close();
    assert.equal(result.success, false);
    assert.equal(result.errorCode, "ResourceNotFoundException");
    assert.equal(result.attempts.length, 1);
    assert.ok(result.attempts[0]!.endedAt - result.attempts[0]!.startedAt < 30_000);
    assert.ok(started > 0);
  });

  test("Producer.close() with records buffered and requests in flight settles every promise", async () => {
    const stream = uniqueStreamName("close");
    await createStream(env.client, stream, { shardCount: 2 });
    const producer = producerOn(env.emulator, {
      recordMaxBufferedTimeMs: 5_000,
    });
    const early = Array.from(
      { length: 500 },
      (_, i) => producer.put({ stream, partitionKey: `k${i}`, data: `early-${i}` }),
    );
    await producer.flush({ signal: AbortSignal.timeout(1) }).catch(() => {});
    const late = Array.from(
      { length: 500 },
      (_, i) => producer.put({ stream, partitionKey: `k${i}`, data: `late-${i}` }),
    );
    await producer.close({ timeoutMs: 10_000 });
    const results = await Promise.all([...early, ...late]);
    assert.equal(results.length, 1000);
    assert.ok(results.every((result) => result.success));
    assert.equal(producer.outstandingRecords, 0);
  });
});

describe("Producer against kinesis-local", () => {
  const env = useEmulator(startKinesisLocal);

  test("Producer delivers 2,000 records exactly once on kinesis-local", async () => {
    const stream = uniqueStreamName("mock");
    await createStream(env.client, stream, { shardCount: 4 });
    const producer = producerOn(env.emulator);
    const results = await putAll(producer, stream, workload(2_000, 100, 3));
    await producer.close();
    assert.ok(
      results.every((result) => result.success),
      String(results.find((r) => !r.success)?.errorMessage),
    );
    const contents = await readStream(env.client, stream);
    const summary = reconcile(contents.records, expectations(results));
    console.log(
      `readback kinesis-local: put ${summary.put}, found ${summary.found}, duplicates ${summary.duplicates}, mismatches ${summary.mismatched}`,
    );
    assert.deepEqual([summary.put, summary.found, summary.duplicates, summary.mismatched], [
      2_000,
      2_000,
      0,
      0,
    ]);
  });
});
