/**
 * Fleet simulations on the injected clock (`testing/fleet_sim.ts`): real producers against
 * the in-process Kinesis model, no real time, the same seed giving the same run. The
 * scenarios of `bench/fleet.ts` (4 shards, 200 B records, aggregation on, twice the
 * capacity offered, measured after 3 s), several seeds each, then 20 producers × 200
 * shards (25 KB records, so the simulation stays within a minute of CPU); each with and
 * without adaptation.
 *
 * ```sh
 * deno run -A bench/fleet_sim.ts          # a few minutes
 * deno run -A bench/fleet_sim.ts --quick  # without the 20 × 200 fleet
 * ```
 *
 * Writes `bench/results/<date>-fleet-sim.json` and `.md`.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type FleetSimulationOptions, runFleetSimulation } from "../testing/fleet_sim.ts";

interface SimCase {
  label: string;
  options: FleetSimulationOptions;
  seeds: number[];
}

const small = { shards: 4, recordBytes: 200, offered: 2, seconds: 11 };
const CASES: SimCase[] = [
  { label: "1 producer × 4 shards", options: { ...small, producers: 1 }, seeds: [1, 2, 3] },
  { label: "3 producers × 4 shards", options: { ...small, producers: 3 }, seeds: [1, 2, 3, 4, 5] },
  {
    label: "3 producers × 4 shards, 2 stop at 6 s",
    options: { ...small, producers: 3, seconds: 12, stop: { producers: 2, atSecond: 6 } },
    seeds: [1, 2, 3],
  },
  {
    label: "3 producers × 4 shards at 0.5× capacity",
    options: { ...small, producers: 3, offered: 0.5 },
    seeds: [1],
  },
  {
    // Twice the record limit: 0.41 × 1 MiB/s is 2,000 records of 200 B and their keys.
    label: "3 producers × 4 shards, aggregation off, twice the record limit",
    options: {
      ...small,
      producers: 3,
      offered: 0.41,
      producerOptions: { aggregationEnabled: false },
    },
    seeds: [1],
  },
  {
    label: "3 producers × 4 shards, 100 KB records",
    options: { ...small, producers: 3, recordBytes: 100_000 },
    seeds: [1],
  },
  {
    label: "20 producers × 200 shards, 25 KB records",
    // 16 MiB of backlog per producer keeps the twenty within a few GiB of memory.
    options: {
      producers: 20,
      shards: 200,
      recordBytes: 25_000,
      offered: 2,
      seconds: 15,
      producerOptions: { maxOutstandingBytes: 16 * 1024 * 1024 },
    },
    seeds: [1],
  },
];

const pct = (value: number) => `${(100 * value).toFixed(1)}%`;

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const rows: string[] = [
    "| simulation | seed | adaptive | goodput | throttled | producer shares (min–max) | p50 / p99 put-to-settled | lost / failed / settled twice | recovery to 90% |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  const results: unknown[] = [];
  for (const simCase of CASES) {
    if (quick && simCase.options.producers >= 20) continue;
    for (const seed of simCase.seeds) {
      for (const adaptive of [true, false]) {
        const started = performance.now();
        const result = await runFleetSimulation({
          ...simCase.options,
          seed,
          producerOptions: { ...simCase.options.producerOptions, adaptiveRate: adaptive },
        });
        const stop = simCase.options.stop?.atSecond;
        let recovery = "";
        if (stop !== undefined) {
          const at = result.seconds.findIndex((second, s) =>
            s >= stop &&
            (second.producers.p0?.bytes ?? 0) >= 0.9 * simCase.options.shards * 1024 * 1024
          );
          recovery = at < 0 ? "not within the run" : `${at + 1 - stop} s`;
        }
        const { records } = result;
        const shares = result.producerShares;
        rows.push(
          `| ${simCase.label} | ${seed} | ${adaptive ? "on" : "off"} | ${pct(result.goodput)} | ${
            pct(result.throttledShare)
          } | ${pct(Math.min(...shares))}–${
            pct(Math.max(...shares))
          } | ${result.latencyP50Ms} / ${result.latencyP99Ms} ms | ${records.lost} / ${records.failed} / ${records.settledTwice} | ${recovery} |`,
        );
        console.error(
          `${simCase.label}, seed ${seed}, adaptive ${adaptive}: ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s`,
        );
        const { seconds: _seconds, ...summary } = result;
        results.push({ case: simCase.label, seed, adaptive, ...summary });
      }
    }
  }
  const table = rows.join("\n") + "\n";
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const base = `${dir}${new Date().toISOString().slice(0, 10)}-fleet-sim${quick ? "-quick" : ""}`;
  writeFileSync(`${base}.json`, JSON.stringify(results, null, 1));
  writeFileSync(`${base}.md`, table);
  console.log(table);
}

if (import.meta.main) await main();
