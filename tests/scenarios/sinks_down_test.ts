// Scenario 6, metrics sinks down: a CloudWatch endpoint refusing connections, Datadog
// answering 500, a sink whose record() throws; the records are delivered all the same.
// docs/faults.md lists every scenario.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Producer } from "../../src/producer.ts";
import type { EventfulMetricsSink, MetricsSink } from "../../src/metrics_sink.ts";
import { CloudWatchSink } from "../../sinks/cloudwatch.ts";
import { DatadogSink } from "../../sinks/datadog.ts";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { readStream } from "../support/readback.ts";
import { checkStream, Ledger, scenarioRow } from "../support/ledger.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { refusedEndpoint } from "../support/error_server.ts";
import { startDatadogCapture } from "../support/datadog_capture.ts";
import { credentials, records, useKinesalite } from "../support/fault_scenario.ts";

const scenario = useKinesalite();

describe("Scenario 6: sinks down", () => {
  const intervalMs = 250;

  /** Puts 3,000 records in waves over about a second and a half, with `sink` attached. */
  async function runWith(name: string, sink: MetricsSink) {
    const started = performance.now();
    const stream = uniqueStreamName("sinks");
    await createStream(scenario.direct, stream, { shardCount: 2 });
    const logger = new CapturingLogger();
    const producer = new Producer({
      endpoint: scenario.kinesalite.endpoint,
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
    const contents = await readStream(scenario.direct, stream);
    const check = checkStream(contents.records, ledger, []);
    scenario.rows.push(scenarioRow({
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
