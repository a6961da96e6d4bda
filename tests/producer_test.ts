import { test } from "node:test";
import assert from "node:assert/strict";
import {
  isProducerClosedError,
  isValidationError,
  ProducerClosedError,
  type RecordField,
} from "../src/errors.ts";
import { Producer } from "../src/producer.ts";
import type { UserRecord } from "../src/record.ts";
import { harness } from "./support/harness.ts";
import { serviceError } from "./support/fake_kinesis.ts";
import { InMemoryKinesis } from "../testing.ts";
import { FakeClock, settle } from "./support/fake_clock.ts";
import { silentLogger } from "../src/logger.ts";
import { hashInShard } from "./support/records.ts";

test("Producer.put() resolves with the record itself, its shard, sequence and timings", async () => {
  const { producer, clock } = harness();
  const record = { partitionKey: "user-1", data: new Uint8Array([1, 2, 3]) };
  const pending = producer.put(record);
  await clock.advance(150);
  const result = await pending;
  assert.equal(result.record, record, "the original record comes back, not a copy");
  assert.equal(result.success, true);
  assert.match(result.shardId!, /^shardId-\d{12}$/);
  assert.equal(typeof result.sequenceNumber, "string");
  const [attempt] = result.attempts;
  assert.equal(attempt!.delayMs, 120, "100 ms buffered + 20 ms collector linger");
  assert.equal(attempt!.durationMs, 0);
  assert.equal(attempt!.startedAt, clock.now() - 30);
  await producer.close();
});

test("Producer.put() encodes string data as UTF-8", async () => {
  const { producer, clock, kinesis } = harness({ aggregationEnabled: false });
  const pending = producer.put({ partitionKey: "k", data: "héllo ✓" });
  await clock.advance(200);
  await pending;
  assert.deepEqual(kinesis.stored[0]!.data, new TextEncoder().encode("héllo ✓"));
  await producer.close();
});

test("Producer.enqueue() resolves on admission with a receipt that settles later", async () => {
  const { producer, clock } = harness();
  const receipt = await producer.enqueue({ partitionKey: "k", data: "x" });
  assert.equal(receipt.settled, false);
  assert.equal(producer.outstandingRecords, 1);
  await clock.advance(200);
  const result = await receipt.result;
  assert.equal(receipt.settled, true);
  assert.equal(result.success, true);
  assert.equal(receipt.result, receipt.result, "the same promise every time");
  await producer.close();
});

test("Producer.tryPut() admits when there is room and returns undefined when full", async () => {
  const { producer, clock } = harness({ maxOutstandingRecords: 2 });
  const first = producer.tryPut({ partitionKey: "a", data: "1" });
  const second = producer.tryPut({ partitionKey: "b", data: "2" });
  assert.ok(first !== undefined && second !== undefined);
  assert.equal(producer.tryPut({ partitionKey: "c", data: "3" }), undefined);
  await clock.advance(200);
  await first.result;
  assert.ok(producer.tryPut({ partitionKey: "c", data: "3" }) !== undefined);
  await clock.advance(200);
  await producer.close();
});

test("Producer never has more than maxOutstandingRecords outstanding under 10,000 concurrent puts", async () => {
  const { producer, clock, kinesis } = harness({ maxOutstandingRecords: 100 });
  let peak = 0;
  kinesis.putHook = () => {
    peak = Math.max(peak, producer.outstandingRecords);
    return undefined;
  };
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 10_000; i++) {
    pending.push(
      producer.put({ partitionKey: `user-${i % 1000}`, data: `payload-${i}` }).then(() => {
        peak = Math.max(peak, producer.outstandingRecords);
      }),
    );
    peak = Math.max(peak, producer.outstandingRecords);
  }
  for (let step = 0; step < 1000 && producer.outstandingRecords > 0; step++) {
    await clock.advance(50);
  }
  await Promise.all(pending);
  assert.equal(peak, 100);
  assert.equal(kinesis.stored.length > 0, true);
  assert.equal(producer.outstandingRecords, 0);
  await producer.close();
});

