/**
 * The floor of the end-to-end benchmark: the work no producer can skip per record, done
 * with webkpl's own primitives on the benchmark's workload, so that `bench/e2e.ts` can
 * print each variant's CPU per record as a multiple of it.
 *
 * Per record: the MD5 of its partition key (`hashPartitionKey`, which also writes the key
 * as UTF-8); with aggregation, its share of encoding the aggregates of its shard
 * (`AggregateBuilder`, closed at 51,200 bytes, with the aggregate's MD5, encoded into a
 * reused buffer; records go to 64 builders by the top 6 bits of the key hash, as on a
 * stream of 64 evenly split shards);
 * the base64 of its share of the request body (native `toBase64()` where the runtime has
 * it, else `btoa`); and the SHA-256 of its share of the body (Web Crypto, over 4 MiB
 * bodies), the body counted as AWS JSON 1.1 writes it: base64 data plus 31 bytes of JSON
 * and the partition key per entry (an aggregate carries one key of the workload's length).
 *
 * Each step is timed on process CPU (user + system) over every record, three times; the
 * least is kept. Key MD5 and encoding are timed in batches of 8,192 records read just
 * before, since a producer meets records that were just made.
 *
 * @module
 */
import process from "node:process";
import { createHashKey, hashPartitionKey } from "../src/hash_key.ts";
import { AggregateBuilder } from "../src/codec.ts";

/** The floor's parts, µs per record. */
export interface Floor {
  keyMd5Us: number;
  encodeUs: number;
  base64Us: number;
  sha256Us: number;
  totalUs: number;
  /** Request body bytes per record (base64 data and JSON). */
  bodyBytesPerRecord: number;
}

const AGGREGATE_BYTES = 51_200;
const SHARDS = 64;
const BODY_CHUNK = 4 * 1024 * 1024;
const RUNS = 3;
/** Records timed together after being read, as records that were just made. */
const BATCH = 8192;
/** Aggregates kept to measure base64 and SHA-256 on (about 60,000 records of 200 B). */
const SAMPLE_AGGREGATES = 256;
/** `{"Data":"","PartitionKey":""},` around each entry. */
const ENTRY_JSON = 31;

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

const hasNativeBase64 =
  typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 === "function";

function toBase64(bytes: Uint8Array): string {
  if (hasNativeBase64) return (bytes as Uint8Array & { toBase64(): string }).toBase64();
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary);
}

function least(runs: number, fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = cpuMicros();
    fn();
    best = Math.min(best, cpuMicros() - t0);
  }
  return best;
}

async function leastAsync(runs: number, fn: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = cpuMicros();
    await fn();
    best = Math.min(best, cpuMicros() - t0);
  }
  return best;
}

let sink = 0;

/** Adds records `[from, to)` to their shards' builders, handing each full one to `close`. */
function aggregate(
  records: { partitionKey: string; data: Uint8Array }[],
  shards: Uint8Array,
  builders: AggregateBuilder[],
  range: { from: number; to: number; close: (builder: AggregateBuilder) => void },
): void {
  for (let i = range.from; i < range.to; i++) {
    const record = records[i]!;
    const builder = builders[shards[i]!]!;
    if (!builder.tryAdd(record, AGGREGATE_BYTES)) {
      range.close(builder);
      builder.clear();
      builder.add(record);
    }
  }
}

function closeAll(builders: AggregateBuilder[], close: (builder: AggregateBuilder) => void): void {
  for (const builder of builders) {
    if (builder.count > 0) close(builder);
    builder.clear();
  }
}

/** Measures the floor over `records` records of the workload. */
export async function measureFloor(
  records: { partitionKey: string; data: Uint8Array }[],
  aggregation: boolean,
): Promise<Floor> {
  const n = records.length;
  const key = createHashKey();
  const shards = new Uint8Array(n);
  const builders = Array.from({ length: SHARDS }, () => new AggregateBuilder());
  // Encoding into a buffer reused once its call settled, as a pooling producer does: the
  // allocation of a new one per aggregate is avoidable work.
  const reused = new Uint8Array(AGGREGATE_BYTES);
  const encodeInto = (builder: AggregateBuilder) => {
    if (typeof builder.encodeInto === "function") sink ^= builder.encodeInto(reused, 0);
    else sink ^= builder.encode()[4]!;
  };
  // Records are timed in batches that were just read, as a producer meets records that
  // were just made: the workload's records were all made up front and are cold by now.
  let keyMd5 = Infinity;
  let encode = aggregation ? Infinity : 0;
  for (let run = 0; run < RUNS; run++) {
    let keyTime = 0;
    let encodeTime = 0;
    for (let from = 0; from < n; from += BATCH) {
      const to = Math.min(n, from + BATCH);
      for (let i = from; i < to; i++) {
        const data = records[i]!.data;
        for (let j = 0; j < data.length; j += 64) sink ^= data[j]!;
      }
      let t0 = cpuMicros();
      for (let i = from; i < to; i++) {
        hashPartitionKey(records[i]!.partitionKey, key);
        shards[i] = key.h0 >>> 26;
      }
      keyTime += cpuMicros() - t0;
      if (!aggregation) continue;
      t0 = cpuMicros();
      aggregate(records, shards, builders, { from, to, close: encodeInto });
      encodeTime += cpuMicros() - t0;
    }
    if (aggregation) {
      const t0 = cpuMicros();
      closeAll(builders, encodeInto);
      encodeTime += cpuMicros() - t0;
      encode = Math.min(encode, encodeTime);
    }
    keyMd5 = Math.min(keyMd5, keyTime);
  }

  // The entries of the request bodies: aggregates, or the records themselves. Base64 and
  // SHA-256 are measured on a sample of the aggregates, kept by an untimed pass, so that
  // the timed passes keep none: a producer's aggregates die once their call settles.
  let entries: Uint8Array[] = records.map((r) => r.data);
  let sampleRecords = n;
  if (aggregation) {
    const sample: Uint8Array[] = [];
    sampleRecords = 0;
    const keep = (builder: AggregateBuilder) => {
      if (sample.length === SAMPLE_AGGREGATES) return;
      sample.push(builder.encode());
      sampleRecords += builder.count;
    };
    aggregate(records, shards, builders, { from: 0, to: n, close: keep });
    closeAll(builders, keep);
    entries = sample;
  }

  const keyBytes = records[0]?.partitionKey.length ?? 0;
  let bodyBytes = 0;
  const base64 = least(RUNS, () => {
    bodyBytes = 0;
    for (let i = 0; i < entries.length; i++) {
      bodyBytes += toBase64(entries[i]!).length + ENTRY_JSON + keyBytes;
    }
  });

  const body = new Uint8Array(BODY_CHUNK);
  for (let i = 0; i < body.length; i++) body[i] = 0x41 + (i % 26);
  const sha256 = await leastAsync(RUNS, async () => {
    for (let done = 0; done < bodyBytes; done += BODY_CHUNK) {
      const view = body.subarray(0, Math.min(BODY_CHUNK, bodyBytes - done));
      const digest = await crypto.subtle.digest("SHA-256", view);
      sink ^= new Uint8Array(digest)[0]!;
    }
  });
  const floor: Floor = {
    keyMd5Us: keyMd5 / n,
    encodeUs: encode / n,
    base64Us: base64 / sampleRecords,
    sha256Us: sha256 / sampleRecords,
    totalUs: keyMd5 / n + encode / n + (base64 + sha256) / sampleRecords,
    bodyBytesPerRecord: bodyBytes / sampleRecords,
  };
  if (sink === 0.5) console.log(sink);
  return floor;
}
