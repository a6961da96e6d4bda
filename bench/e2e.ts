/**
 * End-to-end benchmark: webkpl against the peers users pick for speed, on the same
 * loopback endpoint, in one run.
 *
 * ```sh
 * deno task bench:e2e                 # or: bun run bench/e2e.ts
 * deno task bench:e2e --repeat 3 --endpoints fast
 * ```
 *
 * Variants: webkpl `put()` with every result awaited (with the default direct transport of
 * `src/_direct_client.ts`, and with `transport: "sdk"`, the AWS SDK's); webkpl
 * `pipeTo(producer.writable)` (the pipe ends when every record has settled); the **fair
 * peer** (`FairLoop` in `bench/_e2e_peers.ts`), the hand-written fire-and-forget loop of
 * issue 12 (node:crypto MD5 + binary search, `aws-kinesis-agg` per shard, SDK PutRecords,
 * 24 calls in flight, no bookkeeping; plain PutRecords of 500 without aggregation), which
 * every "× fair peer" ratio and target uses; `aws-kinesis-agg` + SDK and plain SDK
 * PutRecords with a 100 ms flush deadline and per-call settlement (the older peers, kept
 * because they alone can be timed at an offered rate: their latency rows are what a user
 * with a deadline gets); and the **floor** (`bench/_e2e_floor.ts`): key MD5, aggregate
 * encoding, base64 and SHA-256 of each record's share of the body with webkpl's own
 * primitives, plus webkpl's MD5 rate against node:crypto's, in a worker of the same run,
 * so that "× floor" is a measured figure. Workloads: 200 B records, 1 KiB records
 * (aggregation on) and 200 B records with aggregation off; 10,000 distinct partition keys;
 * a 64-shard stream. Endpoints: `bench/responder.ts` (a minimal PutRecords/ListShards
 * server in its own process, so the producer is what is measured) and kinesalite.
 *
 * Every measurement runs in a fresh worker process (`bench/_e2e_worker.ts`) of the same
 * runtime, so its CPU time and peak RSS are its own; runs are repeated (`--repeat`),
 * interleaved, and the median of each figure is reported. Writes
 * `bench/results/<date>-<runtime>.json` (every run plus the medians) and `.md` (tables).
 *
 * Options: `--endpoints fast,kinesalite`, `--workloads 200b-agg,1kib-agg,200b-noagg`,
 * `--variants webkpl-put,webkpl-put-sdk,webkpl-pipeto,fair,agg-sdk,sdk-plain,floor`,
 * `--modes throughput,latency`,
 * `--repeat N`, `--records N` (fast endpoint; kinesalite uses a tenth), `--rate N`,
 * `--seconds N`, `--profile` (Deno: `--cpu-prof` per worker into `bench/results/profiles/`),
 * `--producer-options JSON` (extra webkpl options, e.g. `'{"transport":"sdk"}'`), `--label NAME` (suffix of the output
 * files), `--out DIR`; `--render FILE.json` writes the tables of a saved run again.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startKinesalite } from "../tests/support/emulators.ts";
import { createStream, createTestClient } from "../tests/support/kinesis_sdk.ts";
import type { RunResult, RunSpec, Variant } from "./_e2e_worker.ts";
import { responderPort } from "./_responder_port.ts";

const STREAM = "bench";
const SHARDS = 64;
const KEYS = 10_000;
const WORKER = fileURLToPath(new URL("./_e2e_worker.ts", import.meta.url));
const RESPONDER = fileURLToPath(new URL("./responder.ts", import.meta.url));
const WORKER_TIMEOUT_MS = 600_000;

interface Workload {
  id: string;
  label: string;
  recordBytes: number;
  aggregation: boolean;
}

const WORKLOADS: Workload[] = [
  { id: "200b-agg", label: "200 B records, aggregation on", recordBytes: 200, aggregation: true },
  { id: "1kib-agg", label: "1 KiB records, aggregation on", recordBytes: 1024, aggregation: true },
  {
    id: "200b-noagg",
    label: "200 B records, aggregation off",
    recordBytes: 200,
    aggregation: false,
  },
];

const VARIANTS: { id: Variant; label: string }[] = [
  { id: "webkpl-put", label: "webkpl put(), confirmed" },
  { id: "webkpl-put-sdk", label: "webkpl put(), confirmed, SDK transport" },
  { id: "webkpl-pipeto", label: "webkpl pipeTo(producer.writable)" },
  {
    id: "fair",
    label: "**fair peer**: hand-written loop, aws-kinesis-agg (when aggregating) + SDK",
  },
  { id: "agg-sdk", label: "aws-kinesis-agg + SDK with deadline and per-call bookkeeping" },
  { id: "sdk-plain", label: "SDK PutRecords ×500 with deadline and per-call bookkeeping" },
  { id: "floor", label: "floor: key MD5 + encode + base64 + SHA-256 (webkpl primitives)" },
];

/** Variants that only measure throughput: no per-record settlement to time. */
const THROUGHPUT_ONLY: readonly Variant[] = ["webkpl-pipeto", "fair", "floor"];

