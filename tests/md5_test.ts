import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { md5, md5Into } from "../src/md5.ts";
import { md5Js } from "../src/_md5_js.ts";
import { SeededRandom } from "./support/seeded_random.ts";

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function reference(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

test("md5() matches the RFC 1321 test suite", () => {
  const suite: [string, string][] = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    [
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f",
    ],
    [
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a",
    ],
  ];
  for (const [input, digest] of suite) {
    assert.equal(hex(md5(encoder.encode(input))), digest, JSON.stringify(input));
  }
});

test("md5() matches node:crypto for every length from 0 to 300 bytes", () => {
  // Covers every padding case: tails of 0..63 bytes, the 55/56 split, one and more blocks.
  const random = new SeededRandom(1);
  const bytes = random.bytes(300);
  for (let length = 0; length <= 300; length++) {
    const input = bytes.subarray(0, length);
    assert.equal(hex(md5(input)), reference(input), `length ${length}`);
  }
});

test("md5Into() matches node:crypto on random inputs of 0 to 100 KiB at random offsets", () => {
  const random = new SeededRandom(2);
  const buffer = random.bytes(100 * 1024 + 8);
  const out = new Uint8Array(40);
  for (let i = 0; i < 150; i++) {
    const length = i < 20 ? i * 5120 : random.int(0, 100 * 1024);
    const start = random.int(0, 7);
    md5Into(buffer, start, start + length, out, 20);
    assert.equal(
      hex(out.subarray(20, 36)),
      reference(buffer.subarray(start, start + length)),
      `length ${length} at ${start}`,
    );
  }
  assert.equal(hex(md5(buffer)), reference(buffer));
});

test("md5Into() hashes a view with a non-zero byteOffset by its own indexes", () => {
  const backing = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
  const view = backing.subarray(3, 903);
  const out = new Uint8Array(16);
  md5Into(view, 10, 810, out, 0);
  assert.equal(hex(out), reference(backing.subarray(13, 813)));
});

test("md5Into() writes exactly 16 bytes at outOffset, even into the hashed buffer", () => {
  const frame = new Uint8Array(3 + 16 + 2).fill(0xaa);
  frame.set(encoder.encode("abc"));
  md5Into(frame, 0, 3, frame, 3);
  assert.equal(hex(frame.subarray(3, 19)), "900150983cd24fb0d6963f7d28e17f72");
  assert.deepEqual([...frame.subarray(0, 3)], [0x61, 0x62, 0x63]);
  assert.deepEqual([...frame.subarray(19)], [0xaa, 0xaa]);
});

test("md5Into() gives the same digest on repeated calls (no state leaks between calls)", () => {
  const random = new SeededRandom(3);
  const a = random.bytes(1000);
  const b = random.bytes(77);
  const first = hex(md5(a));
  md5(b);
  assert.equal(hex(md5(a)), first);
  assert.equal(hex(md5(b)), reference(b));
});

test("md5Into() rejects ranges outside the data and digests that do not fit", () => {
  const data = new Uint8Array(10);
  const out = new Uint8Array(16);
  assert.throws(() => md5Into(data, 0, 11, out, 0), RangeError);
  assert.throws(() => md5Into(data, 5, 4, out, 0), RangeError);
  assert.throws(() => md5Into(data, -1, 4, out, 0), RangeError);
  assert.throws(() => md5Into(data, 0.5, 4, out, 0), RangeError);
  assert.throws(() => md5Into(data, 0, 10, out, 1), /16 bytes must fit/);
  assert.throws(() => md5Into(data, 0, 10, new Uint8Array(15), 0), RangeError);
  assert.throws(() => md5Into([1, 2] as unknown as Uint8Array, 0, 2, out, 0), TypeError);
  assert.throws(() => md5Into(data, 0, 2, [] as unknown as Uint8Array, 0), TypeError);
});

test("md5Into() matches node:crypto around the 64 KiB pieces it copies into WebAssembly", () => {
  const random = new SeededRandom(4);
  const buffer = random.bytes(3 * 65536 + 200);
  const out = new Uint8Array(16);
  for (const length of [65535, 65536, 65537, 65536 + 55, 65536 + 56, 131072, 3 * 65536 + 199]) {
    md5Into(buffer, 1, 1 + length, out, 0);
    assert.equal(hex(out), reference(buffer.subarray(1, 1 + length)), `length ${length}`);
  }
});

test("md5Js(), the fallback without WebAssembly, matches node:crypto", () => {
  const random = new SeededRandom(5);
  const buffer = random.bytes(70_000);
  const lengths = [...Array.from({ length: 130 }, (_, i) => i), 1000, 65536, 69_999];
  for (const length of lengths) {
    assert.equal(
      hex(md5Js(buffer, 1, 1 + length)),
      reference(buffer.subarray(1, 1 + length)),
      `length ${length}`,
    );
  }
});
