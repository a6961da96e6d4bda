import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AggregateBuilder,
  AGGREGATED_MAGIC,
  type AggregationInput,
  deaggregate,
  decodeAggregated,
  type DecodedRecord,
  encodeAggregated,
  isAggregated,
} from "../src/codec.ts";
import { varintSize, writeVarint } from "../src/_protobuf.ts";
import { DecodeError, isDecodeError } from "../src/errors.ts";
import { aggAggregate, aggDeaggregate } from "./support/aws_kinesis_agg.ts";
import { SeededRandom } from "./support/seeded_random.ts";

const encoder = new TextEncoder();
const MAX_HASH_KEY = (1n << 128n) - 1n;

function fromHex(text: string): Uint8Array {
  const clean = text.replaceAll(" ", "");
  return new Uint8Array(clean.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Magic + body + MD5(body), with node:crypto as an independent MD5. */
function frame(body: Uint8Array | number[]): Uint8Array {
  const bytes = Uint8Array.from(body);
  const digest = createHash("md5").update(bytes).digest();
  const out = new Uint8Array(4 + bytes.length + 16);
  out.set(AGGREGATED_MAGIC);
  out.set(bytes, 4);
  out.set(digest, 4 + bytes.length);
  return out;
}

/** Reference varint encoder over bigint, written independently of src/_protobuf.ts. */
function varint(value: number | bigint): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? low | 0x80 : low);
  } while (v > 0n);
  return out;
}

function delimited(key: number, content: number[] | Uint8Array): number[] {
  return [key, ...varint(content.length), ...content];
}

function text(value: string): number[] {
  return [...encoder.encode(value)];
}

function assertDecodeError(bytes: Uint8Array, message: RegExp, offset?: number): void {
  assert.throws(
    () => decodeAggregated(bytes),
    (error: unknown) => {
      assert.ok(error instanceof DecodeError, `expected DecodeError, got ${error}`);
      assert.ok(isDecodeError(error));
      assert.match(error.message, message);
      if (offset !== undefined) assert.equal(error.offset, offset, error.message);
      return true;
    },
  );
}

function plain(records: readonly DecodedRecord[]): unknown[] {
  return records.map((r) => ({ ...r, data: toHex(r.data) }));
}

// Integer-like strings below 2^32 - 1 are array indexes: JavaScript orders them first in
// Object.keys(), which is what breaks aws-kinesis-agg's key tables.
function isArrayIndex(value: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(value) && Number(value) < 2 ** 32 - 1;
}

function randomPartitionKey(random: SeededRandom): string {
  switch (random.int(0, 5)) {
    case 0:
      return `user-${random.int(0, 50)}`;
    case 1:
      return String(random.int(0, 100000)); // numeric-looking, an array index
    case 2:
      return random.pick(["007", "-3", "1.5", "4294967295", "99999999999", "1e3", " 42"]);
    case 3: {
      const pieces = ["é", "ß", "中", "語", "😀", "𝄞", "ü", "a"];
      let key = "";
      const length = random.int(1, 12);
      for (let i = 0; i < length; i++) key += random.pick(pieces);
      return key;
    }
    case 4:
      return "k".repeat(random.int(1, 256));
    default: {
      const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:/";
      let key = "";
      const length = random.int(1, 40);
      for (let i = 0; i < length; i++) key += alphabet[random.int(0, alphabet.length - 1)];
      return key;
    }
  }
}

function randomHashKey(random: SeededRandom): string {
  return random.pick([
    () => String(random.int(0, 1000)),
    () => random.bigint(128).toString(),
    () => random.bigint(64).toString(),
    () => MAX_HASH_KEY.toString(),
  ])();
}

function randomRecord(random: SeededRandom, dataMax = 300): AggregationInput {
  const record: { partitionKey: string; explicitHashKey?: string; data: Uint8Array } = {
    partitionKey: randomPartitionKey(random),
    data: random.bytes(random.int(0, dataMax)),
  };
  if (random.next() < 0.3) record.explicitHashKey = randomHashKey(random);
  return record;
}

// --- Vectors: the KPL's aggregated record format, byte for byte (magic, protobuf message, MD5 of
// the message: https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md)

test("encodeAggregated() writes the two-record vector byte for byte", () => {
  const bytes = encodeAggregated([
    { partitionKey: "a", data: encoder.encode("x") },
    { partitionKey: "b", data: encoder.encode("y") },
  ]);
  assert.equal(
    toHex(bytes),
    "f3899ac20a01610a01621a0508001a01781a0508011a0179b0031909ae75891ca94acec2ecce3125",
  );
});

