// Nothing is lost under faults: the producer with its default SDK client, through the chaos
// proxy to kinesalite, every record's settlement counted and the stream read back.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import { Producer } from "../src/producer.ts";
import type { ProducerOptions } from "../src/options.ts";
import { type Emulator, startKinesalite } from "./support/emulators.ts";
import { createStream, createTestClient, uniqueStreamName } from "./support/kinesis_sdk.ts";
import { type ChaosProxy, type ChaosRates, startChaosProxy } from "./support/chaos_proxy.ts";
import { readStream } from "./support/readback.ts";
import {
  checkStream,
  dishonestFailure,
  formatRow,
  Ledger,
  type ScenarioRow,
  TABLE_HEADER,
} from "./support/ledger.ts";
import { SeededRandom } from "./support/seeded_random.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };
const rows: ScenarioRow[] = [];

let kinesalite: Emulator;
let direct: KinesisClient;

before(async () => {
  kinesalite = await startKinesalite();
  direct = createTestClient(kinesalite.endpoint);
});

after(async () => {
  direct?.destroy();
  await kinesalite?.stop();
  if (rows.length > 0) console.log(`${TABLE_HEADER}\n${rows.map(formatRow).join("\n")}`);
});

/** `count` records with unique payloads over a pool of keys, 10% with an explicit hash key. */
function* records(
  prefix: string,
  count: number,
  seed: number,
): Generator<{ partitionKey: string; data: string; explicitHashKey?: string }> {
  const random = new SeededRandom(seed);
  const keys = Array.from({ length: 2_000 }, (_, i) => `key-${i}-${random.int(0, 1e9)}`);
  for (let i = 0; i < count; i++) {
    const data = `${prefix}-${i}-${"x".repeat(random.int(0, 120))}`;
    if (random.next() < 0.1) {
      yield {
        partitionKey: random.pick(keys),
        data,
        explicitHashKey: random.bigint(128).toString(),
      };
    } else {
      yield { partitionKey: random.pick(keys), data };
    }
  }
}

function producerThrough(proxy: ChaosProxy, options: ProducerOptions = {}): Producer {
  return new Producer({
    endpoint: proxy.endpoint,
    region: "us-east-1",
    credentials,
    ...options,
  });
}

/** Errors the producer logged: none is expected, since failures are results. */
function loggedErrors(logger: CapturingLogger): string[] {
  return logger.at("error").map((call) => `${call.message} ${call.data.map(String).join(" ")}`);
}

