/**
 * The floor of the end-to-end benchmark: the work no producer can skip per record, done
 * with webkpl's own primitives on the benchmark's workload, so that `bench/e2e.ts` can
 * print each variant's CPU per record as a multiple of it.
 *
 * Per record: the MD5 of its partition key (`hashPartitionKey`, which also writes the key
 * as UTF-8); with aggregation, its share of encoding the aggregates of its shard
 * (`AggregateBuilder`, closed at 51,200 bytes, with the aggregate's MD5; records go to 64
 * builders by the top 6 bits of the key hash, as on a stream of 64 evenly split shards);
 * the base64 of its share of the request body (native `toBase64()` where the runtime has
 * it, else `btoa`); and the SHA-256 of its share of the body (Web Crypto, over 4 MiB
 * bodies), the body counted as AWS JSON 1.1 writes it: base64 data plus 31 bytes of JSON
 * and the partition key per entry (an aggregate carries one key of the workload's length).
 *
 * Each step is timed on process CPU (user + system) over every record, three times; the
 * least is kept.
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

/** Measures the floor over `records` records of the workload. */
export async function measureFloor(
  records: { partitionKey: string; data: Uint8Array }[],
  aggregation: boolean,
): Promise<Floor> {
  const n = records.length;
  const runs = 3;
  const key = createHashKey();
  const shards = new Uint8Array(n);
  const keyMd5 = least(runs, () => {
    for (let i = 0; i < n; i++) {
      hashPartitionKey(records[i]!.partitionKey, key);
      shards[i] = key.h0 >>> 26;
    }
  });

  // The entries of the request bodies: aggregates, or the records themselves.
  let entries: Uint8Array[] = records.map((r) => r.data);
  let encode = 0;
  if (aggregation) {
    const builders = Array.from({ length: SHARDS }, () => new AggregateBuilder());
    let aggregates: Uint8Array[] = [];
    encode = least(runs, () => {
      aggregates = [];
      for (let i = 0; i < n; i++) {
        const record = records[i]!;
        const builder = builders[shards[i]!]!;
        if (!builder.tryAdd(record, AGGREGATE_BYTES)) {
          aggregates.push(builder.encode());
          builder.clear();
          builder.add(record);
        }
      }
      for (const builder of builders) {
        if (builder.count > 0) aggregates.push(builder.encode());
        builder.clear();
      }
    });
    entries = aggregates;
  }

  const keyBytes = records[0]?.partitionKey.length ?? 0;
  let bodyBytes = 0;
  const base64 = least(runs, () => {
    bodyBytes = 0;
    for (let i = 0; i < entries.length; i++) {
      bodyBytes += toBase64(entries[i]!).length + ENTRY_JSON + keyBytes;
    }
  });

  const body = new Uint8Array(BODY_CHUNK);
  for (let i = 0; i < body.length; i++) body[i] = 0x41 + (i % 26);
  const sha256 = await leastAsync(runs, async () => {
    for (let done = 0; done < bodyBytes; done += BODY_CHUNK) {
      const view = body.subarray(0, Math.min(BODY_CHUNK, bodyBytes - done));
      const digest = await crypto.subtle.digest("SHA-256", view);
      sink ^= new Uint8Array(digest)[0]!;
    }
  });
  const floor: Floor = {
    keyMd5Us: keyMd5 / n,
    encodeUs: encode / n,
    base64Us: base64 / n,
    sha256Us: sha256 / n,
    totalUs: (keyMd5 + encode + base64 + sha256) / n,
    bodyBytesPerRecord: bodyBytes / n,
  };
  if (sink === 0.5) console.log(sink);
  return floor;
}