test("decodeAggregated() reads the vector with an explicit hash key and tags", () => {
  const bytes = fromHex(
    "f3899ac2 0a02706b 12023432 1a17 0800 1000 1a0178 2208 0a026b31 12027631 2204 0a026b32 " +
      "1a05 0800 1a0179 7dea88c417d0805c656afa8dab36c6f9",
  );
  assert.deepEqual(plain(decodeAggregated(bytes)), [
    {
      partitionKey: "pk",
      explicitHashKey: "42",
      data: "78",
      tags: [{ key: "k1", value: "v1" }, { key: "k2" }],
    },
    { partitionKey: "pk", data: "79" },
  ]);
});

test("encodeAggregated() writes that vector's records without tags as the same tables and records", () => {
  const bytes = encodeAggregated([
    { partitionKey: "pk", explicitHashKey: "42", data: encoder.encode("x") },
    { partitionKey: "pk", data: encoder.encode("y") },
  ]);
  const body = "0a02706b120234321a07080010001a01781a0508001a0179";
  assert.equal(
    toHex(bytes),
    "f3899ac2" + body + createHash("md5").update(fromHex(body)).digest("hex"),
  );
});

test("encodeAggregated([]) is the magic and the MD5 of nothing, and decodes to no records", () => {
  const bytes = encodeAggregated([]);
  assert.equal(toHex(bytes), "f3899ac2d41d8cd98f00b204e9800998ecf8427e");
  assert.deepEqual(decodeAggregated(bytes), []);
  assert.equal(isAggregated(bytes), true);
});

test("encodeAggregated() always writes the aggregated format, even for one record", () => {
  const bytes = encodeAggregated([{ partitionKey: "k", data: encoder.encode("x") }]);
  assert.equal(toHex(bytes.subarray(0, 4)), "f3899ac2");
  assert.deepEqual(plain(decodeAggregated(bytes)), [{ partitionKey: "k", data: "78" }]);
});

test("the key tables keep first-use order and store each key once", () => {
  const records = ["a", "b", "a", "c", "b"].map((partitionKey, i) => ({
    partitionKey,
    explicitHashKey: ["1", "2", "1", "3", "2"][i],
    data: new Uint8Array([i]),
  }));
  const bytes = encodeAggregated(records);
  assert.equal(toHex(bytes.subarray(4, 22)), "0a01610a01620a0163120131120132120133");
  assert.deepEqual(
    decodeAggregated(bytes).map((r) => [r.partitionKey, r.explicitHashKey, r.data[0]]),
    [["a", "1", 0], ["b", "2", 1], ["a", "1", 2], ["c", "3", 3], ["b", "2", 4]],
  );
});

// --- Varints --------------------------------------------------------------------------------

test("varints encode the edge values to the documented bytes", () => {
  assert.deepEqual(varint(0), [0x00]);
  assert.deepEqual(varint(1), [0x01]);
  assert.deepEqual(varint(127), [0x7f]);
  assert.deepEqual(varint(128), [0x80, 0x01]);
  assert.deepEqual(varint(300), [0xac, 0x02]);
  assert.deepEqual(varint(2n ** 63n - 1n), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  const values = [
    0,
    1,
    127,
    128,
    300,
    16383,
    16384,
    2 ** 21 - 1,
    2 ** 21,
    2 ** 28,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 35,
    2 ** 49,
    2 ** 53 - 1,
  ];
  for (const value of values) {
    const out = new Uint8Array(12);
    const end = writeVarint(out, 1, value);
    assert.deepEqual([...out.subarray(1, end)], varint(value), String(value));
    assert.equal(varintSize(value), end - 1, String(value));
  }
});

test("the decoder reads 64-bit varints exactly and rejects longer ones", () => {
  // partition_key_index = 2^63 - 1 and 2^64 - 1: valid varints, indexes out of range.
  for (const value of [2n ** 63n - 1n, 2n ** 64n - 1n]) {
    const bytes = frame([...delimited(0x1a, [0x08, ...varint(value), 0x1a, 0x00])]);
    assertDecodeError(bytes, new RegExp(`partition_key_index ${value} is out of range`), 7);
  }
  const tenth = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x1a, 0x00];
  assertDecodeError(frame(delimited(0x1a, tenth)), /varint exceeds 64 bits/, 7);
  const eleven = [0x08, ...new Array(10).fill(0x80), 0x00, 0x1a, 0x00];
  assertDecodeError(frame(delimited(0x1a, eleven)), /varint exceeds 64 bits/, 7);
  // A non-minimal but valid encoding of 0.
  const padded = frame([
    0x0a,
    0x01,
    0x61,
    ...delimited(0x1a, [0x08, 0x80, 0x80, 0x00, 0x1a, 0x00]),
  ]);
  assert.deepEqual(plain(decodeAggregated(padded)), [{ partitionKey: "a", data: "" }]);
});

// --- AggregateBuilder -----------------------------------------------------------------------

