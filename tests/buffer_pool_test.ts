import { test } from "node:test";
import assert from "node:assert/strict";
import { BufferPool } from "../src/_buffer_pool.ts";
import type {
  KinesisCallOptions,
  KinesisClient,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
} from "../src/kinesis_client.ts";
import { silentLogger } from "../src/logger.ts";
import { Producer } from "../src/producer.ts";
import type { RecordResult } from "../src/record.ts";
import { aggDeaggregate } from "./support/aws_kinesis_agg.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { FakeKinesis } from "./support/fake_kinesis.ts";
import { SeededRandom } from "./support/seeded_random.ts";

test("BufferPool.take() gives exactly the size asked, on the smallest pooled size that holds it", () => {
  const pool = new BufferPool(51_200, 1 << 20);
  const cases: [number, number][] = [[1, 1600], [1600, 1600], [1601, 3200], [51_200, 51_200]];
  for (const [size, backing] of cases) {
    const view = pool.take(size);
    assert.equal(view.length, size);
    assert.equal(view.byteOffset, 0);
    assert.equal(view.buffer.byteLength, backing, `${size} bytes`);
  }
  assert.equal(pool.lent, cases.length);
  const exact = pool.take(51_201);
  assert.equal(exact.buffer.byteLength, 51_201, "above the largest size: an exact allocation");
  pool.give(exact);
  assert.equal(pool.lent, cases.length, "an exact allocation is not counted");
});

test("BufferPool.take() reuses a buffer given back, of the same size only", () => {
  const pool = new BufferPool(51_200, 1 << 20);
  const first = pool.take(40_000);
  pool.give(first);
  assert.equal(pool.lent, 0);
  assert.equal(pool.idleBytes, 51_200);
  const small = pool.take(100);
  assert.notEqual(small.buffer, first.buffer);
  const again = pool.take(30_000);
  assert.equal(again.buffer, first.buffer);
  assert.equal(again.length, 30_000);
  assert.equal(pool.idleBytes, 0);
});

test("BufferPool.give() keeps idle buffers up to its byte budget and drops the rest", () => {
  const pool = new BufferPool(51_200, 2 * 51_200);
  const views = [pool.take(51_200), pool.take(51_200), pool.take(51_200)];
  for (const view of views) pool.give(view);
  assert.equal(pool.lent, 0);
  assert.equal(pool.idleBytes, 2 * 51_200, "the third went to the garbage collector");
});

test("BufferPool.close() drops the idle buffers and every buffer given back later", () => {
  const pool = new BufferPool(51_200, 1 << 20);
  const kept = pool.take(51_200);
  pool.give(pool.take(51_200));
  pool.close();
  assert.equal(pool.idleBytes, 0);
  pool.give(kept);
  assert.equal(pool.idleBytes, 0);
  assert.equal(pool.lent, 0);
});

// ---------------------------------------------------------------------------
// The producer's aggregates, with a client whose calls the test answers one by one

interface HandCall {
  readonly input: PutRecordsInput;
  /** Each entry's bytes as they were when the call began: what a transport would send. */
  readonly sent: Uint8Array[];
  resolve(output: PutRecordsOutput): void;
  settled: boolean;
}

/** A transport whose PutRecords calls wait until the test answers them; aborts reject. */
class HandKinesis implements KinesisClient {
  readonly model = new FakeKinesis({ s: 1 });
  readonly calls: HandCall[] = [];

  putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput> {
    return new Promise((resolve, reject) => {
      const call: HandCall = {
        input,
        sent: input.Records.map((entry) => entry.Data.slice()),
        resolve: (output) => {
          call.settled = true;
          resolve(output);
        },
        settled: false,
      };
      this.calls.push(call);
      options.signal.addEventListener("abort", () => {
        call.settled = true;
        reject(Object.assign(new Error("aborted"), { name: "AbortError" }));
      }, { once: true });
    });
  }

  listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput> {
    return this.model.listShards(input, options);
  }

  store(index: number): void {
    const call = this.calls[index]!;
    call.resolve(this.model.store(call.input));
  }

  throttle(index: number): void {
    const call = this.calls[index]!;
    const error = { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "slow" };
    call.resolve({
      FailedRecordCount: call.input.Records.length,
      Records: call.input.Records.map(() => error),
    });
  }
}

/** Counts the buffers every pool created meanwhile has lent and not had back. */
async function withPools<T>(run: (lent: () => number) => Promise<T>): Promise<T> {
  const pools = new Set<BufferPool>();
  const take = BufferPool.prototype.take;
  BufferPool.prototype.take = function (this: BufferPool, size: number): Uint8Array {
    pools.add(this);
    return take.call(this, size);
  };
  try {
    return await run(() => [...pools].reduce((sum, pool) => sum + pool.lent, 0));
  } finally {
    BufferPool.prototype.take = take;
  }
}

function handProducer(kinesis: HandKinesis, clock: FakeClock): Producer {
  const random = new SeededRandom(3);
  return new Producer({
    stream: "s",
    kinesisClient: kinesis,
    clock,
    logger: silentLogger,
    random: () => random.next(),
  });
}

