import { test } from "node:test";
import assert from "node:assert/strict";
import {
  isRecordsFailedError,
  isValidationError,
  RecordsFailedError,
  ValidationError,
} from "../src/errors.ts";
import type { RecordResult, UserRecord } from "../src/record.ts";
import { harness } from "./support/harness.ts";
import { type FakeClock, settle } from "./support/fake_clock.ts";
import { runtimeName } from "./support/runtime.ts";
import { SeededRandom } from "./support/seeded_random.ts";

/** Advances the fake clock until `promise` settles, within a bounded number of steps. */
async function drive<T>(clock: FakeClock, promise: Promise<T>, steps = 4000): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  tracked.catch(() => {});
  for (let i = 0; i < steps && !done; i++) await clock.advance(25);
  assert.ok(done, `settled within ${steps} steps`);
  return await tracked;
}

/** Lets the pipe run without moving time, until `check` holds or the bound is reached. */
async function spin(check: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns && !check(); i++) await settle();
}

/** A pull source of `count` records that counts how often it was pulled. */
function countingSource(count: number, make: (i: number) => UserRecord | UserRecord[]) {
  const source = { pulls: 0, produced: 0, cancelled: undefined as unknown };
  const readable = new ReadableStream<UserRecord | UserRecord[]>({
    pull(controller) {
      source.pulls++;
      if (source.produced === count) controller.close();
      else controller.enqueue(make(source.produced++));
    },
    cancel(reason) {
      source.cancelled = reason;
    },
  }, { highWaterMark: 0 });
  return { source, readable };
}

function record(i: number, key = `user-${i % 97}`): UserRecord {
  return { partitionKey: key, data: `payload-${i}` };
}

test("Producer.writable is created once and is the same instance every time", async () => {
  const { producer } = harness();
  const writable = producer.writable;
  assert.ok(writable instanceof WritableStream);
  assert.equal(producer.writable, writable);
  assert.notEqual(producer.createWritable(), writable, "createWritable() makes a new one");
  await producer.close();
});

test("Producer.writable takes one pipe after another: a pipe that ended does not close it for the next", async () => {
  const { producer, clock, kinesis } = harness();
  const first = ReadableStream.from([record(1), record(2)]);
  await drive(clock, first.pipeTo(producer.writable));
  const second = ReadableStream.from([record(3), [record(4), record(5)]]);
  await drive(clock, second.pipeTo(producer.writable));
  const third = ReadableStream.from([record(6)]);
  await drive(clock, third.pipeTo(producer.writable));
  const stored = kinesis.stored.length;
  assert.ok(stored >= 1);
  await producer.close();
  assert.equal(producer.outstandingRecords, 0);
});

test("Producer.writable is fresh after a pipe whose record was malformed errored it", async () => {
  const { producer, clock } = harness();
  const bad = ReadableStream.from([{ partitionKey: "", data: "x" } as UserRecord]);
  await assert.rejects(bad.pipeTo(producer.writable), (error) => isValidationError(error));
  await drive(clock, ReadableStream.from([record(1)]).pipeTo(producer.writable));
  await producer.close();
});

test("Producer.writable's write() resolves on admission, before the record is delivered", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.holding = true;
  const writer = producer.writable.getWriter();
  await writer.write(record(1));
  assert.equal(producer.outstandingRecords, 1, "admitted, not delivered");
  await clock.advance(200);
  assert.equal(kinesis.heldCalls, 1, "the record is in flight");
  let closed = false;
  const closing = writer.close().then(() => (closed = true));
  await clock.advance(100);
  assert.equal(closed, false, "close() waits for the record to settle");
  kinesis.holding = false;
  kinesis.release();
  await drive(clock, closing);
  assert.equal(kinesis.stored.length, 1);
  assert.equal(producer.outstandingRecords, 0);
  assert.equal(producer.closed, false, "the stream never closes the producer");
  await producer.close();
});