test("AggregateBuilder.size equals encode().length and sizeWith() predicts it, for random records", () => {
  const random = new SeededRandom(20);
  const builder = new AggregateBuilder();
  const edgeSizes = [0, 1, 127, 128, 16383, 16384, 70000];
  for (let round = 0; round < 40; round++) {
    builder.clear();
    const count = random.int(0, 150);
    for (let i = 0; i < count; i++) {
      const record = random.next() < 0.1
        ? { partitionKey: randomPartitionKey(random), data: new Uint8Array(random.pick(edgeSizes)) }
        : randomRecord(random);
      const predicted = builder.sizeWith(record);
      builder.add(record);
      assert.equal(builder.size, predicted);
    }
    const bytes = builder.encode();
    assert.equal(bytes.length, builder.size);
    assert.equal(builder.count, count);
    assert.equal(decodeAggregated(bytes).length, count);
  }
});

test("AggregateBuilder.sizeWith() counts a key table index whose varint grows past 127", () => {
  const builder = new AggregateBuilder();
  for (let i = 0; i < 128; i++) builder.add({ partitionKey: `k${i}`, data: new Uint8Array(1) });
  const record = { partitionKey: "k128", explicitHashKey: "5", data: new Uint8Array(1) };
  const predicted = builder.sizeWith(record);
  builder.add(record);
  assert.equal(builder.encode().length, predicted);
  assert.equal(builder.partitionKeyCount, 129);
});

test("AggregateBuilder encodes the same bytes as encodeAggregated(), and again after clear()", () => {
  const random = new SeededRandom(21);
  const records = Array.from({ length: 60 }, () => randomRecord(random));
  const builder = new AggregateBuilder();
  for (const record of records) builder.add(record);
  const first = builder.encode();
  assert.deepEqual(first, encodeAggregated(records));
  builder.clear();
  assert.equal(builder.count, 0);
  assert.equal(builder.size, 20);
  assert.equal(builder.partitionKeyCount, 0);
  builder.add({ partitionKey: "other", data: new Uint8Array(3) });
  builder.clear();
  for (const record of records) builder.add(record);
  assert.deepEqual(builder.encode(), first);
});

test("AggregateBuilder reused for many aggregates of recurring and new keys writes what aws-kinesis-agg writes", () => {
  // The builder remembers keys across clear() and forgets them when too many never recur:
  // both paths, and keys that come back after being forgotten, must write the same bytes.
  const random = new SeededRandom(23);
  const pool: string[] = [];
  while (pool.length < 30) {
    const key = randomPartitionKey(random);
    if (!isArrayIndex(key)) pool.push(key);
  }
  const hashKeys = [
    "4294967296",
    "340282366920938463463374607431768211455",
    "99999999999999999999",
  ];
  const builder = new AggregateBuilder();
  const out = new Uint8Array(70_000);
  for (let round = 0; round < 40; round++) {
    const records: AggregationInput[] = [];
    // Every fifth aggregate is mostly keys never seen again, enough to be forgotten.
    const fresh = round % 5 === 4 ? 0.9 : 0.1;
    const count = random.int(1, 300);
    while (records.length < count) {
      let partitionKey = random.next() < fresh ? randomPartitionKey(random) : random.pick(pool);
      if (isArrayIndex(partitionKey)) partitionKey = `k${partitionKey}`;
      const record: AggregationInput = random.next() < 0.2
        ? { partitionKey, explicitHashKey: random.pick(hashKeys), data: random.bytes(20) }
        : { partitionKey, data: random.bytes(random.int(0, 40)) };
      builder.add(record);
      records.push(record);
    }
    const theirs = new Uint8Array(aggAggregate(records)[0]!.data);
    const ours = builder.encode();
    assert.deepEqual(ours, theirs, `round ${round}`);
    const offset = random.int(0, 9);
    assert.equal(builder.encodeInto(out, offset), offset + ours.length);
    assert.deepEqual(out.subarray(offset, offset + ours.length), ours);
    builder.clear();
  }
});

test("AggregateBuilder.encodeInto() rejects a destination the aggregate does not fit in", () => {
  const builder = new AggregateBuilder();
  builder.add({ partitionKey: "a", data: new Uint8Array(10) });
  const size = builder.size;
  assert.equal(builder.encodeInto(new Uint8Array(size), 0), size);
  assert.throws(() => builder.encodeInto(new Uint8Array(size - 1), 0), /must fit in 'out'/);
  assert.throws(() => builder.encodeInto(new Uint8Array(size), 1), RangeError);
  assert.throws(() => builder.encodeInto(new Uint8Array(size + 1), -1), RangeError);
  assert.throws(() => builder.encodeInto(new Uint8Array(size + 1), 0.5), RangeError);
  assert.throws(() => builder.encodeInto([] as unknown as Uint8Array, 0), TypeError);
});

