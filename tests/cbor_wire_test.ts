// The AWS CBOR body codec (bench/cbor_wire.ts) and its client (bench/cbor_kinesis_client.ts):
// bodies checked against @smithy/core's CBOR codec (an implementation we did not write) and
// RFC 8949's examples, the signature against @smithy/signature-v4, and records carried to
// kinesis-local and read back with the SDK.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { cbor } from "@smithy/core/cbor";
import { SignatureV4 } from "@smithy/signature-v4";
import {
  CBOR_CONTENT_TYPE,
  CborDecodeError,
  decodeCbor,
  encodeCbor,
  encodePutRecordsCbor,
} from "../bench/cbor_wire.ts";
import { CborKinesisClient } from "../bench/cbor_kinesis_client.ts";
import type { PutRecordsInput } from "../src/kinesis_client.ts";
import { emulatorCredentials, startKinesalite, startKinesisLocal } from "./support/emulators.ts";
import { createStream, createTestClient, uniqueStreamName } from "./support/kinesis_sdk.ts";
import { readStream } from "./support/readback.ts";
import { SeededRandom } from "./support/seeded_random.ts";

const signal = new AbortController().signal;

function hexBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Checks that @smithy/core's decoder reads `body` as `input`. */
function assertSmithyReads(body: Uint8Array, input: PutRecordsInput): void {
  const decoded = cbor.deserialize(body) as PutRecordsInput;
  assert.equal(decoded.StreamName, input.StreamName);
  assert.equal(decoded.Records.length, input.Records.length);
  input.Records.forEach((record, i) => {
    const read = decoded.Records[i]!;
    assert.deepEqual(Object.keys(read), Object.keys(record));
    assert.equal(read.PartitionKey, record.PartitionKey);
    assert.equal(read.ExplicitHashKey, record.ExplicitHashKey);
    assert.deepEqual(new Uint8Array(read.Data), record.Data);
  });
}

function sampleInput(random: SeededRandom): PutRecordsInput {
  const sizes = [0, 1, 23, 24, 31, 32, 255, 256, 65_535, 65_536, 51_200];
  const keys = ["k", "naïve ☃", "emoji 😀 pair", "x".repeat(256), 'quote " \\ \u0001'];
  return {
    StreamName: "orders",
    Records: sizes.map((size, i) => ({
      Data: random.bytes(size),
      PartitionKey: keys[i % keys.length]!,
      ...(i % 3 === 0 ? { ExplicitHashKey: String(BigInt(i) * 10n ** 30n) } : {}),
    })),
  };
}

