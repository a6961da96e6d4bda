import assert from "node:assert/strict";
import { test } from "node:test";
import { utf8Length, writeUtf8 } from "../src/_utf8.ts";

const SAMPLES = [
  "",
  "ascii",
  "é",
  "€uro",
  "日本語",
  "😀 pair",
  "lone \ud800 high",
  "lone \udc00 low",
  "end \ud83d",
  "\ufeffbom",
];

test("utf8Length() and writeUtf8() agree with TextEncoder, lone surrogates as U+FFFD", () => {
  const encoder = new TextEncoder();
  for (const sample of SAMPLES) {
    const expected = encoder.encode(sample);
    assert.equal(utf8Length(sample), expected.length, JSON.stringify(sample));
    const out = new Uint8Array(3 * sample.length + 2).fill(0xaa);
    assert.equal(writeUtf8(sample, out, 2), 2 + expected.length);
    assert.deepEqual(out.subarray(2, 2 + expected.length), expected, JSON.stringify(sample));
    assert.deepEqual([out[0], out[1]], [0xaa, 0xaa], "nothing written before pos");
  }
});
