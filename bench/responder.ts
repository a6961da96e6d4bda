/**
 * A minimal Kinesis for benchmarks: answers `PutRecords` and `ListShards` (AWS JSON 1.1, and
 * AWS CBOR when the request's content type is `application/x-amz-cbor-1.1`) on
 * 127.0.0.1 for any stream name, with `--shards` equal hash ranges laid out as Kinesis and
 * kinesalite lay them out. Every entry is stored on the shard its explicit hash key, or the
 * MD5 of its partition key, falls in, so a producer's per-shard grouping is checked the way
 * Kinesis would check it; nothing is kept, signatures are not checked, nothing throttles.
 * It runs in its own process so its work does not count as the producer's.
 *
 * Usage: `deno run --allow-net bench/responder.ts [--shards 64]` or
 * `bun run bench/responder.ts [--shards 64]`. Prints one line `{"port":N}` when it listens
 * and exits when its stdin closes (its parent went away).
 *
 * Besides the two Kinesis operations it answers `X-Amz-Target: WebkplBench.Stats` with what
 * it received and the CPU it used, and `WebkplBench.Reset` to zero those counts.
 *
 * @module
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { CBOR_CONTENT_TYPE, type CborValue, decodeCbor, encodeCbor } from "./cbor_wire.ts";

const JSON_TYPE = "application/x-amz-json-1.1";

const TWO_POW_128 = 1n << 128n;

interface Counts {
  requests: number;
  entries: number;
  bytes: number;
  /** Entries per shard index. */
  perShard: number[];
  cpu: { user: number; system: number };
}

interface PutEntry {
  /** Base64 text in JSON, the bytes themselves in CBOR. */
  Data?: string | Uint8Array;
  PartitionKey?: string;
  ExplicitHashKey?: string;
}

function parseArgs(argv: string[]): { shards: number } {
  let shards = 64;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--shards") shards = Number(argv[++i]);
  }
  if (!Number.isInteger(shards) || shards < 1 || shards > 10_000) {
    throw new RangeError(
      `'--shards' must be an integer from 1 to 10000: current value is ${shards}`,
    );
  }
  return { shards };
}

const { shards } = parseArgs(process.argv.slice(2));
const width = TWO_POW_128 / BigInt(shards);
/** First hash key of each shard, for the binary search. */
const starts: bigint[] = Array.from({ length: shards }, (_, i) => width * BigInt(i));
const shardIds = starts.map((_, i) => `shardId-${String(i).padStart(12, "0")}`);
const sequences = new Array<number>(shards).fill(0);
const counts: Counts = {
  requests: 0,
  entries: 0,
  bytes: 0,
  perShard: new Array<number>(shards).fill(0),
  cpu: { user: 0, system: 0 },
};
let cpuBase = process.cpuUsage();

