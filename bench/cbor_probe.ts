/**
 * AWS CBOR (`application/x-amz-cbor-1.1`) against AWS JSON 1.1 for PutRecords: what it costs
 * to write and sign a body, to read a response, and a fixed number of calls end to end
 * against `bench/responder.ts`, kinesalite and kinesis-local. Results and conclusions:
 * `bench/results/2026-12-01-cbor.md`.
 *
 * Usage (Deno or Bun; the responder runs under the same runtime):
 *   deno run -A bench/cbor_probe.ts micro
 *   deno run -A bench/cbor_probe.ts e2e responder|kinesalite|kinesis-local [--calls N]
 *   bun run bench/cbor_probe.ts …
 *
 * `micro` times, in alternating rounds, the JSON writer of the direct transport (`src/_put_records_json.ts`),
 * the CBOR writer of `bench/cbor_wire.ts` and `@smithy/core`'s CBOR serializer, each alone
 * and followed by the body's SHA-256 (Web Crypto; the part of SigV4 that grows with the
 * body), and the decoding of a 500-entry PutRecords response; medians of 7 rounds. `e2e` sends the same calls
 * through the default direct transport (JSON) and `CborKinesisClient` (CBOR), 24 in flight,
 * alternating JSON and CBOR three times, and reports the client's CPU (`process.cpuUsage`)
 * and wall time; medians of the three.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cbor as smithyCbor } from "@smithy/core/cbor";
import {
  createDefaultKinesisClient,
  type KinesisClient,
  type PutRecordsInput,
} from "../src/kinesis_client.ts";
import { encodePutRecordsJson } from "../src/_put_records_json.ts";
import { decodeCbor, encodeCbor, encodePutRecordsCbor } from "./cbor_wire.ts";
import { CborKinesisClient } from "./cbor_kinesis_client.ts";
import {
  type Emulator,
  emulatorCredentials,
  startKinesalite,
  startKinesisLocal,
} from "../tests/support/emulators.ts";
import { createStream, createTestClient, deleteStream } from "../tests/support/kinesis_sdk.ts";
import { SeededRandom } from "../tests/support/seeded_random.ts";
import { responderPort } from "./_responder_port.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? "Deno" : "Bun";
const RESPONDER = fileURLToPath(new URL("./responder.ts", import.meta.url));
const RESPONDER_SHARDS = 64;
const EMULATOR_SHARDS = 8;
const IN_FLIGHT = 24;
const ROUNDS = 3;
// The timed loops are short; on a shared machine their medians need more rounds.
const MICRO_ROUNDS = 7;
const KEYS = 10_000;
const signal = new AbortController().signal;

/** A PutRecords input of `count` entries of `size` random bytes. */
function makeInput(count: number, size: number, hashKeys: boolean, seed = 1): PutRecordsInput {
  const random = new SeededRandom(seed);
  const records = [];
  for (let i = 0; i < count; i++) {
    const key = `partition-key-${Math.floor(random.next() * KEYS)}`;
    records.push({
      Data: random.bytes(size),
      PartitionKey: key,
      // An aggregated record names its shard by the shard's first hash key, 38 digits or so.
      ...(hashKeys
        ? { ExplicitHashKey: String(BigInt(i + 1) * 5_316_911_983_139_663n * 10n ** 18n) }
        : {}),
    });
  }
  return { StreamName: "bench", Records: records };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function sha256(body: Uint8Array): Promise<ArrayBuffer> {
  return await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>);
}

type Writer = (input: PutRecordsInput) => Uint8Array;

const writers: [string, Writer][] = [
  ["JSON (src/_put_records_json.ts)", encodePutRecordsJson],
  ["CBOR (cbor_wire.ts)", encodePutRecordsCbor],
  ["CBOR (@smithy/core cbor)", (input) => smithyCbor.serialize(input)],
];

/** µs per call of each variant, median of `MICRO_ROUNDS` rounds in alternating order. */
async function timeRounds(
  variants: [string, () => unknown][],
  iterations: number,
): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (let round = 0; round < MICRO_ROUNDS + 1; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const [name, fn] of order) {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) await fn();
      const us = ((performance.now() - start) * 1000) / iterations;
      // Round 0 warms every variant up and is not counted.
      if (round > 0) samples.get(name)!.push(us);
    }
  }
  return new Map([...samples].map(([name, values]) => [name, median(values)]));
}