test("Producer.writable makes pipeTo pause at maxOutstandingRecords while the endpoint is slow", async () => {
  const limit = 50;
  const { producer, clock, kinesis } = harness({ maxOutstandingRecords: limit });
  kinesis.holding = true;
  let peak = 0;
  kinesis.putHook = () => {
    peak = Math.max(peak, producer.outstandingRecords);
    return undefined;
  };
  const { source, readable } = countingSource(1000, (i) => record(i));
  const piping = readable.pipeTo(producer.writable);
  await spin(() => producer.outstandingRecords === limit);
  assert.equal(producer.outstandingRecords, limit);
  const pullsWhenFull = source.pulls;
  await clock.advance(500);
  await spin(() => false, 20);
  assert.equal(source.pulls, pullsWhenFull, "the pipe stopped pulling while the producer is full");
  assert.ok(pullsWhenFull <= limit + 2, `pulled ${pullsWhenFull} times for ${limit} admitted`);
  assert.equal(producer.outstandingRecords, limit);
  kinesis.holding = false;
  kinesis.release();
  for (let i = 0; i < 2000 && source.produced < 1000; i++) {
    await clock.advance(25);
    peak = Math.max(peak, producer.outstandingRecords);
  }
  await drive(clock, piping);
  assert.equal(peak, limit, "outstanding never exceeded maxOutstandingRecords");
  assert.equal(source.pulls, 1001, "one pull per record, one more to see the end");
  assert.equal(kinesis.stored.length > 0, true);
  assert.equal(producer.outstandingRecords, 0);
  await producer.close();
});

test("Producer.writable never lets outstanding bytes exceed maxOutstandingBytes", async () => {
  const { producer, clock, kinesis } = harness({
    maxOutstandingBytes: 1_048_576,
    aggregationEnabled: false,
  });
  kinesis.holding = true;
  const size = 100_000;
  const { source, readable } = countingSource(
    40,
    (i) => ({ partitionKey: `k${i}`, data: new Uint8Array(size) }),
  );
  const piping = readable.pipeTo(producer.writable);
  await spin(() => producer.outstandingRecords === 10);
  assert.equal(producer.outstandingRecords, 10, "ten 100 kB records fit in 1 MiB");
  assert.ok(producer.outstandingBytes <= 1_048_576);
  assert.ok(source.pulls <= 12, `pulled ${source.pulls} times`);
  kinesis.holding = false;
  kinesis.release();
  let peak = 0;
  for (let i = 0; i < 2000 && source.produced < 40; i++) {
    await clock.advance(25);
    peak = Math.max(peak, producer.outstandingBytes);
  }
  await drive(clock, piping);
  assert.ok(peak <= 1_048_576, `peak ${peak}`);
  assert.equal(kinesis.stored.length, 40);
  await producer.close();
});

test("Producer.writable's close() waits until every record written through it has settled", async () => {
  const { producer, clock, kinesis } = harness({ recordMaxBufferedTimeMs: 60_000 });
  const results: RecordResult[] = [];
  const writable = producer.createWritable({ onResult: (result) => results.push(result) });
  const writer = writable.getWriter();
  for (let i = 0; i < 100; i++) await writer.write(record(i));
  kinesis.holding = true;
  let closed = false;
  const closing = writer.close().then(() => (closed = true));
  await clock.advance(0);
  assert.ok(kinesis.heldCalls > 0, "close() sent the buffered records without waiting 60 s");
  assert.equal(closed, false);
  assert.equal(results.length, 0);
  kinesis.holding = false;
  kinesis.release();
  await drive(clock, closing);
  assert.equal(results.length, 100, "every result was seen before close() resolved");
  assert.ok(results.every((result) => result.success));
  await producer.close();
});

test("Producer.createWritable({ onAttempt }) still sees every success attempt", async () => {
  const { producer, clock } = harness();
  const attempts: boolean[] = [];
  const writable = producer.createWritable({
    onAttempt: (attempt) => attempts.push(attempt.success),
  });
  await drive(clock, ReadableStream.from([record(1), record(2), record(3)]).pipeTo(writable));
  assert.deepEqual(attempts, [true, true, true]);
  await producer.close();
});

