// Nothing is lost under faults: the producer with its default SDK client, through the chaos
// proxy to kinesalite, every record's settlement counted and the stream read back.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient as SdkKinesisClient, Shard } from "@aws-sdk/client-kinesis";
import { createDefaultKinesisClient, type KinesisClient } from "../src/kinesis_client.ts";
import { Producer } from "../src/producer.ts";
import type { UserRecord } from "../src/record.ts";
import {
  isDecodeError,
  isProducerClosedError,
  isValidationError,
  type RecordField,
} from "../src/errors.ts";
import { decodeAggregated, encodeAggregated } from "../src/codec.ts";
import type { EventfulMetricsSink, MetricsSink } from "../src/metrics_sink.ts";
import { CloudWatchSink } from "../sinks/cloudwatch.ts";
import { DatadogSink } from "../sinks/datadog.ts";
import type { ProducerOptions } from "../src/options.ts";
import { type Emulator, startKinesalite } from "./support/emulators.ts";
import {
  createStream,
  createTestClient,
  hashRange,
  listAllShards,
  openShardFor,
  recordHashKey,
  uniqueStreamName,
} from "./support/kinesis_sdk.ts";
import { type ChaosProxy, type ChaosRates, startChaosProxy } from "./support/chaos_proxy.ts";
import { readStream } from "./support/readback.ts";
import {
  checkStream,
  dishonestFailure,
  formatRow,
  Ledger,
  type LedgerEntry,
  type ScenarioRow,
  scenarioRow,
  TABLE_HEADER,
} from "./support/ledger.ts";
import { SeededRandom } from "./support/seeded_random.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";
import { refusedEndpoint, startErrorServer } from "./support/error_server.ts";
import { recordingClient } from "./support/recording_client.ts";
import { startDatadogCapture } from "./support/datadog_capture.ts";

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };
const rows: ScenarioRow[] = [];

let kinesalite: Emulator;
let direct: SdkKinesisClient;

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

/** The hash key Kinesis routes a record by. */
function hashOf(record: { partitionKey: string; explicitHashKey?: string | undefined }): bigint {
  return record.explicitHashKey === undefined
    ? recordHashKey({ partitionKey: record.partitionKey })
    : BigInt(record.explicitHashKey);
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
    rows.push(scenarioRow({
      scenario: "1 faults (kinesalite)",
      records: total,
      settlement,
      check,
      timeMs: performance.now() - started,
    }));
    console.log(
      `proxy: requests ${counts.byOperation.PutRecords}, throttled entries ${counts.recordThrottle}, ` +
        `500 ${counts.http500}, 503 ${counts.http503}, resets ${counts.resetBeforeForward}+${counts.resetAfterForward}, ` +
        `dropped ${counts.dropResponse}, delayed ${counts.delayResponse}, unconfirmed ${counts.recordsUnconfirmed}; ` +
        `stream: found ${check.found}, copies the proxy hid ${check.hiddenCopies}, ` +
        `other copies of records whose request got no answer ${check.ambiguousCopies}`,
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
    // Throttles at random are not caused by the rate: the adaptive rate must deliver every
    // record, as the fixed rate does (docs/fleet.md, "Throttles the rate does not cause").
    assert.equal(settlement.succeeded, total, JSON.stringify(settlement));
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
    assert.equal(check.wrongShardCopies, 0);
    assert.equal(check.duplicates, check.hiddenCopies + check.ambiguousCopies);
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
    rows.push(scenarioRow({
      scenario: "1b short TTL, count mismatches",
      records: total,
      settlement,
      check,
      timeMs: performance.now() - started,
    }));

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
    assert.equal(check.wrongShardCopies, 0);
    assert.ok(check.duplicates <= check.hiddenCopies + check.ambiguousCopies);
  });
});

