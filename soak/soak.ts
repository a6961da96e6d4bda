/**
 * Soak: a million records through the chaos proxy with light faults into kinesalite, paced
 * at 5,000 records/s (about three and a half minutes), RSS sampled every second, the stream
 * read back at the end. Not part of CI; run with `deno task soak` (or `bun soak/soak.ts`),
 * optionally `-- --records 200000 --rate 10000 --shards 8`.
 *
 * It prints one line per ten seconds while it runs and a summary at the end: RSS at the
 * start (after warm-up), its peak and its end, whether `outstandingRecords` came back to 0,
 * and the readback: every success found at its position, every other copy explained by a
 * response the proxy hid.
 *
 * @module
 */
import process from "node:process";
import { Producer } from "../src/producer.ts";
import type { RecordOwner } from "../src/_pending_record.ts";
import type { RecordResult } from "../src/record.ts";
import { startKinesalite } from "../tests/support/emulators.ts";
import { createStream, createTestClient } from "../tests/support/kinesis_sdk.ts";
import { startChaosProxy } from "../tests/support/chaos_proxy.ts";
import { readStream } from "../tests/support/readback.ts";
import { CapturingLogger } from "../tests/support/capturing_logger.ts";

const args = process.argv.slice(2);
const total = Number(argValue("--records") ?? 1_000_000);
const shards = Number(argValue("--shards") ?? 8);
// Paced, so the run lasts minutes and makes thousands of requests for the faults to hit.
const rate = Number(argValue("--rate") ?? 5_000);
const WARM_UP_S = 20;

function argValue(name: string): string | undefined {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const kinesalite = await startKinesalite({ shardLimit: 1_000 });
const direct = createTestClient(kinesalite.endpoint);
const proxy = await startChaosProxy({
  upstream: kinesalite.endpoint,
  seed: 99,
  rates: {
    recordThrottle: 0.02,
    http500: 0.005,
    resetBeforeForward: 0.002,
    resetAfterForward: 0.002,
    dropResponse: 0.002,
    delayResponse: 0.002,
  },
  // Longer than the default requestTimeoutMs (6 s): the producer gives up on these.
  delayMs: 7_000,
  dropHoldMs: 7_000,
});
const stream = "soak";
await createStream(direct, stream, { shardCount: shards });
const logger = new CapturingLogger();
const producer = new Producer({
  endpoint: proxy.endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
  stream,
  logger,
});

// Per record: how many results were delivered, whether it succeeded, and a hash of the
// reported position (typed arrays, so the bookkeeping does not swamp the RSS measured).
const deliveries = new Uint8Array(total);
const succeeded = new Uint8Array(total);
const positions = new Uint32Array(total);
// Records one of whose attempts got no answer (timeout, network error): a copy may exist.
const ambiguous = new Uint8Array(total);
const failures = new Map<string, number>();
let settled = 0;

function owner(index: number): RecordOwner {
  return {
    onResult(result: RecordResult) {
      deliveries[index]!++;
      settled++;
      for (const attempt of result.attempts) {
        if (attempt.errorCode === "RequestTimeout" || attempt.errorCode === "NetworkError") {
          ambiguous[index] = 1;
        }
      }
      if (result.success) {
        succeeded[index] = 1;
        positions[index] = fnv1a(
          `${result.shardId}/${result.sequenceNumber}/${result.subSequenceNumber}`,
        );
      } else {
        failures.set(result.errorCode!, (failures.get(result.errorCode!) ?? 0) + 1);
      }
    },
  };
}

const samples: number[] = [];
const started = performance.now();
const sampler = setInterval(() => {
  samples.push(process.memoryUsage().rss);
  if (samples.length % 10 === 0) {
    console.log(
      `${samples.length} s: put ${put}, settled ${settled}, outstanding ${producer.outstandingRecords}, rss ${
        mib(samples.at(-1)!)
      }`,
    );
  }
}, 1_000);

let put = 0;
const filler = "x".repeat(80);
while (put < total) {
  const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
  for (; put < due; put++) {
    const record = { partitionKey: `user-${put % 50_000}`, data: `soak-${put}-${filler}` };
    const receipt = producer.tryPut(record) ?? await producer.enqueue(record);
    // The receipt is the producer's per-record state; `owner` is the hook its streams use.
    (receipt as unknown as { owner: RecordOwner | null }).owner = owner(put);
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
}
await producer.flush();
const outstandingAfterFlush = producer.outstandingRecords;
await producer.close();
const elapsedS = (performance.now() - started) / 1000;
clearInterval(sampler);
samples.push(process.memoryUsage().rss);
await proxy.settled();

let neverSettled = 0;
let settledTwice = 0;
for (let i = 0; i < total; i++) {
  if (deliveries[i] === 0) neverSettled++;
  else if (deliveries[i]! > 1) settledTwice++;
}

console.log("reading the stream back...");
const contents = await readStream(direct, stream);
const hidden = new Set(proxy.unconfirmed().map((r) => `${r.shardId}/${r.sequenceNumber}`));
const decoder = new TextDecoder();
let confirmed = 0;
let hiddenCopies = 0;
let ambiguousCopies = 0;
let unexplained = 0;
for (const found of contents.records) {
  const index = Number(decoder.decode(found.data).split("-")[1]);
  const position = fnv1a(`${found.shardId}/${found.sequenceNumber}/${found.subSequenceNumber}`);
  if (succeeded[index] === 1 && positions[index] === position) confirmed++;
  else if (hidden.has(`${found.shardId}/${found.sequenceNumber}`)) hiddenCopies++;
  else if (ambiguous[index] === 1) ambiguousCopies++;
  else unexplained++;
}
let succeededCount = 0;
for (let i = 0; i < total; i++) succeededCount += succeeded[i]!;

const afterWarmUp = samples.slice(WARM_UP_S);
const steady = afterWarmUp.length > 0 ? afterWarmUp : samples;
const summary = {
  records: total,
  shards,
  seconds: Number(elapsedS.toFixed(1)),
  recordsPerSecond: Math.round(total / elapsedS),
  rssSamples: samples.length,
  settled,
  neverSettled,
  settledTwice,
  succeeded: succeededCount,
  failedByCode: Object.fromEntries(failures),
  confirmedInStream: confirmed,
  lost: succeededCount - confirmed + neverSettled,
  kinesisRecordsInStream: contents.kinesisRecords,
  userRecordsInStream: contents.records.length,
  copiesHiddenByProxy: hiddenCopies,
  copiesOfRecordsWhoseRequestGotNoAnswer: ambiguousCopies,
  unexplainedCopies: unexplained,
  outstandingAfterFlush,
  outstandingAfterClose: producer.outstandingRecords,
  rss: {
    atStart: mib(samples[0] ?? 0),
    afterWarmUp: mib(steady[0] ?? 0),
    peak: mib(Math.max(...samples)),
    peakAfterWarmUp: mib(Math.max(...steady)),
    end: mib(samples.at(-1) ?? 0),
  },
  proxy: proxy.counts,
  loggedErrors: logger.at("error").length,
};
console.log(JSON.stringify(summary, null, 2));

direct.destroy();
await proxy.close();
await kinesalite.stop();
const ok = neverSettled === 0 && settledTwice === 0 && summary.lost === 0 && unexplained === 0 &&
  producer.outstandingRecords === 0;
console.log(ok ? "soak: OK" : "soak: FAILED");
process.exit(ok ? 0 : 1);
