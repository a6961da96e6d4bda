import { test } from "node:test";
import assert from "node:assert/strict";
import { Collector, SHARD_SHARE_TRIGGER } from "../src/collector.ts";
import { hashKeyFromDecimal } from "../src/hash_key.ts";
import type { KinesisRecord } from "../src/kinesis_record.ts";
import { Scheduler } from "../src/scheduler.ts";
import { Shard } from "../src/shard_map.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { pendingRecord } from "./support/records.ts";

const MiB = 1024 * 1024;
const shards = [0, 1, 2, 3].map((n) =>
  new Shard(
    `shardId-00000000000${n}`,
    hashKeyFromDecimal(`${n * 10}`),
    hashKeyFromDecimal(`${n * 10 + 9}`),
  )
);

function setup(options: { maxCount?: number; maxSize?: number; lingerMs?: number } = {}) {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const requests: KinesisRecord[][] = [];
  const collector = new Collector({
    scheduler,
    maxCount: options.maxCount ?? 500,
    maxSize: options.maxSize ?? 5 * MiB,
    lingerMs: options.lingerMs ?? 0,
    onRequest: (records) => requests.push(records),
  });
  return { clock, collector, requests };
}

function kinesisRecord(
  shard: Shard | null,
  options: { bytes?: number; deadline?: number; partitionKey?: string } = {},
): KinesisRecord {
  const record = pendingRecord({
    data: options.bytes ?? 10,
    partitionKey: options.partitionKey ?? "k",
    ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
  });
  record.predictedShard = shard;
  return record;
}

function requestSize(records: KinesisRecord[]): number {
  return records.reduce((sum, record) => sum + record.requestSize, 0);
}

test("Collector closes a request at 500 Kinesis records", () => {
  const { collector, requests } = setup();
  for (let i = 0; i < 1001; i++) collector.put(kinesisRecord(shards[i % 4]!));
  assert.deepEqual(requests.map((records) => records.length), [500, 500]);
  assert.equal(collector.bufferedRecords, 1);
});

test("Collector keeps each request under collectionMaxSize, counting key and data bytes", () => {
  const { collector, requests } = setup();
  // Unpredicted records, so the per-shard trigger stays out of the way.
  for (let i = 0; i < 40; i++) {
    collector.put(kinesisRecord(null, { bytes: 200 * 1024 - 1, partitionKey: "x" }));
  }
  collector.flush();
  assert.equal(requests.reduce((sum, records) => sum + records.length, 0), 40);
  for (const records of requests) assert.ok(requestSize(records) <= 5 * MiB);
  assert.equal(requests[0]!.length, 25, "25 × 200 KiB is exactly 5 MiB");
});

test("Collector closes a request when one shard's share reaches 256 KiB", () => {
  const { collector, requests } = setup();
  collector.put(kinesisRecord(shards[1]!, { bytes: 100 * 1024 }));
  collector.put(kinesisRecord(shards[2]!, { bytes: 200 * 1024 }));
  collector.put(kinesisRecord(shards[1]!, { bytes: 100 * 1024 }));
  assert.equal(requests.length, 0);
  collector.put(kinesisRecord(shards[1]!, { bytes: SHARD_SHARE_TRIGGER - 200 * 1024 }));
  assert.equal(requests.length, 1);
  assert.equal(requests[0]!.length, 4);
});

test("Collector counts a shard's share from the first record on, request after request", () => {
  const { collector, requests } = setup();
  // 1 KiB of data and a 1-byte key: one shard reaches 256 KiB at its 256th record, the
  // same record at which the whole request does.
  for (let i = 0; i < 600; i++) collector.put(kinesisRecord(shards[0]!, { bytes: 1024 }));
  assert.deepEqual(requests.map((records) => records.length), [256, 256]);
  assert.equal(collector.bufferedRecords, 600 - 512);
  // Mixed shards: the share counts the records put before the request grew large.
  for (let i = 0; i < 200; i++) collector.put(kinesisRecord(shards[1]!, { bytes: 1024 }));
  collector.flush();
  const mixed = requests[2]!;
  assert.equal(mixed.length, 88 + 200, "no shard reached 256 KiB");
  for (let i = 0; i < 300; i++) {
    collector.put(kinesisRecord(shards[i < 100 ? 2 : 3]!, { bytes: 1024 }));
  }
  assert.equal(requests.length, 3, "shard 3 has 200 KiB, shard 2 100 KiB");
  for (let i = 0; i < 56; i++) collector.put(kinesisRecord(shards[3]!, { bytes: 1024 }));
  assert.equal(
    requests.length,
    4,
    "shard 3 reached 256 KiB with the records before the count began",
  );
  assert.equal(requests[3]!.length, 356);
});

test("Collector sends at the earliest deadline, after the linger", async () => {
  const { collector, requests, clock } = setup({ lingerMs: 20 });
  collector.put(kinesisRecord(shards[0]!, { deadline: 0 }));
  collector.put(kinesisRecord(shards[1]!, { deadline: 0 }));
  await clock.advance(19);
  assert.equal(requests.length, 0, "the linger lets records of other shards join");
  await clock.advance(1);
  assert.equal(requests.length, 1);
  assert.equal(requests[0]!.length, 2);
  collector.put(kinesisRecord(shards[2]!, { deadline: 100 }));
  await clock.advance(79);
  assert.equal(requests.length, 1);
  await clock.advance(1);
  assert.equal(requests.length, 2);
});

test("Collector sends a Kinesis record larger than collectionMaxSize alone", () => {
  const { collector, requests } = setup({ maxSize: 60_000 });
  collector.put(kinesisRecord(shards[0]!, { bytes: 100 }));
  collector.put(kinesisRecord(shards[1]!, { bytes: 70_000 }));
  collector.put(kinesisRecord(shards[2]!, { bytes: 100 }));
  collector.flush();
  assert.deepEqual(requests.map((records) => records.length), [1, 1, 1]);
  assert.equal(requests[1]![0]!.data.length, 70_000);
});

test("Collector counts unpredicted Kinesis records toward the request, not a shard", () => {
  const { collector, requests } = setup();
  for (let i = 0; i < 3; i++) collector.put(kinesisRecord(null, { bytes: 120 * 1024 }));
  assert.equal(requests.length, 0);
  collector.flush();
  assert.equal(requests[0]!.length, 3);
});
