// The producer's 15 metrics against kinesalite, checked against truths computed without them:
// what crossed the wire (counted by a wrapping Kinesis client), what each RecordResult says,
// and what the stream holds when read back. The C++ KPL's rules, as docs/metrics.md states
// them with their source, decide the expected values; tests/producer_metrics_test.ts pins
// the rules one at a time on a fake Kinesis.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InMemorySink } from "../../sinks/mod.ts";
import { metricLevel, metricNames } from "../../src/metrics.ts";
import type { MetricName } from "../../src/metrics_sink.ts";
import type { RecordResult } from "../../src/record.ts";
import { startKinesalite, useEmulator } from "../support/emulators.ts";
import { cell, expectedTotals, formatTable, type Totals } from "../support/metrics_truth.ts";
import { type MetricsWorkloadRun, runMetricsWorkload } from "../support/metrics_workload.ts";

const SYNTHETIC_CODES = ["Expired", "Wrong Shard", "Record Count Mismatch", "ProducerClosed"];
const SHARD_ID = /^shardId-\d{12}$/;

function exported(sink: InMemorySink, name: MetricName): Totals {
  const { count, sum } = sink.total(name);
  return { count, sum };
}

function sameTotals(expected: Totals, actual: Totals): boolean {
  return expected.count === actual.count &&
    (Number.isNaN(expected.sum) || expected.sum === actual.sum);
}

/** Rows of the exactness table for the names recorded at `level`, plus ErrorsByCode per code. */
function exactnessRows(
  run: MetricsWorkloadRun,
  sink: InMemorySink,
  names: readonly MetricName[],
): { rows: string[][]; mismatches: string[] } {
  const truth = expectedTotals(run.results, run.wire);
  const rows: string[][] = [];
  const mismatches: string[] = [];
  for (const name of names) {
    const expected = truth.get(name);
    if (expected === undefined) continue;
    const actual = exported(sink, name);
    const ok = sameTotals(expected, actual);
    rows.push([name, cell(expected), cell({ ...actual, sum: expected.sum }), ok ? "=" : "DIFF"]);
    if (!ok) mismatches.push(`${name}: expected ${cell(expected)}, exported ${cell(actual)}`);
  }
  const codes = new Set([...run.wire.errorsByCode.keys()]);
  for (const snapshot of sink.byName("ErrorsByCode")) codes.add(snapshot.dimensions.error_code!);
  for (const code of [...codes].sort()) {
    const expected = run.wire.errorsByCode.get(code) ?? 0;
    const actual = sink.total("ErrorsByCode", { error_code: code });
    const ok = actual.count === expected && actual.sum === expected;
    rows.push([
      `  ErrorsByCode{${code}}`,
      `${expected} / ${expected}`,
      `${actual.count} / ${actual.sum}`,
      ok ? "=" : "DIFF",
    ]);
    if (!ok) mismatches.push(`ErrorsByCode{${code}}: expected ${expected}, exported ${actual.sum}`);
  }
  return { rows, mismatches };
}

/** The value of the last UserRecordsPending sample per stream, from the events. */
function lastPending(sink: InMemorySink): Map<string, number> {
  const last = new Map<string, number>();
  for (const event of sink.eventsByName("UserRecordsPending")) {
    last.set(event.dimensions.stream!, event.value);
  }
  return last;
}

