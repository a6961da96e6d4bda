// Every row of the retry table (docs/architecture.md, "The retry table"), driven through a
// real Producer on a fake clock and an in-process Kinesis whose answers each test scripts.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { RecordResult } from "../src/record.ts";
import { harness } from "./support/harness.ts";
import { evenShards, MAX_HASH, serviceError } from "./support/fake_kinesis.ts";
import { hashInShard } from "./support/records.ts";

const THROTTLED = "ProvisionedThroughputExceededException";

function codes(result: RecordResult): (string | undefined)[] {
  return result.attempts.map((attempt) => attempt.success ? "ok" : attempt.errorCode);
}

test("Retrier settles success on the predicted shard with one attempt", async () => {
  const { producer, clock, kinesis } = harness();
  const pending = producer.put({
    partitionKey: "p",
    data: "x",
    explicitHashKey: hashInShard(2, 4),
  });
  await clock.advance(200);
  const result = await pending;
  assert.equal(result.success, true);
  assert.equal(result.shardId, "shardId-000000000002");
  assert.equal(result.sequenceNumber, kinesis.stored[0]!.sequenceNumber);
  assert.equal(result.subSequenceNumber, 0);
  assert.deepEqual(codes(result), ["ok"]);
  assert.equal(result.attempts[0]!.shardId, "shardId-000000000002");
  await producer.close();
});

test("Retrier settles a lone record stored on another shard as success and refreshes the map", async () => {
  const { producer, clock, kinesis } = harness({ shards: 1 });
  const warm = producer.put({ partitionKey: "warm", data: "x" });
  await clock.advance(200);
  await warm;
  kinesis.split("s", "shardId-000000000000");
  const listings = kinesis.listCalls.length;
  const pending = producer.put({ partitionKey: "p", data: "x", explicitHashKey: "5" });
  await clock.advance(200);
  const result = await pending;
  assert.equal(result.success, true);
  assert.equal(result.shardId, "shardId-000000000001", "the split's left child");
  assert.deepEqual(codes(result), ["ok"]);
  assert.equal(kinesis.listCalls.length, listings + 1, "the misprediction refreshed the map");
  await producer.close();
});

test("Retrier settles aggregated members that landed on a split child holding their hash", async () => {
  const { producer, clock, kinesis } = harness({ shards: 1 });
  const warm = producer.put({ partitionKey: "warm", data: "x" });
  await clock.advance(200);
  await warm;
  kinesis.split("s", "shardId-000000000000");
  const records = ["10", "11", "12"].map((key) =>
    producer.put({ partitionKey: `k${key}`, data: key, explicitHashKey: key })
  );
  await clock.advance(200);
  const results = await Promise.all(records);
  assert.deepEqual(results.map((result) => result.success), [true, true, true]);
  assert.deepEqual(results.map((result) => result.shardId), Array(3).fill("shardId-000000000001"));
  assert.deepEqual(results.map((result) => result.subSequenceNumber), [0, 1, 2]);
  assert.deepEqual(results.map(codes), [["ok"], ["ok"], ["ok"]], "nothing was sent twice");
  assert.equal(kinesis.putCalls.length, 2);
  await producer.close();
});

test("Retrier retries only the members stored outside the landing shard's range, once, as Wrong Shard", async () => {
  const { producer, clock, kinesis } = harness({ shards: 1 });
  const warm = producer.put({ partitionKey: "warm", data: "x" });
  await clock.advance(200);
  await warm;
  kinesis.split("s", "shardId-000000000000");
  const left = "7";
  const right = (MAX_HASH - 7n).toString();
  const first = producer.put({ partitionKey: "a1", data: "left", explicitHashKey: left });
  const second = producer.put({ partitionKey: "a2", data: "right", explicitHashKey: right });
  await clock.advance(500);
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.success, true);
  assert.deepEqual(codes(a), ["ok"]);
  assert.equal(b.success, true);
  assert.deepEqual(codes(b), ["Wrong Shard", "ok"], "re-sent exactly once");
  assert.equal(b.attempts[0]!.shardId, "shardId-000000000001", "the wrong landing is recorded");
  assert.equal(b.shardId, "shardId-000000000002");
  await producer.close();
});

test("Retrier retries per-record throttles after the shard backs off", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.putHook = (input, call) =>
    call === 0
      ? {
        FailedRecordCount: input.Records.length,
        Records: input.Records.map(() => ({ ErrorCode: THROTTLED, ErrorMessage: "slow down" })),
      }
      : undefined;
  const pending = producer.put({
    partitionKey: "p",
    data: "x",
    explicitHashKey: hashInShard(1, 4),
  });
  await clock.advance(120);
  assert.equal(kinesis.putCalls.length, 1);
  await clock.advance(1000);
  const result = await pending;
  assert.equal(result.success, true);
  assert.deepEqual(codes(result), [THROTTLED, "ok"]);
  const gap = result.attempts[1]!.startedAt - result.attempts[0]!.endedAt;
  assert.ok(gap >= 50, `the shard paused before the retry (gap ${gap} ms)`);
  await producer.close();
});