describe("Scenario 3: shutdown under faults", () => {
  test("Producer.close({ timeoutMs: 2000 }) while the proxy stalls settles every record by the time it resolves, and says ProducerClosed only for records not confirmed", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("shutdown");
    await createStream(direct, stream, { shardCount: 4 });
    await using proxy = await startChaosProxy({ upstream: kinesalite.endpoint, seed: 31 });
    const logger = new CapturingLogger();
    const producer = producerThrough(proxy, {
      stream,
      logger,
      aggregationMaxCount: 20,
      collectionMaxCount: 5,
    });
    const ledger = new Ledger();
    const source = records("f3", 8_000, 3);
    for (let i = 0; i < 3_000; i++) await ledger.put(producer, source.next().value!);
    await producer.flush();
    // The stall: every request that reaches the emulator is held (answered after a minute,
    // or never), and one in five is reset before it gets there, so at close records are in
    // flight, queued for a connection, in backoff and buffered at once.
    proxy.configure({
      rates: { resetBeforeForward: 0.2, delayResponse: 0.5, dropResponse: 0.5 },
      delayMs: 60_000,
      dropHoldMs: 60_000,
    });
    for (const record of source) await ledger.put(producer, record);
    await new Promise((resolve) => setTimeout(resolve, 300));
    let closeResolved = false;
    const closing = producer.close({ timeoutMs: 2_000 }).then(() => closeResolved = true);
    const unsettledWhenClosed = await closing.then(() =>
      ledger.entries.filter((entry) => entry.delivered === undefined).length
    );
    assert.ok(closeResolved);
    await ledger.allSettled();
    await proxy.settled();

    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    rows.push(scenarioRow({
      scenario: "3 shutdown while stalled",
      records: ledger.entries.length,
      settlement,
      check,
      timeMs: performance.now() - started,
    }));

    const counts = proxy.counts;
    console.log(
      `stall: requests ${counts.byOperation.PutRecords} (held ${
        counts.delayResponse + counts.dropResponse
      }, reset ${counts.resetBeforeForward}); ProducerClosed ${settlement.failedByCode.ProducerClosed}, of which stored where the proxy hid the response ${check.failedButStored}`,
    );
    assert.equal(unsettledWhenClosed, 0, "every record settled by the time close() resolved");
    assert.deepEqual(
      [settlement.settled, settlement.neverSettled, settlement.settledTwice],
      [8_000, 0, 0],
    );
    assert.deepEqual(Object.keys(settlement.failedByCode), ["ProducerClosed"]);
    assert.ok(settlement.failedByCode.ProducerClosed! > 0, "the stall left records to close");
    // A ProducerClosed record may be stored only where the proxy hid the response.
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
      JSON.stringify(check.examples).slice(0, 2_000),
    );
    for (const entry of ledger.failures()) {
      assert.match(entry.result!.errorMessage!, /close\(\) timed out after 2000 ms/);
      assert.equal(entry.result!.attempts.at(-1)!.errorCode, "ProducerClosed");
    }
    assert.deepEqual(loggedErrors(logger), []);
  });
});