test("AggregateBuilder.tryAdd() adds exactly while the size stays within the limit", () => {
  const random = new SeededRandom(22);
  const builder = new AggregateBuilder();
  const limit = 5000;
  let refused = 0;
  for (let i = 0; i < 500; i++) {
    const record = randomRecord(random, 200);
    const before = builder.size;
    const count = builder.count;
    const fits = builder.sizeWith(record) <= limit;
    assert.equal(builder.tryAdd(record, limit), fits);
    if (fits) {
      assert.equal(builder.count, count + 1);
    } else {
      refused++;
      assert.equal(builder.size, before);
      assert.equal(builder.count, count);
      assert.equal(builder.encode().length, before);
      builder.clear();
    }
    assert.ok(builder.size <= limit);
  }
  assert.ok(refused > 5, "the limit was reached several times");
});

test("AggregateBuilder rejects records with fields of the wrong type and stays unchanged", () => {
  const builder = new AggregateBuilder();
  builder.add({ partitionKey: "ok", data: new Uint8Array(1) });
  const before = builder.encode();
  const bad = [
    { partitionKey: 1, data: new Uint8Array(1) },
    { partitionKey: "k", data: [1, 2] },
    { partitionKey: "k", data: "text" },
    { partitionKey: "k", explicitHashKey: 5, data: new Uint8Array(1) },
  ] as unknown as AggregationInput[];
  for (const record of bad) {
    assert.throws(() => builder.add(record), TypeError);
    assert.throws(() => builder.sizeWith(record), TypeError);
  }
  assert.deepEqual(builder.encode(), before);
});

test("encodeAggregated() leaves nothing behind after a rejected record", () => {
  assert.throws(
    () =>
      encodeAggregated([
        { partitionKey: "first", data: new Uint8Array(1) },
        { partitionKey: "k", data: null } as unknown as AggregationInput,
      ]),
    TypeError,
  );
  const bytes = encodeAggregated([
    { partitionKey: "a", data: encoder.encode("x") },
    { partitionKey: "b", data: encoder.encode("y") },
  ]);
  assert.equal(toHex(bytes.subarray(0, 10)), "f3899ac20a01610a0162");
});

test("AggregateBuilder.encode() refuses data whose buffer was detached after add()", () => {
  const builder = new AggregateBuilder();
  const buffer = new ArrayBuffer(40);
  builder.add({ partitionKey: "k", data: new Uint8Array(buffer) });
  structuredClone(buffer, { transfer: [buffer] });
  assert.throws(() => builder.encode(), /changed length after it was added: current length is 0/);
});

test("AGGREGATED_MAGIC is a copy: changing it changes nothing in the codec", () => {
  const saved = AGGREGATED_MAGIC[0]!;
  AGGREGATED_MAGIC[0] = 0;
  try {
    const bytes = encodeAggregated([{ partitionKey: "k", data: new Uint8Array(1) }]);
    assert.equal(bytes[0], 0xf3);
    assert.equal(isAggregated(bytes), true);
  } finally {
    AGGREGATED_MAGIC[0] = saved;
  }
  assert.equal(toHex(AGGREGATED_MAGIC), "f3899ac2");
});

// --- isAggregated / deaggregate ----------------------------------------------------------

test("isAggregated() needs the magic and a matching MD5", () => {
  const good = encodeAggregated([{ partitionKey: "k", data: encoder.encode("hello") }]);
  assert.equal(isAggregated(good), true);
  const corrupt = good.slice();
  corrupt[corrupt.length - 1]! ^= 1;
  assert.equal(isAggregated(corrupt), false);
  const body = good.slice();
  body[8]! ^= 0x40;
  assert.equal(isAggregated(body), false);
  assert.equal(isAggregated(new Uint8Array(32)), false);
  assert.equal(isAggregated(Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2, 0)), false);
  assert.equal(isAggregated(Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2, ...new Uint8Array(20))), false);
  assert.equal(isAggregated(new Uint8Array(0)), false);
  assert.equal(isAggregated("f3899ac2" as unknown as Uint8Array), false);
});

test("deaggregate() numbers the user records of an aggregate", () => {
  const data = encodeAggregated([
    { partitionKey: "k1", data: encoder.encode("a") },
    { partitionKey: "k2", explicitHashKey: "7", data: encoder.encode("b") },
    { partitionKey: "k1", data: encoder.encode("c") },
  ]);
  const records = deaggregate({ data, partitionKey: "a", sequenceNumber: "123" });
  assert.deepEqual(records.map((r) => ({ ...r, data: toHex(r.data) })), [
    {
      partitionKey: "k1",
      data: "61",
      sequenceNumber: "123",
      subSequenceNumber: 0,
      aggregated: true,
    },
    {
      partitionKey: "k2",
      explicitHashKey: "7",
      data: "62",
      sequenceNumber: "123",
      subSequenceNumber: 1,
      aggregated: true,
    },
    {
      partitionKey: "k1",
      data: "63",
      sequenceNumber: "123",
      subSequenceNumber: 2,
      aggregated: true,
    },
  ]);
});