test("Producer never has more than maxOutstandingBytes outstanding", async () => {
  const { producer, clock } = harness({ maxOutstandingBytes: 1048576, maxRecordSize: 1048576 });
  let peak = 0;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    pending.push(producer.put({ partitionKey: `k${i}`, data: new Uint8Array(20_000) }));
    peak = Math.max(peak, producer.outstandingBytes);
  }
  assert.ok(producer.outstandingBytes <= 1048576);
  for (let step = 0; step < 200 && producer.outstandingRecords > 0; step++) {
    await clock.advance(50);
    peak = Math.max(peak, producer.outstandingBytes);
  }
  await Promise.all(pending);
  assert.ok(peak <= 1048576 && peak > 1048576 - 20_010, `peak ${peak}`);
  await producer.close();
});

test("Producer.put() stops waiting for admission when its signal aborts, disturbing nothing else", async () => {
  const { producer, clock } = harness({ maxOutstandingRecords: 1 });
  const first = producer.put({ partitionKey: "a", data: "1" });
  const controller = new AbortController();
  const blocked = producer.put({ partitionKey: "b", data: "2" }, { signal: controller.signal });
  const third = producer.put({ partitionKey: "c", data: "3" });
  controller.abort(new Error("caller gave up"));
  await assert.rejects(blocked, /caller gave up/);
  await clock.advance(500);
  assert.equal((await first).success, true);
  assert.equal((await third).success, true);
  await producer.close();
});

test("Producer.flush() sends at once and resolves when the records outstanding at the call settle", async () => {
  const { producer, clock, kinesis } = harness({ recordMaxBufferedTimeMs: 60_000 });
  const pending = producer.put({ partitionKey: "k", data: "x" });
  kinesis.holding = true;
  let flushed = false;
  const flushing = producer.flush().then(() => {
    flushed = true;
  });
  await clock.advance(0);
  assert.equal(kinesis.heldCalls, 1, "flush sent the buffered record without waiting 60 s");
  assert.equal(flushed, false, "flush waits for settlement");
  kinesis.holding = false;
  kinesis.release();
  await clock.advance(0);
  await flushing;
  assert.equal((await pending).success, true);
  await producer.close();
});

test("Producer.flush() waits for retries and rejects only with its signal's reason", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.putHook = (
    _input,
    call,
  ) => (call === 0 ? serviceError("InternalFailure", "x", 500) : undefined);
  const pending = producer.put({ partitionKey: "k", data: "x" });
  const controller = new AbortController();
  const aborted = producer.flush({ signal: controller.signal });
  let done = false;
  const flushing = producer.flush().then(() => void (done = true));
  await clock.advance(0);
  controller.abort(new Error("stop waiting"));
  await assert.rejects(aborted, /stop waiting/);
  assert.equal(done, false);
  await clock.advance(1000);
  await flushing;
  assert.equal((await pending).attempts.length, 2);
  await producer.close();
});

test("Producer.close() settles buffered and in-flight records, then refuses new ones", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.holding = true;
  const inFlight = producer.put({ partitionKey: "a", data: "1" });
  await clock.advance(150);
  assert.equal(kinesis.heldCalls, 1);
  kinesis.holding = false;
  const buffered = producer.put({ partitionKey: "b", data: "2" });
  const closing = producer.close();
  assert.equal(producer.close(), closing, "close() is idempotent");
  await assert.rejects(producer.put({ partitionKey: "c", data: "3" }), ProducerClosedError);
  assert.throws(() => producer.tryPut({ partitionKey: "c", data: "3" }), isProducerClosedError);
  kinesis.release();
  await clock.advance(100);
  await closing;
  assert.equal((await inFlight).success, true);
  assert.equal((await buffered).success, true);
  assert.equal(kinesis.closed, true, "the client was released");
  assert.equal(producer.outstandingRecords, 0);
  assert.equal(clock.pendingTimers, 0, "no timer left behind");
});

test("Producer.close() rejects puts still waiting for admission with ProducerClosedError", async () => {
  const { producer, clock } = harness({ maxOutstandingRecords: 1 });
  const first = producer.put({ partitionKey: "a", data: "1" });
  const waiting = producer.put({ partitionKey: "b", data: "2" });
  const closing = producer.close();
  await assert.rejects(waiting, isProducerClosedError);
  await clock.advance(200);
  await closing;
  assert.equal((await first).success, true);
});