async function micro(): Promise<void> {
  const shapes: [string, PutRecordsInput, number][] = [
    ["500 × 200 B plain", makeInput(500, 200, false), 300],
    ["50 × 51,200 B aggregated", makeInput(50, 51_200, true), 40],
    ["500 × 51,200 B aggregated", makeInput(500, 51_200, true), 6],
  ];
  console.log(`## Body writing, ${runtime} ${versionOf()}\n`);
  console.log("| entries | writer | body bytes | build µs | build + SHA-256 µs |");
  console.log("|---|---|---:|---:|---:|");
  for (const [shape, input, iterations] of shapes) {
    const variants: [string, () => unknown][] = [];
    for (const [name, write] of writers) {
      variants.push([`${name} build`, () => write(input)]);
      variants.push([`${name} signed`, () => sha256(write(input))]);
    }
    const times = await timeRounds(variants, iterations);
    for (const [name, write] of writers) {
      console.log(
        `| ${shape} | ${name} | ${write(input).length} | ${
          times.get(`${name} build`)!.toFixed(1)
        } | ${times.get(`${name} signed`)!.toFixed(1)} |`,
      );
    }
  }
  const answer = {
    FailedRecordCount: 0,
    Records: Array.from({ length: 500 }, (_, i) => ({
      SequenceNumber: `49680742549763364847069412775727620476722364940413${
        String(i).padStart(6, "0")
      }`,
      ShardId: `shardId-${String(i % 64).padStart(12, "0")}`,
    })),
  };
  const jsonBytes = new TextEncoder().encode(JSON.stringify(answer));
  const cborBytes = encodeCbor(answer);
  const decoder = new TextDecoder();
  const times = await timeRounds([
    ["JSON.parse", () => JSON.parse(decoder.decode(jsonBytes))],
    ["CBOR (cbor_wire.ts)", () => decodeCbor(cborBytes)],
    ["CBOR (@smithy/core cbor)", () => smithyCbor.deserialize(cborBytes)],
  ], 300);
  console.log(`\n## Decoding a 500-entry PutRecords response, ${runtime}\n`);
  console.log("| decoder | body bytes | µs |");
  console.log("|---|---:|---:|");
  for (const [name, us] of times) {
    const bytes = name === "JSON.parse" ? jsonBytes.length : cborBytes.length;
    console.log(`| ${name} | ${bytes} | ${us.toFixed(1)} |`);
  }
}

function versionOf(): string {
  const versions = process.versions as Record<string, string | undefined>;
  return isDeno ? versions.deno ?? "" : versions.bun ?? "";
}

interface Endpoint {
  endpoint: string;
  stream: string;
  stop(): Promise<void>;
  /** Per-shard entry counts the endpoint stored since the last call (responder only). */
  perShard?(): Promise<number[]>;
}

async function startResponderEndpoint(): Promise<Endpoint> {
  const args = isDeno ? ["run", "--allow-all", RESPONDER] : ["run", RESPONDER];
  const child: ChildProcess = spawn(
    process.execPath,
    [...args, "--shards", String(RESPONDER_SHARDS)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const port = await responderPort(child);
  const endpoint = `http://127.0.0.1:${port}`;
  const stats = async (target: string) => {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "x-amz-target": target },
      body: "{}",
    });
    return await response.json() as { perShard?: number[] };
  };
  return {
    endpoint,
    stream: "bench",
    async perShard() {
      const { perShard = [] } = await stats("WebkplBench.Stats");
      await stats("WebkplBench.Reset");
      return perShard;
    },
    async stop() {
      child.stdin!.end();
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGTERM");
      await exited;
    },
  };
}

async function startEmulatorEndpoint(emulator: Emulator, stream: string): Promise<Endpoint> {
  const sdk = createTestClient(emulator.endpoint);
  await createStream(sdk, stream, { shardCount: EMULATOR_SHARDS });
  return {
    endpoint: emulator.endpoint,
    stream,
    async stop() {
      await deleteStream(sdk, stream);
      sdk.destroy();
      await emulator.stop();
    },
  };
}

interface RunResult {
  cpuUs: number;
  wallMs: number;
  failed: number;
}