function shardOf(entry: PutEntry): number {
  const hash = entry.ExplicitHashKey !== undefined && entry.ExplicitHashKey !== null
    ? BigInt(entry.ExplicitHashKey)
    : BigInt("0x" + createHash("md5").update(entry.PartitionKey ?? "", "utf8").digest("hex"));
  let low = 0;
  let high = shards - 1;
  while (low < high) {
    const mid = (low + high + 1) >>> 1;
    if (starts[mid]! <= hash) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Stores every entry on its shard; returns each entry's shard and sequence number. */
function putRecords(body: { Records?: PutEntry[] }): { shard: number; sequence: string }[] {
  const records = body.Records ?? [];
  counts.requests++;
  counts.entries += records.length;
  const placed = new Array<{ shard: number; sequence: string }>(records.length);
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!;
    const shard = shardOf(entry);
    counts.perShard[shard]!++;
    const data = entry.Data;
    // CBOR carries the bytes; for base64 text its length is a close enough measure of
    // them, decoding would cost more.
    counts.bytes += data instanceof Uint8Array ? data.length : ((data?.length ?? 0) * 3) >>> 2;
    const sequence = ++sequences[shard]!;
    placed[i] = {
      shard,
      sequence: `4960${String(shard).padStart(5, "0")}${String(sequence).padStart(20, "0")}`,
    };
  }
  return placed;
}

function putRecordsJson(body: { Records?: PutEntry[] }): string {
  const parts = putRecords(body).map(({ shard, sequence }) =>
    `{"SequenceNumber":"${sequence}","ShardId":"${shardIds[shard]}"}`
  );
  return `{"FailedRecordCount":0,"Records":[${parts.join(",")}]}`;
}

function putRecordsCbor(body: { Records?: PutEntry[] }): Uint8Array {
  const records = putRecords(body).map(({ shard, sequence }) => ({
    SequenceNumber: sequence,
    ShardId: shardIds[shard]!,
  }));
  return encodeCbor({ FailedRecordCount: 0, Records: records });
}

function listShards(): { Shards: CborValue[] } {
  const listed = starts.map((start, i) => ({
    ShardId: shardIds[i]!,
    HashKeyRange: {
      StartingHashKey: start.toString(),
      EndingHashKey: ((i < shards - 1 ? starts[i + 1]! : TWO_POW_128) - 1n).toString(),
    },
    SequenceNumberRange: { StartingSequenceNumber: "0" },
  }));
  return { Shards: listed };
}

function reply(status: number, body: string | Uint8Array, contentType = JSON_TYPE): Response {
  return new Response(body as BodyInit, {
    status,
    headers: { "content-type": contentType, "x-amzn-requestid": "bench" },
  });
}

/** The same operations in AWS CBOR (`application/x-amz-cbor-1.1`), as the AWS SDK for Java sends them. */
async function handleCbor(target: string, request: Request): Promise<Response> {
  let body: unknown;
  try {
    body = decodeCbor(new Uint8Array(await request.arrayBuffer()));
  } catch (error) {
    const message = (error as Error).message;
    return reply(400, encodeCbor({ __type: "SerializationException", message }), CBOR_CONTENT_TYPE);
  }
  switch (target) {
    case "Kinesis_20131202.PutRecords":
      return reply(200, putRecordsCbor(body as { Records?: PutEntry[] }), CBOR_CONTENT_TYPE);
    case "Kinesis_20131202.ListShards":
      return reply(200, encodeCbor(listShards()), CBOR_CONTENT_TYPE);
    default:
      return reply(
        400,
        encodeCbor({ __type: "UnknownOperationException", message: `Not served: ${target}` }),
        CBOR_CONTENT_TYPE,
      );
  }
}

async function handle(request: Request): Promise<Response> {
  const target = request.headers.get("x-amz-target") ?? "";
  if (request.headers.get("content-type") === CBOR_CONTENT_TYPE) {
    return await handleCbor(target, request);
  }
  const text = await request.text();
  switch (target) {
    case "Kinesis_20131202.PutRecords":
      return reply(200, putRecordsJson(JSON.parse(text)));
    case "Kinesis_20131202.ListShards":
      return reply(200, JSON.stringify(listShards()));
    case "WebkplBench.Stats": {
      const cpu = process.cpuUsage(cpuBase);
      return reply(200, JSON.stringify({ ...counts, cpu: { user: cpu.user, system: cpu.system } }));
    }
    case "WebkplBench.Reset":
      counts.requests = 0;
      counts.entries = 0;
      counts.bytes = 0;
      counts.perShard.fill(0);
      cpuBase = process.cpuUsage();
      return reply(200, "{}");
    default:
      return reply(
        400,
        JSON.stringify({ __type: "UnknownOperationException", message: `Not served: ${target}` }),
      );
  }
}

/** The part of `Bun.serve` this file uses; declared here so `deno check` needs no Bun types. */
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request): Promise<Response>;
  }): { port: number };
}

function listen(): void {
  const bun = (globalThis as { Bun?: BunServe }).Bun;
  if (bun !== undefined) {
    const server = bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handle });
    console.log(JSON.stringify({ port: server.port }));
    return;
  }
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, handle);
}

listen();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("data", () => {});
process.stdin.resume();
