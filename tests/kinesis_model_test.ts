import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeAggregated } from "../src/codec.ts";
import { Producer } from "../src/producer.ts";
import { silentLogger } from "../src/logger.ts";
import { InMemorySink } from "../sinks/mod.ts";
import { InMemoryKinesis, shardStartHashKey, THROTTLED } from "../testing/kinesis_model.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { startKinesisModelServer } from "./support/kinesis_model_server.ts";
import { hashInShard } from "./support/records.ts";

const signal = new AbortController().signal;
const KiB = 1024;

function entries(count: number, bytes: number, shard = 0, shards = 2) {
  return Array.from({ length: count }, (_, i) => ({
    PartitionKey: `k${String(i).padStart(4, "0")}`,
    ExplicitHashKey: hashInShard(shard, shards),
    Data: new Uint8Array(bytes),
  }));
}

test("InMemoryKinesis routes entries by hash key and numbers them in order per shard", () => {
  const model = new InMemoryKinesis({ clock: new FakeClock(0), streams: { s: 2 } });
  const out = model.putRecords({
    StreamName: "s",
    Records: [
      { PartitionKey: "a", ExplicitHashKey: shardStartHashKey(1, 2), Data: new Uint8Array(1) },
      { PartitionKey: "b", ExplicitHashKey: "0", Data: new Uint8Array(1) },
      { PartitionKey: "c", ExplicitHashKey: shardStartHashKey(1, 2), Data: new Uint8Array(1) },
    ],
  });
  assert.equal(out.FailedRecordCount, 0);
  const shards = out.Records!.map((entry) => entry.ShardId);
  assert.deepEqual(shards, [
    "shardId-000000000001",
    "shardId-000000000000",
    "shardId-000000000001",
  ]);
  assert.ok(BigInt(out.Records![2]!.SequenceNumber!) > BigInt(out.Records![0]!.SequenceNumber!));
  const listed = model.listShards({ StreamName: "s" }).Shards!;
  assert.equal(listed[1]!.HashKeyRange!.StartingHashKey, shardStartHashKey(1, 2));
  assert.equal(listed[1]!.HashKeyRange!.EndingHashKey, String((1n << 128n) - 1n));
});

test("InMemoryKinesis throttles entries past 1000 records per shard in its one-second bucket, then refills", async () => {
  const clock = new FakeClock(0);
  const model = new InMemoryKinesis({ clock, streams: { s: 2 } });
  for (let i = 0; i < 2; i++) {
    const ok = model.putRecords({ StreamName: "s", Records: entries(500, 1) }, "p1");
    assert.equal(ok.FailedRecordCount, 0);
  }
  const first = model.putRecords({ StreamName: "s", Records: entries(200, 1) }, "p1");
  assert.equal(first.FailedRecordCount, 200);
  assert.deepEqual(first.Records![0], {
    ErrorCode: THROTTLED,
    ErrorMessage:
      "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012.",
  });
  const other = model.putRecords({ StreamName: "s", Records: entries(10, 1, 1) }, "p2");
  assert.equal(other.FailedRecordCount, 0, "the other shard has its own buckets");
  await clock.advance(100);
  const later = model.putRecords({ StreamName: "s", Records: entries(200, 1) }, "p1");
  assert.equal(later.FailedRecordCount, 100, "100 ms refills 100 records");
  const [second] = model.seconds();
  assert.deepEqual(second!.producers.p1, {
    entries: 1100,
    userRecords: 1100,
    bytes: 1100 * 6,
    throttled: 300,
  });
  assert.equal(second!.shards["shardId-000000000001"]!.entries, 10);
});

test("InMemoryKinesis throttles past 1 MiB of data and partition keys per second, with a configurable bucket", async () => {
  const clock = new FakeClock(0);
  const model = new InMemoryKinesis({ clock, streams: { s: 1 }, bucketSeconds: 2 });
  const out = model.putRecords({ StreamName: "s", Records: entries(30, 100 * KiB, 0, 1) });
  // Two seconds of capacity: 2 MiB holds 20 entries of 100 KiB plus their 5-byte keys.
  assert.equal(out.FailedRecordCount, 10);
  await clock.advance(1000);
  assert.equal(model.seconds().length, 2);
  const next = model.putRecords({ StreamName: "s", Records: entries(12, 100 * KiB, 0, 1) });
  assert.equal(next.FailedRecordCount, 2, "one second refills 1 MiB");
});

