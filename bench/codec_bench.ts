/**
 * Micro benchmarks for MD5, hash keys and the aggregated record codec, each group against
 * what a JavaScript user would reach for today: node:crypto for MD5 and hash keys (that is
 * what aws-kinesis-agg uses inside), and aws-kinesis-agg for encode and decode.
 *
 * The encode baseline is aws-kinesis-agg's synchronous core, `RecordAggregator.aggregateRecords`
 * (what its callback `aggregate()` runs), fed Buffers, its best case. `aggregate()` itself adds
 * an async queue hop (measured 5-20% slower) and leaves garbage that lands a major GC in the
 * next benchmark, so it is left out. The decode baseline is `deaggregateSync` with checksums
 * on, since our decoder always checks the MD5.
 *
 * Run: deno bench --allow-all bench/codec_bench.ts
 */
import awsKinesisAgg from "aws-kinesis-agg";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { md5Into } from "../src/md5.ts";
import {
  createHashKey,
  hashKeyFromDecimal,
  hashPartitionKey,
  parseExplicitHashKey,
} from "../src/hash_key.ts";
import {
  AggregateBuilder,
  type AggregationInput,
  deaggregate,
  decodeAggregated,
  encodeAggregated,
} from "../src/codec.ts";
import { SeededRandom } from "../tests/support/seeded_random.ts";

interface AwsKinesisAgg {
  RecordAggregator: new () => {
    aggregateRecords(
      records: unknown[],
      forceFlush: boolean,
      onReady: (error: Error | null, encoded?: { data: Uint8Array }) => void,
    ): void;
  };
  deaggregateSync(
    record: { data: Uint8Array; partitionKey: string; sequenceNumber: string },
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: unknown[]) => void,
  ): void;
}
const agg = awsKinesisAgg as unknown as AwsKinesisAgg;
const random = new SeededRandom(2024);

// Results land here so the JIT cannot drop the work.
let sink: unknown;

for (const [label, size] of [["16 B", 16], ["200 B", 200], ["50 KiB", 51200]] as const) {
  const data = random.bytes(size);
  const buffer = Buffer.from(data);
  const out = new Uint8Array(16);
  const group = `md5 ${label}`;
  Deno.bench({
    name: `node:crypto createHash("md5") ${label}`,
    group,
    baseline: true,
    fn: () => {
      sink = createHash("md5").update(buffer).digest();
    },
  });
  Deno.bench({
    name: `webkpl md5Into ${label}`,
    group,
    fn: () => {
      md5Into(data, 0, size, out, 0);
    },
  });
}

{
  const keys = Array.from({ length: 1024 }, (_, i) => `user-${i * 7919}`);
  const hashKeys = Array.from({ length: 1024 }, () => random.bigint(128).toString());
  const key = createHashKey();
  let i = 0;
  Deno.bench({
    name: "node:crypto md5 → BigInt (partition key)",
    group: "hash key",
    baseline: true,
    fn: () => {
      sink = BigInt("0x" + createHash("md5").update(keys[i++ & 1023]!).digest("hex"));
    },
  });
  Deno.bench({
    name: "webkpl hashPartitionKey",
    group: "hash key",
    fn: () => {
      sink = hashPartitionKey(keys[i++ & 1023]!, key);
    },
  });
  Deno.bench({
    name: "BigInt(explicit hash key)",
    group: "hash key",
    fn: () => {
      sink = BigInt(hashKeys[i++ & 1023]!);
    },
  });
  Deno.bench({
    name: "webkpl parseExplicitHashKey",
    group: "hash key",
    fn: () => {
      parseExplicitHashKey(hashKeys[i++ & 1023]!, key);
    },
  });
  Deno.bench({
    name: "webkpl hashKeyFromDecimal",
    group: "hash key",
    fn: () => {
      sink = hashKeyFromDecimal(hashKeys[i++ & 1023]!);
    },
  });
}

function records(count: number, dataSize: number): AggregationInput[] {
  return Array.from({ length: count }, (_, i) => ({
    partitionKey: `user-${i * 7919}`,
    data: random.bytes(dataSize),
  }));
}

for (
  const [label, count, dataSize] of [["500 × 100 B", 500, 100], ["50 × 1 KiB", 50, 1024]] as const
) {
  const input = records(count, dataSize);
  const builder = new AggregateBuilder();
  const encodeGroup = `encode ${label}`;
  const theirInput = input.map((r) => ({
    partitionKey: r.partitionKey,
    data: Buffer.from(r.data),
  }));
  Deno.bench({
    name: `aws-kinesis-agg aggregateRecords ${label}`,
    group: encodeGroup,
    baseline: true,
    fn: () => {
      new agg.RecordAggregator().aggregateRecords(theirInput, true, (_error, encoded) => {
        sink = encoded;
      });
    },
  });
  Deno.bench({
    name: `webkpl encodeAggregated ${label}`,
    group: encodeGroup,
    fn: () => {
      sink = encodeAggregated(input);
    },
  });
  Deno.bench({
    name: `webkpl AggregateBuilder tryAdd + encode ${label}`,
    group: encodeGroup,
    fn: () => {
      for (let i = 0; i < input.length; i++) builder.tryAdd(input[i]!, 1048576);
      sink = builder.encode();
      builder.clear();
    },
  });

  const payload = encodeAggregated(input);
  const payloadBuffer = Buffer.from(payload);
  const decodeGroup = `decode ${label}`;
  Deno.bench({
    name: `aws-kinesis-agg deaggregateSync ${label}`,
    group: decodeGroup,
    baseline: true,
    fn: () => {
      agg.deaggregateSync(
        { data: payloadBuffer, partitionKey: "a", sequenceNumber: "1" },
        true,
        (_error, result) => {
          sink = result;
        },
      );
    },
  });
  Deno.bench({
    name: `webkpl decodeAggregated ${label}`,
    group: decodeGroup,
    fn: () => {
      sink = decodeAggregated(payload);
    },
  });
  Deno.bench({
    name: `webkpl deaggregate ${label}`,
    group: decodeGroup,
    fn: () => {
      sink = deaggregate({ data: payload, partitionKey: "a", sequenceNumber: "1" });
    },
  });
}

{
  // One record's share of an aggregate as the producer builds it: 200 B records of a shard
  // of a 64-shard stream with 10,000 keys (about 156 distinct keys), into one 51,200-byte
  // aggregate. "excluding MD5" is the first bench minus the second.
  const keys = Array.from(
    { length: 156 },
    (_, i) => `user-${(i * 64).toString(36).padStart(4, "0")}`,
  );
  const input: AggregationInput[] = [];
  const probe = new AggregateBuilder();
  for (let i = 0;; i++) {
    const record = { partitionKey: keys[random.int(0, keys.length - 1)]!, data: random.bytes(200) };
    if (!probe.tryAdd(record, 51_200)) break;
    input.push(record);
  }
  const body = probe.encode();
  const builder = new AggregateBuilder();
  const out = new Uint8Array(16);
  const group = `encode ${input.length} × 200 B into one 51,200 B aggregate`;
  Deno.bench({
    name: `webkpl AggregateBuilder tryAdd + encode, ${input.length} records`,
    group,
    baseline: true,
    fn: () => {
      for (let i = 0; i < input.length; i++) builder.tryAdd(input[i]!, 51_200);
      sink = builder.encode();
      builder.clear();
    },
  });
  Deno.bench({
    name: `webkpl md5Into of the aggregate's ${body.length - 20} B body`,
    group,
    fn: () => {
      md5Into(body, 4, body.length - 16, out, 0);
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === Symbol.for("never")) console.log(sink);
});
