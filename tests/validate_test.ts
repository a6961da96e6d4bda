import assert from "node:assert/strict";
import { test } from "node:test";
import { validateRecord } from "../src/_validate.ts";
import { isValidationError, type RecordField } from "../src/errors.ts";
import { hashPartitionKey } from "../src/hash_key.ts";
import type { UserRecord } from "../src/record.ts";

const RULES = { defaultStream: "events", maxRecordSize: 100, knownStreams: new Map() };

test("validateRecord() makes the record with its stream, data bytes, size and hash key", () => {
  const record = validateRecord({ partitionKey: "k", data: "é" }, RULES);
  assert.equal(record.stream, "events", "the default stream");
  assert.deepEqual(record.data, new TextEncoder().encode("é"));
  assert.equal(record.size, 3, "two data bytes and one key byte");
  const key = { h0: 0, h1: 0, h2: 0, h3: 0 };
  hashPartitionKey("k", key);
  assert.deepEqual([record.h0, record.h1, record.h2, record.h3], [key.h0, key.h1, key.h2, key.h3]);
  const explicit = validateRecord({ partitionKey: "k", data: "x", explicitHashKey: "1" }, RULES);
  assert.deepEqual([explicit.h0, explicit.h1, explicit.h2, explicit.h3], [0, 0, 0, 1]);
});

test("validateRecord() refuses each bad field with a ValidationError naming it", () => {
  const cases: [unknown, RecordField][] = [
    [null, "record"],
    [{ partitionKey: "k", data: "x", stream: "no spaces" }, "stream"],
    [{ partitionKey: "", data: "x" }, "partitionKey"],
    [{ partitionKey: "k", data: "x", explicitHashKey: "-1" }, "explicitHashKey"],
    [{ partitionKey: "k", data: 7 }, "data"],
    [{ partitionKey: "k", data: "x".repeat(100) }, "data"],
  ];
  for (const [input, field] of cases) {
    assert.throws(() => validateRecord(input as UserRecord, RULES), (error: unknown) => {
      assert.ok(isValidationError(error), String(error));
      assert.equal(error.field, field, JSON.stringify(input));
      return true;
    });
  }
  assert.throws(
    () => validateRecord({ partitionKey: "k", data: "x" }, { ...RULES, defaultStream: undefined }),
    /has no 'stream'/,
  );
});