test("Producer[Symbol.asyncDispose]() closes the producer", async () => {
  const { producer, clock } = harness();
  const pending = producer.put({ partitionKey: "a", data: "1" });
  const disposing = producer[Symbol.asyncDispose]();
  await clock.advance(200);
  await disposing;
  assert.equal(producer.closed, true);
  assert.equal((await pending).success, true);
});

test("Producer reports outstanding records, bytes and the oldest record's age", async () => {
  const { producer, clock } = harness();
  assert.equal(producer.oldestRecordAgeMs, 0);
  const a = producer.put({ partitionKey: "ab", data: "123" });
  await clock.advance(30);
  const b = producer.put({ partitionKey: "c", data: "4567" });
  assert.equal(producer.outstandingRecords, 2);
  assert.equal(producer.outstandingBytes, 5 + 5);
  assert.equal(producer.oldestRecordAgeMs, 30);
  await clock.advance(200);
  await Promise.all([a, b]);
  assert.equal(producer.outstandingRecords, 0);
  assert.equal(producer.outstandingBytes, 0);
  assert.equal(producer.oldestRecordAgeMs, 0);
  await producer.close();
});

const badRecords: [string, unknown, RecordField][] = [
  ["a missing partition key", { data: "x" }, "partitionKey"],
  ["an empty partition key", { partitionKey: "", data: "x" }, "partitionKey"],
  [
    "a partition key over 256 characters",
    { partitionKey: "k".repeat(257), data: "x" },
    "partitionKey",
  ],
  ["a lone surrogate in the key", { partitionKey: "a\uD800b", data: "x" }, "partitionKey"],
  ["data over maxRecordSize", { partitionKey: "k", data: new Uint8Array(1048576) }, "data"],
  ["data that is neither bytes nor a string", { partitionKey: "k", data: 42 }, "data"],
  ["an ArrayBuffer as data", { partitionKey: "k", data: new ArrayBuffer(4) }, "data"],
  [
    "a hash key with leading zeros",
    { partitionKey: "k", data: "x", explicitHashKey: "0042" },
    "explicitHashKey",
  ],
  ["a hash key of 2^128", {
    partitionKey: "k",
    data: "x",
    explicitHashKey: (1n << 128n).toString(),
  }, "explicitHashKey"],
  [
    "a hash key in hex",
    { partitionKey: "k", data: "x", explicitHashKey: "0x10" },
    "explicitHashKey",
  ],
  [
    "a negative hash key",
    { partitionKey: "k", data: "x", explicitHashKey: "-1" },
    "explicitHashKey",
  ],
  ["a stream name with a space", { stream: "bad name", partitionKey: "k", data: "x" }, "stream"],
  ["a record that is not an object", "just a string", "record"],
];

for (const [name, record, field] of badRecords) {
  test(`Producer.put() rejects ${name} with a ValidationError and disturbs nothing else`, async () => {
    const { producer, clock } = harness();
    const before = producer.put({ partitionKey: "before", data: "1" });
    const bad = producer.put(record as UserRecord);
    const after = producer.put({ partitionKey: "after", data: "2" });
    await assert.rejects(bad, (error: unknown) => {
      assert.ok(isValidationError(error), String(error));
      assert.equal(error.field, field);
      return true;
    });
    assert.equal(producer.outstandingRecords, 2);
    await clock.advance(200);
    assert.equal((await before).success, true);
    assert.equal((await after).success, true);
    await producer.close();
  });
}

test("Producer.put() rejects a record with no stream when the producer has no default", async () => {
  const { producer } = harness({ stream: undefined as unknown as string });
  await assert.rejects(
    producer.put({ partitionKey: "k", data: "x" }),
    (error: unknown) => isValidationError(error) && error.field === "stream",
  );
  await producer.close();
});

test("Producer.tryPut() throws a ValidationError synchronously", () => {
  const { producer } = harness();
  assert.throws(() => producer.tryPut({ partitionKey: "", data: "x" }), isValidationError);
  return producer.close();
});