test("deaggregate() passes through raw data, bad checksums, unparsable protobuf and 20-byte aggregates", () => {
  const good = encodeAggregated([{ partitionKey: "k", data: encoder.encode("x") }]);
  const badChecksum = good.slice();
  badChecksum[badChecksum.length - 1]! ^= 1;
  const unparsable = frame([0x0a, 0x05, 0x61]);
  const empty = encodeAggregated([]);
  for (const data of [encoder.encode("plain"), new Uint8Array(0), badChecksum, unparsable, empty]) {
    const records = deaggregate({
      data,
      partitionKey: "p",
      explicitHashKey: "9",
      sequenceNumber: "5",
    });
    assert.equal(records.length, 1);
    assert.equal(records[0]!.data, data, "the same bytes, not a copy");
    assert.deepEqual({ ...records[0], data: undefined }, {
      partitionKey: "p",
      explicitHashKey: "9",
      sequenceNumber: "5",
      subSequenceNumber: 0,
      aggregated: false,
      data: undefined,
    });
  }
  const bare = deaggregate({ data: encoder.encode("x"), partitionKey: "p" });
  assert.deepEqual(Object.keys(bare[0]!).sort(), [
    "aggregated",
    "data",
    "partitionKey",
    "subSequenceNumber",
  ]);
  assert.throws(
    () => deaggregate({ data: "x" as unknown as Uint8Array, partitionKey: "p" }),
    TypeError,
  );
});

test("deaggregate() keeps the tags of user records", () => {
  const data = frame([
    ...delimited(0x0a, text("k")),
    ...delimited(0x1a, [0x08, 0x00, 0x1a, 0x00, ...delimited(0x22, delimited(0x0a, text("t")))]),
  ]);
  const [record] = deaggregate({ data, partitionKey: "a" });
  assert.deepEqual(record?.tags, [{ key: "t" }]);
});

// --- The decoder: what it accepts ----------------------------------------------------------

test("decodeAggregated() skips unknown fields of wire types 0, 1, 2 and 5 at every level", () => {
  // Field 15 as a varint, a fixed64, a length-delimited (not UTF-8, never decoded) and a
  // fixed32, then field 99 as a varint with a two-byte key.
  const unknown = [...fromHex("782a 79 0102030405060708 7a02fffe 7d01020304 980601")];
  const tag = [...unknown, ...delimited(0x0a, text("key")), ...unknown];
  const record = [
    ...unknown,
    ...[0x08, 0x00],
    ...unknown,
    ...delimited(0x1a, [9]),
    ...delimited(0x22, tag),
  ];
  const bytes = frame([
    ...unknown,
    ...delimited(0x0a, text("pk")),
    ...unknown,
    ...delimited(0x1a, record),
  ]);
  assert.deepEqual(plain(decodeAggregated(bytes)), [
    { partitionKey: "pk", data: "09", tags: [{ key: "key" }] },
  ]);
});

test("decodeAggregated() accepts tables after the records and keeps the last value of a repeated scalar", () => {
  const record = [
    0x08,
    0x00,
    0x10,
    0x00,
    0x08,
    0x01,
    ...delimited(0x1a, [1]),
    ...delimited(0x1a, [2]),
    0x10,
    0x01,
  ];
  const bytes = frame([
    ...delimited(0x1a, record),
    ...delimited(0x0a, text("first")),
    ...delimited(0x12, text("10")),
    ...delimited(0x0a, text("second")),
    ...delimited(0x12, text("20")),
  ]);
  assert.deepEqual(plain(decodeAggregated(bytes)), [{
    partitionKey: "second",
    explicitHashKey: "20",
    data: "02",
  }]);
});

test("decodeAggregated() keeps a byte order mark and multi-byte text in keys", () => {
  const keys = ["\ufeffbom", "中文-😀", "é".repeat(100)];
  const bytes = encodeAggregated(
    keys.map((partitionKey) => ({ partitionKey, data: new Uint8Array(0) })),
  );
  assert.deepEqual(decodeAggregated(bytes).map((r) => r.partitionKey), keys);
});

test("decodeAggregated() returns data as views into its input", () => {
  const bytes = encodeAggregated([{ partitionKey: "k", data: encoder.encode("payload") }]);
  const [record] = decodeAggregated(bytes);
  assert.equal(record?.data.buffer, bytes.buffer);
  assert.equal(new TextDecoder().decode(record?.data), "payload");
});

// --- The decoder: every error path ---------------------------------------------------------

test("decodeAggregated() rejects input shorter than 20 bytes, wrong magic and a bad MD5", () => {
  for (const length of [0, 1, 4, 19]) {
    assertDecodeError(new Uint8Array(length), /shorter than 20 bytes: current length is \d+/, 0);
  }
  const good = encodeAggregated([{ partitionKey: "k", data: encoder.encode("x") }]);
  for (let i = 0; i < 4; i++) {
    const bytes = good.slice();
    bytes[i]! ^= 0x10;
    assertDecodeError(bytes, /does not start with the magic bytes F3 89 9A C2/, i);
  }
  const bytes = good.slice();
  bytes[5]! ^= 1;
  assertDecodeError(bytes, /MD5 checksum does not match/, bytes.length - 16);
  const digest = good.slice();
  digest[digest.length - 16]! ^= 1;
  assertDecodeError(digest, /MD5 checksum does not match/, digest.length - 16);
  assert.throws(() => decodeAggregated([0xf3] as unknown as Uint8Array), TypeError);
});