describe("Scenario 1: faults", () => {
  test("Producer settles 50,000 records exactly once through throttles, 5xx, resets, lost and slow responses, and loses none", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("faults");
    await createStream(direct, stream, { shardCount: 8 });
    const rates: ChaosRates = {
      recordThrottle: 0.10,
      http500: 0.01,
      http503: 0.01,
      resetBeforeForward: 0.005,
      resetAfterForward: 0.005,
      dropResponse: 0.01,
      delayResponse: 0.01,
    };
    await using proxy = await startChaosProxy({
      upstream: kinesalite.endpoint,
      seed: 11,
      rates,
      delayMs: 1_500,
      dropHoldMs: 2_000,
    });
    const ttlMs = 30_000;
    const logger = new CapturingLogger();
    const producer = producerThrough(proxy, {
      stream,
      logger,
      requestTimeoutMs: 1_000,
      recordTtlMs: ttlMs,
      // Small aggregates and requests, so 50,000 records make about a thousand requests
      // and every 1% fault fires several times.
      aggregationMaxCount: 5,
      collectionMaxCount: 10,
    });
    const ledger = new Ledger();
    const total = 50_000;
    let wave = 0;
    for (const record of records("f1", total, 1)) {
      await ledger.put(producer, record);
      // Waves, so deadlines close partial aggregates and requests overlap with intake.
      if (++wave === 2_500) {
        wave = 0;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await producer.flush();
    await producer.close();
    await ledger.allSettled();
    await proxy.settled();

    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    const counts = proxy.counts;
    rows.push({
      scenario: "1 faults (kinesalite)",
      records: total,
      settled: settlement.settled,
      confirmed: check.confirmed,
      lost: check.missing + check.mismatched + settlement.neverSettled,
      duplicates: check.duplicates,
      failedByCode: settlement.failedByCode,
      timeMs: performance.now() - started,
    });
    console.log(
      `proxy: requests ${counts.byOperation.PutRecords}, throttled entries ${counts.recordThrottle}, ` +
        `500 ${counts.http500}, 503 ${counts.http503}, resets ${counts.resetBeforeForward}+${counts.resetAfterForward}, ` +
        `dropped ${counts.dropResponse}, delayed ${counts.delayResponse}, unconfirmed ${counts.recordsUnconfirmed}; ` +
        `stream: found ${check.found}, hidden copies ${check.hiddenCopies}`,
    );

    assert.equal(settlement.records, total);
    assert.deepEqual(
      {
        never: settlement.neverSettled,
        twice: settlement.settledTwice,
        inconsistent: settlement.inconsistent,
      },
      { never: 0, twice: 0, inconsistent: 0 },
    );
    assert.equal(settlement.settled, total);
    assert.equal(producer.outstandingRecords, 0);
    assert.deepEqual(loggedErrors(logger), []);
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
      JSON.stringify(check.examples).slice(0, 2_000),
    );
    assert.equal(check.confirmed, settlement.succeeded);
    for (const entry of ledger.failures()) {
      assert.equal(dishonestFailure(entry.result!, ttlMs), undefined);
    }
    // Only a response the client never saw can leave a copy the producer sends again.
    assert.ok(check.duplicates <= check.hiddenCopies);
    assert.ok(counts.recordThrottle > 0 && counts.dropResponse > 0 && counts.delayResponse > 0);
  });

  test("Producer fails records only when their TTL truly ran out or the response was ambiguous, naming the cause", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("expiry");
    await createStream(direct, stream, { shardCount: 8 });
    await using proxy = await startChaosProxy({
      upstream: kinesalite.endpoint,
      seed: 12,
      rates: {
        recordThrottle: 0.3,
        recordInternalFailure: 0.05,
        http500: 0.03,
        throttle400: 0.03,
        wrongCountBeforeForward: 0.01,
        delayResponse: 0.03,
        wrongCountAfterForward: 0.01,
      },
      delayMs: 1_500,
    });
    const ttlMs = 1_500;
    const logger = new CapturingLogger();
    const producer = producerThrough(proxy, {
      stream,
      logger,
      requestTimeoutMs: 1_000,
      recordTtlMs: ttlMs,
      aggregationMaxCount: 5,
      collectionMaxCount: 10,
    });
    const ledger = new Ledger();
    const total = 10_000;
    for (const record of records("f1b", total, 2)) await ledger.put(producer, record);
    await producer.close();
    await ledger.allSettled();
    await proxy.settled();

    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    rows.push({
      scenario: "1b short TTL, count mismatches",
      records: total,
      settled: settlement.settled,
      confirmed: check.confirmed,
      lost: check.missing + check.mismatched + settlement.neverSettled,
      duplicates: check.duplicates,
      failedByCode: settlement.failedByCode,
      timeMs: performance.now() - started,
    });

    assert.deepEqual(
      [settlement.settled, settlement.neverSettled, settlement.settledTwice],
      [total, 0, 0],
    );
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
      JSON.stringify(check.examples).slice(0, 2_000),
    );
    assert.deepEqual(loggedErrors(logger), []);
    const failures = ledger.failures();
    assert.ok(failures.length > 0, "the faults were heavy enough to fail some records");
    for (const entry of failures) {
      const result = entry.result!;
      assert.ok(
        result.errorCode === "Expired" || result.errorCode === "Record Count Mismatch",
        `${result.errorCode}: ${result.errorMessage}`,
      );
      assert.equal(dishonestFailure(result, ttlMs), undefined);
    }
    assert.ok(check.duplicates <= check.hiddenCopies);
  });
});