test("Producer.writable's close() rejects with RecordsFailedError listing the failures", async () => {
  const { producer, clock } = harness();
  const records = [
    ...Array.from({ length: 10 }, (_, i) => record(i)),
    { stream: "missing", partitionKey: "a", data: "lost-1" },
    { stream: "missing", partitionKey: "b", data: "lost-2" },
  ];
  const piping = ReadableStream.from<UserRecord>(records).pipeTo(producer.writable);
  const error = await drive(clock, piping.then(() => undefined, (reason: unknown) => reason));
  assert.ok(isRecordsFailedError(error), `got ${error}`);
  assert.ok(error instanceof RecordsFailedError);
  assert.equal(error.written, 12);
  assert.deepEqual(
    error.failures.map((result) => [result.record.data, result.errorCode]).sort(),
    [["lost-1", "ResourceNotFoundException"], ["lost-2", "ResourceNotFoundException"]],
  );
  assert.equal(error.failures[0]!.record, records[10], "the original record, for rescue");
  assert.match(error.message, /^2 of 12 records failed; the first with ResourceNotFoundException$/);
  await producer.close();
});

test("Producer.createWritable() with handlers resolves close() after the handlers saw every result", async () => {
  const { producer, clock } = harness();
  const seen: string[] = [];
  const failed: string[] = [];
  const writable = producer.createWritable({
    onResult: (result) => seen.push(String(result.record.data)),
    onFailure: (result) => failed.push(String(result.record.data)),
  });
  const records = [
    record(1),
    { stream: "missing", partitionKey: "a", data: "lost" },
    record(2),
  ];
  await drive(clock, ReadableStream.from<UserRecord>(records).pipeTo(writable));
  assert.deepEqual(seen.sort(), ["lost", "payload-1", "payload-2"]);
  assert.deepEqual(failed, ["lost"]);
  await producer.close();
});

test("Producer.createWritable() with only onFailure resolves close() despite failures", async () => {
  const { producer, clock } = harness();
  let failures = 0;
  const writable = producer.createWritable({ onFailure: () => failures++ });
  const writer = writable.getWriter();
  await writer.write({ stream: "missing", partitionKey: "a", data: "x" });
  await drive(clock, writer.close());
  assert.equal(failures, 1);
  await producer.close();
});

test("Producer.writable's abort() stops intake while admitted records still complete", async () => {
  const { producer, clock, kinesis } = harness({ maxOutstandingRecords: 3 });
  const results: RecordResult[] = [];
  const writable = producer.createWritable({ onResult: (result) => results.push(result) });
  kinesis.holding = true;
  const writer = writable.getWriter();
  await writer.write(record(1));
  await writer.write(record(2));
  await writer.write(record(3));
  const blocked = writer.write(record(4));
  const queued = writer.write(record(5));
  blocked.catch(() => {});
  queued.catch(() => {});
  await spin(() => false, 5);
  assert.equal(producer.outstandingRecords, 3);
  const reason = new Error("upstream gave up");
  await writer.abort(reason);
  await assert.rejects(blocked, (error) => error === reason, "the write waiting for room");
  await assert.rejects(queued, (error) => error === reason, "the queued write");
  kinesis.holding = false;
  kinesis.release();
  for (let i = 0; i < 100 && producer.outstandingRecords > 0; i++) await clock.advance(25);
  assert.deepEqual(
    results.map((result) => [result.record.data, result.success]).sort(),
    [["payload-1", true], ["payload-2", true], ["payload-3", true]],
  );
  assert.equal(kinesis.stored.length > 0, true);
  assert.equal(producer.closed, false, "abort() never closes the producer");
  const after = producer.put(record(6));
  await clock.advance(200);
  assert.equal((await after).success, true, "the producer still takes records");
  await producer.close();
});