test("Producer fails records of a stream that does not exist fast, with ResourceNotFoundException", async () => {
  const { producer, clock } = harness();
  const pending = producer.put({ stream: "missing", partitionKey: "k", data: "x" });
  await clock.advance(200);
  const result = await pending;
  assert.equal(result.success, false);
  assert.equal(result.errorCode, "ResourceNotFoundException");
  assert.ok(result.attempts.at(-1)!.endedAt < 1000, "well under the 30 s TTL");
  await producer.close();
});

test("Producer keeps a healthy stream flowing while another stream's listing keeps failing", async () => {
  const clock = new FakeClock(0);
  const kinesis = new InMemoryKinesis({ clock, streams: { healthy: 2, broken: 2 } });
  kinesis.fail({
    operation: "listShards",
    stream: "broken",
    outcome: { code: "LimitExceededException", message: "slow down" },
  });
  const producer = new Producer({ kinesisClient: kinesis.client(), clock, logger: silentLogger });
  const broken = producer.put({ stream: "broken", partitionKey: "k", data: "x" });
  const healthy = producer.put({ stream: "healthy", partitionKey: "k", data: "x" });
  await clock.advance(200);
  assert.equal((await healthy).success, true);
  const result = await broken;
  assert.equal(result.success, true, "records of the unlisted stream are still sent, unpredicted");
  await producer.close();
});

test("Producer sends records that alternate between streams, and the default, each to its own", async () => {
  const clock = new FakeClock(0);
  const kinesis = new InMemoryKinesis({ clock, streams: { main: 2, left: 2, right: 2 } });
  const producer = new Producer({
    stream: "main",
    kinesisClient: kinesis.client(),
    clock,
    logger: silentLogger,
  });
  const order = ["left", "right", "left", undefined, "main", "right", undefined, "left"];
  const results = order.map((stream, i) =>
    producer.put({ stream, partitionKey: `k${i}`, data: `${stream ?? "main"}-${i}` })
  );
  await clock.advance(200);
  for (const result of await Promise.all(results)) assert.equal(result.success, true);
  for (const stream of ["main", "left", "right"]) {
    const stored = kinesis.records(stream).map((record) => new TextDecoder().decode(record.data));
    const expected = order.flatMap((name, i) =>
      (name ?? "main") === stream ? [`${stream}-${i}`] : []
    );
    assert.deepEqual(stored.sort(), expected.sort());
  }
  await producer.close();
});

test("Producer sends records unpredicted, aggregated by key, until the map is ready", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.listHook = (
    _input,
    call,
  ) => (call === 0 ? serviceError("InternalFailure", "x", 500) : undefined);
  const pending = [
    producer.put({ partitionKey: "same", data: "1" }),
    producer.put({ partitionKey: "same", data: "2" }),
    producer.put({ partitionKey: "other", data: "3", explicitHashKey: hashInShard(3, 4) }),
  ];
  await clock.advance(200);
  const results = await Promise.all(pending);
  assert.ok(results.every((result) => result.success));
  assert.equal(kinesis.putCalls.length, 1);
  const entries = kinesis.putCalls[0]!.Records;
  assert.deepEqual(entries.map((entry) => entry.PartitionKey).sort(), ["other", "same"]);
  await producer.close();
});

test("Producer.close() resolves even when the metrics sink never answers", async () => {
  const { producer, clock } = harness({
    metricsLevel: "summary",
    metricsSink: { export: () => new Promise<void>(() => {}) },
  });
  const pending = producer.put({ partitionKey: "k", data: "x" });
  await clock.advance(200);
  assert.equal((await pending).success, true);
  let closed = false;
  const closing = producer.close({ timeoutMs: 100 }).then(() => void (closed = true));
  await clock.advance(999);
  assert.equal(closed, false, "the final export gets at least one second");
  await clock.advance(1);
  await closing;
  assert.equal(closed, true);
});