describe("Scenario 4: throttle storm", () => {
  /** The default SDK client, recording every call so requests can be counted per shard. */
  async function countingClient(endpoint: string, shards: Shard[]) {
    const started = performance.now();
    const recording = recordingClient(
      await createDefaultKinesisClient({ endpoint, region: "us-east-1", credentials }),
    );
    /** Requests carrying entries routed to `shardId`, per whole second from start to now. */
    function perSecond(shardId: string): number[] {
      const seconds: number[] = Array.from(
        { length: Math.floor((performance.now() - started) / 1000) },
        () => 0,
      );
      for (const call of recording.calls) {
        if (call.kind !== "putRecords") continue;
        const routed = call.input.Records.some((entry) =>
          openShardFor(
            shards,
            hashOf({
              partitionKey: entry.PartitionKey,
              explicitHashKey: entry.ExplicitHashKey,
            }),
          )?.ShardId === shardId
        );
        if (!routed) continue;
        const second = Math.floor((call.startedAt - started) / 1000);
        while (seconds.length <= second) seconds.push(0);
        seconds[second]!++;
      }
      return seconds;
    }
    return { client: recording.client, perSecond };
  }

  async function storm(failIfThrottled: boolean) {
    const started = performance.now();
    const stream = uniqueStreamName(failIfThrottled ? "stormfail" : "storm");
    await createStream(direct, stream, { shardCount: 4 });
    const shards = await listAllShards(direct, stream);
    const hot = shards[1]!;
    const [startingHashKey, endingHashKey] = hashRange(hot);
    await using proxy = await startChaosProxy({
      upstream: kinesalite.endpoint,
      hotShard: { shardId: hot.ShardId!, startingHashKey, endingHashKey },
    });
    const counting = await countingClient(proxy.endpoint, shards);
    // Longer than the longest throttle pause (5 s), so every record gets an attempt to name.
    const ttlMs = 6_000;
    const logger = new CapturingLogger();
    const producer = new Producer({
      stream,
      kinesisClient: counting.client,
      recordTtlMs: ttlMs,
      failIfThrottled,
      logger,
    });
    const ledger = new Ledger();
    // Three seconds of steady traffic, so the hot shard's request rate can be read per second.
    const source = records(failIfThrottled ? "f4b" : "f4", 6_000, 4);
    for (let wave = 0; wave < 30; wave++) {
      for (let i = 0; i < 200; i++) await ledger.put(producer, source.next().value!);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await producer.close();
    await ledger.allSettled();
    await proxy.settled();
    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    rows.push(scenarioRow({
      scenario: `4 throttle storm${failIfThrottled ? ", failIfThrottled" : ""}`,
      records: ledger.entries.length,
      settlement,
      check,
      timeMs: performance.now() - started,
    }));
    const isHot = (entry: LedgerEntry) =>
      openShardFor(shards, hashOf(entry.record))?.ShardId === hot.ShardId;
    return { ledger, settlement, check, counting, hot: hot.ShardId!, shards, isHot, ttlMs, logger };
  }

  test("Producer keeps the other shards at full speed while one shard is throttled without end, and backs the hot shard off", async () => {
    const { ledger, settlement, check, counting, hot, shards, isHot, ttlMs, logger } = await storm(
      false,
    );
    assert.deepEqual([settlement.settled, settlement.neverSettled], [6_000, 0]);
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
    );
    const hotEntries = ledger.entries.filter(isHot);
    const coldEntries = ledger.entries.filter((entry) => !isHot(entry));
    assert.ok(hotEntries.length > 500 && coldEntries.length > 3_000);
    for (const entry of coldEntries) {
      assert.equal(entry.result!.success, true, String(entry.result!.errorMessage));
      assert.equal(entry.result!.attempts.length, 1, "a record of a healthy shard is sent once");
    }
    for (const entry of hotEntries) {
      assert.equal(entry.result!.errorCode, "Expired");
      assert.match(entry.result!.errorMessage!, /ProvisionedThroughputExceededException/);
      assert.equal(dishonestFailure(entry.result!, ttlMs), undefined);
    }
    const hotRate = counting.perSecond(hot);
    const coldRate = counting.perSecond(shards[2]!.ShardId!);
    console.log(
      `requests per second: hot shard ${hotRate.join(" ")}; a healthy shard ${coldRate.join(" ")}`,
    );
    // Without backoff a throttled shard is retried every ~70 ms (half the buffering time
    // plus the collector's linger), over ten times a second; with it, the pause doubles
    // from 100 ms to 5 s, so after the first two seconds about one request a second
    // reaches the hot shard (a slow run only lowers the rate).
    const late = hotRate.slice(2);
    for (const [second, count] of late.entries()) {
      assert.ok(count <= 3, `${count} hot-shard requests in second ${second + 2}`);
    }
    assert.ok(
      late.reduce((sum, count) => sum + count, 0) <= 2 * late.length,
      `hot shard after two seconds: ${late.join(" ")}`,
    );
    // Compared with a healthy shard while records flowed (its first three seconds), the
    // backed-off hot shard gets a third of the requests or fewer, until the run ends.
    const mean = (counts: number[]) =>
      counts.reduce((sum, count) => sum + count, 0) / Math.max(1, counts.length);
    const healthy = mean(coldRate.slice(0, 3));
    assert.ok(mean(late) * 3 <= healthy, `hot ${mean(late)}/s vs healthy ${healthy}/s`);
    assert.deepEqual(loggedErrors(logger), []);
  });

  test("Producer with failIfThrottled fails the hot shard's records at their first throttle and delivers the rest", async () => {
    const { ledger, settlement, check, isHot, logger } = await storm(true);
    assert.deepEqual([settlement.settled, settlement.neverSettled], [6_000, 0]);
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
    );
    for (const entry of ledger.entries) {
      const result = entry.result!;
      assert.equal(result.attempts.length, 1);
      if (isHot(entry)) {
        assert.equal(result.errorCode, "ProvisionedThroughputExceededException");
      } else {
        assert.equal(result.success, true, String(result.errorMessage));
      }
    }
    assert.deepEqual(loggedErrors(logger), []);
  });
});

