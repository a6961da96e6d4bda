import { test } from "node:test";
import assert from "node:assert/strict";
import { Aggregator } from "../src/aggregator.ts";
import { decodeAggregated } from "../src/codec.ts";
import { hashKeyToDecimal } from "../src/hash_key.ts";
import { type KinesisRecord, membersOf } from "../src/kinesis_record.ts";
import { silentLogger } from "../src/logger.ts";
import { Scheduler } from "../src/scheduler.ts";
import { type Shard, ShardMap } from "../src/shard_map.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { InMemoryKinesis } from "../testing.ts";
import { hashInShard, pendingRecord } from "./support/records.ts";

interface Setup {
  clock: FakeClock;
  map: ShardMap;
  aggregator: Aggregator;
  emitted: KinesisRecord[];
  /** Lets the predictor answer (once the map is ready). */
  allowPredictions(): void;
}

async function setup(
  options: {
    shards?: number;
    maxCount?: number;
    maxSize?: number;
    enabled?: boolean;
    ready?: boolean;
  } = {},
): Promise<Setup> {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const kinesis = new InMemoryKinesis({ clock, streams: { stream: options.shards ?? 4 } })
    .client();
  const map = new ShardMap({
    stream: "stream",
    listShards: (input, callOptions) => kinesis.listShards(input, callOptions),
    scheduler,
    logger: silentLogger,
  });
  let predictable = options.ready ?? true;
  if (predictable) {
    map.start();
    await clock.advance(0);
    assert.equal(map.state, "ready");
  }
  const emitted: KinesisRecord[] = [];
  const aggregator = new Aggregator({
    scheduler,
    enabled: options.enabled ?? true,
    maxCount: options.maxCount ?? 4294967295,
    maxSize: options.maxSize ?? 51200,
    predict: (record) => (predictable ? map.predict(record) : null),
    onKinesisRecord: (record) => emitted.push(record),
  });
  return {
    clock,
    map,
    aggregator,
    emitted,
    allowPredictions() {
      predictable = true;
    },
  };
}

test("Aggregator.put() closes a Kinesis record when aggregationMaxCount is reached", async () => {
  const { aggregator, emitted, clock } = await setup({ maxCount: 3 });
  for (let i = 0; i < 7; i++) {
    aggregator.put(pendingRecord({ explicitHashKey: hashInShard(1, 4, BigInt(i)) }));
  }
  assert.deepEqual(emitted.map((record) => record.count), [3, 3]);
  assert.equal(aggregator.bufferedRecords, 1);
  await clock.advance(100);
  assert.deepEqual(emitted.map((record) => record.count), [3, 3, 1]);
  assert.equal(aggregator.bufferedRecords, 0);
});

test("Aggregator.put() never lets an aggregated record exceed aggregationMaxSize", async () => {
  const maxSize = 1000;
  const { aggregator, emitted } = await setup({ maxSize });
  for (let i = 0; i < 200; i++) {
    aggregator.put(
      pendingRecord({ explicitHashKey: hashInShard(2, 4, BigInt(i)), data: 37 + (i % 50) }),
    );
  }
  aggregator.flush();
  assert.ok(emitted.length > 5);
  for (const record of emitted) {
    assert.ok(record.data.length <= maxSize, `${record.data.length} > ${maxSize}`);
  }
  assert.equal(emitted.reduce((sum, record) => sum + record.count, 0), 200);
});

test("Aggregator sends a buffer at its earliest member's deadline", async () => {
  const { aggregator, emitted, clock } = await setup();
  aggregator.put(pendingRecord({ explicitHashKey: hashInShard(0, 4), deadline: 100 }));
  aggregator.put(pendingRecord({ explicitHashKey: hashInShard(0, 4, 1n), deadline: 30 }));
  await clock.advance(29);
  assert.equal(emitted.length, 0);
  await clock.advance(1);
  assert.equal(emitted.length, 1);
  assert.equal(emitted[0]!.count, 2);
  assert.equal(emitted[0]!.deadline, 30);
});

test("Aggregator never packs records predicted to different shards together", async () => {
  const { aggregator, emitted, map } = await setup({ shards: 4 });
  for (let i = 0; i < 400; i++) aggregator.put(pendingRecord({ partitionKey: `user-${i}` }));
  aggregator.flush();
  const shards = new Set<Shard>();
  for (const record of emitted) {
    assert.ok(record.predictedShard !== null);
    shards.add(record.predictedShard);
    for (const member of membersOf(record)) {
      assert.ok(record.predictedShard.holds(member), "member outside its record's shard");
      assert.equal(map.predict(member), record.predictedShard);
    }
  }
  assert.ok(shards.size > 1, "keys should spread over several shards");
});

test("Aggregator aggregates unpredicted records only with records of the same hash key", async () => {
  const { aggregator, emitted } = await setup({ ready: false });
  for (const key of ["alpha", "beta", "alpha", "gamma", "alpha", "beta"]) {
    aggregator.put(pendingRecord({ partitionKey: key }));
  }
  aggregator.put(pendingRecord({ partitionKey: "delta", explicitHashKey: "42" }));
  aggregator.put(pendingRecord({ partitionKey: "epsilon", explicitHashKey: "42" }));
  aggregator.put(pendingRecord({ partitionKey: "alpha", explicitHashKey: "43" }));
  aggregator.flush();
  const groups = emitted.map((record) => ({
    partitionKey: record.partitionKey,
    members: membersOf(record).map((member) => member.partitionKey),
    predicted: record.predictedShard,
  }));
  assert.deepEqual(
    groups.map((group) => group.members.join(",")).sort(),
    ["alpha", "alpha,alpha,alpha", "beta,beta", "delta,epsilon", "gamma"],
  );
  assert.ok(groups.every((group) => group.predicted === null));
  for (const record of emitted) {
    const first = membersOf(record)[0]!;
    for (const member of membersOf(record)) {
      assert.equal(hashKeyToDecimal(member), hashKeyToDecimal(first));
    }
  }
});