describe("cbor_wire (prototype AWS CBOR codec)", () => {
  it("encodePutRecordsCbor() writes byte for byte what @smithy/core's CBOR serializer writes", () => {
    const input = sampleInput(new SeededRandom(7));
    const body = encodePutRecordsCbor(input);
    assert.deepEqual(body, new Uint8Array(cbor.serialize(input)));
    assertSmithyReads(body, input);
  });

  it("encodePutRecordsCbor() carries StreamARN, both names, and a lone surrogate as U+FFFD", () => {
    const arn = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
    const records = [{ Data: Uint8Array.of(9), PartitionKey: "lone \ud800 high" }];
    assert.deepEqual(decodeCbor(encodePutRecordsCbor({ StreamARN: arn, Records: records })), {
      StreamARN: arn,
      Records: [{ Data: Uint8Array.of(9), PartitionKey: "lone \ufffd high" }],
    });
    const both = decodeCbor(encodePutRecordsCbor({ StreamName: "s", StreamARN: arn, Records: [] }));
    assert.deepEqual(both, { StreamName: "s", StreamARN: arn, Records: [] });
    assert.throws(() => encodePutRecordsCbor({ Records: records }), {
      name: "TypeError",
      message: /names no stream/,
    });
  });

  it("encodeCbor() writes what @smithy/core writes, leaving out undefined members", () => {
    const value = {
      Shards: [{ ShardId: "shardId-000000000000", HashKeyRange: { StartingHashKey: "0" } }],
      NextToken: undefined,
      counts: [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -25],
      flags: [true, false, null],
      ratio: 1.5,
    };
    const body = encodeCbor(value);
    const { NextToken: _, ...present } = value;
    assert.deepEqual(body, new Uint8Array(cbor.serialize(present)));
    assert.deepEqual(decodeCbor(body), { ...present, flags: [true, false, null] });
  });

  it("decodeCbor() reads RFC 8949 examples: integers, floats, tags, indefinite lengths", () => {
    const cases: [string, unknown][] = [
      ["1864d", 100],
      ["1b000000e8d4a51000", 1_000_000_000_000],
      ["3903e7", -1000],
      ["f93c00", 1],
      ["f97bff", 65504],
      ["f90001", 5.960464477539063e-8],
      ["fa47c35000", 100000],
      ["fb3ff199999999999a", 1.1],
      ["c11a514b67b0", 1363896240],
      ["5f42010243030405ff", Uint8Array.of(1, 2, 3, 4, 5)],
      ["7f657374726561646d696e67ff", "streaming"],
      ["9f018202039f0405ffff", [1, [2, 3], [4, 5]]],
      ["bf61610161629f0203ffff", { a: 1, b: [2, 3] }],
      ["a26161f66162f7", {}],
      ["6449455446", "IETF"],
      ["62c3bc", "ü"],
    ];
    for (const [hex, expected] of cases) {
      assert.deepEqual(decodeCbor(hexBytes(hex)), expected, hex);
    }
  });

  it("decodeCbor() reads every text path: keys that share a cache slot, long, non-ASCII, big bodies", () => {
    const long = "49680742549763364847069412775727620476722364940413829122";
    const value = {
      aXc: "same length, first and last letter as aYc",
      aYc: long,
      "ключ": "значение, длиннее двадцати четырёх байт",
      big: new Uint8Array(1 << 20),
      ["x".repeat(30)]: `${long}é`,
    };
    for (let round = 0; round < 2; round++) {
      const read = decodeCbor(encodeCbor(value)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(read), Object.keys(value));
      assert.equal(read.aXc, value.aXc);
      assert.equal(read.aYc, long);
      assert.equal(read["ключ"], value["ключ"]);
      assert.equal(read["x".repeat(30)], `${long}é`);
    }
    const small = decodeCbor(encodeCbor({ aYc: "short", aXc: long })) as Record<string, unknown>;
    assert.deepEqual(small, { aYc: "short", aXc: long });
  });

  it("decodeCbor() rejects truncated, trailing, reserved and too deeply nested bodies", () => {
    for (const hex of ["", "1a0000", "6449", "820102ff", "1c", "a1016161", "9f01"]) {
      assert.throws(() => decodeCbor(hexBytes(hex)), CborDecodeError, hex);
    }
    assert.throws(() => decodeCbor(new Uint8Array(100).fill(0x81)), /Nested deeper/);
    assert.throws(() => decodeCbor(hexBytes("9b7fffffffffffffff")), /Truncated/);
  });

  it("CborKinesisClient signs as @smithy/signature-v4 does for the CBOR content type", async () => {
    const credentials = {
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      sessionToken: "session-token",
    };
    const client = new CborKinesisClient({
      region: "eu-west-1",
      endpoint: "http://127.0.0.1:4567",
      credentials,
    });
    const original = globalThis.fetch;
    let sent: { headers: Headers; body: Uint8Array } | undefined;
    globalThis.fetch = ((_: URL, init: RequestInit) => {
      sent = { headers: new Headers(init.headers), body: init.body as Uint8Array };
      const answer = encodeCbor({ FailedRecordCount: 0, Records: [] });
      return Promise.resolve(new Response(answer as BodyInit, { status: 200 }));
    }) as typeof fetch;
    try {
      const input = { StreamName: "s", Records: [{ Data: Uint8Array.of(1), PartitionKey: "p" }] };
      assert.deepEqual(await client.putRecords(input, { signal }), {
        FailedRecordCount: 0,
        Records: [],
      });
    } finally {
      globalThis.fetch = original;
    }
    assert.ok(sent !== undefined);
    assert.equal(sent.headers.get("content-type"), CBOR_CONTENT_TYPE);
    const amzDate = sent.headers.get("x-amz-date")!;
    const signer = new SignatureV4({
      credentials,
      region: "eu-west-1",
      service: "kinesis",
      applyChecksum: false,
      sha256: NodeSha256,
    });
    const signed = await signer.sign({
      method: "POST",
      protocol: "http:",
      hostname: "127.0.0.1",
      port: 4567,
      path: "/",
      query: {},
      headers: {
        "content-type": CBOR_CONTENT_TYPE,
        host: "127.0.0.1:4567",
        "x-amz-target": "Kinesis_20131202.PutRecords",
      },
      body: sent.body,
    }, {
      signingDate: new Date(
        `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:` +
          `${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
      ),
    });
    assert.equal(sent.headers.get("authorization"), signed.headers.authorization);
  });

  it("kinesis-local stores a CBOR PutRecords byte for byte, lists shards and names errors", async () => {
    await using emulator = await startKinesisLocal();
    const sdk = createTestClient(emulator.endpoint);
    const client = new CborKinesisClient({
      region: "us-east-1",
      endpoint: emulator.endpoint,
      credentials: emulatorCredentials,
    });
    try {
      const stream = uniqueStreamName("cbor");
      await createStream(sdk, stream, { shardCount: 2 });
      const random = new SeededRandom(3);
      const records = [0, 1, 200, 51_200, 300].map((size, i) => ({
        Data: random.bytes(size),
        PartitionKey: `key-${i}-ü`,
      }));
      const output = await client.putRecords({ StreamName: stream, Records: records }, { signal });
      assert.equal(output.FailedRecordCount, 0);
      assert.equal(output.Records?.length, records.length);
      assert.equal(output.Records?.[0]?.ErrorCode, undefined);
      const listed = await client.listShards({ StreamName: stream }, { signal });
      assert.equal(listed.Shards?.length, 2);
      assert.equal(listed.NextToken, undefined);
      const found = (await readStream(sdk, stream)).records;
      const bySequence = new Map(found.map((r) => [r.sequenceNumber, r]));
      records.forEach((record, i) => {
        const stored = bySequence.get(output.Records![i]!.SequenceNumber!);
        assert.ok(stored !== undefined, `record ${i} not read back`);
        assert.equal(stored.shardId, output.Records![i]!.ShardId);
        assert.equal(stored.partitionKey, record.PartitionKey);
        assert.deepEqual(new Uint8Array(stored.data), record.Data);
      });
      await assert.rejects(
        client.putRecords({ StreamName: "missing", Records: records }, { signal }),
        { name: "ResourceNotFoundException", message: /not found/ },
      );
    } finally {
      sdk.destroy();
    }
  });

  it("kinesalite takes CBOR PutRecords but stores the data unreadable", async () => {
    // kinesalite 3.3.3 keeps CBOR byte strings as Node Buffers in a JSON-encoded store, so
    // GetRecords answers {"type":"Buffer","data":[…]} instead of base64 (mhart/kinesalite#111,
    // open). Should a fixed kinesalite arrive, this test fails and CBOR becomes usable there.
    // Its other CBOR defect, answers cut at 16 KiB (bench/results/2026-12-01-cbor.md), does
    // not show every time, so it is not asserted here.
    await using emulator = await startKinesalite();
    const sdk = createTestClient(emulator.endpoint);
    const client = new CborKinesisClient({
      region: "us-east-1",
      endpoint: emulator.endpoint,
      credentials: emulatorCredentials,
    });
    try {
      const stream = uniqueStreamName("cbor");
      await createStream(sdk, stream);
      const output = await client.putRecords({
        StreamName: stream,
        Records: [{ Data: Uint8Array.of(104, 105), PartitionKey: "k" }],
      }, { signal });
      assert.equal(output.FailedRecordCount, 0);
      await assert.rejects(
        client.putRecords({
          StreamName: "missing",
          Records: [{ Data: Uint8Array.of(1), PartitionKey: "k" }],
        }, { signal }),
        { name: "ResourceNotFoundException", message: /not found/ },
      );
      const iterator = await jsonCall(emulator.endpoint, "GetShardIterator", {
        StreamName: stream,
        ShardId: "shardId-000000000000",
        ShardIteratorType: "TRIM_HORIZON",
      }) as { ShardIterator: string };
      const read = await jsonCall(emulator.endpoint, "GetRecords", {
        ShardIterator: iterator.ShardIterator,
      }) as { Records: { Data: unknown }[] };
      assert.deepEqual(read.Records[0]?.Data, { type: "Buffer", data: [104, 105] });
    } finally {
      sdk.destroy();
    }
  });
});

async function jsonCall(endpoint: string, operation: string, body: unknown): Promise<unknown> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `Kinesis_20131202.${operation}`,
      "x-amz-date": "20240101T000000Z",
      authorization:
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/kinesis/aws4_request, " +
        "SignedHeaders=host, Signature=00",
    },
    body: JSON.stringify(body),
  });
  return await response.json();
}

/** The SHA-256 constructor shape @smithy/signature-v4 takes, on node:crypto. */
class NodeSha256 {
  readonly #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", view(secret));
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(view(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}

function view(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
