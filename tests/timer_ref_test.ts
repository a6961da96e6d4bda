import assert from "node:assert/strict";
import { test } from "node:test";
import { refTimer, unrefTimer } from "../src/_timer_ref.ts";

test("unrefTimer() and refTimer() call a timer object's unref() and ref()", () => {
  const calls: string[] = [];
  const handle = { ref: () => calls.push("ref"), unref: () => calls.push("unref") };
  unrefTimer(handle);
  refTimer(handle);
  assert.deepEqual(calls, ["unref", "ref"]);
});

test("unrefTimer() and refTimer() accept this runtime's own timer handle, and ignore anything else", () => {
  const handle = setTimeout(() => {}, 60_000);
  unrefTimer(handle);
  refTimer(handle);
  clearTimeout(handle);
  for (const other of [undefined, null, "id", {}]) {
    unrefTimer(other);
    refTimer(other);
  }
});