interface Options {
  endpoints: string[];
  workloads: string[];
  variants: string[];
  modes: string[];
  repeat: number;
  records: number;
  rate: number;
  seconds: number;
  profile: boolean;
  producerOptions: Record<string, unknown> | undefined;
  label: string;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    endpoints: ["fast", "kinesalite"],
    workloads: WORKLOADS.map((w) => w.id),
    variants: VARIANTS.map((v) => v.id),
    modes: ["throughput", "latency"],
    repeat: 3,
    records: 200_000,
    rate: 10_000,
    seconds: 5,
    profile: false,
    producerOptions: undefined,
    label: "",
    out: fileURLToPath(new URL("./results/", import.meta.url)),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) {
        throw new TypeError(`Cannot parse arguments as '${flag}' needs a value`);
      }
      return next;
    };
    const list = () => value().split(",").filter((item) => item !== "");
    const positive = () => {
      const n = Number(value());
      if (!(n > 0)) throw new RangeError(`Cannot parse arguments as '${flag}' must be > 0`);
      return n;
    };
    switch (flag) {
      case "--endpoints":
        options.endpoints = list();
        break;
      case "--workloads":
        options.workloads = list();
        break;
      case "--variants":
        options.variants = list();
        break;
      case "--modes":
        options.modes = list();
        break;
      case "--repeat":
        options.repeat = Math.floor(positive());
        break;
      case "--records":
        options.records = Math.floor(positive());
        break;
      case "--rate":
        options.rate = positive();
        break;
      case "--seconds":
        options.seconds = positive();
        break;
      case "--profile":
        options.profile = true;
        break;
      case "--producer-options":
        options.producerOptions = JSON.parse(value());
        break;
      case "--label":
        options.label = value();
        break;
      case "--out":
        options.out = value();
        break;
      default:
        throw new TypeError(`Cannot parse arguments as '${flag}' is not an option`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------
// Processes

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? "deno" : "bun";

function runtimeVersion(): string {
  const versions = process.versions as Record<string, string | undefined>;
  return isDeno ? `Deno ${versions.deno}` : `Bun ${versions.bun}`;
}

function runArgs(script: string, profileDir: string | undefined): string[] {
  if (!isDeno) return ["run", script];
  const args = ["run", "--allow-all"];
  if (profileDir !== undefined) args.push("--cpu-prof", `--cpu-prof-dir=${profileDir}`);
  args.push(script);
  return args;
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
});

interface Responder {
  endpoint: string;
  stop(): Promise<void>;
}

async function startResponder(): Promise<Responder> {
  const child = spawn(process.execPath, [
    ...runArgs(RESPONDER, undefined),
    "--shards",
    String(SHARDS),
  ], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const port = await responderPort(child);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      child.stdin!.end();
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGTERM");
      await exited;
      children.delete(child);
    },
  };
}

interface ResponderStats {
  requests: number;
  entries: number;
  bytes: number;
  cpu: { user: number; system: number };
}

async function responderCall(endpoint: string, target: string): Promise<ResponderStats> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "x-amz-target": target },
    body: "{}",
  });
  return await response.json();
}

