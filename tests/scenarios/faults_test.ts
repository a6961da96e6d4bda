// Scenario 1, nothing is lost under faults: the producer with its default SDK client,
// through the chaos proxy (tests/support/chaos_proxy.ts) to kinesalite, every record's
// settlement counted and the stream read back. docs/faults.md lists every scenario.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { type ChaosRates, startChaosProxy } from "../support/chaos_proxy.ts";
import { readStream } from "../support/readback.ts";
import { checkStream, dishonestFailure, Ledger, scenarioRow } from "../support/ledger.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { producerThrough, records, useKinesalite } from "../support/fault_scenario.ts";

const scenario = useKinesalite();

describe("Scenario 1: faults", () => {
  test("Producer settles 50,000 records exactly once through throttles, 5xx, resets, lost and slow responses, and loses none", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("faults");
    await createStream(scenario.direct, stream, { shardCount: 8 });
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
      upstream: scenario.kinesalite.endpoint,
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
    const contents = await readStream(scenario.direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    const counts = proxy.counts;
    scenario.rows.push(scenarioRow({
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
    assert.deepEqual(logger.lines("error"), []);
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
      JSON.stringify(check.examples).slice(0, 2_000),
    );
    assert.equal(check.confirmed, settlement.succeeded);
    for (const entry of ledger.failures()) {
      assert.equal(dishonestFailure(entry.result!, ttlMs), undefined);
    }
    // Only a response the client never saw can leave a copy the producer sends again, or a
    // stored copy of a record that then failed (on a loaded machine many expire).
    assert.equal(check.wrongShardCopies, 0);
    assert.equal(
      check.duplicates + check.failedRecordsStored,
      check.hiddenCopies + check.ambiguousCopies,
    );
    assert.ok(counts.recordThrottle > 0 && counts.dropResponse > 0 && counts.delayResponse > 0);
  });

  test("Producer fails records only when their TTL truly ran out or the response was ambiguous, naming the cause", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("expiry");
    await createStream(scenario.direct, stream, { shardCount: 8 });
    await using proxy = await startChaosProxy({
      upstream: scenario.kinesalite.endpoint,
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
    const contents = await readStream(scenario.direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    scenario.rows.push(scenarioRow({
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
    assert.deepEqual(logger.lines("error"), []);
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
