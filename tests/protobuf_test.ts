import assert from "node:assert/strict";
import { test } from "node:test";
import { varintSize, writeVarint } from "../src/_protobuf.ts";

/** Reads a varint the plain way, to check the writer against. */
function readVarint(bytes: Uint8Array): number {
  let value = 0;
  for (let i = bytes.length - 1; i >= 0; i--) value = value * 128 + (bytes[i]! & 0x7f);
  return value;
}

test("writeVarint() writes varintSize() bytes that read back, at every size boundary", () => {
  const values = [0, 1, 127, 128, 16_383, 16_384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 35, 2 ** 42];
  values.push(2 ** 49, Number.MAX_SAFE_INTEGER);
  for (const value of values) {
    const out = new Uint8Array(12);
    const end = writeVarint(out, 1, value);
    assert.equal(end - 1, varintSize(value), `size of ${value}`);
    const bytes = out.subarray(1, end);
    assert.ok(bytes.subarray(0, -1).every((byte) => byte >= 0x80), "continuation bits");
    assert.ok(bytes[bytes.length - 1]! < 0x80, "last byte");
    assert.equal(readVarint(bytes), value);
  }
});
