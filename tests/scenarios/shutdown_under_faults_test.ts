// Scenario 3, shutdown under faults: close() with a timeout while every request stalls
// behind the chaos proxy; every record still settles exactly once and the stream is read
// back. docs/faults.md lists every scenario.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { startChaosProxy } from "../support/chaos_proxy.ts";
import { readStream } from "../support/readback.ts";
import { checkStream, Ledger, scenarioRow } from "../support/ledger.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { producerThrough, records, useKinesalite } from "../support/fault_scenario.ts";

const scenario = useKinesalite();

describe("Scenario 3: shutdown under faults", () => {
  test("Producer.close({ timeoutMs: 2000 }) while the proxy stalls settles every record by the time it resolves, and says ProducerClosed only for records not confirmed", async () => {
    const started = performance.now();
    const stream = uniqueStreamName("shutdown");
    await createStream(scenario.direct, stream, { shardCount: 4 });
    await using proxy = await startChaosProxy({ upstream: scenario.kinesalite.endpoint, seed: 31 });
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
    const contents = await readStream(scenario.direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    scenario.rows.push(scenarioRow({
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
    assert.deepEqual(logger.lines("error"), []);
  });
});