// Falsy values that are not valid: each must be refused at the call, never read as
// "absent" (an empty ExplicitHashKey, for one, makes Kinesis reject the whole request).
const FALSY_BUT_INVALID: readonly [string, RecordField, Record<string, unknown>][] = [
  ['explicitHashKey ""', "explicitHashKey", { partitionKey: "k", data: "x", explicitHashKey: "" }],
  ["explicitHashKey 0", "explicitHashKey", { partitionKey: "k", data: "x", explicitHashKey: 0 }],
  ["explicitHashKey false", "explicitHashKey", {
    partitionKey: "k",
    data: "x",
    explicitHashKey: false,
  }],
  ["explicitHashKey NaN", "explicitHashKey", {
    partitionKey: "k",
    data: "x",
    explicitHashKey: NaN,
  }],
  ['partitionKey ""', "partitionKey", { partitionKey: "", data: "x" }],
  ["partitionKey 0", "partitionKey", { partitionKey: 0, data: "x" }],
  ["partitionKey false", "partitionKey", { partitionKey: false, data: "x" }],
  ["partitionKey null", "partitionKey", { partitionKey: null, data: "x" }],
  ["partitionKey undefined", "partitionKey", { data: "x" }],
  ["data null", "data", { partitionKey: "k", data: null }],
  ["data undefined", "data", { partitionKey: "k" }],
  ["data 0", "data", { partitionKey: "k", data: 0 }],
  ["data false", "data", { partitionKey: "k", data: false }],
  ["data NaN", "data", { partitionKey: "k", data: NaN }],
  ['stream ""', "stream", { stream: "", partitionKey: "k", data: "x" }],
  ["stream 0", "stream", { stream: 0, partitionKey: "k", data: "x" }],
  ["stream false", "stream", { stream: false, partitionKey: "k", data: "x" }],
];

/** Puts `record` through one of the producer's entry points and returns what it threw. */
async function refusal(
  producer: Producer,
  entry: "put" | "tryPut" | "enqueue" | "writable",
  record: UserRecord,
): Promise<unknown> {
  if (entry === "tryPut") {
    try {
      producer.tryPut(record);
    } catch (error) {
      return error;
    }
    return undefined;
  }
  const call = entry === "put"
    ? producer.put(record)
    : entry === "enqueue"
    ? producer.enqueue(record)
    : ReadableStream.from([record]).pipeTo(producer.writable);
  // A refusal is immediate; an admitted record would wait on the fake clock, so it is
  // reported as "not refused" instead of hanging the test.
  const refused = call.then(() => undefined, (error: unknown) => error);
  return await Promise.race([refused, settle(100).then(() => "admitted")]);
}

for (const entry of ["put", "tryPut", "enqueue", "writable"] as const) {
  test(`Producer.${entry} refuses every falsy-but-invalid field with a ValidationError and sends nothing`, async () => {
    const { producer, kinesis, clock } = harness();
    for (const [name, field, record] of FALSY_BUT_INVALID) {
      const error = await refusal(producer, entry, record as unknown as UserRecord);
      assert.ok(isValidationError(error), `${name}: refused with a ValidationError`);
      assert.equal(error.field, field, `${name}: names the field`);
    }
    assert.equal(producer.outstandingRecords, 0);
    await clock.advance(5000);
    await producer.flush();
    assert.equal(kinesis.putCalls.length, 0, "nothing was sent");
    await producer.close();
  });
}

test("Producer with a tiny maxInFlightBytes sends one call at a time and settles every record once", async () => {
  const { producer, clock, kinesis } = harness({
    maxInFlightBytes: 1,
    collectionMaxCount: 20,
    aggregationEnabled: false,
  });
  let inFlight = 0;
  let most = 0;
  kinesis.putHook = async () => {
    most = Math.max(most, ++inFlight);
    await new Promise<void>((resolve) => clock.setTimer(resolve, 10));
    inFlight--;
    return undefined;
  };
  const pending = Array.from(
    { length: 200 },
    (_, i) => producer.put({ partitionKey: `k${i}`, data: "x" }),
  );
  for (let i = 0; i < 100 && kinesis.stored.length < 200; i++) await clock.advance(50);
  const results = await Promise.all(pending);
  assert.ok(results.every((result) => result.success));
  assert.equal(most, 1);
  assert.equal(kinesis.stored.length, 200, "each stored once");
  assert.ok(kinesis.putCalls.length >= 10);
  await producer.close();
});