test("InMemoryKinesis gives stored records back deaggregated, and counts user records", () => {
  const model = new InMemoryKinesis({ clock: new FakeClock(0), streams: { s: 1 } });
  const aggregate = encodeAggregated([
    { partitionKey: "u1", data: new Uint8Array([1]) },
    { partitionKey: "u2", data: new Uint8Array([2]) },
  ]);
  model.putRecords({
    StreamName: "s",
    Records: [
      { PartitionKey: "a", Data: aggregate },
      { PartitionKey: "raw", Data: new Uint8Array([3]) },
    ],
  }, "p");
  const records = model.records("s");
  assert.deepEqual(records.map((record) => [record.partitionKey, record.subSequenceNumber]), [
    ["u1", 0],
    ["u2", 1],
    ["raw", 0],
  ]);
  assert.deepEqual([...records[1]!.data], [2]);
  assert.equal(records[0]!.sequenceNumber, records[1]!.sequenceNumber);
  assert.equal(model.seconds()[0]!.producers.p!.userRecords, 3);
});

test("InMemoryKinesis answers an unknown stream with ResourceNotFoundException", async () => {
  const model = new InMemoryKinesis({ clock: new FakeClock(0), streams: { s: 1 } });
  await assert.rejects(
    model.client().putRecords({ StreamName: "nope", Records: entries(1, 1) }, { signal }),
    { name: "ResourceNotFoundException" },
  );
  assert.throws(
    () => new InMemoryKinesis({ clock: new FakeClock(0), streams: { s: 0 } }),
    RangeError,
  );
});

test("InMemoryKinesis answers after its latency on the injected clock, and honours aborts", async () => {
  const clock = new FakeClock(0);
  const model = new InMemoryKinesis({ clock, streams: { s: 1 }, latencyMs: 20 });
  const client = model.client();
  let answered = false;
  const call = client.putRecords({ StreamName: "s", Records: entries(1, 1, 0, 1) }, { signal })
    .then(() => answered = true);
  await clock.advance(19);
  assert.equal(answered, false);
  await clock.advance(1);
  await call;
  assert.equal(answered, true);
  const controller = new AbortController();
  const aborted = client.listShards({ StreamName: "s" }, { signal: controller.signal });
  controller.abort(new Error("stop"));
  await assert.rejects(aborted, /stop/);
  assert.equal(clock.pendingTimers, 0);
});

test("Producer counts every throttled entry in ErrorsByCode, as the model counts them", async () => {
  const clock = new FakeClock(0);
  const model = new InMemoryKinesis({ clock, streams: { s: 1 } });
  const sink = new InMemorySink();
  const producer = new Producer({
    stream: "s",
    kinesisClient: model.client("p"),
    clock,
    logger: silentLogger,
    random: () => 0.5,
    aggregationEnabled: false,
    metricsLevel: "summary",
    metricsSink: sink,
    recordTtlMs: 120_000,
  });
  const results = Array.from(
    { length: 3000 },
    (_, i) => producer.put({ partitionKey: `k${i}`, data: "x" }),
  );
  for (let i = 0; i < 100; i++) await clock.advance(100);
  const settled = await Promise.all(results);
  assert.ok(settled.every((result) => result.success));
  const closing = producer.close();
  await clock.advance(2000);
  await closing;
  const throttled = model.seconds().reduce(
    (sum, second) => sum + (second.producers.p?.throttled ?? 0),
    0,
  );
  assert.ok(throttled > 0, "the limiter's 150% ceiling runs the shard into throttles at first");
  const counted = sink.byName("ErrorsByCode")
    .filter((datum) => datum.dimensions.error_code === THROTTLED)
    .reduce((sum, datum) => sum + datum.count, 0);
  assert.equal(counted, throttled);
  const [state] = producer.shardStates();
  assert.equal(state!.shardId, "shardId-000000000000");
  assert.ok(state!.throttles > 0);
  assert.ok(state!.ratePercent < 150, "the rate came down from the ceiling");
  assert.equal(state!.queuedRecords, 0);
});

test("Kinesis model server answers the SDK and counts each producer by its access key id", async () => {
  const server = await startKinesisModelServer({ streams: { s: 2 } });
  try {
    const producers = ["alpha", "beta"].map((id) =>
      new Producer({
        stream: "s",
        endpoint: server.endpoint,
        region: "us-east-1",
        credentials: { accessKeyId: id, secretAccessKey: "not-a-secret" },
        logger: silentLogger,
      })
    );
    const results = await Promise.all(
      producers.flatMap((producer, p) =>
        Array.from(
          { length: 50 },
          (_, i) => producer.put({ partitionKey: `${p}-${i}`, data: "hi" }),
        )
      ),
    );
    assert.ok(results.every((result) => result.success));
    await Promise.all(producers.map((producer) => producer.close()));
    const counts = { alpha: 0, beta: 0 };
    for (const second of server.model.seconds()) {
      counts.alpha += second.producers.alpha?.userRecords ?? 0;
      counts.beta += second.producers.beta?.userRecords ?? 0;
    }
    assert.deepEqual(counts, { alpha: 50, beta: 50 });
    const keys = server.model.records("s").map((record) => record.partitionKey).sort();
    assert.equal(keys.length, 100);
    assert.equal(new Set(keys).size, 100);
  } finally {
    await server.close();
  }
});