test("decodeAggregated() reports each malformed field with its offset", () => {
  // Bodies in hex; the body starts at offset 4 of the framed input. "0a0161" is the
  // partition key table entry "a".
  const cases: [string, string, RegExp, number][] = [
    ["truncated varint", "80", /a varint is truncated/, 4],
    ["truncated key at the end", "0a0161 ff", /a varint is truncated/, 7],
    ["key over 32 bits", "8080808080 01", /field key exceeds 32 bits/, 4],
    ["field number 0", "00", /field has number 0/, 4],
    ["field number 0, wire type 2", "0200", /field has number 0/, 4],
    ["start group", "0b", /field 1 has unsupported wire type 3/, 4],
    ["end group", "0c", /field 1 has unsupported wire type 4/, 4],
    ["wire type 6", "0a0161 0e", /field 1 has unsupported wire type 6/, 7],
    ["wire type 7", "7f", /field 15 has unsupported wire type 7/, 4],
    [
      "partition key entry",
      "0a05 61",
      /partition_key_table entry is truncated: it declares 5 bytes and 1 remain/,
      5,
    ],
    ["hash key entry", "1203 31", /an explicit_hash_key_table entry is truncated/, 5],
    ["records entry", "1a09 0800", /a records entry is truncated/, 5],
    ["huge length", "0a ffffffffffffffffff01", /declares 18446744073709551615 bytes/, 5],
    ["unknown length-delimited", "7a05 00", /unknown field 15 is truncated/, 5],
    [
      "unknown fixed64",
      "79 010203",
      /unknown field 15 is truncated: it needs 8 bytes and 3 remain/,
      4,
    ],
    ["unknown fixed32", "7d 01", /unknown field 15 is truncated: it needs 4 bytes/, 4],
    // Nested lengths are bounded by their own message, not by the rest of the body.
    [
      "data past its record",
      "0a0161 1a04 0800 1a05 7801 7801 7801",
      /Record.data is truncated/,
      12,
    ],
    ["varint past its record", "1a01 08 0a0161", /a varint is truncated/, 7],
    [
      "tag past its record",
      "0a0161 1a06 0800 1a00 2204 0a0161 7801",
      /a Record.tags entry is truncated/,
      14,
    ],
    ["tag key past its tag", "0a0161 1a08 0800 1a00 2202 0a05 7801", /Tag.key is truncated/, 16],
    ["tag value past its tag", "0a0161 1a09 0800 1a00 2203 1202 61", /Tag.value is truncated/, 16],
    [
      "wire type inside a record",
      "0a0161 1a05 0800 1a00 0b",
      /field 1 has unsupported wire type 3/,
      13,
    ],
    [
      "wire type inside a tag",
      "0a0161 1a07 0800 1a00 2201 0c",
      /field 1 has unsupported wire type 4/,
      15,
    ],
    ["no partition_key_index", "0a0161 1a03 1a0178", /lacks the required partition_key_index/, 9],
    ["no data", "0a0161 1a02 0800", /lacks the required data/, 9],
    ["tag without key", "0a0161 1a08 0800 1a00 2202 1200", /a tag lacks the required key/, 15],
    [
      "partition key index",
      "1a04 0805 1a00",
      /partition_key_index 5 is out of range: the table has 0 entries/,
      7,
    ],
    [
      "hash key index",
      "0a0161 1a06 0800 1005 1a00",
      /explicit_hash_key_index 5 is out of range: the table has 0 entries/,
      12,
    ],
    [
      "hash key index past the table",
      "0a0161 120131 1a06 0800 1001 1a00",
      /explicit_hash_key_index 1 is out of range: the table has 1 entries/,
      15,
    ],
    ["UTF-8 in a partition key", "0a01 ff", /a partition_key_table entry is not valid UTF-8/, 6],
    ["overlong UTF-8", "0a02 c080", /a partition_key_table entry is not valid UTF-8/, 6],
    ["UTF-8 surrogate", "1203 eda080", /an explicit_hash_key_table entry is not valid UTF-8/, 6],
    [
      "UTF-8 in a long key",
      "0a20 " + "78".repeat(30) + "e4b8",
      /a partition_key_table entry is not valid UTF-8/,
      6,
    ],
    ["UTF-8 in a tag key", "0a0161 1a09 0800 1a00 2203 0a0180", /Tag.key is not valid UTF-8/, 17],
    [
      "UTF-8 in a tag value",
      "0a0161 1a0b 0800 1a00 2205 0a00 1201fe",
      /Tag.value is not valid UTF-8/,
      19,
    ],
  ];
  for (const [name, body, message, offset] of cases) {
    try {
      assertDecodeError(frame(fromHex(body)), message, offset);
    } catch (error) {
      assert.fail(`${name}: ${(error as Error).message}`);
    }
  }
});

