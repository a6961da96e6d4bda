import assert from "node:assert/strict";
import { test } from "node:test";
import { describeValue, errorText, kindOf, typeName } from "../src/_describe.ts";

test("kindOf() and typeName() name a value's type, an object by its class", () => {
  assert.deepEqual([kindOf(null), kindOf(1), kindOf([]), kindOf("s")], [
    "null",
    "number",
    "object",
    "string",
  ]);
  assert.deepEqual([typeName(null), typeName([]), typeName(new Map()), typeName(1n)], [
    "null",
    "Array",
    "Map",
    "bigint",
  ]);
  assert.equal(typeName(Object.create(null)), "object");
});

test("describeValue() quotes strings and never shows an object's or a function's contents", () => {
  assert.equal(describeValue("a"), '"a"');
  assert.equal(describeValue(0), "0");
  assert.equal(describeValue(undefined), "undefined");
  assert.equal(describeValue(() => "secret"), "a function");
  assert.equal(describeValue({ secret: "s3cr3t" }), "an object without the required methods");
});

test("errorText() shows an error as name and message, anything else as a string", () => {
  assert.equal(errorText(new RangeError("too big")), "RangeError: too big");
  assert.equal(errorText("plain"), "plain");
  assert.equal(errorText(42), "42");
});