function runWorker(spec: RunSpec, profileDir: string | undefined): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...runArgs(WORKER, profileDir), JSON.stringify(spec)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8");
    child.stderr!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => stdout += chunk);
    child.stderr!.on("data", (chunk: string) => stderr = (stderr + chunk).slice(-4000));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, WORKER_TIMEOUT_MS);
    child.once("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice("RESULT ".length)));
      else reject(new Error(`Worker ${spec.variant}/${spec.mode} exited with ${code}:\n${stderr}`));
    });
  });
}

// ---------------------------------------------------------------------------------------
// Runs and summaries

interface Case {
  endpoint: "fast" | "kinesalite";
  workload: Workload;
  variant: Variant;
  mode: "throughput" | "latency";
}

interface Row extends Case {
  runs: (RunResult & { endpointCpuUsPerRecord?: number; endpointEntries?: number })[];
  median: Record<string, number>;
  note?: string;
}

function cases(options: Options): Case[] {
  const list: Case[] = [];
  for (const endpoint of options.endpoints as Case["endpoint"][]) {
    for (const workload of WORKLOADS.filter((w) => options.workloads.includes(w.id))) {
      for (const variant of VARIANTS.filter((v) => options.variants.includes(v.id))) {
        if (variant.id === "agg-sdk" && !workload.aggregation) continue;
        for (const mode of options.modes as Case["mode"][]) {
          if (mode === "latency" && THROUGHPUT_ONLY.includes(variant.id)) continue;
          list.push({ endpoint, workload, variant: variant.id, mode });
        }
      }
    }
  }
  return list;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const MEDIAN_FIELDS = [
  "recordsPerSec",
  "mbPerSec",
  "cpuUsPerRecord",
  "peakRssMiB",
  "startRssMiB",
  "maxOutstanding",
  "failed",
  "elapsedMs",
  "p50Ms",
  "p99Ms",
  "maxMs",
  "endpointCpuUsPerRecord",
] as const;

const FLOOR_PARTS = [
  "keyMd5Us",
  "encodeUs",
  "base64Us",
  "sha256Us",
  "totalUs",
  "bodyBytesPerRecord",
] as const;

function summarize(row: Row): void {
  for (const field of MEDIAN_FIELDS) {
    const values = row.runs.map((r) => (r as unknown as Record<string, number | undefined>)[field])
      .filter((v): v is number => v !== undefined);
    if (values.length > 0) row.median[field] = median(values);
  }
  const floors = row.runs.map((r) => r.floor).filter((f) => f !== undefined);
  if (floors.length > 0) {
    for (const part of FLOOR_PARTS) row.median[part] = median(floors.map((f) => f[part]));
  }
  const md5Runs = row.runs.map((r) => r.md5).filter((m) => m !== undefined);
  if (md5Runs.length > 0) {
    for (let i = 0; i < md5Runs[0]!.length; i++) {
      row.median[`md5.${i}.ours`] = median(md5Runs.map((m) => m[i]!.oursMBps));
      row.median[`md5.${i}.native`] = median(md5Runs.map((m) => m[i]!.nativeMBps));
      row.median[`md5.${i}.ratio`] = median(md5Runs.map((m) => m[i]!.ratio));
      row.median[`md5.${i}.fallback`] = median(md5Runs.map((m) => m[i]!.fallbackMBps ?? NaN));
    }
  }
  const note = row.runs.find((r) => r.note !== undefined)?.note;
  if (note !== undefined) row.note = note;
}

function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function range(row: Row, field: "recordsPerSec"): string {
  const values = row.runs.map((r) => r[field]);
  if (values.length < 2) return "";
  return ` (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;
}

interface Meta {
  date: string;
  runtime: string;
  cpu: string;
  cores: number;
  command: string;
  options: Options;
  bufferedTimeMs: number;
  maxInFlight: number;
}

function markdown(meta: Meta, rows: Row[]): string {
  const lines: string[] = [];
  lines.push(`# webkpl end-to-end benchmark, ${meta.runtime}, ${meta.date}`);
  lines.push("");
  lines.push(`Command: \`${meta.command}\``);
  lines.push("");
  lines.push(
    `Machine: ${meta.cpu}, ${meta.cores} cores (shared with other work). ${SHARDS} shards, ` +
      `${
        KEYS.toLocaleString("en-US")
      } distinct partition keys. Medians of ${meta.options.repeat} ` +
      `runs (range of records/s in parentheses), each in a fresh worker process. ` +
      `Throughput: ${meta.options.records.toLocaleString("en-US")} records after a warm-up ` +
      `(kinesalite: a tenth), first put to last settlement (webkpl) or last response (SDK). ` +
      `Latency: put to settlement at ${meta.options.rate.toLocaleString("en-US")} records/s ` +
      `offered for ${meta.options.seconds} s; recordMaxBufferedTime ${meta.bufferedTimeMs} ms ` +
      `for webkpl and the SDK variants' flush deadline; ${meta.maxInFlight} calls in flight.`,
  );
  lines.push("");
  lines.push(
    "CPU µs/record is the worker's process CPU (user + system) over the timed phase per record; " +
      "peak RSS is the worker's VmHWM. MB/s counts record data (10^6 bytes). " +
      "\"endpoint CPU µs/record\" is the responder's own CPU over the worker's whole run " +
      "(warm-up included) per record put.",
  );
  for (const endpoint of ["fast", "kinesalite"] as const) {
    const ofEndpoint = rows.filter((r) => r.endpoint === endpoint);
    if (ofEndpoint.length === 0) continue;
    lines.push("");
    lines.push(
      endpoint === "fast" ? "## Fast endpoint (bench/responder.ts)" : "## kinesalite",
    );
    for (const workload of WORKLOADS) {
      const ofWorkload = ofEndpoint.filter((r) => r.workload.id === workload.id);
      if (ofWorkload.length === 0) continue;
      lines.push("");
      lines.push(`### ${workload.label}`);
      lines.push("");
      const floor = ofWorkload.find((r) => r.variant === "floor")?.median;
      const peer = ofWorkload.find((r) => r.variant === "fair")?.median;
      lines.push(
        "| Variant | records/s | × fair peer | MB/s | CPU µs/record | × fair peer | × floor | " +
          "peak RSS MiB | × fair peer | p50 ms | p99 ms | CPU µs/record at rate | failed | " +
          "endpoint CPU µs/record |",
      );
      lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
      for (const variant of VARIANTS) {
        const throughput = ofWorkload.find((r) =>
          r.variant === variant.id && r.mode === "throughput"
        );
        const latency = ofWorkload.find((r) => r.variant === variant.id && r.mode === "latency");
        if (throughput === undefined && latency === undefined) continue;
        const t = throughput?.median ?? {};
        const l = latency?.median ?? {};
        const label = throughput?.note === undefined ? variant.label : `${variant.label} ¹`;
        const ratio = (field: string, of: Record<string, number> | undefined) =>
          variant.id === "floor" || of === undefined ? "–" : fmt(t[field]! / of[field]!, 2);
        lines.push(
          `| ${label} | ${fmt(t.recordsPerSec)}${
            throughput ? range(throughput, "recordsPerSec") : ""
          } | ${ratio("recordsPerSec", peer)} | ` +
            `${fmt(t.mbPerSec, 1)} | ${fmt(t.cpuUsPerRecord, 2)} | ` +
            `${ratio("cpuUsPerRecord", peer)} | ` +
            `${
              variant.id === "floor" || floor === undefined
                ? "–"
                : fmt(t.cpuUsPerRecord! / floor.totalUs!, 2)
            } | ` +
            `${fmt(t.peakRssMiB)} | ${ratio("peakRssMiB", peer)} | ` +
            `${fmt(l.p50Ms, 1)} | ${fmt(l.p99Ms, 1)} | ${fmt(l.cpuUsPerRecord, 2)} | ` +
            `${fmt((t.failed ?? 0) + (l.failed ?? 0))} | ${fmt(t.endpointCpuUsPerRecord, 2)} |`,
        );
      }
      if (floor !== undefined) {
        lines.push("");
        lines.push(
          `Floor, µs per record: key MD5 ${fmt(floor.keyMd5Us, 3)}, encode ` +
            `${fmt(floor.encodeUs, 3)}, base64 ${fmt(floor.base64Us, 3)}, SHA-256 ` +
            `${fmt(floor.sha256Us, 3)} (${fmt(floor.bodyBytesPerRecord, 0)} body bytes per ` +
            `record): ${fmt(floor.totalUs, 2)} µs. MD5 in the same worker, webkpl vs ` +
            `node:crypto (TypeScript fallback): 50 KiB ${fmt(floor["md5.0.ours"])} vs ` +
            `${fmt(floor["md5.0.native"])} MB/s (${fmt(floor["md5.0.ratio"], 2)}×; ` +
            `${fmt(floor["md5.0.fallback"])}), per 10–40 B key ${fmt(floor["md5.1.ours"])} vs ` +
            `${fmt(floor["md5.1.native"])} MB/s (${fmt(floor["md5.1.ratio"], 2)}×; ` +
            `${fmt(floor["md5.1.fallback"])}).`,
        );
      }
    }
  }
  const notes = [...new Set(rows.map((r) => r.note).filter((n) => n !== undefined))];
  if (notes.length > 0) {
    lines.push("");
    for (const note of notes) lines.push(`¹ ${note}`);
  }
  lines.push("");
  lines.push(...targets(meta, rows));
  return lines.join("\n") + "\n";
}

function targets(meta: Meta, rows: Row[]): string[] {
  const find = (workload: string, variant: Variant, mode: Case["mode"]) =>
    rows.find((r) =>
      r.endpoint === "fast" && r.workload.id === workload && r.variant === variant &&
      r.mode === mode
    )?.median;
  const out: string[] = [];
  const check = (
    name: string,
    value: number | undefined,
    limit: number,
    atLeast: boolean,
    unit: string,
    digits: number,
  ) => {
    if (value === undefined || !Number.isFinite(value)) return;
    const met = atLeast ? value >= limit : value <= limit;
    out.push(
      `- ${name}: ${fmt(value, digits)}${unit} ${atLeast ? "≥" : "≤"} ` +
        `${fmt(limit, digits)}${unit}: ${met ? "met" : "**missed**"}`,
    );
  };
  const peer = find("200b-agg", "fair", "throughput");
  const floor = find("200b-agg", "floor", "throughput");
  for (const variant of ["webkpl-pipeto", "webkpl-put", "webkpl-put-sdk"] as const) {
    const run = find("200b-agg", variant, "throughput");
    if (run === undefined) continue;
    out.push(
      `## Targets of issue 12, ${VARIANTS.find((v) => v.id === variant)!.label} ` +
        "(fast endpoint, 200 B records, aggregation on, against the fair peer)",
      "",
    );
    if (peer !== undefined) {
      check("records/s × fair peer", run.recordsPerSec! / peer.recordsPerSec!, 1.5, true, "", 2);
      check(
        "CPU per record × fair peer",
        run.cpuUsPerRecord! / peer.cpuUsPerRecord!,
        0.7,
        false,
        "",
        2,
      );
      check("peak RSS × fair peer", run.peakRssMiB! / peer.peakRssMiB!, 0.8, false, "", 2);
    }
    if (floor !== undefined) {
      check("CPU per record × floor", run.cpuUsPerRecord! / floor.totalUs!, 2, false, "", 2);
    }
    const latency = find("200b-agg", variant, "latency");
    if (latency !== undefined) {
      const bound = meta.bufferedTimeMs + 15;
      check("p50 put→settled", latency.p50Ms, bound, false, " ms", 1);
      check("p99 put→settled", latency.p99Ms, 2 * bound, false, " ms", 1);
    }
    out.push("");
  }
  const plainPeer = find("200b-noagg", "fair", "throughput");
  const noagg = find("200b-noagg", "webkpl-put", "throughput") ??
    find("200b-noagg", "webkpl-pipeto", "throughput");
  if (plainPeer !== undefined && noagg !== undefined) {
    out.push("## Target of issue 12, aggregation off (fast endpoint, 200 B records)", "");
    check(
      "webkpl CPU per record × SDK PutRecords of 500",
      noagg.cpuUsPerRecord! / plainPeer.cpuUsPerRecord!,
      0.8,
      false,
      "",
      2,
    );
    out.push("");
  }
  return out;
}

/** Writes the markdown of a results JSON again (after a change to the tables). */
function render(path: string): void {
  const saved = JSON.parse(readFileSync(path, "utf8")) as Meta & {
    rows: (Omit<Row, "workload"> & { workload: string })[];
  };
  const rows: Row[] = saved.rows.map((row) => ({
    ...row,
    workload: WORKLOADS.find((w) => w.id === row.workload)!,
  }));
  const md = markdown(saved, rows);
  writeFileSync(path.replace(/\.json$/, ".md"), md);
  console.log(md);
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const date = new Date().toISOString().slice(0, 10);
  const bufferedTimeMs = 100;
  const maxInFlight = 24;
  const meta: Meta = {
    date,
    runtime: runtimeVersion(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    command: `${isDeno ? "deno task bench:e2e" : "bun run bench/e2e.ts"} ${
      process.argv.slice(2).join(" ")
    }`.trim(),
    options,
    bufferedTimeMs,
    maxInFlight,
  };
  mkdirSync(options.out, { recursive: true });
  const profileDir = options.profile ? `${options.out}/profiles` : undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });

  const endpoints = new Map<string, string>();
  let responder: Responder | undefined;
  let kinesalite: Awaited<ReturnType<typeof startKinesalite>> | undefined;
  try {
    if (options.endpoints.includes("fast")) {
      responder = await startResponder();
      endpoints.set("fast", responder.endpoint);
    }
    if (options.endpoints.includes("kinesalite")) {
      kinesalite = await startKinesalite({ shardLimit: SHARDS * 2, createStreamMs: 0 });
      const client = createTestClient(kinesalite.endpoint);
      await createStream(client, STREAM, { shardCount: SHARDS });
      client.destroy();
      endpoints.set("kinesalite", kinesalite.endpoint);
    }
    const rows: Row[] = cases(options).map((c) => ({ ...c, runs: [], median: {} }));
    for (let round = 0; round < options.repeat; round++) {
      for (const row of rows) {
        const endpoint = endpoints.get(row.endpoint)!;
        const scale = row.endpoint === "fast" ? 1 : 0.1;
        const spec: RunSpec = {
          variant: row.variant,
          mode: row.mode,
          endpoint,
          stream: STREAM,
          recordBytes: row.workload.recordBytes,
          aggregation: row.workload.aggregation,
          keys: KEYS,
          records: Math.round(options.records * scale),
          warmup: Math.round(options.records * scale * 0.1),
          rate: options.rate,
          seconds: options.seconds,
          maxInFlight,
          bufferedTimeMs,
          ...(options.producerOptions === undefined
            ? {}
            : { producerOptions: options.producerOptions }),
        };
        if (responder !== undefined && row.endpoint === "fast") {
          await responderCall(endpoint, "WebkplBench.Reset");
        }
        const result: Row["runs"][number] = await runWorker(spec, profileDir);
        if (responder !== undefined && row.endpoint === "fast") {
          const stats = await responderCall(endpoint, "WebkplBench.Stats");
          result.endpointEntries = stats.entries;
          result.endpointCpuUsPerRecord = (stats.cpu.user + stats.cpu.system) /
            (spec.warmup + result.records);
        }
        row.runs.push(result);
        console.error(
          `[${round + 1}/${options.repeat}] ${row.endpoint} ${row.workload.id} ${row.variant} ` +
            `${row.mode}: ${fmt(result.recordsPerSec)} rec/s, ${fmt(result.cpuUsPerRecord, 2)} ` +
            `µs/rec, ${fmt(result.peakRssMiB)} MiB` +
            (result.p50Ms === undefined
              ? ""
              : `, p50 ${fmt(result.p50Ms, 1)} ms, p99 ${fmt(result.p99Ms, 1)} ms`) +
            (result.failed > 0 ? `, ${result.failed} failed` : ""),
        );
      }
    }
    for (const row of rows) summarize(row);
    const name = `${date}-${runtime}${options.label === "" ? "" : `-${options.label}`}`;
    const json = {
      ...meta,
      rows: rows.map((r) => ({ ...r, workload: r.workload.id })),
    };
    writeFileSync(`${options.out}/${name}.json`, JSON.stringify(json, null, 2) + "\n");
    const md = markdown(meta, rows);
    writeFileSync(`${options.out}/${name}.md`, md);
    console.log(md);
  } finally {
    await responder?.stop();
    await kinesalite?.stop();
  }
}

if (import.meta.main) {
  const at = process.argv.indexOf("--render");
  if (at >= 0) render(process.argv[at + 1]!);
  else await main();
}
