// Records up to 10 MiB: the option ranges, records over 1 MiB travelling alone, the per-shard
// byte bucket, aggregates that stay under `maxRecordSize`, request timeouts that grow with a
// call's size, and end to end on the emulators: kinesis-local stores 1 MiB + 1 B, 5 MiB and
// 10 MiB records in a stream created with MaxRecordSizeInKiB 10240, and refuses a record over
// a 1 MiB stream's limit per entry (InvalidArgumentException); kinesalite refuses any record
// over 1 MiB for the whole request (ValidationException) and a body over about 6 MiB with
// HTTP 413. Each refusal fails the record at once, never its neighbours.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CreateStreamCommand } from "@aws-sdk/client-kinesis";
import { Collector } from "../src/collector.ts";
import { classifyErrorCode } from "../src/error_codes.ts";
import { describeError, type PutRecordsInput } from "../src/kinesis_client.ts";
import type { KinesisRecord } from "../src/kinesis_record.ts";
import { Limiter } from "../src/limiter.ts";
import { silentLogger } from "../src/logger.ts";
import { Producer } from "../src/producer.ts";
import type { RecordResult } from "../src/record.ts";
import { Scheduler } from "../src/scheduler.ts";
import { type PutRecordsCall, Sender } from "../src/sender.ts";
import { hashKeyFromDecimal } from "../src/hash_key.ts";
import { Shard } from "../src/shard_map.ts";
import {
  type Emulator,
  producerOn,
  startKinesalite,
  startKinesisLocal,
  useEmulator,
} from "./support/emulators.ts";
import { FakeClock, settle } from "./support/fake_clock.ts";
import { createStream, uniqueStreamName, waitForActive } from "./support/kinesis_sdk.ts";
import { readStream, reconcile } from "./support/readback.ts";
import { pendingRecord } from "./support/records.ts";

const MiB = 1024 * 1024;
const WHOLE_RANGE = new Shard(
  "shardId-000000000000",
  hashKeyFromDecimal("0"),
  hashKeyFromDecimal("340282366920938463463374607431768211455"),
);

function kinesisRecord(bytes: number, expiresAt = 30_000): KinesisRecord {
  const record = pendingRecord({ data: bytes, now: 0, deadline: 0, expiresAt });
  record.predictedShard = WHOLE_RANGE;
  return record;
}

/** `size` bytes of data plus partition key: the data is `size` minus the key's length. */
function record(partitionKey: string, size: number) {
  const data = new Uint8Array(size - partitionKey.length);
  for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096 + partitionKey.length) % 251;
  return { partitionKey, data };
}

/** A client that stores everything on one shard and remembers every request. */
function acceptingClient() {
  const requests: PutRecordsInput[] = [];
  const client = {
    listShards: () =>
      Promise.resolve({
        Shards: [{
          ShardId: WHOLE_RANGE.id,
          HashKeyRange: { StartingHashKey: "0", EndingHashKey: String(2n ** 128n - 1n) },
        }],
      }),
    putRecords: (input: PutRecordsInput) => {
      requests.push(input);
      return Promise.resolve({
        FailedRecordCount: 0,
        Records: input.Records.map((_, i) => ({ ShardId: WHOLE_RANGE.id, SequenceNumber: `${i}` })),
      });
    },
  };
  return { client, requests };
}

test("Producer options take maxRecordSize and collectionMaxSize up to 10 MiB, and not a byte more", () => {
  const { client } = acceptingClient();
  const options = { kinesisClient: client, maxRecordSize: 10 * MiB, collectionMaxSize: 10 * MiB };
  assert.doesNotThrow(() => new Producer(options));
  assert.throws(
    () => new Producer({ ...options, maxRecordSize: 10 * MiB + 1 }),
    /^RangeError: Cannot create producer as 'maxRecordSize' must be an integer between 1 and 10485760/,
  );
  assert.throws(
    () => new Producer({ ...options, collectionMaxSize: 10 * MiB + 1 }),
    /^RangeError: Cannot create producer as 'collectionMaxSize' must be an integer between 52224 and 10485760/,
  );
});