test("Producer.writable: pipeTo's signal stops the pipe once the chunk being written is admitted", async () => {
  const { producer, clock, kinesis } = harness({
    aggregationEnabled: false,
    maxOutstandingRecords: 5,
  });
  kinesis.holding = true;
  const { source, readable } = countingSource(100, (i) => record(i));
  const controller = new AbortController();
  let settled = false;
  const piping = readable.pipeTo(producer.writable, { signal: controller.signal });
  piping.catch(() => {}).finally(() => (settled = true));
  await spin(() => producer.outstandingRecords === 5);
  const pulls = source.pulls;
  controller.abort(new Error("stop"));
  await spin(() => false, 10);
  // The Streams standard lets a pipe's pending write finish before it aborts the sink.
  assert.equal(settled, false, "the pipe waits for the chunk it is writing");
  kinesis.holding = false;
  kinesis.release();
  await assert.rejects(drive(clock, piping), /stop/);
  assert.match(String(source.cancelled), /stop/);
  assert.equal(source.pulls, pulls, "nothing more was pulled after the abort");
  for (let i = 0; i < 100 && producer.outstandingRecords > 0; i++) await clock.advance(25);
  assert.equal(kinesis.stored.length, 6, "the five admitted and the pending chunk were delivered");
  await producer.close();
});

test("Producer.createWritable({ signal }) stops a pipe waiting for room at once", async () => {
  const { producer, clock, kinesis } = harness({
    aggregationEnabled: false,
    maxOutstandingRecords: 5,
  });
  kinesis.holding = true;
  const { source, readable } = countingSource(100, (i) => record(i));
  const controller = new AbortController();
  const writable = producer.createWritable({ signal: controller.signal });
  const piping = readable.pipeTo(writable, { signal: controller.signal });
  piping.catch(() => {});
  await spin(() => producer.outstandingRecords === 5);
  controller.abort(new Error("stop"));
  await assert.rejects(piping, /stop/);
  if (runtimeName === "node") {
    // Node's pipeTo (24.21) ends without cancelling the source when the write in flight rejects
    // with the signal's reason, as this writable's does; Deno and Bun cancel it.
    assert.equal(source.cancelled, undefined);
  } else {
    assert.match(String(source.cancelled), /stop/);
  }
  assert.equal(producer.outstandingRecords, 5, "the waiting chunk was never admitted");
  kinesis.holding = false;
  kinesis.release();
  for (let i = 0; i < 100 && producer.outstandingRecords > 0; i++) await clock.advance(25);
  assert.equal(kinesis.stored.length, 5, "the admitted records were delivered");
  await producer.close();
});

test("Producer.writable takes arrays as chunks: admits what fits, then waits for room", async () => {
  const { producer, clock, kinesis } = harness({
    aggregationEnabled: false,
    maxOutstandingRecords: 4,
  });
  kinesis.holding = true;
  const writer = producer.writable.getWriter();
  let written = false;
  const writing = writer.write(Array.from({ length: 10 }, (_, i) => record(i))).then(() => {
    written = true;
  });
  await spin(() => producer.outstandingRecords === 4);
  assert.equal(producer.outstandingRecords, 4, "the first four were admitted at once");
  assert.equal(written, false, "write() waits until the whole array is admitted");
  kinesis.holding = false;
  kinesis.release();
  await drive(clock, writing);
  await drive(clock, writer.write([record(10), record(11)]));
  await drive(clock, writer.write(record(12)));
  await writer.write([]);
  await drive(clock, writer.close());
  const data = kinesis.stored.map((entry) => new TextDecoder().decode(entry.data));
  assert.equal(data.length, 13, "every record of every array was delivered, once");
  assert.equal(new Set(data).size, 13);
  assert.equal(producer.outstandingRecords, 0);
  await producer.close();
});

test("Producer.writable delivers every record of a piped mix of arrays and records exactly once", async () => {
  const { producer, clock, kinesis } = harness({
    maxOutstandingRecords: 64,
    aggregationEnabled: false,
  });
  const { readable } = countingSource(
    300,
    (
      i,
    ) => (i % 3 === 0 ? [record(i * 10), record(i * 10 + 1), record(i * 10 + 2)] : record(i * 10)),
  );
  await drive(clock, readable.pipeTo(producer.writable));
  const data = kinesis.stored.map((entry) => new TextDecoder().decode(entry.data)).sort();
  assert.equal(data.length, 500);
  assert.equal(new Set(data).size, 500, "no record was sent twice");
  await producer.close();
});