test("Aggregator.reroute() moves held records into their shards' buffers", async () => {
  const { aggregator, emitted, map, clock, allowPredictions } = await setup({
    ready: false,
    shards: 1,
  });
  for (const key of ["a1", "b2", "c3"]) aggregator.put(pendingRecord({ partitionKey: key }));
  assert.equal(emitted.length, 0);
  allowPredictions();
  map.start();
  await clock.advance(0);
  aggregator.reroute();
  aggregator.flush();
  assert.equal(emitted.length, 1, "one shard: the three keys share one aggregated record");
  assert.deepEqual(membersOf(emitted[0]!).map((member) => member.partitionKey), ["a1", "b2", "c3"]);
  assert.notEqual(emitted[0]!.predictedShard, null);
});

test("Aggregator with aggregation disabled sends each record alone, still predicted", async () => {
  const { aggregator, emitted } = await setup({ enabled: false });
  const record = pendingRecord({ partitionKey: "solo", explicitHashKey: hashInShard(3, 4) });
  aggregator.put(record);
  assert.equal(emitted.length, 1);
  assert.equal(emitted[0]!.data, record.data);
  assert.equal(emitted[0]!.partitionKey, "solo");
  assert.equal(emitted[0]!.explicitHashKey, hashInShard(3, 4));
  assert.equal(emitted[0]!.predictedShard?.id, "shardId-000000000003");
});

test("Aggregator sends a record bigger than aggregationMaxSize alone and raw", async () => {
  const { aggregator, emitted } = await setup({ maxSize: 500 });
  aggregator.put(pendingRecord({ explicitHashKey: hashInShard(0, 4), data: 10 }));
  const big = pendingRecord({ explicitHashKey: hashInShard(0, 4, 5n), data: 800 });
  aggregator.put(big);
  aggregator.flush();
  assert.equal(emitted.length, 2);
  assert.equal(emitted[1]!.count, 1);
  assert.equal(emitted[1]!.data, big.data, "a lone record is sent raw");
});

test("An aggregated record of different keys routes by 'a' and the first record's hash key", async () => {
  const { aggregator, emitted } = await setup({ shards: 1 });
  const first = pendingRecord({ partitionKey: "first" });
  aggregator.put(first);
  aggregator.put(pendingRecord({ partitionKey: "second" }));
  aggregator.flush();
  const [record] = emitted;
  assert.equal(record!.partitionKey, "a");
  assert.equal(record!.explicitHashKey, hashKeyToDecimal(first));
  const decoded = decodeAggregated(record!.data);
  assert.deepEqual(decoded.map((item) => item.partitionKey), ["first", "second"]);
});

test("An aggregated record of one shared key carries that key and no hash key", async () => {
  const { aggregator, emitted } = await setup({ shards: 2 });
  for (let i = 0; i < 3; i++) aggregator.put(pendingRecord({ partitionKey: "tenant-7" }));
  aggregator.flush();
  assert.equal(emitted.length, 1);
  assert.equal(emitted[0]!.partitionKey, "tenant-7");
  assert.equal(emitted[0]!.explicitHashKey, undefined);
  assert.equal(emitted[0]!.count, 3);
});

test("Aggregator.put() from inside onKinesisRecord lands in the emptied buffer and the record that closed it still respects aggregationMaxSize", async () => {
  // In the producer a Kinesis record can expire downstream while this emit runs, and its
  // unexpired siblings (or records admitted because it failed) come straight back here.
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const kinesis = new InMemoryKinesis({ clock, streams: { stream: 1 } }).client();
  const map = new ShardMap({
    stream: "stream",
    listShards: (input, callOptions) => kinesis.listShards(input, callOptions),
    scheduler,
    logger: silentLogger,
  });
  map.start();
  await clock.advance(0);
  const maxSize = 1000;
  const emitted: KinesisRecord[] = [];
  const comeback = [pendingRecord({ data: 600 })];
  const aggregator: Aggregator = new Aggregator({
    scheduler,
    enabled: true,
    maxCount: 100,
    maxSize,
    predict: (record) => map.predict(record),
    onKinesisRecord: (record) => {
      emitted.push(record);
      const back = comeback.shift();
      if (back !== undefined) aggregator.put(back);
    },
  });
  const all = [pendingRecord({ data: 600 }), pendingRecord({ data: 600 }), ...comeback];
  aggregator.put(all[0]!);
  aggregator.put(all[1]!);
  aggregator.flush();
  for (const record of emitted) {
    assert.ok(record.data.length <= maxSize, `a Kinesis record of ${record.data.length} bytes`);
  }
  const members = emitted.flatMap((record) => membersOf(record));
  assert.equal(members.length, all.length);
  assert.equal(new Set(members).size, all.length, "each record in one Kinesis record");
  for (const record of emitted.filter((item) => item.count > 1)) {
    assert.equal(decodeAggregated(record.data).length, record.count);
  }
  assert.equal(aggregator.bufferedRecords, 0);
});
