import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AGGREGATED_PARTITION_KEY,
  AggregatedRecord,
  type KinesisRecord,
  membersOf,
} from "../src/kinesis_record.ts";
import { hashKeyToDecimal } from "../src/hash_key.ts";
import { pendingRecord } from "./support/records.ts";

test("A PendingRecord sent alone is its own Kinesis record, raw under its own keys", () => {
  const record = pendingRecord({
    partitionKey: "pk",
    explicitHashKey: "42",
    data: 10,
    deadline: 300,
    expiresAt: 9_000,
  });
  const entry: KinesisRecord = record;
  assert.deepEqual([entry.partitionKey, entry.explicitHashKey, entry.data], [
    "pk",
    "42",
    record.data,
  ]);
  assert.equal(entry.requestSize, 2 + 10);
  assert.equal(entry.stream, record.stream);
  assert.deepEqual([entry.deadline, entry.expiresAt], [300, 9_000]);
  assert.equal(entry.count, 1);
  assert.equal(entry.member(0), record);
  assert.deepEqual(membersOf(entry), [record]);
  entry.release();
  assert.equal(entry.data, record.data, "release() leaves the caller's bytes alone");
});

test("membersOf() lists an aggregated record's members in sub-sequence order", () => {
  const members = [pendingRecord({ partitionKey: "x" }), pendingRecord({ partitionKey: "y" })];
  const entry = AggregatedRecord.create(members, new Uint8Array(4), {
    samePartitionKey: false,
    anyExplicitHashKey: false,
  });
  assert.equal(entry.count, 2);
  assert.equal(entry.member(1), members[1]);
  assert.deepEqual(membersOf(entry), members);
});

test("AggregatedRecord.create() routes by the first member and takes the earliest deadlines", () => {
  const first = pendingRecord({ partitionKey: "one", deadline: 300, expiresAt: 9_000 });
  const second = pendingRecord({ partitionKey: "two", deadline: 200, expiresAt: 10_000 });
  const data = new Uint8Array(50);
  const mixed = AggregatedRecord.create([first, second], data, {
    samePartitionKey: false,
    anyExplicitHashKey: false,
  });
  assert.equal(mixed.partitionKey, AGGREGATED_PARTITION_KEY);
  assert.equal(mixed.explicitHashKey, hashKeyToDecimal(first));
  assert.equal(mixed.requestSize, AGGREGATED_PARTITION_KEY.length + 50);
  assert.deepEqual([mixed.deadline, mixed.expiresAt], [200, 9_000]);
});

test("AggregatedRecord.create() keeps a shared partition key, and sends a hash key only if a member had one", () => {
  const members = [
    pendingRecord({ partitionKey: "same" }),
    pendingRecord({ partitionKey: "same" }),
  ];
  const data = new Uint8Array(8);
  const byKey = AggregatedRecord.create(members, data, {
    samePartitionKey: true,
    anyExplicitHashKey: false,
  });
  assert.deepEqual([byKey.partitionKey, byKey.explicitHashKey], ["same", undefined]);
  assert.equal(byKey.requestSize, 4 + 8);
  const withHash = AggregatedRecord.create(members, data, {
    samePartitionKey: true,
    anyExplicitHashKey: true,
  });
  assert.equal(withHash.explicitHashKey, hashKeyToDecimal(members[0]!));
});