function outcomeSummary(results: readonly RecordResult[]): Record<string, number> {
  const outcomes: Record<string, number> = {};
  for (const result of results) {
    const key = result.success ? "success" : result.errorCode!;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  return outcomes;
}

describe("Producer metrics against kinesalite", () => {
  const env = useEmulator(startKinesalite);

  test("Producer metrics at level detailed: sums over all exports equal the truth for every name", async () => {
    const sink = new InMemorySink();
    const run = await runMetricsWorkload({
      endpoint: env.emulator.endpoint,
      admin: env.client,
      level: "detailed",
      sink,
    });
    const { results, wire, streams } = run;

    // The workload went through every path it was built for.
    const outcomes = outcomeSummary(results);
    assert.ok(outcomes.success! > 500, JSON.stringify(outcomes));
    for (const code of ["KMSAccessDeniedException", "Expired", "ResourceNotFoundException"]) {
      assert.ok(outcomes[code]! > 0, `some records end ${code}: ${JSON.stringify(outcomes)}`);
    }
    assert.ok(outcomes["Record Count Mismatch"]! > 0, JSON.stringify(outcomes));
    assert.ok(results.some((result) => result.success && result.attempts.length > 1));
    assert.ok(sink.exports.length >= 3, `${sink.exports.length} exports`);

    const { rows, mismatches } = exactnessRows(run, sink, metricNames);
    const pending = lastPending(sink);
    rows.push([
      "UserRecordsPending (last sample per stream)",
      "0, 0, 0",
      [...Object.values(streams)].map((stream) => pending.get(stream)).join(", "),
      [...Object.values(streams)].every((stream) => pending.get(stream) === 0) ? "=" : "DIFF",
    ]);
    console.log(
      formatTable(
        `Exactness at level detailed (count / sum over ${sink.exports.length} exports; ` +
          `outcomes ${JSON.stringify(outcomes)})`,
        ["metric", "expected", "exported", ""],
        rows,
      ),
    );
    assert.deepEqual(mismatches, []);
    for (const stream of Object.values(streams)) assert.equal(pending.get(stream), 0, stream);

    // Independent cross-checks of the wire counter: the stream read back, and the
    // distinct Kinesis records the successful results name.
    assert.deepEqual(wire.stored.get(streams.main), run.readback);
    const landed = new Set(
      results.filter((result) => result.success).map((r) => `${r.shardId}/${r.sequenceNumber}`),
    );
    assert.equal(landed.size, wire.entriesStored);
    assert.equal(sink.total("KinesisRecordsPut").sum, run.readback.entries);
    assert.equal(sink.total("KinesisRecordsDataPut").sum, run.readback.bytes);
    for (const [stream, count] of run.perStream) {
      assert.equal(sink.total("UserRecordsReceived", { stream }).sum, count, stream);
    }

    // Nothing lost or counted twice between exports: every sample put (an event) is in
    // exactly one export, and each export starts where the previous one ended.
    for (const name of metricNames) {
      assert.equal(sink.total(name).count, sink.eventsByName(name).length, name);
    }
    const windows = sink.exports.map((batch) => [batch[0]!.windowStart, batch[0]!.windowEnd]);
    for (let i = 1; i < windows.length; i++) {
      assert.equal(windows[i]![0], windows[i - 1]![1], `export ${i} starts where ${i - 1} ended`);
    }
    for (const batch of sink.exports) {
      for (const snapshot of batch) assert.equal(snapshot.windowStart, batch[0]!.windowStart);
    }

    // Dimensions: full shard ids of the stream, error codes only on ErrorsByCode and
    // never one of the producer's own codes.
    for (const snapshot of sink.snapshots) {
      const { stream, shard, error_code } = snapshot.dimensions;
      assert.ok(Object.values(streams).includes(stream!), `${snapshot.name} has a stream`);
      if (shard !== undefined) {
        assert.match(shard, SHARD_ID);
        assert.ok(run.shards.get(stream!)?.includes(shard), `${snapshot.name} on ${shard}`);
      }
      assert.equal(error_code !== undefined, snapshot.name === "ErrorsByCode", snapshot.name);
      assert.ok(!SYNTHETIC_CODES.includes(error_code!), `ErrorsByCode{${error_code}}`);
    }
    assert.ok(sink.byName("UserRecordsPut").some((snapshot) => snapshot.dimensions.shard));
  });

  test("Producer metrics at level summary: only the six summary names, per stream, equal to the truth", async () => {
    const sink = new InMemorySink();
    const run = await runMetricsWorkload({
      endpoint: env.emulator.endpoint,
      admin: env.client,
      level: "summary",
      sink,
      records: 600,
      seed: 2,
    });
    const summaryNames = metricNames.filter((name) => metricLevel(name) === "summary");
    const { rows, mismatches } = exactnessRows(run, sink, summaryNames);
    console.log(
      formatTable(
        `Exactness at level summary (count / sum over ${sink.exports.length} exports)`,
        ["metric", "expected", "exported", ""],
        rows,
      ),
    );
    assert.deepEqual(mismatches, []);
    assert.deepEqual(
      [...new Set(sink.snapshots.map((snapshot) => snapshot.name))].sort(),
      [...summaryNames].sort(),
    );
    assert.deepEqual(summaryNames.length, 6);
    for (const snapshot of sink.snapshots) {
      assert.equal(snapshot.dimensions.shard, undefined, `${snapshot.name} has no shard`);
      assert.notEqual(snapshot.dimensions.stream, undefined, `${snapshot.name} has a stream`);
    }
    assert.ok(sink.exports.length >= 3, `${sink.exports.length} exports`);
  });
});

// ---------------------------------------------------------------------------
// The rules one at a time, on a fake clock and an in-process Kinesis.
