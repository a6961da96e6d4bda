import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DecodeError,
  isDecodeError,
  isProducerClosedError,
  isRecordsFailedError,
  isValidationError,
  ProducerClosedError,
  RecordsFailedError,
  ValidationError,
} from "../src/errors.ts";
import type { RecordResult } from "../src/record.ts";

test("Each error class carries its data, its name and its cause", () => {
  const cause = new Error("root");
  const validation = new ValidationError("bad key", { field: "partitionKey", cause });
  assert.deepEqual([validation.name, validation.field, validation.cause], [
    "ValidationError",
    "partitionKey",
    cause,
  ]);
  const decode = new DecodeError("truncated", 12);
  assert.deepEqual([decode.name, decode.offset], ["DecodeError", 12]);
  const closed = new ProducerClosedError();
  assert.equal(closed.name, "ProducerClosedError");
  const failures = [{ success: false, errorCode: "Expired" } as RecordResult];
  const failed = new RecordsFailedError(failures, { written: 3 });
  assert.deepEqual([failed.failures, failed.written], [failures, 3]);
});

test("Each guard accepts its own class only, and survives a second copy of the module", () => {
  const errors = [
    new ValidationError("x", { field: "data" }),
    new ProducerClosedError(),
    new DecodeError("x", 0),
    new RecordsFailedError([]),
  ];
  const guards = [isValidationError, isProducerClosedError, isDecodeError, isRecordsFailedError];
  guards.forEach((guard, i) => {
    assert.deepEqual(errors.map((error) => guard(error)), errors.map((_, j) => i === j));
    assert.equal(guard(new Error("plain")), false);
    assert.equal(guard(null), false);
  });
  // A copy of the module makes other classes; the guards look for a registered symbol, which
  // both copies share, not for the class.
  const copy = Object.assign(new Error("copy"), {});
  Object.defineProperty(copy, Symbol.for("webkpl.ValidationError"), { value: true });
  assert.equal(isValidationError(copy), true);
});