describe("Scenario 5: bad inputs in a healthy stream", () => {
  /** SPEC §6's bad records, each with the field its ValidationError must name. */
  function badRecords(stream: string, index: number): Array<[string, unknown, RecordField]> {
    const key = `bad-${index}`;
    return [
      ["no partition key", { stream, data: "x" }, "partitionKey"],
      ["empty partition key", { stream, partitionKey: "", data: "x" }, "partitionKey"],
      [
        "partition key of 257 characters",
        { stream, partitionKey: "k".repeat(257), data: "x" },
        "partitionKey",
      ],
      [
        "partition key with a lone surrogate",
        { stream, partitionKey: "a\uD800b", data: "x" },
        "partitionKey",
      ],
      ["partition key not a string", { stream, partitionKey: 42, data: "x" }, "partitionKey"],
      [
        "data over maxRecordSize",
        { stream, partitionKey: key, data: new Uint8Array(1024 * 1024) },
        "data",
      ],
      ["data a number", { stream, partitionKey: key, data: 7 }, "data"],
      ["data an ArrayBuffer", { stream, partitionKey: key, data: new ArrayBuffer(4) }, "data"],
      ["data null", { stream, partitionKey: key, data: null }, "data"],
      ["explicit hash key with a leading zero", {
        stream,
        partitionKey: key,
        data: "x",
        explicitHashKey: "0123",
      }, "explicitHashKey"],
      ["explicit hash key of 2^128", {
        stream,
        partitionKey: key,
        data: "x",
        explicitHashKey: (1n << 128n).toString(),
      }, "explicitHashKey"],
      ["explicit hash key negative", {
        stream,
        partitionKey: key,
        data: "x",
        explicitHashKey: "-1",
      }, "explicitHashKey"],
      ["explicit hash key not decimal", {
        stream,
        partitionKey: key,
        data: "x",
        explicitHashKey: "1e5",
      }, "explicitHashKey"],
      [
        "explicit hash key a number",
        { stream, partitionKey: key, data: "x", explicitHashKey: 5 },
        "explicitHashKey",
      ],
      [
        "stream name with spaces",
        { stream: "no such stream!", partitionKey: key, data: "x" },
        "stream",
      ],
      ["stream not a string", { stream: 12, partitionKey: key, data: "x" }, "stream"],
      ["no stream and no default stream", { partitionKey: key, data: "x" }, "stream"],
      ["record null", null, "record"],
      ["record a string", "record", "record"],
    ];
  }

  test("Producer rejects every bad record at the call with a ValidationError naming the field, and delivers every good one", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("bad");
    const missing = uniqueStreamName("missing");
    await createStream(direct, stream, { shardCount: 2 });
    await using proxy = await startChaosProxy({ upstream: kinesalite.endpoint });
    const logger = new CapturingLogger();
    // No default stream, so a record without one is a bad input too.
    const producer = producerThrough(proxy, { logger });
    const ledger = new Ledger();
    const toMissing: LedgerEntry[] = [];
    let rejected = 0;
    for (let i = 0; i < 2_000; i++) {
      await ledger.put(producer, { stream, partitionKey: `good-${i % 97}`, data: `f5-${i}` });
      if (i % 10 !== 0) continue;
      const bad = badRecords(stream, i);
      const [what, record, field] = bad[(i / 10) % bad.length]!;
      const before = producer.outstandingRecords;
      const isField = (error: unknown) =>
        isValidationError(error) && error.field === field ? true : assert.fail(`${what}: ${error}`);
      assert.throws(() => producer.tryPut(record as UserRecord), isField, what);
      await assert.rejects(producer.put(record as UserRecord), isField, what);
      await assert.rejects(producer.enqueue(record as UserRecord), isField, what);
      assert.equal(producer.outstandingRecords, before, `${what} left nothing behind`);
      rejected++;
      if (i % 100 === 0) {
        // A stream that does not exist fails its own records fast, and only those.
        toMissing.push(
          await ledger.put(producer, { stream: missing, partitionKey: "m", data: `f5m-${i}` }),
        );
      }
    }
    await producer.close();
    await assert.rejects(
      producer.put({ stream, partitionKey: "late", data: "late" }),
      (error) => isProducerClosedError(error),
    );
    assert.throws(
      () => producer.tryPut({ stream, partitionKey: "late", data: "late" }),
      isProducerClosedError,
    );
    await ledger.allSettled();

    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    rows.push(scenarioRow({
      scenario: "5 bad inputs mixed in",
      records: ledger.entries.length + rejected * 3,
      settlement,
      check,
      timeMs: performance.now() - started,
      alsoFailed: { "ValidationError (at the call)": rejected * 3 },
    }));
    assert.equal(rejected, 200);
    assert.deepEqual([settlement.settled, settlement.neverSettled], [ledger.entries.length, 0]);
    assert.deepEqual(settlement.failedByCode, { ResourceNotFoundException: toMissing.length });
    for (const entry of toMissing) assert.equal(entry.result!.attempts.length, 1, "failed fast");
    assert.equal(settlement.succeeded, 2_000);
    assert.deepEqual(
      [check.confirmed, check.found, check.missing, check.duplicates, check.unexplained],
      [2_000, 2_000, 0, 0, 0],
    );
    assert.deepEqual(loggedErrors(logger), []);
  });

  test("Producer rejects bad options with a RangeError or TypeError naming the option", () => {
    const cases: Array<[ProducerOptions, string, ErrorConstructor]> = [
      [{ collectionMaxCount: 900 }, "collectionMaxCount", RangeError],
      [{ recordTtlMs: 10 }, "recordTtlMs", RangeError],
      [{ maxRecordSize: 11 * 1024 * 1024 }, "maxRecordSize", RangeError],
      [{ rateLimit: -1 }, "rateLimit", RangeError],
      [{ aggregationEnabled: "yes" as unknown as boolean }, "aggregationEnabled", TypeError],
      [{ endpoint: "not a url" }, "endpoint", TypeError],
      [{ stream: "bad name!" }, "stream", TypeError],
      [{ metricsLevel: "loud" as unknown as "none" }, "metricsLevel", TypeError],
      [{ kinesisClient: {} as KinesisClient }, "kinesisClient", TypeError],
      [{ logger: console.log as unknown as CapturingLogger }, "logger", TypeError],
    ];
    for (const [options, name, type] of cases) {
      assert.throws(() => new Producer(options), (error: unknown) => {
        assert.ok(error instanceof type, `${name}: ${error}`);
        assert.match((error as Error).message, new RegExp(`'${name}'`));
        return true;
      });
    }
  });

  test("decodeAggregated() throws DecodeError, and only DecodeError, for malformed bytes", () => {
    const random = new SeededRandom(5);
    const valid = encodeAggregated([
      { partitionKey: "a", data: new TextEncoder().encode("one") },
      { partitionKey: "b", data: new TextEncoder().encode("two") },
    ]);
    let decodeErrors = 0;
    for (let i = 0; i < 2_000; i++) {
      const bytes = valid.slice();
      // Corrupt the body and fix nothing: the checksum or the protobuf must catch it.
      for (let flips = random.int(1, 4); flips > 0; flips--) {
        const at = random.int(4, bytes.length - 1);
        bytes[at] = bytes[at]! ^ (1 << random.int(0, 7));
      }
      const cut = random.next() < 0.3 ? bytes.subarray(0, random.int(0, bytes.length - 1)) : bytes;
      try {
        decodeAggregated(cut);
      } catch (error) {
        assert.ok(isDecodeError(error), String(error));
        decodeErrors++;
      }
    }
    assert.ok(decodeErrors > 1_900, `${decodeErrors} of 2000 corruptions rejected`);
  });

  test("Producer fails records fast with UnrecognizedClientException when the credentials are wrong", async () => {
    await using server = await startErrorServer();
    const producer = new Producer({
      endpoint: server.endpoint,
      region: "us-east-1",
      credentials,
      stream: "events",
      logger: new CapturingLogger(),
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `x${i}` })),
    );
    await producer.close();
    for (const result of results) {
      assert.equal(result.errorCode, "UnrecognizedClientException");
      assert.equal(result.attempts.length, 1, "not retried");
    }
  });

  test("Producer fails records with Expired naming NetworkError when the endpoint is down", async () => {
    const ttlMs = 1_500;
    const producer = new Producer({
      endpoint: await refusedEndpoint(),
      region: "us-east-1",
      credentials,
      stream: "events",
      recordTtlMs: ttlMs,
      logger: new CapturingLogger(),
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `x${i}` })),
    );
    await producer.close();
    for (const result of results) {
      assert.equal(result.errorCode, "Expired");
      assert.match(result.errorMessage!, /last error: NetworkError/);
      assert.equal(dishonestFailure(result, ttlMs), undefined);
    }
  });
});

