/**
 * Fleet benchmark: producers in separate processes share one stream of the Kinesis capacity
 * model (`testing/kinesis_model.ts` behind `tests/support/kinesis_model_server.ts`, on
 * loopback), which enforces 1000 records/s and 1 MiB/s per shard with one-second buckets.
 * Four shards, 200 B records, aggregation on, the fleet offering twice the stream's
 * capacity (and half of it, for the latency check); every scenario runs with the adaptive
 * rate and with `adaptiveRate: false`, in the same run.
 *
 * ```sh
 * deno run -A bench/fleet.ts            # about three minutes
 * deno run -A bench/fleet.ts --only 1p,3p   # some scenarios
 * deno run -A bench/fleet.ts --render bench/results/2026-12-01-fleet.json
 * ```
 *
 * Measured after the first 3 s: goodput (accepted bytes over capacity), the share of
 * entries throttled, each producer's share, put-to-settled p50/p99; for "2 of 3 stop", how
 * long the survivor takes to reach 90% of capacity. Writes `bench/results/<date>-fleet.json`,
 * `.md` and the chart `docs/fleet.svg`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startKinesisModelServer } from "../tests/support/kinesis_model_server.ts";
import { type FleetSummary, summarize } from "../testing/fleet_sim.ts";
import { MODEL_BYTES_PER_SECOND, type ModelSecond } from "../testing/kinesis_model.ts";
import { type ChartPanel, renderFleetChart } from "./_fleet_chart.ts";
import type { FleetWorkerResult, FleetWorkerSpec } from "./_fleet_worker.ts";

const WORKER = fileURLToPath(new URL("./_fleet_worker.ts", import.meta.url));
const STREAM = "fleet";
const SHARDS = 4;
const RECORD_BYTES = 200;
/** What one record costs in the shard's byte limit: data, its key and protobuf framing. */
const RECORD_COST = RECORD_BYTES + 16;
const MEASURE_FROM_SECOND = 3;
const BOOT_MS = 2500;

/** One scenario of the run. */
export interface Scenario {
  id: string;
  label: string;
  producers: number;
  /** Offered load of the fleet, in multiples of capacity. */
  offered: number;
  seconds: number;
  /** Producers 1..stopping stop at this second (offering ends; close gets 500 ms). */
  stopAt?: number;
  stopping?: number;
}

const SCENARIOS: Scenario[] = [
  { id: "1p", label: "1 producer", producers: 1, offered: 2, seconds: 11 },
  { id: "3p", label: "3 producers", producers: 3, offered: 2, seconds: 11 },
  {
    id: "3p-stop",
    label: "3 producers, 2 stop at 6 s",
    producers: 3,
    offered: 2,
    seconds: 12,
    stopAt: 6,
    stopping: 2,
  },
  { id: "3p-half", label: "3 producers at 0.5× capacity", producers: 3, offered: 0.5, seconds: 11 },
];

/** One scenario run with or without adaptation. */
export interface FleetRun extends FleetSummary {
  scenario: string;
  adaptive: boolean;
  producers: FleetWorkerResult[];
  seconds: ModelSecond[];
  /** Seconds from the stop until the survivor's accepted throughput reached 90%. */
  recoverySeconds?: number | undefined;
}

async function runScenario(scenario: Scenario, adaptive: boolean): Promise<FleetRun> {
  const startAt = Date.now() + BOOT_MS;
  const server = await startKinesisModelServer({
    streams: { [STREAM]: SHARDS },
    keepRecords: false,
    origin: startAt,
  });
  try {
    const capacity = SHARDS * MODEL_BYTES_PER_SECOND;
    const ids = Array.from({ length: scenario.producers }, (_, i) => `p${i}`);
    const results = await Promise.all(ids.map((id, i) => {
      const stops = scenario.stopAt !== undefined && i >= 1 && i <= (scenario.stopping ?? 0);
      const spec: FleetWorkerSpec = {
        endpoint: server.endpoint,
        stream: STREAM,
        id,
        recordsPerSecond: (scenario.offered * capacity) / RECORD_COST / scenario.producers,
        recordBytes: RECORD_BYTES,
        startAt,
        stopAt: startAt + 1000 * (stops ? scenario.stopAt! : scenario.seconds),
        closeTimeoutMs: stops ? 500 : 60_000,
        measureFrom: startAt + MEASURE_FROM_SECOND * 1000,
        adaptiveRate: adaptive,
      };
      return runWorker(spec);
    }));
    const seconds = server.model.seconds();
    const summary = summarize(seconds, {
      fromSecond: MEASURE_FROM_SECOND,
      toSecond: scenario.stopAt ?? scenario.seconds,
      shards: SHARDS,
      producers: ids,
      latencies: [],
    });
    return {
      ...summary,
      latencyP50Ms: Math.max(...results.map((result) => result.latencyP50Ms)),
      latencyP99Ms: Math.max(...results.map((result) => result.latencyP99Ms)),
      scenario: scenario.id,
      adaptive,
      producers: results,
      seconds: seconds.slice(0, scenario.seconds + 8),
      recoverySeconds: scenario.stopAt === undefined
        ? undefined
        : recovery(seconds, scenario.stopAt, capacity),
    };
  } finally {
    await server.close();
  }
}

