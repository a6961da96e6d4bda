// `preserveOrder` under faults (docs/ordering.md): the producer with its default SDK client,
// through the chaos proxy to kinesalite, every record's settlement counted, the stream read
// back and each key's records (first occurrences) compared with the order they were put in.
// The same scenario without the option reports how often order breaks there.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Producer } from "../../src/producer.ts";
import type { ProducerOptions } from "../../src/options.ts";
import { startKinesalite, startKinesisLocal, useEmulator } from "../support/emulators.ts";
import {
  createStream,
  createTestClient,
  hashRange,
  listAllShards,
  mergeShards,
  recordHashKey,
  splitShard,
  uniqueStreamName,
} from "../support/kinesis_sdk.ts";
import { type ChaosRates, startChaosProxy } from "../support/chaos_proxy.ts";
import { type FoundRecord, readStream } from "../support/readback.ts";
import { checkStream, Ledger } from "../support/ledger.ts";
import { SeededRandom } from "../support/seeded_random.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { FakeKinesis, routingHash } from "../support/fake_kinesis.ts";

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };
const KEYS = 120;
const TOTAL = Number(process.env.ORDER_TOTAL ?? 4_000);
const RATES: ChaosRates = {
  recordThrottle: 0.10,
  recordInternalFailure: 0.02,
  http500: 0.01,
  http503: 0.01,
  resetBeforeForward: 0.01,
  resetAfterForward: 0.01,
  dropResponse: 0.01,
  delayResponse: 0.01,
};

const env = useEmulator(startKinesalite);

/** What one run found. */
interface OrderRun {
  settled: number;
  succeeded: number;
  failedByCode: Record<string, number>;
  never: number;
  twice: number;
  missing: number;
  unexplained: number;
  duplicates: number;
  /** Records whose first occurrence comes after that of a record of their key put later. */
  outOfOrder: number;
  /** Keys with at least one such record. */
  keysOutOfOrder: number;
  requests: number;
  timeMs: number;
}

/**
 * Counts, per key, the records whose first occurrence in the stream comes after the first
 * occurrence of a later record of the same key. Data is `<run>-<key>-<index>`.
 */
function orderBreaks(
  found: readonly FoundRecord[],
  keep: (record: FoundRecord, data: string) => boolean = () => true,
): { records: number; keys: number } {
  const decoder = new TextDecoder();
  const seen = new Set<string>();
  const highest = new Map<string, number>();
  const brokenKeys = new Set<string>();
  let records = 0;
  // The stream is read shard by shard, each in sequence order; without a reshard a key
  // lives on one shard, so this is each key's stored order.
  for (const record of found) {
    const data = decoder.decode(record.data);
    if (seen.has(data) || !keep(record, data)) continue;
    seen.add(data);
    const [, key, index] = data.split("-");
    const at = Number(index);
    const top = highest.get(key!) ?? -1;
    if (at < top) {
      records++;
      brokenKeys.add(key!);
    } else {
      highest.set(key!, at);
    }
  }
  return { records, keys: brokenKeys.size };
}