let next = 0;
/** `count` records of distinct keys and 200 distinct-ish bytes each, put at once. */
function putMany(producer: Producer, count: number) {
  const records = Array.from({ length: count }, () => {
    const n = next++;
    return { partitionKey: `key-${n}`, data: new Uint8Array(200).fill(n % 251) };
  });
  return { records, results: records.map((record) => producer.put(record)) };
}

/** The user records `aws-kinesis-agg` finds in a call's entries, in order. */
function decoded(call: HandCall): { partitionKey: string; data: Uint8Array }[] {
  return call.input.Records.flatMap((entry) =>
    aggDeaggregate({ data: entry.Data, partitionKey: entry.PartitionKey })
      .map(({ partitionKey, data }) => ({ partitionKey, data: new Uint8Array(data) }))
  );
}

function byKey<T extends { partitionKey: string }>(records: T[]): T[] {
  return [...records].sort((a, b) => a.partitionKey.localeCompare(b.partitionKey));
}

test("Producer keeps an aggregate's buffer until its call settles, then encodes the next one in it", async () => {
  await withPools(async (lent) => {
    const clock = new FakeClock(0);
    const kinesis = new HandKinesis();
    const producer = handProducer(kinesis, clock);
    const first = putMany(producer, 50);
    await clock.advance(200);
    const second = putMany(producer, 50);
    await clock.advance(200);
    assert.equal(kinesis.calls.length, 2);
    const [call0, call1] = kinesis.calls as [HandCall, HandCall];
    const data0 = call0.input.Records[0]!.Data;
    assert.notEqual(call1.input.Records[0]!.Data.buffer, data0.buffer, "pending: not reused");
    assert.deepEqual(data0, call0.sent[0], "pending: not overwritten");
    assert.deepEqual(decoded(call0), first.records);
    assert.equal(lent(), 2);

    kinesis.store(0);
    await clock.advance(0);
    assert.equal(lent(), 1);
    const third = putMany(producer, 50);
    await clock.advance(200);
    const call2 = kinesis.calls[2]!;
    assert.equal(call2.input.Records[0]!.Data.buffer, data0.buffer, "settled: reused");
    assert.deepEqual(decoded(call2), third.records, "the bytes sent are exactly the aggregate");
    assert.deepEqual(decoded(call1), second.records);

    kinesis.store(1);
    kinesis.store(2);
    const closing = producer.close();
    await clock.advance(0);
    await closing;
    const results = await Promise.all([...first.results, ...second.results, ...third.results]);
    assert.ok(results.every((result) => result.success));
    assert.equal(lent(), 0, "close() has every buffer back");
  });
});

test("Producer re-aggregates records after a throttle and a timeout, and sends their bytes intact", async () => {
  await withPools(async (lent) => {
    const clock = new FakeClock(0);
    const kinesis = new HandKinesis();
    const producer = handProducer(kinesis, clock);
    const batch = putMany(producer, 40);
    await clock.advance(200);
    assert.equal(kinesis.calls.length, 1);
    kinesis.throttle(0);
    for (let i = 0; i < 100 && kinesis.calls.length < 2; i++) await clock.advance(100);
    const retry = kinesis.calls[1]!;
    assert.deepEqual(decoded(retry), batch.records, "the retry carries the same records");
    // The retry times out; its bytes stay as they were until the call is aborted.
    for (let i = 0; i < 200 && kinesis.calls.length < 3; i++) {
      if (!retry.settled) {
        assert.deepEqual(retry.input.Records[0]!.Data, retry.sent[0], "not overwritten");
      }
      await clock.advance(100);
    }
    assert.equal(retry.settled, true, "aborted by requestTimeoutMs");
    // Each record backs off on its own after a timeout, so they come back in several calls.
    let settled = 0;
    void Promise.all(batch.results).then(() => settled = 1);
    for (let i = 0, answered = 2; i < 200 && settled === 0; i++) {
      while (answered < kinesis.calls.length) kinesis.store(answered++);
      await clock.advance(100);
    }
    const again = kinesis.calls.slice(2).flatMap(decoded);
    assert.deepEqual(byKey(again), byKey(batch.records), "sent again after the timeout, intact");
    const results: RecordResult[] = await Promise.all(batch.results);
    assert.ok(results.every((result) => result.success));
    assert.deepEqual(results[0]!.attempts.map((attempt) => attempt.errorCode), [
      "ProvisionedThroughputExceededException",
      "RequestTimeout",
      undefined,
    ]);
    const closing = producer.close();
    await clock.advance(0);
    await closing;
    assert.equal(lent(), 0);
  });
});

test("Producer.close() gets back the buffers of calls it aborts and of records that expired unsent", async () => {
  await withPools(async (lent) => {
    const clock = new FakeClock(0);
    const kinesis = new HandKinesis();
    const producer = handProducer(kinesis, clock);
    const sent = putMany(producer, 20);
    await clock.advance(200);
    assert.equal(kinesis.calls.length, 1);
    const buffered = putMany(producer, 20);
    await clock.advance(50);
    const closing = producer.close({ timeoutMs: 1000 });
    await clock.advance(1000);
    await clock.advance(0);
    await closing;
    const results = await Promise.all([...sent.results, ...buffered.results]);
    assert.equal(results.filter((result) => result.success).length, 0);
    assert.ok(kinesis.calls.every((call) => call.settled), "every call ended");
    assert.equal(lent(), 0, "every aggregate's buffer came back");
  });
});