/** Whole seconds from `stopAt` to the end of the first second in which p0 got ≥ 90%. */
function recovery(seconds: ModelSecond[], stopAt: number, capacity: number): number | undefined {
  for (let s = stopAt; s < seconds.length; s++) {
    if ((seconds[s]!.producers.p0?.bytes ?? 0) >= 0.9 * capacity) return s + 1 - stopAt;
  }
  return undefined;
}

function runWorker(spec: FleetWorkerSpec): Promise<FleetWorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["run", "-A", WORKER, JSON.stringify(spec)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout!.on("data", (chunk: Uint8Array) => out += new TextDecoder().decode(chunk));
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line));
      else reject(new Error(`Worker ${spec.id} exited with ${code}: ${out.slice(-500)}`));
    });
  });
}

const pct = (value: number) => `${(100 * value).toFixed(1)}%`;

/** The tables of a run, as Markdown. */
export function renderTables(runs: FleetRun[]): string {
  const lines = [
    "| scenario | adaptive | goodput | throttled | producer shares | p50 / p99 put-to-settled | lost / failed / settled twice | recovery to 90% |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const run of runs) {
    const scenario = SCENARIOS.find((item) => item.id === run.scenario)!;
    const unsettled = run.producers.reduce((sum, p) => sum + p.unsettled, 0);
    const failed = run.producers.reduce(
      (sum, p) => sum + Object.values(p.failures).reduce((a, b) => a + b, 0),
      0,
    );
    const twice = run.producers.reduce((sum, p) => sum + p.settledTwice, 0);
    const codes = [...new Set(run.producers.flatMap((p) => Object.keys(p.failures)))].join(", ");
    lines.push(
      `| ${scenario.label} | ${run.adaptive ? "on" : "off"} | ${pct(run.goodput)} | ${
        pct(run.throttledShare)
      } | ${
        run.producerShares.map(pct).join(" / ")
      } | ${run.latencyP50Ms} / ${run.latencyP99Ms} ms | ${unsettled} / ${failed}${
        codes ? ` (${codes})` : ""
      } / ${twice} | ${
        run.recoverySeconds === undefined
          ? scenario.stopAt === undefined ? "" : "not within the run"
          : `${run.recoverySeconds} s`
      } |`,
    );
  }
  return lines.join("\n") + "\n";
}

function chart(runs: FleetRun[]): string {
  const panels: ChartPanel[] = [];
  for (const scenario of SCENARIOS.filter((item) => item.offered > 1)) {
    for (const adaptive of [true, false]) {
      const run = runs.find((item) => item.scenario === scenario.id && item.adaptive === adaptive);
      if (run === undefined) continue;
      panels.push({
        title: `${scenario.label}, adaptation ${adaptive ? "on" : "off"}`,
        seconds: run.seconds.slice(0, scenario.seconds),
        producers: run.producers.map((p) => p.id),
        capacityBytes: SHARDS * MODEL_BYTES_PER_SECOND,
        measureFromSecond: MEASURE_FROM_SECOND,
        stopAtSecond: scenario.stopAt,
      });
    }
  }
  return renderFleetChart(panels, 2);
}

function write(runs: FleetRun[], jsonPath: string): void {
  const tables = renderTables(runs);
  writeFileSync(jsonPath.replace(/\.json$/, ".md"), tables);
  const svg = fileURLToPath(new URL("../docs/fleet.svg", import.meta.url));
  writeFileSync(svg, chart(runs));
  console.log(tables);
  console.log(`wrote ${jsonPath}, its .md and ${svg}`);
}

if (import.meta.main) {
  const renderAt = process.argv.indexOf("--render");
  if (renderAt >= 0) {
    const path = process.argv[renderAt + 1]!;
    write(JSON.parse(readFileSync(path, "utf8")) as FleetRun[], path);
  } else {
    const onlyAt = process.argv.indexOf("--only");
    const only = onlyAt >= 0 ? process.argv[onlyAt + 1]!.split(",") : undefined;
    const runs: FleetRun[] = [];
    for (const scenario of SCENARIOS.filter((item) => only?.includes(item.id) ?? true)) {
      for (const adaptive of [true, false]) {
        console.error(`${scenario.label}, adaptation ${adaptive ? "on" : "off"}...`);
        runs.push(await runScenario(scenario, adaptive));
      }
    }
    const dir = fileURLToPath(new URL("./results/", import.meta.url));
    mkdirSync(dir, { recursive: true });
    const path = `${dir}${new Date().toISOString().slice(0, 10)}-fleet.json`;
    writeFileSync(path, JSON.stringify(runs, null, 1));
    write(runs, path);
  }
}