async function run(name: string, seed: number, options: ProducerOptions): Promise<OrderRun> {
  const started = performance.now();
  const stream = uniqueStreamName(name);
  await createStream(env.client, stream, { shardCount: 4 });
  await using proxy = await startChaosProxy({
    upstream: env.emulator.endpoint,
    seed,
    rates: RATES,
    delayMs: 1_500,
    dropHoldMs: 2_000,
  });
  const logger = new CapturingLogger();
  const producer = new Producer({
    endpoint: proxy.endpoint,
    region: "us-east-1",
    credentials,
    stream,
    logger,
    requestTimeoutMs: 1_000,
    recordTtlMs: 60_000,
    // Small aggregates and requests, so a few thousand records make hundreds of requests
    // and every 1% fault fires several times.
    aggregationMaxCount: 5,
    collectionMaxCount: 10,
    // Random throttles are not a full shard; this scenario is about order (docs/fleet.md).
    adaptiveRate: false,
    ...options,
  });
  const random = new SeededRandom(seed);
  const ledger = new Ledger();
  const next = new Array<number>(KEYS).fill(0);
  for (let i = 0; i < TOTAL; i++) {
    const key = random.int(0, KEYS - 1);
    const data = `${name}-k${key}-${next[key]!++}`;
    await ledger.put(producer, { partitionKey: `k${key}`, data });
    // Waves, so requests overlap with intake and retries race later records.
    if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await producer.flush();
  await producer.close();
  await ledger.allSettled();
  await proxy.settled();
  const settlement = ledger.settlement();
  const contents = await readStream(env.client, stream);
  const check = checkStream(contents.records, ledger, proxy.unconfirmed());
  const breaks = orderBreaks(contents.records);
  assert.deepEqual(logger.at("error").map((call) => call.message), []);
  return {
    settled: settlement.settled,
    succeeded: settlement.succeeded,
    failedByCode: settlement.failedByCode,
    never: settlement.neverSettled,
    twice: settlement.settledTwice,
    missing: check.missing,
    unexplained: check.unexplained,
    duplicates: check.duplicates,
    outOfOrder: breaks.records,
    keysOutOfOrder: breaks.keys,
    requests: proxy.counts.byOperation.PutRecords ?? 0,
    timeMs: Math.round(performance.now() - started),
  };
}

function report(label: string, result: OrderRun): void {
  console.log(
    `${label}: ${TOTAL} records over ${KEYS} keys, ${result.requests} PutRecords, ` +
      `settled ${result.settled}, succeeded ${result.succeeded}, ` +
      `failed ${JSON.stringify(result.failedByCode)}, duplicates ${result.duplicates}, ` +
      `records out of order ${result.outOfOrder} (keys ${result.keysOutOfOrder}), ${result.timeMs} ms`,
  );
}

describe("preserveOrder under faults", () => {
  test("Producer with preserveOrder stores every key's records in put order through throttles, 5xx, resets, lost and slow responses, settling each once and losing none", async () => {
    const result = await run("ordered", 21, { preserveOrder: true });
    report("preserveOrder: true", result);
    assert.equal(result.settled, TOTAL);
    assert.deepEqual(
      { never: result.never, twice: result.twice, missing: result.missing },
      { never: 0, twice: 0, missing: 0 },
    );
    assert.equal(result.unexplained, 0);
    assert.equal(result.outOfOrder, 0);
    // Nothing here should run out of TTL: a failure would make the order check weaker.
    assert.equal(result.succeeded, TOTAL, JSON.stringify(result.failedByCode));
  });

  test("Producer without preserveOrder, same faults: settles every record once, and reports how often order breaks", async () => {
    const result = await run("unordered", 21, { preserveOrder: false });
    report("preserveOrder: false", result);
    assert.equal(result.settled, TOTAL);
    assert.deepEqual(
      { never: result.never, twice: result.twice, missing: result.missing },
      { never: 0, twice: 0, missing: 0 },
    );
    // Not asserted: whether order breaks depends on timing; the count is reported above.
  });
});

describe("preserveOrder across resharding", () => {
  test("Producer with preserveOrder stores every key's records in put order, read parents first, while two shards split and two merge on kinesis-local", async () => {
    await using emulator = await startKinesisLocal();
    const direct = createTestClient(emulator.endpoint);
    try {
      const stream = uniqueStreamName("ordered-reshard");
      await createStream(direct, stream, { shardCount: 4 });
      const initial = await listAllShards(direct, stream);
      const producer = new Producer({
        endpoint: emulator.endpoint,
        region: "us-east-1",
        credentials,
        stream,
        preserveOrder: true,
        aggregationMaxCount: 20,
      });
      const reshards = new Map<number, () => Promise<unknown>>([
        [4, () => splitShard(direct, stream, { shardId: initial[0]!.ShardId! })],
        [8, () => splitShard(direct, stream, { shardId: initial[1]!.ShardId! })],
        [12, () =>
          mergeShards(direct, stream, {
            shardId: initial[2]!.ShardId!,
            adjacentShardId: initial[3]!.ShardId!,
          })],
      ]);
      const random = new SeededRandom(23);
      const ledger = new Ledger();
      const next = new Array<number>(KEYS).fill(0);
      const keyOf = new Map<string, string>();
      let resharding: Promise<unknown> = Promise.resolve();
      for (let wave = 0; wave < 20; wave++) {
        const reshard = reshards.get(wave);
        if (reshard !== undefined) {
          await resharding;
          resharding = reshard();
        }
        for (let i = 0; i < 300; i++) {
          const key = random.int(0, KEYS - 1);
          const data = `reshard-k${key}-${next[key]!++}`;
          keyOf.set(data, `k${key}`);
          await ledger.put(producer, { partitionKey: `k${key}`, data });
        }
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      await resharding;
      await producer.close();
      await ledger.allSettled();
      const settlement = ledger.settlement();
      const contents = await readStream(direct, stream);
      const check = checkStream(contents.records, ledger, []);
      // readStream reads the shards in ListShards order, by id; a child's id is higher
      // than its parents', so this reads every parent before its children, as the KCL does.
      const ids = contents.shards.map((shard) => shard.ShardId!);
      for (const shard of contents.shards) {
        for (const parent of [shard.ParentShardId, shard.AdjacentParentShardId]) {
          if (parent !== undefined) assert.ok(ids.indexOf(parent) < ids.indexOf(shard.ShardId!));
        }
      }
      // A copy stored on a shard whose range does not hold its hash is dropped by KCL-style
      // consumers (and retried by the producer), so it is not an occurrence.
      const ranges = new Map(contents.shards.map((shard) => [shard.ShardId!, hashRange(shard)]));
      const breaks = orderBreaks(contents.records, (record, data) => {
        const [start, end] = ranges.get(record.shardId)!;
        const hash = recordHashKey({ partitionKey: keyOf.get(data)! });
        return start <= hash && hash <= end;
      });
      console.log(
        `preserveOrder across reshards: ${contents.shards.length} shards, ` +
          `${ledger.entries.length} records, succeeded ${settlement.succeeded}, ` +
          `duplicates ${check.duplicates} (wrong-shard copies ${check.wrongShardCopies}), ` +
          `records out of order ${breaks.records} (keys ${breaks.keys})`,
      );
      assert.equal(contents.shards.length, 4 + 2 + 2 + 1, "two splits and a merge happened");
      assert.deepEqual(
        [settlement.settled, settlement.neverSettled, settlement.succeeded],
        [6_000, 0, 6_000],
        JSON.stringify(settlement.failedByCode),
      );
      assert.deepEqual({ missing: check.missing, unexplained: check.unexplained }, {
        missing: 0,
        unexplained: 0,
      });
      assert.equal(breaks.records, 0);
    } finally {
      direct.destroy();
    }
  });
});

test("Producer refuses a preserveOrder that is not a boolean, naming it", () => {
  assert.throws(
    () => new Producer({ preserveOrder: "yes" as unknown as boolean }),
    (error: unknown) => error instanceof TypeError && /'preserveOrder'/.test(error.message),
  );
});

test("Producer with preserveOrder has at most one request in flight and one entry per request for each shard, while a fifth of the entries fail", async () => {
  const kinesis = new FakeKinesis({ s: 4 });
  const shards = kinesis.shards.get("s")!;
  const shardOf = (entry: { PartitionKey: string; ExplicitHashKey?: string | undefined }) => {
    const hash = routingHash(entry.PartitionKey, entry.ExplicitHashKey);
    return shards.find((shard) => shard.start <= hash && hash <= shard.end)!.id;
  };
  const inFlight = new Set<string>();
  const violations: string[] = [];
  const random = new SeededRandom(5);
  kinesis.putHook = async (input, call) => {
    const mine = input.Records.map(shardOf);
    for (const [i, shard] of mine.entries()) {
      if (inFlight.has(shard)) violations.push(`call ${call}: ${shard} already in flight`);
      if (mine.indexOf(shard) !== i) violations.push(`call ${call}: ${shard} twice`);
    }
    for (const shard of mine) inFlight.add(shard);
    // Let other calls start while this one is out.
    await new Promise((resolve) => setTimeout(resolve, 1));
    for (const shard of mine) inFlight.delete(shard);
    return kinesis.store(input, () => random.next() >= 0.2);
  };
  const producer = new Producer({
    kinesisClient: kinesis,
    stream: "s",
    preserveOrder: true,
    aggregationMaxCount: 4,
    recordMaxBufferedTimeMs: 5,
  });
  const results = [];
  for (let i = 0; i < 400; i++) {
    results.push(producer.put({ partitionKey: `k${i % 12}`, data: `k${i % 12}-${i}` }));
  }
  const settled = await Promise.all(results);
  await producer.close();
  assert.deepEqual(violations, []);
  assert.equal(settled.filter((result) => result.success).length, 400);
  // Stored order per key, first occurrences (aggregates are decoded by their sequence).
  const firstSeen = new Map<string, number>();
  for (const result of settled) {
    const data = String(result.record.data);
    firstSeen.set(data, Number(result.sequenceNumber) * 1e4 + (result.subSequenceNumber ?? 0));
  }
  for (let key = 0; key < 12; key++) {
    const positions = [...firstSeen.entries()]
      .filter(([data]) => data.startsWith(`k${key}-`))
      .sort((a, b) => Number(a[0].split("-")[1]) - Number(b[0].split("-")[1]))
      .map(([, position]) => position);
    assert.deepEqual(positions, [...positions].sort((a, b) => a - b), `key k${key}`);
  }
});
