/**
 * What one PutRecords request costs to serialize and sign, before it reaches `fetch`: the
 * direct transport (`src/_put_records_json.ts` + `src/_sigv4.ts` over Web Crypto) against
 * the SDK's path (`@aws-sdk/client-kinesis`'s own AWS JSON 1.1 serializer, then
 * `@smithy/signature-v4` with the SDK's SHA-256). Two requests: 500 aggregated entries of
 * 10,000 B (about 4.8 MiB, under the 5 MiB `collectionMaxSize`) and 500 plain 200 B
 * entries. The two paths alternate, `--rounds` rounds each; the median µs per request is
 * reported. The bodies are first checked to parse to the same JSON.
 *
 * ```sh
 * deno run -A bench/transport_bench.ts [--rounds 7]
 * bun run bench/transport_bench.ts
 * ```
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { KinesisClient, PutRecords$ } from "@aws-sdk/client-kinesis";
import { operation } from "@smithy/core/schema";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import { encodePutRecordsJson } from "../src/_put_records_json.ts";
import { SigV4Signer } from "../src/_sigv4.ts";
import type { PutRecordsInput } from "../src/kinesis_client.ts";

const CREDENTIALS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "bench-secret" };
const REGION = "us-east-1";
const URL_ = new URL("https://kinesis.us-east-1.amazonaws.com/");
const HEADERS = {
  "content-type": "application/x-amz-json-1.1",
  "x-amz-target": "Kinesis_20131202.PutRecords",
};

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

function request(entries: number, bytes: number): PutRecordsInput {
  let seed = 1;
  const records = Array.from({ length: entries }, (_, i) => {
    const data = new Uint8Array(bytes);
    for (let j = 0; j < bytes; j++) data[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    return { Data: data, PartitionKey: `partition-key-${i}` };
  });
  return { StreamName: "bench", Records: records };
}

const direct = new SigV4Signer();

async function directPath(input: PutRecordsInput): Promise<number> {
  const body = encodePutRecordsJson(input);
  const headers = await direct.sign({
    url: URL_,
    headers: HEADERS,
    body,
    credentials: CREDENTIALS,
    region: REGION,
    service: "kinesis",
    date: new Date(),
  });
  return body.length + headers.authorization!.length;
}

const sdk = new KinesisClient({ region: REGION, credentials: CREDENTIALS });
const protocol = sdk.config.protocol as unknown as {
  serializeRequest(
    schema: unknown,
    input: unknown,
    context: unknown,
  ): Promise<{ body: Uint8Array | string; headers: Record<string, string> }>;
};
const [, ns, name, traits, input$, output$] = PutRecords$ as unknown as [
  unknown,
  string,
  string,
  number,
  unknown,
  unknown,
];
const putRecords = operation(ns, name, traits, input$ as never, output$ as never);
const context = {
  ...sdk.config,
  endpoint: () => Promise.resolve({ protocol: "https:", hostname: URL_.hostname, path: "/" }),
};
const signer = new SignatureV4({
  credentials: CREDENTIALS,
  region: REGION,
  service: "kinesis",
  sha256: sdk.config.sha256,
  applyChecksum: false,
});

async function sdkPath(input: PutRecordsInput): Promise<number> {
  const http = await protocol.serializeRequest(putRecords, input, context);
  const request = { ...http, hostname: URL_.hostname, protocol: "https:" };
  const signed = await signer.sign(request as unknown as HttpRequest);
  return http.body.length + signed.headers.authorization!.length;
}

async function sdkBody(input: PutRecordsInput): Promise<string> {
  const http = await protocol.serializeRequest(putRecords, input, context);
  return typeof http.body === "string" ? http.body : new TextDecoder().decode(http.body);
}

async function timeUs(
  path: (input: PutRecordsInput) => Promise<number>,
  input: PutRecordsInput,
  n: number,
) {
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += await path(input);
  const us = ((performance.now() - start) * 1000) / n;
  if (sink === 0) throw new Error("unreachable");
  return us;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

const rounds = argument("--rounds", 7);
const cases = [
  { label: "500 aggregated entries of 10,000 B", input: request(500, 10_000), n: 8 },
  { label: "500 plain entries of 200 B", input: request(500, 200), n: 100 },
];
console.log(`${navigator.userAgent}, ${rounds} alternating rounds, median µs per request`);
console.log(
  "| request | body | direct (µs) | SDK serializer + @smithy/signature-v4 (µs) | SDK ÷ direct |",
);
console.log("|---|---|---|---|---|");
for (const { label, input, n } of cases) {
  const ours = new TextDecoder().decode(encodePutRecordsJson(input));
  assert.deepEqual(JSON.parse(ours), JSON.parse(await sdkBody(input)), label);
  await timeUs(directPath, input, n);
  await timeUs(sdkPath, input, n);
  const a: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < rounds; round++) {
    a.push(await timeUs(directPath, input, n));
    b.push(await timeUs(sdkPath, input, n));
  }
  const [x, y] = [median(a), median(b)];
  console.log(
    `| ${label} | ${(ours.length / 1048576).toFixed(2)} MiB | ${x.toFixed(0)} | ${y.toFixed(0)} | ${
      (y / x).toFixed(2)
    }× |`,
  );
}
sdk.destroy();