test("Producer.writable errors on a malformed record; records admitted before it still complete", async () => {
  const { producer, clock, kinesis } = harness();
  const writer = producer.createWritable().getWriter();
  await writer.write(record(1));
  await assert.rejects(writer.write({ partitionKey: "", data: "x" }), isValidationError);
  await assert.rejects(writer.closed, ValidationError);
  await assert.rejects(
    writer.write([record(2), { partitionKey: "k", data: 42 as unknown as string }]),
    isValidationError,
  );
  for (let i = 0; i < 100 && producer.outstandingRecords > 0; i++) await clock.advance(25);
  assert.deepEqual(
    kinesis.stored.map((entry) => new TextDecoder().decode(entry.data)).sort(),
    ["payload-1"],
  );
  await producer.close();
});

test("Producer.writable rejects writes after the producer closed with ProducerClosedError", async () => {
  const { producer } = harness();
  await producer.close();
  const writer = producer.createWritable().getWriter();
  await assert.rejects(writer.write(record(1)), /closed producer/);
});

test("Producer.createWritable() names the option it rejects", () => {
  const { producer } = harness();
  assert.throws(
    () => producer.createWritable({ highWaterMark: -1 }),
    new RangeError(
      "Cannot create writable as 'highWaterMark' must be a number of at least 0: current value is -1",
    ),
  );
  assert.throws(
    () => producer.createWritable({ onResult: "log" as unknown as () => void }),
    /'onResult' must be a function: current value is string/,
  );
  assert.throws(
    () => producer.createTransform({ maxPending: 0 }),
    /'maxPending' must be an integer of at least 1: current value is 0/,
  );
  return producer.close();
});

test("Producer.createWritable() streams are independent: close() waits only for its own records", async () => {
  const { producer, clock, kinesis } = harness({ shards: 2 });
  kinesis.shards.set("slow", kinesis.shards.get("s")!.map((shard) => ({ ...shard })));
  let releaseSlow = (): void => {};
  const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
  kinesis.putHook = async (input) => {
    if (input.StreamName === "slow") await slowGate;
    return undefined;
  };
  const fast = producer.createWritable().getWriter();
  const slow = producer.createWritable().getWriter();
  await slow.write({ ...record(1), stream: "slow" });
  await fast.write(record(2));
  let slowClosed = false;
  const slowClosing = slow.close().then(() => (slowClosed = true));
  await drive(clock, fast.close());
  assert.equal(slowClosed, false, "the other writable still waits for its record");
  releaseSlow();
  await drive(clock, slowClosing);
  await producer.close();
});

test("Producer.createTransform() emits results in input order despite random per-record delays", async () => {
  const { producer, clock, kinesis } = harness({
    aggregationEnabled: false,
    collectionMaxCount: 1,
    maxInFlightRequests: 256,
  });
  const random = new SeededRandom(11);
  kinesis.putHook = () =>
    new Promise((resolve) => clock.setTimer(() => resolve(undefined), random.int(0, 400)));
  const count = 200;
  const input = Array.from({ length: count }, (_, i) => record(i, `key-${i}`));
  const results: RecordResult[] = [];
  const done = ReadableStream.from(input)
    .pipeThrough(producer.createTransform())
    .pipeTo(new WritableStream({ write: (result) => void results.push(result) }));
  await drive(clock, done);
  assert.equal(results.length, count);
  assert.ok(results.every((result, i) => result.record === input[i]), "input order");
  assert.ok(results.every((result) => result.success));
  const storedOrder = kinesis.stored.map((entry) => entry.partitionKey);
  assert.notDeepEqual(
    storedOrder,
    input.map((item) => item.partitionKey),
    "the records did settle out of order",
  );
  await producer.close();
});

