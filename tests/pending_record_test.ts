import assert from "node:assert/strict";
import { test } from "node:test";
import type { Attempt, RecordResult } from "../src/record.ts";
import { pendingRecord } from "./support/records.ts";

function attempt(endedAt: number, errorCode?: string): Attempt {
  return {
    startedAt: endedAt - 10,
    endedAt,
    delayMs: 0,
    durationMs: 10,
    success: errorCode === undefined,
    ...(errorCode === undefined ? {} : { errorCode, errorMessage: `${errorCode} happened` }),
  };
}

test("PendingRecord.admit() dates the record and sets the deadlines it keeps", () => {
  const record = pendingRecord();
  record.admit(7, 1_000, 30_000, 100);
  assert.deepEqual(
    [record.seq, record.arrivedAt, record.waitingSince, record.expiresAt, record.deadline],
    [7, 1_000, 1_000, 31_000, 1_100],
  );
  record.requeue(5_000);
  assert.equal(record.deadline, 5_000);
  assert.equal(record.expiresAt, 31_000, "the TTL stays absolute");
});

test("PendingRecord keeps its attempts, the last real error and the count of transient failures", () => {
  const record = pendingRecord({ now: 0 });
  const seen: Attempt[] = [];
  record.owner = { onResult: () => {}, onAttempt: (a) => seen.push(a) };
  record.failed(attempt(50, "InternalFailure"));
  assert.equal(record.failedTransiently(), 1);
  assert.equal(record.failedTransiently(), 2);
  record.addAttempt(attempt(90));
  assert.equal(record.attempts?.length, 2);
  assert.equal(record.waitingSince, 90, "the next delay counts from the last attempt's end");
  assert.deepEqual([record.lastErrorCode, record.lastErrorMessage], [
    "InternalFailure",
    "InternalFailure happened",
  ]);
  assert.equal(seen.length, 2, "the owner sees each attempt");
});

test("PendingRecord.misrouted() is not predicted again from the map that misrouted it", () => {
  const record = pendingRecord();
  record.predictedGeneration = 3;
  record.misrouted(attempt(10, "Wrong Shard"));
  assert.equal(record.predictAfterGeneration, 3);
  assert.equal(record.lastErrorCode, "Wrong Shard");
});

test("PendingRecord.deliver() settles the result promise and tells the owner", async () => {
  const record = pendingRecord();
  const results: RecordResult[] = [];
  record.owner = { onResult: (result) => results.push(result) };
  const promise = record.result;
  assert.equal(record.settled, false);
  const result = { success: true } as RecordResult;
  record.deliver(result);
  assert.equal(record.settled, true);
  assert.equal(await promise, result);
  assert.equal(await record.result, result, "the same result after settlement");
  assert.deepEqual(results, [result]);
});

test("PendingRecord gives its hash key words back unsigned, as HashKey says", () => {
  const top = pendingRecord({ explicitHashKey: "340282366920938463463374607431768211455" });
  assert.deepEqual([top.h0, top.h1, top.h2, top.h3], [
    0xffffffff,
    0xffffffff,
    0xffffffff,
    0xffffffff,
  ]);
  const mid = pendingRecord({ explicitHashKey: String(2n ** 127n + 2n ** 31n) });
  assert.deepEqual([mid.h0, mid.h1, mid.h2, mid.h3], [0x80000000, 0, 0, 0x80000000]);
});

test("PendingRecord.requeue() keeps a fractional deadline within the millisecond before it", () => {
  const record = pendingRecord();
  record.admit(1, 1_000.25, 30_000, 100);
  assert.equal(record.deadline, 1_100.25, "admission keeps the exact deadline");
  assert.equal(record.expiresAt, 31_000.25);
  record.requeue(2_000.75);
  assert.ok(record.deadline <= 2_000.75 && record.deadline > 1_999.75, `${record.deadline}`);
});

test("PendingRecord has no retry state before a failure, and blame() names an error without an attempt", () => {
  const record = pendingRecord();
  assert.deepEqual(
    [record.lastErrorCode, record.transientFailures, record.predictAfterGeneration],
    [undefined, 0, -1],
  );
  record.blame("ProvisionedThroughputExceededException", "throttled");
  assert.deepEqual([record.lastErrorCode, record.lastErrorMessage, record.attempts], [
    "ProvisionedThroughputExceededException",
    "throttled",
    null,
  ]);
});

test("PendingRecord tells both its owner and its result promise, whichever came first", async () => {
  for (const promiseFirst of [false, true]) {
    const record = pendingRecord();
    const results: RecordResult[] = [];
    const attempts: Attempt[] = [];
    const owner = { onResult: (result: RecordResult) => results.push(result) };
    const promise = promiseFirst ? record.result : undefined;
    record.owner = owner;
    (owner as { onAttempt?: (a: Attempt) => void }).onAttempt = (a) => attempts.push(a);
    const result = promise ?? record.result;
    assert.equal(record.owner, owner);
    record.addAttempt(attempt(5));
    const outcome = { success: true } as RecordResult;
    record.deliver(outcome);
    assert.equal(await result, outcome);
    assert.deepEqual(results, [outcome], "the owner hears once");
    assert.equal(attempts.length, 1, "the owner sees the attempt");
    assert.equal(record.owner, owner, "the owner stays after settlement");
  }
});