test("decodeAggregated() throws only DecodeError for 24,000 seeded mutations, truncations and random inputs", () => {
  const random = new SeededRandom(30);
  const bases: Uint8Array[] = [
    fromHex(
      "f3899ac2 0a02706b 12023432 1a17 0800 1000 1a0178 2208 0a026b31 12027631 2204 0a026b32 " +
        "1a05 0800 1a0179 7dea88c417d0805c656afa8dab36c6f9",
    ),
  ];
  for (let i = 0; i < 40; i++) {
    bases.push(
      encodeAggregated(Array.from({ length: random.int(1, 6) }, () => randomRecord(random, 40))),
    );
  }
  const protoBytes = [0x00, 0x01, 0x02, 0x08, 0x0a, 0x10, 0x12, 0x1a, 0x22, 0x7f, 0x80, 0xff];
  const outcomes = { decoded: 0, rejected: 0, records: 0 };
  const messages = new Set<string>();
  let cases = 0;

  function check(bytes: Uint8Array): void {
    cases++;
    let decoded: DecodedRecord[] | undefined;
    try {
      decoded = decodeAggregated(bytes);
    } catch (error) {
      if (!isDecodeError(error)) {
        assert.fail(`case ${cases}: ${String(error)} for ${toHex(bytes).slice(0, 200)}`);
      }
      assert.ok(error.offset >= 0 && error.offset <= bytes.length);
      messages.add(error.message.replace(/\d+/g, "N"));
      outcomes.rejected++;
    }
    if (decoded !== undefined) {
      outcomes.decoded++;
      outcomes.records += decoded.length;
      for (const record of decoded) {
        assert.equal(record.data.buffer, bytes.buffer);
        assert.equal(typeof record.partitionKey, "string");
      }
    }
    // The consumer-side helpers never throw on any bytes.
    assert.equal(typeof isAggregated(bytes), "boolean");
    assert.ok(deaggregate({ data: bytes, partitionKey: "p" }).length >= 0);
  }

  function body(bytes: Uint8Array): number[] {
    return [...bytes.subarray(4, bytes.length - 16)];
  }

  for (let i = 0; i < 6000; i++) {
    // Truncate the body and re-frame it, so the parser, not the MD5, meets the cut.
    const base = body(random.pick(bases));
    check(frame(base.slice(0, random.int(0, base.length))));
  }
  for (let i = 0; i < 9000; i++) {
    const mutated = body(random.pick(bases));
    for (let m = random.int(1, 4); m > 0; m--) {
      const at = random.int(0, Math.max(0, mutated.length - 1));
      switch (random.int(0, 3)) {
        case 0:
          mutated[at] = random.pick(protoBytes);
          break;
        case 1:
          mutated[at] = (mutated[at] ?? 0) ^ (1 << random.int(0, 7));
          break;
        case 2:
          mutated.splice(at, 0, random.int(0, 255));
          break;
        default:
          mutated.splice(at, 1);
      }
    }
    check(frame(mutated));
  }
  for (let i = 0; i < 5000; i++) {
    const length = random.int(0, 48);
    check(
      frame(
        Array.from(
          { length },
          () => random.next() < 0.6 ? random.pick(protoBytes) : random.int(0, 255),
        ),
      ),
    );
  }
  for (let i = 0; i < 3000; i++) {
    const bytes = random.bytes(random.int(0, 64));
    if (random.next() < 0.5 && bytes.length >= 4) bytes.set(AGGREGATED_MAGIC);
    check(bytes);
  }
  for (let i = 0; i < 1000; i++) {
    // Raw corruption without re-framing: the MD5 must catch it.
    const bytes = random.pick(bases).slice();
    const at = random.int(0, bytes.length - 1);
    bytes[at]! ^= 1 << random.int(0, 7);
    check(bytes);
  }
  assert.equal(cases, 24_000);
  assert.ok(outcomes.decoded > 1000, `decoded ${outcomes.decoded}`);
  assert.ok(outcomes.rejected > 10_000, `rejected ${outcomes.rejected}`);
  assert.ok(messages.size >= 15, `distinct errors: ${[...messages].join("; ")}`);
});

// --- Interop with aws-kinesis-agg, an implementation we did not write ----------------------