test("Retrier fails throttled records at once with failIfThrottled", async () => {
  const { producer, clock, kinesis } = harness({ failIfThrottled: true });
  kinesis.putHook = () => serviceError(THROTTLED, "Rate exceeded for shard");
  const pending = producer.put({ partitionKey: "p", data: "x" });
  await clock.advance(200);
  const result = await pending;
  assert.equal(result.success, false);
  assert.equal(result.errorCode, THROTTLED);
  assert.deepEqual(codes(result), [THROTTLED]);
  await producer.close();
});

test("Retrier with failIfThrottled sends later records of a throttled shard at once, so they too fail fast instead of expiring", async () => {
  const { producer, clock, kinesis } = harness({ failIfThrottled: true, recordTtlMs: 1_000 });
  kinesis.putHook = (input) => ({
    FailedRecordCount: input.Records.length,
    Records: input.Records.map(() => ({ ErrorCode: THROTTLED, ErrorMessage: "hot" })),
  });
  const hot = hashInShard(1, 4);
  const results: Promise<RecordResult>[] = [];
  // One record every 150 ms for 3 s: each lands after the previous one was throttled.
  for (let i = 0; i < 20; i++) {
    results.push(producer.put({ partitionKey: `p${i}`, data: "x", explicitHashKey: hot }));
    await clock.advance(150);
  }
  await clock.advance(2_000);
  for (const result of await Promise.all(results)) {
    assert.deepEqual(codes(result), [THROTTLED], "one real attempt, failed by the throttle");
    assert.ok(
      result.attempts[0]!.endedAt - result.attempts[0]!.startedAt + result.attempts[0]!.delayMs <
        300,
    );
  }
  await producer.close();
});

test("Retrier retries request-level throttles without failIfThrottled", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.putHook = (_input, call) => (call < 2 ? serviceError(THROTTLED) : undefined);
  const pending = producer.put({ partitionKey: "p", data: "x" });
  await clock.advance(3000);
  const result = await pending;
  assert.equal(result.success, true);
  assert.deepEqual(codes(result), [THROTTLED, THROTTLED, "ok"]);
  await producer.close();
});

for (
  const [name, failure] of [
    ["a per-record InternalFailure", "entry"],
    ["a 500 ServiceUnavailable", serviceError("ServiceUnavailable", "busy", 503)],
    ["a network error", new TypeError("fetch failed")],
    ["KMSThrottlingException", serviceError("KMSThrottlingException")],
    ["LimitExceededException", serviceError("LimitExceededException")],
  ] as const
) {
  test(`Retrier retries ${name} with exponential backoff`, async () => {
    const { producer, clock, kinesis } = harness();
    kinesis.putHook = (input, call) => {
      if (call >= 3) return undefined;
      if (failure !== "entry") return failure;
      return {
        FailedRecordCount: input.Records.length,
        Records: input.Records.map(() => ({ ErrorCode: "InternalFailure", ErrorMessage: "oops" })),
      };
    };
    const pending = producer.put({ partitionKey: "p", data: "x" });
    await clock.advance(5000);
    const result = await pending;
    assert.equal(result.success, true);
    assert.equal(result.attempts.length, 4);
    const gaps = result.attempts.slice(1).map((attempt, i) =>
      attempt.startedAt - result.attempts[i]!.endedAt
    );
    // Equal jitter over 100, 200, 400 ms ceilings: each wait is in [ceiling/2, ceiling]
    // plus the buffering before the next send.
    assert.ok(gaps[0]! >= 50 && gaps[1]! >= 100 && gaps[2]! >= 200, `gaps ${gaps}`);
    await producer.close();
  });
}

test("Retrier retries a request that times out, with code RequestTimeout", async () => {
  const { producer, clock, kinesis } = harness({ requestTimeoutMs: 1000 });
  kinesis.holding = true;
  const pending = producer.put({ partitionKey: "p", data: "x" });
  await clock.advance(200);
  assert.equal(kinesis.heldCalls, 1);
  kinesis.holding = false;
  await clock.advance(2000);
  const result = await pending;
  assert.equal(result.success, true);
  assert.deepEqual(codes(result), ["RequestTimeout", "ok"]);
  assert.equal(result.attempts[0]!.durationMs, 1000);
  await producer.close();
});

for (
  const [code, where] of [
    ["ResourceNotFoundException", "request"],
    ["AccessDeniedException", "request"],
    ["ValidationException", "request"],
    ["UnrecognizedClientException", "request"],
    ["KMSDisabledException", "entry"],
    ["KMSNotFoundException", "entry"],
    ["KMSAccessDeniedException", "entry"],
    ["InvalidArgumentException", "request"],
  ] as const
) {
  test(`Retrier fails ${code} (${where}) at once`, async () => {
    const { producer, clock, kinesis } = harness();
    kinesis.putHook = (input) =>
      where === "request" ? serviceError(code, `${code} says no`) : {
        FailedRecordCount: input.Records.length,
        Records: input.Records.map(() => ({ ErrorCode: code, ErrorMessage: `${code} says no` })),
      };
    const pending = producer.put({ partitionKey: "p", data: "x" });
    await clock.advance(200);
    const result = await pending;
    assert.equal(result.success, false);
    assert.equal(result.errorCode, code);
    assert.equal(result.errorMessage, `${code} says no`);
    assert.deepEqual(codes(result), [code]);
    assert.equal(kinesis.putCalls.length, 1);
    await producer.close();
  });
}

