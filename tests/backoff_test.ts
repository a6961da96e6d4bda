import assert from "node:assert/strict";
import { test } from "node:test";
import { backoff, backoffCeiling, equalJitter } from "../src/_backoff.ts";

const POLICY = { firstMs: 100, maxMs: 10_000, factor: 2 };

test("backoffCeiling() grows by the factor per failure from firstMs and stops at maxMs", () => {
  const ceilings = [1, 2, 3, 4, 7, 8, 50].map((failures) => backoffCeiling(POLICY, failures));
  assert.deepEqual(ceilings, [100, 200, 400, 800, 6400, 10_000, 10_000]);
});

test("backoffCeiling() stays finite after any number of failures", () => {
  const ceiling = backoffCeiling({ firstMs: 1, maxMs: Infinity, factor: 10 }, 1_000_000);
  assert.ok(Number.isFinite(ceiling) && ceiling > 1e63, `${ceiling}`);
  assert.equal(backoffCeiling(POLICY, 0), 100, "no failure yet counts as the first");
});

test("equalJitter() waits half the ceiling plus a random share of the other half", () => {
  assert.equal(equalJitter(1000, () => 0), 500);
  assert.equal(equalJitter(1000, () => 0.5), 750);
  assert.ok(equalJitter(1000, () => 0.999999) < 1000);
});

test("backoff() is the jittered ceiling", () => {
  assert.equal(backoff(POLICY, 3, () => 0), 200);
  assert.equal(backoff(POLICY, 3, () => 0.5), 300);
});