test("aws-kinesis-agg deaggregates every record encodeAggregated() writes", () => {
  const random = new SeededRandom(40);
  let total = 0;
  let withHashKey = 0;
  for (let round = 0; round < 60; round++) {
    const records = Array.from({ length: random.int(1, 200) }, () => randomRecord(random));
    const data = encodeAggregated(records);
    const theirs = aggDeaggregate({ data, partitionKey: "a", sequenceNumber: String(round) });
    assert.equal(theirs.length, records.length);
    const firstHashKey = records.find((r) => r.explicitHashKey !== undefined)?.explicitHashKey;
    for (let i = 0; i < records.length; i++) {
      const mine = records[i]!;
      const got = theirs[i]!;
      assert.equal(got.partitionKey, mine.partitionKey);
      assert.deepEqual(got.data, mine.data);
      assert.equal(got.subSequenceNumber, i);
      assert.equal(got.sequenceNumber, String(round));
      if (mine.explicitHashKey !== undefined) {
        assert.equal(got.explicitPartitionKey, mine.explicitHashKey);
        withHashKey++;
      } else {
        // Its bug (see the test below): a missing index reads as index 0 of the table.
        assert.equal(got.explicitPartitionKey, firstHashKey);
      }
      total++;
    }
  }
  assert.ok(total >= 5000, `records checked: ${total}`);
  assert.ok(withHashKey >= 1000, `with explicit hash keys: ${withHashKey}`);
});

test("decodeAggregated() reads what aws-kinesis-agg writes, and the bytes equal encodeAggregated()'s", () => {
  const random = new SeededRandom(41);
  let total = 0;
  for (let round = 0; round < 60; round++) {
    const records: AggregationInput[] = [];
    const target = random.int(1, 200);
    while (records.length < target) {
      const record = randomRecord(random);
      // Array-index keys trip aws-kinesis-agg's key-table bug, shown in its own test below.
      if (isArrayIndex(record.partitionKey)) continue;
      if (record.explicitHashKey !== undefined && isArrayIndex(record.explicitHashKey)) continue;
      records.push(record);
    }
    const theirs = aggAggregate(records);
    assert.equal(theirs.length, 1);
    const bytes = new Uint8Array(theirs[0]!.data);
    assert.deepEqual(bytes, encodeAggregated(records));
    const decoded = decodeAggregated(bytes);
    assert.equal(decoded.length, records.length);
    for (let i = 0; i < records.length; i++) {
      const expected: DecodedRecord = {
        partitionKey: records[i]!.partitionKey,
        data: records[i]!.data,
      };
      if (records[i]!.explicitHashKey !== undefined) {
        expected.explicitHashKey = records[i]!.explicitHashKey!;
      }
      assert.deepEqual(decoded[i], expected);
      total++;
    }
  }
  assert.ok(total >= 5000, `records checked: ${total}`);
});

test("aws-kinesis-agg bug: integer-like partition keys and hash keys are reordered in its key tables", () => {
  const records = [
    { partitionKey: "b", explicitHashKey: "99999999999999", data: encoder.encode("1") },
    { partitionKey: "42", explicitHashKey: "42", data: encoder.encode("2") },
    { partitionKey: "7", data: encoder.encode("3") },
  ];
  const ours = encodeAggregated(records);
  const theirs = new Uint8Array(aggAggregate(records)[0]!.data);
  // Same length, same records section, different key tables: it writes Object.keys() order
  // (array indexes first, ascending) but indexes in first-use order.
  assert.equal(theirs.length, ours.length);
  const nines = "120e" + "39".repeat(14);
  assert.equal(toHex(ours.subarray(4, 34)), "0a0162" + "0a023432" + "0a0137" + nines + "12023432");
  assert.equal(
    toHex(theirs.subarray(4, 34)),
    "0a0137" + "0a023432" + "0a0162" + "12023432" + nines,
  );
  assert.deepEqual(theirs.subarray(34, -16), ours.subarray(34, -16));
  assert.deepEqual(
    decodeAggregated(theirs).map((
      r,
    ) => [r.partitionKey, r.explicitHashKey, new TextDecoder().decode(r.data)]),
    [["7", "42", "1"], ["42", "99999999999999", "2"], ["b", undefined, "3"]],
  );
  assert.deepEqual(
    decodeAggregated(ours).map((
      r,
    ) => [r.partitionKey, r.explicitHashKey, new TextDecoder().decode(r.data)]),
    [["b", "99999999999999", "1"], ["42", "42", "2"], ["7", undefined, "3"]],
  );
});

test("aws-kinesis-agg bug: a record without an explicit hash key reads back the table's first entry", () => {
  const data = encodeAggregated([
    { partitionKey: "with", explicitHashKey: "12345678901234567890", data: encoder.encode("1") },
    { partitionKey: "without", data: encoder.encode("2") },
  ]);
  // Our bytes omit field 2 for the second record, as the C++ KPL does ...
  assert.deepEqual(decodeAggregated(data).map((r) => r.explicitHashKey), [
    "12345678901234567890",
    undefined,
  ]);
  // ... but protobufjs fills the absent optional index with 0, and aws-kinesis-agg looks it up.
  const theirs = aggDeaggregate({ data, partitionKey: "a" });
  assert.deepEqual(theirs.map((r) => r.explicitPartitionKey), [
    "12345678901234567890",
    "12345678901234567890",
  ]);
});