test("Retrier fails every record with Record Count Mismatch when the response does not match", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.putHook = (input) => {
    const output = kinesis.store(input);
    return { ...output, Records: output.Records!.slice(1) };
  };
  const pending = ["a", "b", "c"].map((key) =>
    producer.put({
      partitionKey: key,
      data: key,
      explicitHashKey: hashInShard(0, 4, BigInt(key.charCodeAt(0))),
    })
  );
  await clock.advance(200);
  const results = await Promise.all(pending);
  for (const result of results) {
    assert.equal(result.success, false);
    assert.equal(result.errorCode, "Record Count Mismatch");
    assert.equal(result.attempts.length, 1);
  }
  await producer.close();
});

test("Retrier fails with Expired at the TTL, naming the last real error", async () => {
  const { producer, clock, kinesis } = harness({ recordTtlMs: 1000 });
  kinesis.putHook = (input) => ({
    FailedRecordCount: input.Records.length,
    Records: input.Records.map(() => ({
      ErrorCode: "InternalFailure",
      ErrorMessage: "disk on fire",
    })),
  });
  let settledAt = 0;
  const pending = producer.put({ partitionKey: "p", data: "x" }).then((result) => {
    settledAt = clock.now();
    return result;
  });
  await clock.advance(5000);
  const result = await pending;
  assert.equal(result.success, false);
  assert.equal(result.errorCode, "Expired");
  assert.match(result.errorMessage!, /1000 ms.*InternalFailure: disk on fire/);
  assert.equal(result.attempts.at(-1)!.errorCode, "Expired");
  assert.ok(result.attempts.length >= 3);
  assert.ok(settledAt <= 1000, `settled at ${settledAt}, after the TTL`);
  await producer.close();
});

test("Retrier keeps the TTL absolute: a record retried late still expires on time", async () => {
  const { producer, clock, kinesis } = harness({ recordTtlMs: 1000, requestTimeoutMs: 600 });
  kinesis.holding = true;
  let settledAt = 0;
  const pending = producer.put({ partitionKey: "p", data: "x" }).then((result) => {
    settledAt = clock.now();
    return result;
  });
  await clock.advance(120);
  kinesis.holding = false;
  kinesis.putHook = () => serviceError("InternalFailure", "still broken", 500);
  await clock.advance(5000);
  const result = await pending;
  assert.equal(result.errorCode, "Expired");
  assert.equal(result.attempts[0]!.errorCode, "RequestTimeout");
  assert.ok(settledAt <= 1000, `settled at ${settledAt}`);
  await producer.close();
});

test("Retrier expires records held by a throttled shard's backoff", async () => {
  const { producer, clock, kinesis } = harness({ recordTtlMs: 300 });
  kinesis.putHook = (input) => ({
    FailedRecordCount: input.Records.length,
    Records: input.Records.map(() => ({ ErrorCode: THROTTLED, ErrorMessage: "hot" })),
  });
  const pending = producer.put({ partitionKey: "p", data: "x", explicitHashKey: "1" });
  await clock.advance(2000);
  const result = await pending;
  assert.equal(result.errorCode, "Expired");
  assert.match(result.errorMessage!, new RegExp(THROTTLED));
  assert.ok(result.attempts.at(-1)!.endedAt <= 300);
  await producer.close();
});

test("Retrier leaves ProducerClosed for records close() could not confirm", async () => {
  const { producer, clock, kinesis } = harness();
  kinesis.holding = true;
  const pending = producer.put({ partitionKey: "p", data: "x" });
  await clock.advance(200);
  const closing = producer.close({ timeoutMs: 1000 });
  await clock.advance(1000);
  await closing;
  const result = await pending;
  assert.equal(result.success, false);
  assert.equal(result.errorCode, "ProducerClosed");
  assert.match(result.errorMessage!, /timed out after 1000 ms/);
  assert.equal(kinesis.heldCalls, 0, "the in-flight request was aborted");
});

test("Retrier spreads 1000 retried records over one or a few requests, not one each", async () => {
  const { producer, clock, kinesis } = harness({ shards: evenShards(2) });
  kinesis.putHook = (_input, call) =>
    call === 0 ? serviceError("InternalFailure", "blip", 500) : undefined;
  const pending = Array.from(
    { length: 1000 },
    (_, i) => producer.put({ partitionKey: `user-${i}`, data: `payload-${i}` }),
  );
  await clock.advance(2000);
  const results = await Promise.all(pending);
  assert.ok(results.every((result) => result.success));
  assert.ok(kinesis.putCalls.length <= 10, `${kinesis.putCalls.length} calls`);
  await producer.close();
});