describe("Scenario 6: sinks down", () => {
  const intervalMs = 250;

  /** Puts 3,000 records in waves over about a second and a half, with `sink` attached. */
  async function runWith(name: string, sink: MetricsSink) {
    const started = performance.now();
    const stream = uniqueStreamName("sinks");
    await createStream(direct, stream, { shardCount: 2 });
    const logger = new CapturingLogger();
    const producer = new Producer({
      endpoint: kinesalite.endpoint,
      region: "us-east-1",
      credentials,
      stream,
      logger,
      metricsLevel: "detailed",
      metricsSink: sink,
      metricsUploadIntervalMs: intervalMs,
    });
    const ledger = new Ledger();
    const source = records(`f6-${name}`, 3_000, 6);
    for (let wave = 0; wave < 6; wave++) {
      for (let i = 0; i < 500; i++) await ledger.put(producer, source.next().value!);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    await producer.close();
    await ledger.allSettled();
    const elapsedMs = performance.now() - started;
    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, []);
    rows.push(scenarioRow({
      scenario: `6 sink down: ${name}`,
      records: ledger.entries.length,
      settlement,
      check,
      timeMs: elapsedMs,
    }));
    assert.deepEqual([settlement.succeeded, check.confirmed, check.found], [3_000, 3_000, 3_000]);
    // An upload tick every interval, plus the final export at close.
    const maxTicks = Math.ceil(elapsedMs / intervalMs) + 2;
    return { producer, logger, maxTicks };
  }

  test("Producer delivers every record while CloudWatchSink's endpoint refuses connections, logging each failed export once", async () => {
    const sink = new CloudWatchSink({
      region: "us-east-1",
      endpoint: await refusedEndpoint(),
      credentials,
      maxAttempts: 1,
    });
    const { producer, logger, maxTicks } = await runWith("CloudWatch refused", sink);
    const exportFailures = logger.at("error").filter((call) =>
      /metrics export failed/.test(call.message)
    );
    assert.ok(producer.metrics.exportErrors >= 1);
    assert.equal(exportFailures.length, producer.metrics.exportErrors, "one line per export");
    assert.ok(
      producer.metrics.exportErrors <= maxTicks,
      `${producer.metrics.exportErrors} exports`,
    );
    assert.equal(logger.at("error").length, exportFailures.length);
  });

  test("Producer delivers every record while the Datadog API answers 500, logging each failed export once", async () => {
    const apiKey = "dd-test-key-0000";
    const capture = await startDatadogCapture(apiKey);
    capture.script(Array.from({ length: 1_000 }, () => 500));
    const sink = new DatadogSink({ apiKey, baseUrl: capture.url, maxRetries: 1 });
    const { producer, logger, maxTicks } = await runWith("Datadog 500", sink).finally(() =>
      capture.close()
    );
    const exportFailures = logger.at("error").filter((call) =>
      /metrics export failed/.test(call.message)
    );
    assert.ok(producer.metrics.exportErrors >= 1);
    assert.ok(capture.requests.every((request) => request.status === 500));
    assert.equal(exportFailures.length, producer.metrics.exportErrors, "one line per export");
    assert.ok(
      producer.metrics.exportErrors <= maxTicks,
      `${producer.metrics.exportErrors} exports`,
    );
    assert.equal(logger.at("error").length, exportFailures.length);
  });

  test("Producer delivers every record while an eventful sink throws in record(), logging at most once per interval", async () => {
    let exports = 0;
    let calls = 0;
    const sink: EventfulMetricsSink = {
      export() {
        exports++;
      },
      record() {
        calls++;
        throw new Error("sink record failed");
      },
    };
    const { producer, logger, maxTicks } = await runWith("record() throws", sink);
    const recordFailures = logger.at("error").filter((call) =>
      /record\(\) threw/.test(call.message)
    );
    assert.ok(calls > 3_000, `${calls} record() calls`);
    assert.equal(producer.metrics.recordErrors, calls, "every failure counted");
    assert.ok(recordFailures.length >= 1);
    assert.ok(
      recordFailures.length <= maxTicks,
      `${recordFailures.length} lines for ${calls} failures`,
    );
    assert.ok(exports >= 1, "exports keep going");
    assert.equal(producer.metrics.exportErrors, 0);
  });
});