test("Collector sends a Kinesis record over 1 MiB alone, even when collectionMaxSize has room", () => {
  const clock = new FakeClock(0);
  const requests: number[][] = [];
  const collector = new Collector({
    scheduler: new Scheduler(clock),
    maxCount: 500,
    maxSize: 10 * MiB,
    lingerMs: 0,
    onRequest: (records) => requests.push(records.map((r) => r.data.length)),
  });
  for (const bytes of [100, 2 * MiB, 2 * MiB, 200, MiB - 1000]) {
    collector.put(kinesisRecord(bytes));
  }
  collector.flush();
  assert.deepEqual(requests, [[100], [2 * MiB], [2 * MiB], [200, MiB - 1000]]);
});

test("Limiter admits a 10 MiB Kinesis record from a full bucket, and the next one once it refilled", async () => {
  const clock = new FakeClock(0);
  const admitted: number[] = [];
  const limiter = new Limiter({
    scheduler: new Scheduler(clock),
    rateLimit: 100,
    random: () => 0.5,
    adaptive: false,
    onAdmit: () => admitted.push(clock.now()),
    onExpired: () => assert.fail("nothing expires"),
  });
  limiter.put(kinesisRecord(10 * MiB - 1, 60_000));
  limiter.put(kinesisRecord(10 * MiB - 1, 60_000));
  limiter.put(kinesisRecord(100, 60_000));
  assert.deepEqual(admitted, [0]);
  // 1 MiB/s at rateLimit 100: the second needs the 10 MiB the first took, back in ~10 s.
  await clock.advance(9_000);
  assert.deepEqual(admitted, [0]);
  await clock.advance(1_100);
  assert.equal(admitted.length, 3);
  assert.ok(admitted[1]! <= 10_001 && admitted[2]! >= admitted[1]!);
  assert.equal(limiter.queuedRecords, 0);
});

test("Producer never builds an aggregate over maxRecordSize, with aggregationMaxSize at 10 MiB", async () => {
  const { client, requests } = acceptingClient();
  const producer = new Producer({
    kinesisClient: client,
    stream: "events",
    maxRecordSize: 10 * MiB,
    aggregationMaxSize: 10 * MiB,
    collectionMaxSize: 10 * MiB,
    // 36 MiB for one shard: a rate far above Kinesis' keeps the test from waiting for tokens.
    rateLimit: 10_000,
    logger: silentLogger,
  });
  await producer.ready();
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => producer.put(record(`k${i}`, 3 * MiB))),
  );
  await producer.close();
  assert.ok(results.every((result) => result.success));
  const entries = requests.flatMap((request) => request.Records);
  for (const entry of entries) {
    assert.ok(entry.Data.length + entry.PartitionKey.length <= 10 * MiB, `${entry.Data.length}`);
  }
  // Three 3 MiB records fit one aggregate under 10 MiB; every such entry travels alone.
  assert.ok(entries.length < 12);
  assert.ok(requests.every((request) => request.Records.length === 1));
});

test("Sender gives a call beyond the classic limits more time, but no more than its TTL", async () => {
  const clock = new FakeClock(0);
  const ended: PutRecordsCall[] = [];
  const sender = new Sender({
    client: () =>
      Promise.resolve({
        putRecords: (_input, { signal }) =>
          new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
        listShards: () => Promise.reject(new Error("not used")),
      }),
    scheduler: new Scheduler(clock),
    maxInFlight: 10,
    requestTimeoutMs: 6000,
    logger: silentLogger,
    onExpired: () => assert.fail("nothing expires in the queue"),
    onResult: (call) => ended.push(call),
  });
  sender.send("s", [kinesisRecord(MiB - 100, 600_000)]); // classic: 6 s
  sender.send("s", [kinesisRecord(6 * MiB, 600_000)]); // 6 × 6 s = 36 s
  sender.send("s", [kinesisRecord(10 * MiB - 100, 20_000)]); // 60 s, but the TTL ends at 20 s
  await settle();
  const endedAt = async (ms: number) => {
    await clock.advance(ms - clock.now());
    await settle();
    return ended.map((call) => `${call.records[0]!.data.length}:${call.error?.code}`);
  };
  assert.deepEqual(await endedAt(6001), [`${MiB - 100}:RequestTimeout`]);
  assert.equal((await endedAt(19_999)).length, 1);
  assert.equal((await endedAt(20_001)).length, 2);
  assert.equal((await endedAt(35_999)).length, 2);
  assert.equal((await endedAt(36_001)).length, 3);
  await sender.idle();
});

