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
