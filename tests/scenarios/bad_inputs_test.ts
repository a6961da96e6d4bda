// Scenario 5, bad inputs in a healthy stream: bad records, bad options, corrupt aggregates,
// wrong credentials and an endpoint that is down, mixed into good traffic that must all
// arrive. docs/faults.md lists every scenario.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Producer } from "../../src/producer.ts";
import type { UserRecord } from "../../src/record.ts";
import { isProducerClosedError, isValidationError, type RecordField } from "../../src/errors.ts";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { startChaosProxy } from "../support/chaos_proxy.ts";
import { readStream } from "../support/readback.ts";
import {
  checkStream,
  dishonestFailure,
  Ledger,
  type LedgerEntry,
  scenarioRow,
} from "../support/ledger.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { refusedEndpoint, startErrorServer } from "../support/error_server.ts";
import { credentials, producerThrough, useKinesalite } from "../support/fault_scenario.ts";

const scenario = useKinesalite();

describe("Scenario 5: bad inputs in a healthy stream", () => {
  /** Records src/_validate.ts refuses at the call, each with the field its ValidationError must name. */
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
    await createStream(scenario.direct, stream, { shardCount: 2 });
    await using proxy = await startChaosProxy({ upstream: scenario.kinesalite.endpoint });
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
    const contents = await readStream(scenario.direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    scenario.rows.push(scenarioRow({
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
    assert.deepEqual(logger.lines("error"), []);
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
