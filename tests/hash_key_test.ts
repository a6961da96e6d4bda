import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  assertPartitionKey,
  compareHashKeys,
  createHashKey,
  type HashKey,
  hashKeyFromDecimal,
  hashKeyToDecimal,
  hashPartitionKey,
  parseExplicitHashKey,
} from "../src/hash_key.ts";
import { isValidationError, ValidationError } from "../src/errors.ts";
import { SeededRandom } from "./support/seeded_random.ts";

const MAX = (1n << 128n) - 1n;

function toBigInt(key: HashKey): bigint {
  return (BigInt(key.h0) << 96n) | (BigInt(key.h1) << 64n) | (BigInt(key.h2) << 32n) |
    BigInt(key.h3);
}

function fromBigInt(value: bigint): HashKey {
  const word = (shift: bigint) => Number((value >> shift) & 0xffffffffn);
  return { h0: word(96n), h1: word(64n), h2: word(32n), h3: word(0n) };
}

function md5BigInt(text: string): bigint {
  return BigInt("0x" + createHash("md5").update(Buffer.from(text, "utf8")).digest("hex"));
}

function randomKey(random: SeededRandom, maxUnits: number): string {
  const pieces = [
    "a",
    "Z",
    "0",
    "-",
    "é",
    "ß",
    "中",
    "語",
    "😀",
    "𝄞",
    "\u0000",
    "\u07ff",
    "\uffff",
  ];
  let key = "";
  const target = random.int(1, maxUnits);
  while (key.length < target) {
    const piece = random.pick(pieces);
    if (key.length + piece.length > maxUnits) break;
    key += piece;
  }
  return key || "k";
}

function words(key: HashKey): number[] {
  return [key.h0, key.h1, key.h2, key.h3];
}

test("hashPartitionKey() gives the documented hash keys", () => {
  const key = createHashKey();
  assert.equal(hashPartitionKey("user-123", key), 8);
  assert.equal(toBigInt(key), 250018372642977770877286195909578633128n);
  assert.equal(hashPartitionKey("alpha", key), 5);
  assert.equal(toBigInt(key), 58606826522850340945736240254012750329n);
  assert.equal(hashPartitionKey("", key), 0);
  assert.equal(toBigInt(key), 281949768489412648962353822266799178366n);
});

test("hashPartitionKey() equals MD5 of the UTF-8 bytes, big-endian, for random keys", () => {
  const random = new SeededRandom(10);
  const key = createHashKey();
  for (let i = 0; i < 2000; i++) {
    const text = randomKey(random, 256);
    const length = hashPartitionKey(text, key);
    assert.equal(length, Buffer.byteLength(text, "utf8"), JSON.stringify(text));
    assert.equal(toBigInt(key), md5BigInt(text), JSON.stringify(text));
    for (const w of words(key)) assert.ok(Number.isInteger(w) && w >= 0 && w < 2 ** 32);
  }
});

test("hashPartitionKey() hashes keys longer than 256 code units correctly", () => {
  const key = createHashKey();
  for (const text of ["x".repeat(257), "中".repeat(1000), "😀".repeat(300)]) {
    assert.equal(hashPartitionKey(text, key), Buffer.byteLength(text, "utf8"));
    assert.equal(toBigInt(key), md5BigInt(text));
  }
});

test("hashPartitionKey() encodes a lone surrogate as U+FFFD, like TextEncoder", () => {
  const key = createHashKey();
  const text = "a\ud800b";
  assert.equal(hashPartitionKey(text, key), 5);
  assert.equal(toBigInt(key), md5BigInt("a\ufffdb"));
});

test("compareHashKeys() orders keys as unsigned 128-bit integers", () => {
  const random = new SeededRandom(11);
  const values = [0n, 1n, 0xffffffffn, 1n << 32n, 1n << 64n, 1n << 96n, 1n << 127n, MAX];
  for (let i = 0; i < 300; i++) values.push(random.bigint(random.pick([8, 40, 70, 100, 128])));
  for (const a of values) {
    for (const b of values.slice(0, 40)) {
      const got = Math.sign(compareHashKeys(fromBigInt(a), fromBigInt(b)));
      assert.equal(got, a < b ? -1 : a > b ? 1 : 0, `${a} vs ${b}`);
    }
  }
});

test("parseExplicitHashKey() accepts canonical decimals from 0 to 2^128 - 1", () => {
  const key = createHashKey();
  const accepted = [
    "0",
    "1",
    "9",
    "10",
    "123456789",
    "999999",
    "1000000",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "170141183460469231731687303715884105728",
    "340282366920938463463374607431768211455",
  ];
  for (const text of accepted) {
    parseExplicitHashKey(text, key);
    assert.equal(toBigInt(key), BigInt(text), text);
  }
});

