/**
 * `deno task demo`: the CLI's `put` path end to end on a machine with nothing but npm.
 *
 * Starts kinesalite on a free loopback port, creates a 4-shard stream, pipes generated JSON
 * lines through the same `putRecords()` the CLI runs (with an `InMemorySink` collecting
 * detailed metrics), prints the summary and the metric totals, then reads the whole stream
 * back with GetRecords, deaggregates it with aws-kinesis-agg and compares what it found with
 * what it sent. Exits 0 only when every record sent was found exactly once.
 *
 * Run with `--records N` for another count (default 100,000). Runs under Bun too:
 * `bun demo/demo.ts`.
 *
 * @module
 */
import process from "node:process";
import { formatSummary, parseArguments, putRecords } from "../cli.ts";
import type { MetricName } from "../src/metrics_sink.ts";
import { InMemorySink } from "../sinks/mod.ts";
import { startKinesalite } from "../tests/support/emulators.ts";
import { createStream, createTestClient } from "../tests/support/kinesis_sdk.ts";
import { readStream } from "../tests/support/readback.ts";

const STREAM = "webkpl-demo";
const SHARDS = 4;
const USERS = 10_000;
const LINES_PER_CHUNK = 1_000;
const METRICS: readonly MetricName[] = [
  "UserRecordsReceived",
  "UserRecordsPending",
  "UserRecordsPut",
  "UserRecordsDataPut",
  "KinesisRecordsPut",
  "KinesisRecordsDataPut",
  "ErrorsByCode",
  "AllErrors",
  "RetriesPerRecord",
  "UserRecordExpired",
  "BufferingTime",
  "RequestTime",
  "UserRecordsPerKinesisRecord",
  "KinesisRecordsPerPutRecordsRequest",
  "UserRecordsPerPutRecordsRequest",
];

/** `count` JSON lines, made a chunk at a time as the pipe asks for them. */
function generatedLines(count: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next >= count) {
        controller.close();
        return;
      }
      let text = "";
      const end = Math.min(count, next + LINES_PER_CHUNK);
      for (; next < end; next++) {
        text += JSON.stringify({
          partitionKey: `user-${(next * 7919) % USERS}`,
          data: { seq: next, event: next % 3 === 0 ? "purchase" : "view", item: next % 997 },
        }) + "\n";
      }
      controller.enqueue(encoder.encode(text));
    },
  }, { highWaterMark: 0 });
}

function parseCount(args: readonly string[]): number {
  const index = args.indexOf("--records");
  if (index < 0) return 100_000;
  const count = Number(args[index + 1]);
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`'--records' must be a positive integer: got ${args[index + 1]}`);
  }
  return count;
}

function pad(text: string | number, width: number, right = false): string {
  const value = typeof text === "number" ? format(text) : text;
  return right ? value.padStart(width) : value.padEnd(width);
}

function format(n: number): string {
  if (!Number.isFinite(n)) return "-";
  return Number.isInteger(n)
    ? n.toLocaleString("en-US")
    : n.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

function metricsTable(sink: InMemorySink): string {
  const units = new Map(sink.snapshots.map((snapshot) => [snapshot.name, snapshot.unit]));
  const lines = [
    `${pad("metric", 36)}${pad("unit", 14)}${pad("count", 11, true)}${pad("sum", 16, true)}` +
    `${pad("min", 10, true)}${pad("max", 12, true)}`,
  ];
  for (const name of METRICS) {
    const total = sink.total(name);
    lines.push(
      `${pad(name, 36)}${pad(units.get(name) ?? "", 14)}${pad(total.count, 11, true)}` +
        `${pad(total.sum, 16, true)}${pad(total.count > 0 ? total.min : NaN, 10, true)}` +
        `${pad(total.count > 0 ? total.max : NaN, 12, true)}`,
    );
  }
  return lines.join("\n");
}

async function demo(count: number): Promise<boolean> {
  const started = performance.now();
  const kinesalite = await startKinesalite();
  const client = createTestClient(kinesalite.endpoint);
  try {
    await createStream(client, STREAM, { shardCount: SHARDS });
    console.log(
      `webkpl demo: kinesalite at ${kinesalite.endpoint} (up in ${
        (kinesalite.startupMs / 1000).toFixed(1)
      } s), stream '${STREAM}' with ${SHARDS} shards`,
    );
    console.log(
      `Putting ${format(count)} JSON lines through the CLI's put path ` +
        `(webkpl put --stream ${STREAM} --format json) ...`,
    );

    const command = parseArguments([
      "put",
      "--stream",
      STREAM,
      "--endpoint",
      kinesalite.endpoint,
      "--region",
      "us-east-1",
      "--format",
      "json",
    ]);
    if (command.name !== "put") throw new Error("the demo's command line did not parse as put");
    const sink = new InMemorySink();
    const summary = await putRecords(generatedLines(count), command.put, {
      stderr: (text) => void process.stderr.write(text),
      stderrIsTerminal: process.stderr.isTTY === true,
      producer: {
        // kinesalite accepts any credentials; fixed ones keep the demo off the SDK's chain.
        credentials: { accessKeyId: "AKIDDEMO", secretAccessKey: "demo-secret" },
        metricsLevel: "detailed",
        metricsSink: sink,
      },
    });
    console.log(formatSummary(summary).trimEnd());

    console.log(
      `\nMetrics an InMemorySink collected (metricsLevel "detailed"), totals over every export:`,
    );
    console.log(metricsTable(sink));

    const contents = await readStream(client, STREAM);
    const seen = new Uint8Array(count);
    const decoder = new TextDecoder();
    let duplicates = 0;
    let unexpected = 0;
    for (const record of contents.records) {
      const seq = (JSON.parse(decoder.decode(record.data)) as { seq?: unknown }).seq;
      if (typeof seq !== "number" || seq < 0 || seq >= count) unexpected++;
      else if (seen[seq]!++ > 0) duplicates++;
    }
    const missing = seen.reduce((sum, copies) => sum + (copies === 0 ? 1 : 0), 0);
    const found = contents.records.length;
    console.log(
      `\nRead back with GetRecords and aws-kinesis-agg: ${format(found)} user records in ` +
        `${format(contents.kinesisRecords)} Kinesis records over ${contents.shards.length} shards`,
    );
    console.log(
      `records sent ${format(count)}, found ${format(found)}, missing ${format(missing)}, ` +
        `duplicates ${format(duplicates)}, unexpected ${format(unexpected)}`,
    );
    const ok = found === count && missing === 0 && summary.failed === 0 &&
      summary.rejected === 0 && summary.error === undefined;
    console.log(
      `${ok ? "OK" : "FAILED"}: found ${ok ? "==" : "!="} sent ` +
        `(demo took ${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    return ok;
  } finally {
    client.destroy();
    await kinesalite.stop();
  }
}

if (import.meta.main) {
  process.exitCode = (await demo(parseCount(process.argv.slice(2)))) ? 0 : 1;
}
