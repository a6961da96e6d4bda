// The direct transport's signer (src/_sigv4.ts) gives the signature @smithy/signature-v4,
// the SDK's signer, computes for the same request, time and credentials.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { SigV4Signer } from "../src/_sigv4.ts";
import { SeededRandom } from "./support/seeded_random.ts";

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

interface Case {
  url: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  body: Uint8Array;
  date: Date;
}

/** Signs `c` with both signers and returns the two `authorization` headers and ours. */
async function signBoth(c: Case, signer = new SigV4Signer()) {
  const url = new URL(c.url);
  const headers = {
    "content-type": "application/x-amz-json-1.1",
    "x-amz-target": "Kinesis_20131202.PutRecords",
  };
  const ours = await signer.sign({
    url,
    headers,
    body: c.body,
    credentials: c.credentials,
    region: c.region,
    service: "kinesis",
    date: c.date,
  });
  const reference = await new SignatureV4({
    credentials: c.credentials,
    region: c.region,
    service: "kinesis",
    applyChecksum: false,
    sha256: NodeSha256,
  }).sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === "" ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { ...headers, host: url.host },
    body: c.body,
  }, { signingDate: c.date });
  return { ours, reference: reference.headers };
}

test("SigV4Signer signs as @smithy/signature-v4 does, with and without a session token", async () => {
  const random = new SeededRandom(5);
  const body = random.bytes(10_000);
  const date = new Date(Date.UTC(2026, 11, 1, 16, 59, 7, 123));
  for (const sessionToken of [undefined, "FwoGZXIvYXdzEJr//////////wEaDEXAMPLE+token="]) {
    const credentials = sessionToken === undefined ? CREDENTIALS : { ...CREDENTIALS, sessionToken };
    const { ours, reference } = await signBoth({
      url: "https://kinesis.eu-west-1.amazonaws.com",
      region: "eu-west-1",
      credentials,
      body,
      date,
    });
    assert.equal(ours.authorization, reference.authorization);
    assert.equal(ours["x-amz-date"], reference["x-amz-date"]);
    assert.equal(ours["x-amz-date"], "20261201T165907Z");
    assert.equal(ours["x-amz-security-token"], sessionToken);
    assert.match(
      ours.authorization!,
      sessionToken === undefined ? /Signature=/ : /x-amz-security-token/,
    );
  }
});

test("SigV4Signer leaves out an empty session token, as @smithy/signature-v4 does", async () => {
  // Static credentials built from an empty variable carry `sessionToken: ""`.
  const { ours, reference } = await signBoth({
    url: "https://kinesis.us-east-1.amazonaws.com",
    region: "us-east-1",
    credentials: { ...CREDENTIALS, sessionToken: "" },
    body: Uint8Array.of(1),
    date: new Date(Date.UTC(2026, 11, 1)),
  });
  assert.equal(ours.authorization, reference.authorization);
  assert.equal("x-amz-security-token" in ours, false);
});

test("SigV4Signer signs ports, paths and queries of custom endpoints as @smithy/signature-v4 does", async () => {
  for (
    const url of [
      "http://127.0.0.1:4567",
      "http://127.0.0.1:4567/",
      "https://proxy.example.com/kinesis/v1/",
      "https://proxy.example.com/a%20b//c",
      "https://proxy.example.com/a?b=c d&a=1",
    ]
  ) {
    const { ours, reference } = await signBoth({
      url,
      region: "us-east-1",
      credentials: CREDENTIALS,
      body: new TextEncoder().encode('{"StreamName":"s"}'),
      date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    });
    assert.equal(ours.authorization, reference.authorization, url);
  }
});

test("SigV4Signer derives a new key when the day, the region or the secret changes", async () => {
  const signer = new SigV4Signer();
  const body = Uint8Array.of(1, 2, 3);
  const cases: Case[] = [
    {
      url: "https://k.example",
      region: "us-east-1",
      credentials: CREDENTIALS,
      body,
      date: new Date(Date.UTC(2026, 0, 1, 23, 59, 59)),
    },
    {
      url: "https://k.example",
      region: "us-east-1",
      credentials: CREDENTIALS,
      body,
      date: new Date(Date.UTC(2026, 0, 2, 0, 0, 1)),
    },
    {
      url: "https://k.example",
      region: "eu-central-1",
      credentials: CREDENTIALS,
      body,
      date: new Date(Date.UTC(2026, 0, 2, 0, 0, 1)),
    },
    {
      url: "https://k.example",
      region: "eu-central-1",
      credentials: { ...CREDENTIALS, secretAccessKey: "rotated" },
      body,
      date: new Date(Date.UTC(2026, 0, 2, 0, 0, 1)),
    },
  ];
  for (const c of cases) {
    const { ours, reference } = await signBoth(c, signer);
    assert.equal(ours.authorization, reference.authorization);
  }
});
