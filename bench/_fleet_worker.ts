/**
 * One producer process of `bench/fleet.ts`: offers records at a fixed rate to the Kinesis
 * model's loopback endpoint from `startAt` until `stopAt`, then closes, and prints one JSON
 * line with what happened to every record it admitted.
 *
 * Usage: `deno run -A bench/_fleet_worker.ts '<FleetWorkerSpec as JSON>'`.
 *
 * @module
 */
import process from "node:process";
import { Producer, silentLogger } from "../mod.ts";

/** What the parent asks one worker to do. */
export interface FleetWorkerSpec {
  endpoint: string;
  stream: string;
  /** The producer's name in the model's counters (its access key id). */
  id: string;
  /** Records offered per second. */
  recordsPerSecond: number;
  recordBytes: number;
  /** Epoch ms to start offering, so every worker starts together. */
  startAt: number;
  /** Epoch ms to stop offering and close. */
  stopAt: number;
  /** How long close() may take to send the backlog before failing the rest. */
  closeTimeoutMs: number;
  /** Records admitted from this epoch ms on count in the latency percentiles. */
  measureFrom: number;
  adaptiveRate: boolean;
}

/** What a worker reports. */
export interface FleetWorkerResult {
  id: string;
  offered: number;
  /** Offers refused because the producer was full (backpressure). */
  refused: number;
  admitted: number;
  succeeded: number;
  failures: Record<string, number>;
  /** Admitted records without a result at the end: must be 0. */
  unsettled: number;
  settledTwice: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

const TICK_MS = 5;

async function run(spec: FleetWorkerSpec): Promise<FleetWorkerResult> {
  const producer = new Producer({
    stream: spec.stream,
    endpoint: spec.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: spec.id, secretAccessKey: "fleet-bench" },
    recordTtlMs: 120_000,
    adaptiveRate: spec.adaptiveRate,
    logger: silentLogger,
  });
  const data = new Uint8Array(spec.recordBytes).fill(120);
  const result: FleetWorkerResult = {
    id: spec.id,
    offered: 0,
    refused: 0,
    admitted: 0,
    succeeded: 0,
    failures: {},
    unsettled: 0,
    settledTwice: 0,
    latencyP50Ms: 0,
    latencyP99Ms: 0,
  };
  const latencies: number[] = [];
  let settled = 0;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, spec.startAt - Date.now())));
  while (Date.now() < spec.stopAt) {
    const due = Math.floor(((Date.now() - spec.startAt) * spec.recordsPerSecond) / 1000);
    while (result.offered < due) {
      const key = `${spec.id}-${result.offered++}`;
      const receipt = producer.tryPut({ partitionKey: key, data });
      if (receipt === undefined) {
        result.refused++;
        continue;
      }
      result.admitted++;
      const admittedAt = Date.now();
      let done = false;
      receipt.result.then((outcome) => {
        if (done) result.settledTwice++;
        done = true;
        settled++;
        if (outcome.success) result.succeeded++;
        else {
          const code = outcome.errorCode ?? "?";
          result.failures[code] = (result.failures[code] ?? 0) + 1;
        }
        if (admittedAt >= spec.measureFrom) latencies.push(Date.now() - admittedAt);
      });
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  await producer.close({ timeoutMs: spec.closeTimeoutMs });
  // Results are delivered in a microtask after close; give them a turn.
  await new Promise((resolve) => setTimeout(resolve, 0));
  result.unsettled = result.admitted - settled;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  result.latencyP50Ms = at(0.5);
  result.latencyP99Ms = at(0.99);
  return result;
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? "{}") as FleetWorkerSpec;
  console.log(JSON.stringify(await run(spec)));
}