async function run(
  client: KinesisClient,
  input: PutRecordsInput,
  calls: number,
): Promise<RunResult> {
  let next = 0;
  let failed = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const worker = async () => {
    while (next < calls) {
      next++;
      const output = await client.putRecords(input, { signal });
      failed += output.FailedRecordCount ?? 0;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { cpuUs: used.user + used.system, wallMs, failed };
}

async function e2e(target: string, calls: number | undefined): Promise<void> {
  let endpoint: Endpoint;
  if (target === "responder") endpoint = await startResponderEndpoint();
  else if (target === "kinesalite") {
    endpoint = await startEmulatorEndpoint(await startKinesalite({ shardLimit: 100 }), "bench");
  } else if (target === "kinesis-local") {
    endpoint = await startEmulatorEndpoint(await startKinesisLocal(), "bench");
  } else throw new RangeError(`Unknown target '${target}': responder, kinesalite or kinesis-local`);
  const options = {
    region: "us-east-1",
    endpoint: endpoint.endpoint,
    credentials: emulatorCredentials,
  };
  const clients: [string, KinesisClient][] = [
    ["JSON", await createDefaultKinesisClient(options)],
    ["CBOR", new CborKinesisClient(options)],
  ];
  // kinesalite answers CBOR bodies over 16 KiB truncated (its `cbor` 5.2 `encodeOne`), so
  // its plain calls carry 140 entries; kinesis-local takes ~1.5 s per 500-entry call here,
  // so it gets few calls. `--calls` sets the plain calls (and, on kinesis-local, a quarter
  // as many aggregated ones).
  const plainEntries = target === "kinesalite" ? 140 : 500;
  const plainCalls = calls ?? (target === "kinesis-local" ? 10 : 200);
  const aggregatedCalls = target === "responder"
    ? plainCalls
    : target === "kinesalite"
    ? 40
    : Math.max(4, Math.ceil(plainCalls / 4));
  const shapes: [string, PutRecordsInput, number][] = [
    [
      `${plainEntries} × 200 B plain`,
      { ...makeInput(plainEntries, 200, false), StreamName: endpoint.stream },
      plainCalls,
    ],
    [
      "50 × 51,200 B aggregated",
      { ...makeInput(50, 51_200, true), StreamName: endpoint.stream },
      aggregatedCalls,
    ],
  ];
  console.log(`## End to end against ${target}, ${runtime} ${versionOf()}\n`);
  console.log(
    "| entries | calls | format | client CPU µs/entry (3 runs) | client CPU µs/MiB of data | wall ms | failed entries |",
  );
  console.log("|---|---:|---|---:|---:|---:|---:|");
  try {
    for (const [shape, input, shapeCalls] of shapes) {
      const entries = input.Records.length * shapeCalls;
      const mib = (input.Records.reduce((n, r) => n + r.Data.length, 0) * shapeCalls) / 2 ** 20;
      // Warm-up: both clients, a tenth of the calls, not counted.
      for (const [, client] of clients) await run(client, input, Math.max(1, shapeCalls / 10));
      await endpoint.perShard?.();
      const results = new Map<string, RunResult[]>(clients.map(([name]) => [name, []]));
      const placements = new Map<string, string>();
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? clients : [...clients].reverse();
        for (const [name, client] of order) {
          results.get(name)!.push(await run(client, input, shapeCalls));
          const perShard = await endpoint.perShard?.();
          if (perShard !== undefined) placements.set(name, perShard.join(","));
        }
      }
      if (placements.size === 2 && placements.get("JSON") !== placements.get("CBOR")) {
        throw new Error("The responder stored JSON and CBOR entries on different shards");
      }
      for (const [name, runs] of results) {
        const cpu = median(runs.map((r) => r.cpuUs));
        const each = runs.map((r) => (r.cpuUs / entries).toFixed(2)).join(", ");
        console.log(
          `| ${shape} | ${shapeCalls} | ${name} | ${(cpu / entries).toFixed(2)} (${each}) | ${
            (cpu / mib).toFixed(0)
          } | ${median(runs.map((r) => r.wallMs)).toFixed(0)} | ${
            runs.map((r) => r.failed).join("/")
          } |`,
        );
      }
    }
    if (endpoint.perShard !== undefined) {
      console.log("\nThe responder stored the JSON and the CBOR entries on the same shards.");
    }
  } finally {
    await endpoint.stop();
  }
}

const [mode = "micro", target = "responder", ...rest] = process.argv.slice(2);
const callsAt = rest.indexOf("--calls");
const calls = callsAt >= 0 ? Number(rest[callsAt + 1]) : undefined;
if (mode === "micro") await micro();
else await e2e(target, calls);
process.exit(0);
