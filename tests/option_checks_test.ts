import assert from "node:assert/strict";
import { test } from "node:test";
import { OptionChecks } from "../src/_option_checks.ts";

const check = new OptionChecks("thing");

test("OptionChecks.number() returns a number within range and names the range it refuses", () => {
  assert.equal(check.number("n", 5, { min: 1, max: 10 }), 5);
  assert.throws(
    () => check.number("n", 11, { min: 1, max: 10, integer: true }),
    new RangeError(
      "Cannot create thing as 'n' must be an integer between 1 and 10: current value is 11",
    ),
  );
  assert.throws(
    () => check.number("n", 0, { min: 1 }),
    new RangeError("Cannot create thing as 'n' must be a number of at least 1: current value is 0"),
  );
  assert.throws(() => check.number("n", 1.5, { min: 1, integer: true }), RangeError);
});

test("OptionChecks.number() refuses NaN and non-numbers as the wrong type", () => {
  assert.throws(() => check.number("n", NaN, { min: 1 }), TypeError);
  assert.throws(
    () => check.number("n", "5", { min: 1 }),
    new TypeError(
      "Cannot create thing as 'n' must be a number of at least 1: current value is '5'",
    ),
  );
});

test("OptionChecks.positive() and boolean() refuse what is not a positive number or a boolean", () => {
  assert.equal(check.positive("p", 0.5), 0.5);
  assert.throws(() => check.positive("p", Infinity), /'p' must be a positive number/);
  assert.equal(check.boolean("b", false), false);
  assert.throws(() => check.boolean("b", 1), /'b' must be a boolean: current value is 1/);
});

test("OptionChecks.oneOf() lists the allowed strings, quoted", () => {
  assert.equal(check.oneOf("o", "b", { of: ["a", "b"] }), "b");
  assert.throws(
    () => check.oneOf("o", "c", { of: ["a", "b"] }),
    new TypeError("Cannot create thing as 'o' must be one of 'a', 'b': current value is 'c'"),
  );
});

test("OptionChecks.methods() names every method and never shows an object's contents", () => {
  const value = { secret: "s3cr3t", a() {} };
  assert.equal(check.methods("m", value, { methods: ["a"] }), value);
  assert.throws(() => check.methods("m", value, { methods: ["a", "b", "c"] }), (error) => {
    assert.ok(error instanceof TypeError);
    assert.equal(
      error.message,
      "Cannot create thing as 'm' must be an object with a(), b() and c(): current value is an object without the required methods",
    );
    return true;
  });
  assert.throws(
    () => check.methods("m", null, { kind: "a Clock", methods: ["now"] }),
    /'m' must be a Clock with now\(\): current value is null/,
  );
});
