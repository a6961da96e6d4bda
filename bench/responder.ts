/**
 * A minimal Kinesis for benchmarks: answers `PutRecords` and `ListShards` (AWS JSON 1.1) on
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
  Data?: string;
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

function putRecords(body: { Records?: PutEntry[] }): string {
  const records = body.Records ?? [];
  counts.requests++;
  counts.entries += records.length;
  const parts = new Array<string>(records.length);
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!;
    const shard = shardOf(entry);
    counts.perShard[shard]!++;
    // Base64 length is a close enough measure of the bytes; decoding would cost more.
    counts.bytes += ((entry.Data?.length ?? 0) * 3) >>> 2;
    const sequence = ++sequences[shard]!;
    parts[i] = `{"SequenceNumber":"4960${String(shard).padStart(5, "0")}${
      String(sequence).padStart(20, "0")
    }","ShardId":"${shardIds[shard]}"}`;
  }
  return `{"FailedRecordCount":0,"Records":[${parts.join(",")}]}`;
}

function listShards(): string {
  const listed = starts.map((start, i) => ({
    ShardId: shardIds[i],
    HashKeyRange: {
      StartingHashKey: start.toString(),
      EndingHashKey: ((i < shards - 1 ? starts[i + 1]! : TWO_POW_128) - 1n).toString(),
    },
    SequenceNumberRange: { StartingSequenceNumber: "0" },
  }));
  return JSON.stringify({ Shards: listed });
}

function reply(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "bench" },
  });
}

async function handle(request: Request): Promise<Response> {
  const target = request.headers.get("x-amz-target") ?? "";
  const text = await request.text();
  switch (target) {
    case "Kinesis_20131202.PutRecords":
      return reply(200, putRecords(JSON.parse(text)));
    case "Kinesis_20131202.ListShards":
      return reply(200, listShards());
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