test("parseExplicitHashKey() and hashKeyToDecimal() round-trip random values over the whole range", () => {
  const random = new SeededRandom(12);
  const key = createHashKey();
  for (let i = 0; i < 3000; i++) {
    const value = random.bigint(random.int(1, 128));
    const text = value.toString();
    parseExplicitHashKey(text, key);
    assert.equal(toBigInt(key), value, text);
    assert.equal(hashKeyToDecimal(key), text);
    assert.deepEqual(hashKeyFromDecimal(text), key);
  }
});

test("parseExplicitHashKey() rejects what Kinesis rejects, naming the field", () => {
  const key = createHashKey();
  const rejected: [unknown, RegExp][] = [
    ["", /canonical decimal/],
    [" 1", /canonical decimal/],
    ["1 ", /canonical decimal/],
    ["+1", /canonical decimal/],
    ["-1", /canonical decimal/],
    ["1_000", /canonical decimal/],
    ["0x10", /canonical decimal/],
    ["1.0", /canonical decimal/],
    ["abc", /canonical decimal/],
    ["1e10", /canonical decimal/],
    ["\u0661", /canonical decimal/],
    ["\uff11", /canonical decimal/],
    ["00", /canonical decimal/],
    ["042", /canonical decimal/],
    ["0" + MAX.toString(), /canonical decimal/],
    [(MAX + 1n).toString(), /at most 2\^128 - 1/],
    [(MAX + 1000n).toString(), /at most 2\^128 - 1/],
    ["9".repeat(39), /at most 2\^128 - 1/],
    ["1" + "0".repeat(39), /at most 2\^128 - 1/],
    ["9".repeat(10_000), /at most 2\^128 - 1.*10000 characters/],
    [42, /must be a string: current type is number/],
    [42n, /must be a string: current type is bigint/],
    [null, /current type is null/],
    [undefined, /current type is undefined/],
  ];
  for (const [value, message] of rejected) {
    const before = words(key);
    assert.throws(
      () => parseExplicitHashKey(value, key),
      (error: unknown) => {
        assert.ok(isValidationError(error));
        assert.ok(error instanceof ValidationError);
        assert.equal(error.field, "explicitHashKey");
        assert.match(error.message, message);
        assert.ok(error.message.length < 300, "the message must not echo a long value");
        return true;
      },
      String(value).slice(0, 50),
    );
    assert.deepEqual(words(key), before, "a rejected value leaves the output untouched");
  }
});

test("hashKeyFromDecimal() throws RangeError for non-canonical or out-of-range text", () => {
  for (const text of ["", "01", "-0", "1.5", " 7", (MAX + 1n).toString()]) {
    assert.throws(() => hashKeyFromDecimal(text), RangeError, text);
  }
  assert.throws(() => hashKeyFromDecimal(7 as unknown as string), TypeError);
});

test("hashKeyToDecimal() formats boundaries and internal zero groups canonically", () => {
  const values = [
    0n,
    1n,
    999_999n,
    1_000_000n,
    1_000_001n,
    10n ** 12n,
    10n ** 18n + 1n,
    10n ** 36n,
    0xffffffffn,
    1n << 32n,
    (1n << 64n) - 1n,
    MAX,
  ];
  for (const value of values) assert.equal(hashKeyToDecimal(fromBigInt(value)), value.toString());
});

test("assertPartitionKey() accepts 1 to 256 UTF-16 code units of well-formed text", () => {
  for (const key of ["a", "x".repeat(256), "😀".repeat(128), "中".repeat(256), "\u0000"]) {
    assertPartitionKey(key);
  }
});

test("assertPartitionKey() rejects bad keys with ValidationError on partitionKey", () => {
  const rejected: [unknown, RegExp][] = [
    [undefined, /must be a string: current type is undefined/],
    [42, /must be a string: current type is number/],
    [null, /current type is null/],
    [{ toString: () => "k" }, /current type is object/],
    ["", /must not be empty/],
    ["x".repeat(257), /at most 256 UTF-16 code units: current length is 257/],
    ["😀".repeat(129), /current length is 258/],
    ["k".repeat(10_240), /current length is 10240/],
    ["abc\ud800", /lone surrogate at index 3 of 4/],
    ["\udc00abc", /lone surrogate at index 0 of 4/],
    ["a\udc00\ud800b", /lone surrogate at index 1 of 4/],
    ["😀\ud83d", /lone surrogate at index 2 of 3/],
  ];
  for (const [value, message] of rejected) {
    assert.throws(
      () => assertPartitionKey(value),
      (error: unknown) => {
        assert.ok(isValidationError(error));
        assert.equal(error.field, "partitionKey");
        assert.match(error.message, message);
        assert.ok(error.message.length < 200, "the message must not echo the key");
        return true;
      },
      String(value).slice(0, 50),
    );
  }
});