test("Producer.createTransform() never holds more than maxPending results behind a slow one", async () => {
  const { producer, clock, kinesis } = harness({ aggregationEnabled: false });
  let releaseFirst = (): void => {};
  const firstGate = new Promise<void>((resolve) => (releaseFirst = resolve));
  kinesis.putHook = async (input) => {
    if (input.Records.some((entry) => entry.PartitionKey === "slow")) await firstGate;
    return undefined;
  };
  const { source, readable } = countingSource(
    100,
    (i) => (i === 0 ? { partitionKey: "slow", data: "first" } : record(i)),
  );
  const results: RecordResult[] = [];
  const done = readable
    .pipeThrough(producer.createTransform({ maxPending: 10 }))
    .pipeTo(new WritableStream({ write: (result) => void results.push(result) }));
  for (let i = 0; i < 40; i++) await clock.advance(25);
  assert.equal(results.length, 0, "nothing passes the slow first record");
  assert.ok(source.pulls <= 10 + 3, `pulled ${source.pulls} times with maxPending 10`);
  releaseFirst();
  await drive(clock, done);
  assert.equal(results.length, 100);
  assert.equal(results[0]!.record.data, "first");
  await producer.close();
});

test("Producer.createTransform() emits failures as results and errors on a malformed record", async () => {
  const { producer, clock } = harness();
  const results: RecordResult[] = [];
  const done = ReadableStream.from<UserRecord>([
    { stream: "missing", partitionKey: "a", data: "lost" },
    record(1),
  ])
    .pipeThrough(producer.createTransform())
    .pipeTo(new WritableStream({ write: (result) => void results.push(result) }));
  await drive(clock, done);
  assert.deepEqual(
    results.map((result) => [result.success, result.errorCode ?? null]),
    [[false, "ResourceNotFoundException"], [true, null]],
  );

  const broken = ReadableStream.from<UserRecord>([record(2), { partitionKey: "", data: "x" }])
    .pipeThrough(producer.createTransform());
  const reader = broken.getReader();
  const reading = (async () => {
    for (let i = 0; i < 10; i++) {
      const { done } = await reader.read();
      if (done) return "ended";
    }
    return "too many";
  })();
  await assert.rejects(drive(clock, reading), isValidationError);
  for (let i = 0; i < 100 && producer.outstandingRecords > 0; i++) await clock.advance(25);
  assert.equal(producer.outstandingRecords, 0, "the record admitted before the error completed");
  await producer.close();
});

test("Producer.createTransform(): cancelling the output stops waiting for admission", async () => {
  const { producer, clock, kinesis } = harness({ maxOutstandingRecords: 2 });
  kinesis.holding = true;
  const { source, readable } = countingSource(50, (i) => record(i));
  const output = readable.pipeThrough(producer.createTransform());
  const reader = output.getReader();
  const first = reader.read();
  await spin(() => producer.outstandingRecords === 2);
  assert.equal(producer.outstandingRecords, 2);
  await reader.cancel(new Error("not interested"));
  await first;
  await spin(() => source.cancelled !== undefined);
  assert.match(String(source.cancelled), /not interested/);
  kinesis.holding = false;
  kinesis.release();
  for (let i = 0; i < 100 && producer.outstandingRecords > 0; i++) await clock.advance(25);
  assert.equal(producer.outstandingRecords, 0);
  assert.equal(kinesis.stored.length, 2, "only the two admitted records were sent");
  await producer.close();
});

test("Producer.writable's failures are data for the writer: RecordsFailedError comes out of pipeTo", async () => {
  const { producer, clock } = harness();
  const piping = ReadableStream.from<UserRecord>([
    { stream: "missing", partitionKey: "a", data: "x" },
  ]).pipeTo(producer.createWritable());
  await assert.rejects(drive(clock, piping), (error) => {
    assert.ok(isRecordsFailedError(error));
    assert.equal(error.failures.length, 1);
    assert.equal(error.failures[0]!.attempts.length, 1);
    return true;
  });
  await producer.close();
});
