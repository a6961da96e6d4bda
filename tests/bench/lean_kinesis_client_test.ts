// The lean transport prototype (bench/lean_kinesis_client.ts): its request body is the JSON
// the SDK would send, its SigV4 signature is the one @smithy/signature-v4 computes for the
// same request, and it works against a real Kinesis emulator end to end.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { encodePutRecords, LeanKinesisClient } from "../../bench/lean_kinesis_client.ts";
import { Producer } from "../../src/producer.ts";
import { silentLogger } from "../../src/logger.ts";
import { startKinesalite } from "../support/emulators.ts";
import { createStream, createTestClient } from "../support/kinesis_sdk.ts";
import { SeededRandom } from "../support/seeded_random.ts";

const CREDENTIALS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

/** The SHA-256 constructor shape @smithy/signature-v4 takes, on node:crypto. */
class NodeSha256 {
  readonly #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

interface Captured {
  url: string;
  headers: Headers;
  body: Uint8Array;
}

/** Runs `call` with `fetch` replaced by one that records the request and answers `{}`. */
async function capture(call: () => Promise<unknown>): Promise<Captured> {
  const original = globalThis.fetch;
  let captured: Captured | undefined;
  globalThis.fetch = ((url: URL, init: RequestInit) => {
    captured = {
      url: String(url),
      headers: new Headers(init.headers),
      body: init.body as Uint8Array,
    };
    return Promise.resolve(new Response("{}", { status: 200 }));
  }) as typeof fetch;
  try {
    await call();
  } finally {
    globalThis.fetch = original;
  }
  return captured!;
}

function parseAmzDate(text: string): Date {
  const [y, mo, d, h, mi, s] = [
    text.slice(0, 4),
    text.slice(4, 6),
    text.slice(6, 8),
    text.slice(9, 11),
    text.slice(11, 13),
    text.slice(13, 15),
  ].map(Number) as [number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

describe("LeanKinesisClient (prototype transport)", () => {
  it("encodePutRecords() writes the JSON the SDK sends: base64 data, escaped keys, hash keys", () => {
    const random = new SeededRandom(11);
    const records = [
      { Data: random.bytes(0), PartitionKey: "empty" },
      { Data: random.bytes(1), PartitionKey: 'quote " and \\ backslash' },
      { Data: random.bytes(2), PartitionKey: "naïve ☃ \u0001 control" },
      { Data: random.bytes(255), PartitionKey: "k", ExplicitHashKey: "12345678901234567890" },
      { Data: random.bytes(51_200), PartitionKey: "a" },
    ];
    const body = encodePutRecords({ StreamName: 's"tream', Records: records });
    const parsed = JSON.parse(new TextDecoder().decode(body));
    assert.equal(parsed.StreamName, 's"tream');
    assert.equal(parsed.Records.length, records.length);
    for (let i = 0; i < records.length; i++) {
      const entry = parsed.Records[i];
      assert.equal(entry.PartitionKey, records[i]!.PartitionKey);
      assert.equal(entry.ExplicitHashKey, records[i]!.ExplicitHashKey);
      assert.deepEqual(new Uint8Array(Buffer.from(entry.Data, "base64")), records[i]!.Data);
      assert.equal(entry.Data, Buffer.from(records[i]!.Data).toString("base64"));
    }
  });

  it("signs exactly as @smithy/signature-v4 does, with and without a session token", async () => {
    for (const sessionToken of [undefined, "session-token"]) {
      const credentials = sessionToken === undefined
        ? CREDENTIALS
        : { ...CREDENTIALS, sessionToken };
      const client = new LeanKinesisClient({
        region: "eu-west-1",
        endpoint: "http://127.0.0.1:4567",
        credentials,
      });
      const input = {
        StreamName: "s",
        Records: [{ Data: Uint8Array.of(1, 2, 3), PartitionKey: "pk" }],
      };
      const sent = await capture(() =>
        client.putRecords(input, { signal: new AbortController().signal })
      );
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
          "content-type": "application/x-amz-json-1.1",
          host: "127.0.0.1:4567",
          "x-amz-target": "Kinesis_20131202.PutRecords",
        },
        body: sent.body,
      }, { signingDate: parseAmzDate(sent.headers.get("x-amz-date")!) });
      assert.equal(sent.headers.get("authorization"), signed.headers.authorization);
      assert.equal(sent.headers.get("x-amz-security-token"), sessionToken ?? null);
      assert.equal(sent.url, "http://127.0.0.1:4567/");
    }
  });

  it("carries a producer's records to kinesalite, and names a service error by its code", async () => {
    await using kinesalite = await startKinesalite();
    const admin = createTestClient(kinesalite.endpoint);
    await createStream(admin, "lean", { shardCount: 4 });
    admin.destroy();
    const kinesisClient = new LeanKinesisClient({
      region: "us-east-1",
      endpoint: kinesalite.endpoint,
      credentials: CREDENTIALS,
    });
    const producer = new Producer({ stream: "lean", kinesisClient, logger: silentLogger });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `r${i}` })),
    );
    await producer.close();
    assert.equal(results.filter((result) => result.success).length, 500);
    assert.equal(new Set(results.map((result) => result.shardId)).size, 4);
    await assert.rejects(
      kinesisClient.putRecords(
        { StreamName: "missing", Records: [{ Data: Uint8Array.of(1), PartitionKey: "k" }] },
        { signal: new AbortController().signal },
      ),
      (error: Error) => error.name === "ResourceNotFoundException",
    );
  });
});