test("describeError reads HTTP 413 as RequestEntityTooLarge, a permanent code", () => {
  const error = Object.assign(new Error("UnknownError"), {
    name: "Unknown",
    $metadata: { httpStatusCode: 413 },
  });
  const described = describeError(error, false);
  assert.equal(described.code, "RequestEntityTooLarge");
  assert.equal(classifyErrorCode(described.code), "permanent");
});

/** Result expectations for reconcile(). */
function expectations(results: RecordResult[]) {
  return results.map((result) => ({
    shardId: result.shardId!,
    sequenceNumber: result.sequenceNumber!,
    subSequenceNumber: result.subSequenceNumber!,
    data: result.record.data,
    partitionKey: result.record.partitionKey,
  }));
}

function largeProducer(emulator: Emulator) {
  return producerOn(emulator, {
    maxRecordSize: 10 * MiB,
    collectionMaxSize: 10 * MiB,
    // kinesis-local needs about 2 s per MiB through the SDK on a busy machine.
    recordTtlMs: 120_000,
  });
}

describe("Large records against kinesis-local", () => {
  const env = useEmulator(startKinesisLocal);

  test("kinesis-local stores records of 1 MiB + 1 B, 5 MiB and 10 MiB in a 10 MiB stream, read back equal", async () => {
    const stream = uniqueStreamName("large");
    // The 10 MiB record gets a stream of its own: kinesis-local stores it, but its GetRecords
    // answers HTTP 500 ("last on empty queue") for a record of 10 MiB (9.5 MiB reads back).
    const alone = uniqueStreamName("large-10");
    for (const name of [stream, alone]) {
      await env.client.send(
        new CreateStreamCommand({ StreamName: name, ShardCount: 1, MaxRecordSizeInKiB: 10240 }),
      );
      await waitForActive(env.client, name);
    }
    const producer = largeProducer(env.emulator);
    const sizes = [MiB + 1, 5 * MiB];
    const [results, tenMiB] = await Promise.all([
      Promise.all(sizes.map((size, i) => producer.put({ stream, ...record(`big-${i}`, size) }))),
      producer.put({ stream: alone, ...record("ten", 10 * MiB) }),
    ]);
    await producer.close();
    assert.deepEqual([...results, tenMiB].map((r) => [r.success, r.errorCode, r.attempts.length]), [
      [true, undefined, 1],
      [true, undefined, 1],
      [true, undefined, 1],
    ]);
    assert.match(tenMiB.sequenceNumber ?? "", /^\d+$/);
    // One record per GetRecords, so no answer holds more than one large record.
    const contents = await readStream(env.client, stream, { limit: 1 });
    assert.deepEqual(
      contents.records.map((found) => found.data.length + found.partitionKey.length).sort(),
      [...sizes].sort(),
    );
    const report = reconcile(contents.records, expectations(results));
    assert.deepEqual([report.found, report.missing, report.mismatched], [2, 0, 0]);
  });

  test("kinesis-local refuses a 1 MiB + 1 B record in a 1 MiB stream with InvalidArgumentException, at once", async () => {
    const stream = uniqueStreamName("classic");
    await createStream(env.client, stream);
    const producer = largeProducer(env.emulator);
    const [big, small] = await Promise.all([
      producer.put({ stream, ...record("big", MiB + 1 + 3) }),
      producer.put({ stream, ...record("small", 1000) }),
    ]);
    await producer.close();
    assert.equal(big!.success, false);
    assert.equal(big!.errorCode, "InvalidArgumentException");
    assert.match(big!.errorMessage ?? "", /exceeds the stream's max record size of 1048576/);
    assert.equal(big!.attempts.length, 1);
    assert.equal(small!.success, true);
  });
});

describe("Large records against kinesalite", () => {
  const env = useEmulator(startKinesalite);

  test("kinesalite refuses records over 1 MiB at once (ValidationException, HTTP 413), their neighbours stored", async () => {
    const stream = uniqueStreamName("classic");
    await createStream(env.client, stream);
    const producer = largeProducer(env.emulator);
    const [over, huge, small] = await Promise.all([
      producer.put({ stream, ...record("over", MiB + 1 + 4) }),
      producer.put({ stream, ...record("huge", 6 * MiB) }),
      producer.put({ stream, ...record("small", 1000) }),
    ]);
    await producer.close();
    assert.deepEqual(
      [over, huge, small].map((r) => [r!.success, r!.errorCode, r!.attempts.length]),
      [
        [false, "ValidationException", 1],
        [false, "RequestEntityTooLarge", 1],
        [true, undefined, 1],
      ],
    );
  });
});
